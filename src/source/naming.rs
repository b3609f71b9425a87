//! The name of a downloaded file, which decides its table's name and (with its content) its format:
//! Content-Disposition first, then the URL's path, then a known extension anywhere in the URL, then the
//! Content-Type. Unlike the reference, a Content-Type that contradicts the name does not rename the file
//! (a CSV served as `application/vnd.ms-excel` stays a CSV): the content is sniffed to settle it.

use url::Url;

use crate::detect::{KNOWN_EXTENSIONS, family, known_extension, sniff};
use crate::source::staging::safe_file_name;

/// What the response says about the file's name.
#[derive(Debug, Default, Clone)]
pub struct NameHints<'a> {
    pub content_disposition: Option<&'a str>,
    pub content_type: Option<&'a str>,
}

/// The file name for a download of `url`, given the response's hints and the first bytes of the body.
pub fn file_name(url: &Url, hints: &NameHints<'_>, head: &[u8]) -> String {
    let from_disposition = hints.content_disposition.and_then(disposition_file_name);
    let path_name = url.path_segments().and_then(|mut s| s.next_back()).map(percent_decode).filter(|s| !s.is_empty());
    let base = from_disposition
        .or_else(|| path_name.clone().filter(|n| known_extension(n).is_some()))
        .or_else(|| name_inside_url(url))
        .or(path_name)
        .unwrap_or_else(|| "download".to_string());
    let base = safe_file_name(&base);
    let type_extensions = hints.content_type.map(extensions_for_type).unwrap_or_default();
    let sniffed = sniff(head);
    let stem = |name: &str| name.rsplit_once('.').map(|(s, _)| s.to_string()).unwrap_or_else(|| name.to_string());
    // Gzip bytes are unpacked whatever the name says (`data.csv` that is `data.csv.gz` without the header
    // saying so): the name gets the extension that unpacks them.
    if sniffed == Some("gz") && !matches!(known_extension(&base).as_deref(), Some("gz" | "tgz")) {
        return format!("{base}.gz");
    }
    match known_extension(&base) {
        Some(ext) if type_extensions.is_empty() || type_extensions.iter().any(|t| family(t) == family(&ext)) => base,
        // The name and the type disagree: the content decides, and the name wins a tie.
        Some(ext) => match sniffed {
            Some(s) if family(s) != family(&ext) => format!("{}.{s}", stem(&base)),
            _ => base,
        },
        None => match sniffed.or_else(|| type_extensions.first().copied()) {
            Some(ext) => format!("{base}.{ext}"),
            None => base,
        },
    }
}

/// `attachment; filename="x.csv"` or `filename*=UTF-8''x%20y.csv` (the latter wins, per RFC 6266).
fn disposition_file_name(header: &str) -> Option<String> {
    let mut plain = None;
    for part in header.split(';').map(str::trim) {
        let Some((key, value)) = part.split_once('=') else { continue };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if key == "filename*" {
            let encoded = value.rsplit_once('\'').map(|(_, v)| v).unwrap_or(value);
            return Some(percent_decode(encoded.trim_matches('"'))).filter(|s| !s.is_empty());
        }
        if key == "filename" {
            plain = Some(value.trim_matches('"').to_string()).filter(|s| !s.is_empty());
        }
    }
    plain
}

/// A `name.ext` with a known extension anywhere in the URL (`?format=csv&filename=data.csv`), longest
/// extension first.
fn name_inside_url(url: &Url) -> Option<String> {
    let text = percent_decode(url.as_str());
    let mut extensions: Vec<&str> = KNOWN_EXTENSIONS.to_vec();
    extensions.sort_by_key(|e| std::cmp::Reverse(e.len()));
    for ext in extensions {
        let needle = format!(".{ext}");
        let lower = text.to_ascii_lowercase();
        let mut from = 0;
        while let Some(pos) = lower[from..].find(&needle).map(|p| p + from) {
            let end = pos + needle.len();
            let boundary = lower[end..].chars().next().is_none_or(|c| !c.is_alphanumeric());
            let start =
                text[..pos].rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).map_or(0, |i| i + 1);
            if boundary && start < pos {
                return Some(text[start..end].to_string());
            }
            from = end;
        }
    }
    None
}

