//! Whether bytes are text, and in which character encoding: what a delimited file must be, told from its
//! first bytes (used to name a file without an extension, and by the CSV reader's sniffer).

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};
use tokio_util::sync::CancellationToken;

use crate::errors::{ImportError, check_stop, codes};

/// Whether the first bytes of a file read as text in some encoding (what a delimited file must be).
pub fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let encoding = detect_encoding(head, false);
    let (text, _, _) = encoding.decode(head);
    !looks_binary(&text)
}

/// A byte-order mark wins; then UTF-16 without one (every other byte zero); then UTF-8 if the sample is
/// valid UTF-8; otherwise the legacy encoding chardetng (Firefox's detector) finds likeliest.
pub fn detect_encoding(sample: &[u8], complete: bool) -> &'static Encoding {
    if let Some((encoding, _)) = Encoding::for_bom(sample) {
        return encoding;
    }
    if let Some(utf16) = utf16_without_bom(sample) {
        return utf16;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => return UTF_8,
        // a character cut by the end of the sample is not an error
        Err(e) if e.error_len().is_none() && !complete => return UTF_8,
        Err(_) => {}
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(sample, complete);
    detector.guess(None, Utf8Detection::Deny)
}

fn utf16_without_bom(sample: &[u8]) -> Option<&'static Encoding> {
    let pairs = sample.len() / 2;
    if pairs < 8 {
        return None;
    }
    let zeros_at = |parity: usize| sample.iter().skip(parity).step_by(2).filter(|b| **b == 0).count();
    let (even, odd) = (zeros_at(0), zeros_at(1));
    if odd * 10 > pairs * 7 && even * 10 < pairs {
        Some(UTF_16LE)
    } else if even * 10 > pairs * 7 && odd * 10 < pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Text in which more than 5% of characters are control characters (or undecodable) is not text.
pub fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut odd = 0usize;
    for c in text.chars().take(65_536) {
        total += 1;
        let control = c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c');
        if control || c == char::REPLACEMENT_CHARACTER {
            odd += 1;
        }
    }
    odd * 20 > total
}

/// Picks a legacy encoding from the whole file `file` (opened at its start), for files whose first megabyte
/// looked like UTF-8 but whose later bytes are not.
pub fn detect_encoding_of_whole_file(
    mut file: impl std::io::Read,
    stop: &CancellationToken,
) -> Result<&'static Encoding, ImportError> {
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        check_stop(stop)?;
        let n = file.read(&mut buf).map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot read: {e}")))?;
        if n == 0 {
            detector.feed(&[], true);
            break;
        }
        detector.feed(&buf[..n], false);
    }
    Ok(detector.guess(None, Utf8Detection::Deny))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_encodings() {
        assert_eq!(detect_encoding("a,b\ncafé,1\n".as_bytes(), true), UTF_8);
        assert_eq!(detect_encoding(b"\xef\xbb\xbfa,b\n", true), UTF_8);
        let latin = b"name;city\nJos\xe9;M\xe1laga\nFran\xe7ois;Besan\xe7on\n";
        assert_eq!(detect_encoding(latin, true).name(), "windows-1252");
        let utf16: Vec<u8> = "a,b\n1,2\ncaf\u{e9},3\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(detect_encoding(&utf16, true), UTF_16LE);
        // a multi-byte character cut at the end of a partial sample
        assert_eq!(detect_encoding(&"aé".as_bytes()[..2], false), UTF_8);
    }

    #[test]
    fn binary_is_not_text() {
        let png: String = (0u8..=255).map(|b| b as char).collect();
        assert!(looks_binary(&png));
        assert!(!looks_binary("a,b\n1,2\n"));
    }
}
