//! Text from a source database, as UTF-8. Servers normally convert text to our connection's UTF-8
//! themselves; the `encoding` parameter is for data stored in another encoding than the one its column
//! declares (a `latin1` column holding UTF-8 bytes, say). Then the bytes are fetched as they are stored and
//! decoded here with the named encoding.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// The encoding a name stands for: PostgreSQL's names (as the reference's `encoding` takes them: `latin1`,
/// `win1252`, `iso88591`...), MySQL's (`utf8mb4`, `cp1251`) and the WHATWG labels.
pub fn encoding_for(name: &str) -> Option<&'static Encoding> {
    let folded: String = name.trim().to_ascii_lowercase().chars().filter(|c| !matches!(c, '_' | '-' | ' ')).collect();
    let label = match folded.as_str() {
        "utf8" | "utf8mb4" | "utf8mb3" | "unicode" => "utf-8",
        // MySQL's latin1 is really windows-1252, and WHATWG reads ISO-8859-1 that way too.
        "latin1" | "iso88591" | "ascii" | "sqlascii" => "windows-1252",
        "latin2" | "iso88592" => "iso-8859-2",
        "latin3" | "iso88593" => "iso-8859-3",
        "latin4" | "iso88594" => "iso-8859-4",
        "latin5" | "iso88599" => "windows-1254",
        "latin6" | "iso885910" => "iso-8859-10",
        "latin7" | "iso885913" => "iso-8859-13",
        "latin8" | "iso885914" => "iso-8859-14",
        "latin9" | "iso885915" => "iso-8859-15",
        "latin10" | "iso885916" => "iso-8859-16",
        "iso88595" => "iso-8859-5",
        "iso88596" => "iso-8859-6",
        "iso88597" => "iso-8859-7",
        "iso88598" => "iso-8859-8",
        "win866" | "cp866" | "alt" => "ibm866",
        "win874" | "cp874" => "windows-874",
        "koi8r" | "koi8" => "koi8-r",
        "koi8u" => "koi8-u",
        "sjis" | "shiftjis" | "cp932" => "shift_jis",
        "eucjp" | "ujis" => "euc-jp",
        "euckr" | "uhc" => "euc-kr",
        "gbk" | "euccn" | "gb2312" => "gbk",
        "gb18030" => "gb18030",
        "big5" => "big5",
        f if f.starts_with("win125") && f.len() == 7 => {
            return Encoding::for_label(format!("windows-{}", &f[3..]).as_bytes());
        }
        _ => return Encoding::for_label(name.trim().as_bytes()),
    };
    Encoding::for_label(label.as_bytes())
}

/// Decodes a stored text value: UTF-8 unless an encoding was named. Bytes that are not valid in the
/// encoding become U+FFFD rather than failing the import (a lost character, not a lost table).
pub fn decode<'a>(bytes: &'a [u8], encoding: Option<&'static Encoding>) -> Cow<'a, str> {
    match encoding {
        None => String::from_utf8_lossy(bytes),
        Some(e) => e.decode_without_bom_handling(bytes).0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_and_mysql_names_are_understood() {
        for (name, want) in [
            ("UTF8", "UTF-8"),
            ("latin1", "windows-1252"),
            ("ISO_8859_1", "windows-1252"),
            ("WIN1251", "windows-1251"),
            ("win1252", "windows-1252"),
            ("LATIN9", "ISO-8859-15"),
            ("utf8mb4", "UTF-8"),
            ("cp1250", "windows-1250"),
            ("SJIS", "Shift_JIS"),
            ("KOI8R", "KOI8-R"),
        ] {
            assert_eq!(encoding_for(name).map(|e| e.name()), Some(want), "{name}");
        }
        assert!(encoding_for("klingon").is_none());
    }

    #[test]
    fn decoding_uses_the_named_encoding() {
        assert_eq!(decode(b"Se\xf1or", encoding_for("latin1")), "Señor");
        assert_eq!(decode("Señor".as_bytes(), None), "Señor");
        assert_eq!(decode(b"Se\xf1or", None), "Se\u{fffd}or");
    }
}