fn extensions_for_type(content_type: &str) -> Vec<&'static str> {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "text/plain" => vec!["txt", "kml", "geojson"],
        "text/csv" => vec!["csv"],
        "text/tab-separated-values" => vec!["tsv"],
        "application/vnd.ms-excel" => vec!["xls"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => vec!["xlsx"],
        "application/vnd.ms-excel.sheet.macroenabled.12" => vec!["xlsm"],
        "application/vnd.ms-excel.sheet.binary.macroenabled.12" => vec!["xlsb"],
        "application/vnd.oasis.opendocument.spreadsheet" => vec!["ods"],
        "application/vnd.geo+json" | "application/geo+json" => vec!["geojson"],
        "application/vnd.google-earth.kml+xml" => vec!["kml"],
        "application/vnd.google-earth.kmz" => vec!["kmz"],
        "application/gpx+xml" => vec!["gpx"],
        "application/x-gzip" | "application/gzip" => vec!["tgz", "gz"],
        "application/zip" | "application/x-zip-compressed" => vec!["zip"],
        "application/json" | "text/javascript" | "application/javascript" => vec!["json"],
        "application/osm3s+xml" => vec!["osm"],
        "application/geopackage+sqlite3" => vec!["gpkg"],
        _ => vec![],
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(url: &str, cd: Option<&str>, ct: Option<&str>, head: &[u8]) -> String {
        file_name(&Url::parse(url).unwrap(), &NameHints { content_disposition: cd, content_type: ct }, head)
    }

    const CSV: &[u8] = b"a,b\n1,2\n";

    #[test]
    fn disposition_then_path_then_url_then_type() {
        assert_eq!(
            name("https://h/get?id=1", Some("attachment; filename=\"report 2024.csv\""), None, CSV),
            "report_2024.csv"
        );
        assert_eq!(name("https://h/get", Some("attachment; filename*=UTF-8''caf%C3%A9.csv"), None, CSV), "café.csv");
        assert_eq!(name("https://h/data/sample.csv", None, Some("text/csv"), CSV), "sample.csv");
        assert_eq!(name("https://h/api?format=csv&filename=barrios.csv", None, None, CSV), "barrios.csv");
        assert_eq!(name("https://h/export", None, Some("application/json"), b"\x00\x01"), "export.json");
    }

    #[test]
    fn a_csv_served_as_excel_stays_a_csv() {
        assert_eq!(name("https://h/sample.csv", None, Some("application/vnd.ms-excel"), CSV), "sample.csv");
        // but a real spreadsheet behind a .csv name is recognised
        assert_eq!(
            name("https://h/sample.csv", None, Some("application/vnd.ms-excel"), b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
            "sample.xls"
        );
    }

    #[test]
    fn gzip_bytes_get_the_extension_that_unpacks_them_whatever_the_name() {
        let gz = b"\x1f\x8b\x08\x00";
        assert_eq!(name("https://h/data/sample.csv", None, Some("text/csv"), gz), "sample.csv.gz");
        assert_eq!(name("https://h/export", None, None, gz), "export.gz");
        assert_eq!(name("https://h/sample.csv.gz", None, None, gz), "sample.csv.gz");
        assert_eq!(name("https://h/sample.tgz", None, None, gz), "sample.tgz");
    }

    #[test]
    fn files_without_extension_are_sniffed() {
        assert_eq!(name("https://h/download", None, Some("application/octet-stream"), CSV), "download.csv");
        assert_eq!(name("https://h/", None, None, b"PK\x03\x04"), "download.zip");
        assert_eq!(name("https://h/thing", None, None, b"\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08"), "thing");
    }
}
