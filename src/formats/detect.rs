//! Recognising a format from a file's first bytes, for files whose name says nothing (or says something
//! the content contradicts, like a CSV served as an Excel file).

/// Extensions the reference recognises; any other extension is not taken as a statement of format.
pub const KNOWN_EXTENSIONS: &[&str] = &[
    "csv", "tsv", "txt", "shp", "ods", "xls", "xlsx", "tif", "tiff", "kml", "kmz", "js", "json", "geojson", "tar",
    "gz", "tgz", "bz2", "zip", "carto", "osm", "pbf", "gpkg", "gpx", "tab", "gdb", "fgdb", "gml", "fgb", "dxf",
];

/// The lowercase extension of a file name, if it is one we know.
pub fn known_extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    KNOWN_EXTENSIONS.contains(&ext.as_str()).then_some(ext)
}

/// Extensions that name the same kind of content: a `.txt` holding CSV is no contradiction.
pub fn family(ext: &str) -> &str {
    match ext {
        "csv" | "tsv" | "txt" => "text",
        "json" | "geojson" | "js" => "json",
        "zip" | "kmz" | "xlsx" | "ods" | "carto" => "zip",
        "gz" | "tgz" => "gz",
        "tif" | "tiff" => "tif",
        other => other,
    }
}

/// The extension the content looks like, if it looks like anything we know.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "zip"),
        (b"\x1f\x8b", "gz"),
        (b"BZh", "bz2"),
        (b"SQLite format 3\0", "gpkg"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),
        (b"fgb\x03", "fgb"),
        (b"\x00\x00\x27\x0a", "shp"),
        (b"II*\x00", "tif"),
        (b"MM\x00*", "tif"),
    ];
    if let Some((_, ext)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(ext);
    }
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return Some("tar");
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(64 << 10)]);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<') {
        let lower = trimmed[..trimmed.len().min(4096)].to_ascii_lowercase();
        return ["kml", "gpx", "osm"]
            .into_iter()
            .find(|tag| lower.contains(&format!("<{tag}")))
            .or_else(|| (lower.contains("gml") && lower.contains("featurecollection")).then_some("gml"));
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let geo = ["\"featurecollection\"", "\"feature\"", "\"coordinates\""];
        let lower = trimmed[..trimmed.len().min(4096)].to_ascii_lowercase();
        return Some(if geo.iter().any(|g| lower.contains(g)) { "geojson" } else { "json" });
    }
    crate::formats::csv::looks_like_text(head).then_some("csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_content() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Some("zip"));
        assert_eq!(sniff(b"\x1f\x8b\x08"), Some("gz"));
        assert_eq!(sniff(b"<?xml version=\"1.0\"?>\n<kml xmlns=\"x\">"), Some("kml"));
        assert_eq!(sniff(b"  {\"type\":\"FeatureCollection\",\"features\":[]}"), Some("geojson"));
        assert_eq!(sniff(b"[{\"a\":1}]"), Some("json"));
        assert_eq!(sniff(b"name,lat,lon\nA,1,2\n"), Some("csv"));
        assert_eq!(sniff(&[0u8, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0]), None);
    }

    #[test]
    fn knows_extensions_and_families() {
        assert_eq!(known_extension("a.CSV").as_deref(), Some("csv"));
        assert_eq!(known_extension("a.exe"), None);
        assert_eq!(known_extension("noext"), None);
        assert_eq!(family("txt"), family("csv"));
        assert_ne!(family("xls"), family("csv"));
    }
}
