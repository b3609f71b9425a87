//! Recognising a format from a file's name and first bytes, for files whose name says nothing (or says
//! something the content contradicts, like a CSV served as an Excel file). A floor of its own, below the
//! sources (which name what they fetch by it) and the readers (which are chosen by it).

pub mod text;

/// Extensions the reference recognises; any other extension is not taken as a statement of format.
pub const KNOWN_EXTENSIONS: &[&str] = &[
    "csv", "tsv", "txt", "shp", "ods", "xls", "xlsx", "xlsm", "xlsb", "tif", "tiff", "kml", "kmz", "js", "json",
    "geojson", "tar", "gz", "tgz", "bz2", "zip", "carto", "osm", "pbf", "gpkg", "gpx", "tab", "gdb", "fgdb", "gml",
    "fgb", "dxf", "mif", "jp2", "img", "asc", "png", "jpg", "jpeg",
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
        "zip" | "kmz" | "xlsx" | "xlsm" | "xlsb" | "ods" | "carto" => "zip",
        "gz" | "tgz" => "gz",
        "tif" | "tiff" => "tif",
        "jpg" | "jpeg" => "jpg",
        "kml" | "gpx" | "gml" | "osm" | "xml" | "vrt" => "xml",
        other => other,
    }
}

/// What a file is, for choosing its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Delimited,
    Json,
    /// Anything GDAL reads as vector layers.
    Vector,
    Spreadsheet,
    Archive,
    Raster,
    Unknown,
}

pub fn kind_of(ext: &str) -> Kind {
    match ext {
        "csv" | "tsv" | "txt" => Kind::Delimited,
        "json" | "geojson" | "js" => Kind::Json,
        "shp" | "kml" | "gpx" | "gpkg" | "osm" | "pbf" | "tab" | "mif" | "gml" | "fgb" | "dxf" | "gdb" | "fgdb"
        | "xml" => Kind::Vector,
        "xls" | "xlsx" | "xlsm" | "xlsb" | "ods" => Kind::Spreadsheet,
        "zip" | "kmz" | "carto" | "gz" | "tgz" | "tar" | "bz2" => Kind::Archive,
        "tif" | "tiff" | "jp2" | "img" | "asc" | "png" | "jpg" | "jpeg" => Kind::Raster,
        _ => Kind::Unknown,
    }
}

/// Merely "some text" contradicts only a spreadsheet extension (a CSV saved as `.xls` is common); any
/// other extension stands against it (a broken `.shp` is a broken shapefile, not a CSV).
fn text_overrides(ext: &str) -> bool {
    matches!(ext, "xls" | "xlsx" | "xlsm" | "xlsb" | "ods")
}

/// The extension a file should be read as: its own, unless its content clearly says otherwise (a CSV named
/// `.xls`, a KML named `.txt`), or the content's when it has none. `zip_flavour` refines a zip into
/// `xlsx`, `xlsb`, `ods`, `kmz` or `zip`.
pub fn effective_extension(name: &str, head: &[u8], zip_flavour: impl FnOnce() -> &'static str) -> Option<String> {
    let ext = known_extension(name);
    let sniffed = sniff(head).map(|s| if s == "zip" { zip_flavour() } else { s });
    // A virtual dataset is refused whatever it is called (it would make GDAL read other files).
    if sniffed == Some(VRT) {
        return Some(VRT.to_string());
    }
    match (ext, sniffed) {
        (Some(e), Some(s)) if family(&e) != family(s) => {
            if s == "csv" && !text_overrides(&e) {
                Some(e)
            } else {
                Some(s.to_string())
            }
        }
        (Some(e), _) => Some(e),
        (None, s) => s.map(str::to_string),
    }
}

/// What a GDAL virtual dataset (OGR or raster VRT) is called here: recognised only to be refused.
pub const VRT: &str = "vrt";

/// At most `max` bytes of `s`, cut at a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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
        // BigTIFF
        (b"II+\x00", "tif"),
        (b"MM\x00+", "tif"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpg"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jp2"),
        (b"EHFA_HEADER_TAG", "img"),
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
        let lower = prefix(trimmed, 4096).to_ascii_lowercase();
        if lower.contains("<ogrvrtdatasource") || lower.contains("<vrtdataset") {
            return Some(VRT);
        }
        let found = ["kml", "gpx", "osm"].into_iter().find(|tag| lower.contains(&format!("<{tag}")));
        let gml = lower.contains("gml") && lower.contains("featurecollection");
        return Some(found.unwrap_or(if gml { "gml" } else { "xml" }));
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let geo = ["\"featurecollection\"", "\"feature\"", "\"coordinates\""];
        let lower = prefix(trimmed, 4096).to_ascii_lowercase();
        return Some(if geo.iter().any(|g| lower.contains(g)) { "geojson" } else { "json" });
    }
    text::looks_like_text(head).then_some("csv")
}

/// Which JSON a file of JSON is, from its first bytes: ESRI's (`esrijson`, a FeatureSet of `attributes` and
/// `esriGeometry...`), TopoJSON (`topojson`, a `Topology` of objects), which GDAL reads; None for GeoJSON and
/// plain JSON, which the native reader reads.
pub fn json_flavour(head: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(head);
    let compact: String = prefix(&text, 4096).chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("\"type\":\"Topology\"") {
        return Some("topojson");
    }
    let esri = compact.contains("\"esriGeometry")
        || (compact.contains("\"attributes\":") && compact.contains("\"spatialReference\":"));
    esri.then_some("esrijson")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esri_json_and_topojson_are_told_from_geojson() {
        let esri = br#"{"displayFieldName":"","geometryType":"esriGeometryPoint","features":[{"attributes":{}}]}"#;
        assert_eq!(json_flavour(esri), Some("esrijson"));
        assert_eq!(json_flavour(br#"{ "type" : "Topology", "objects": {}}"#), Some("topojson"));
        assert_eq!(json_flavour(br#"{"type":"FeatureCollection","features":[]}"#), None);
        assert_eq!(json_flavour(br#"[{"a": 1}]"#), None);
    }

    #[test]
    fn recognises_content() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Some("zip"));
        assert_eq!(sniff(b"\x1f\x8b\x08"), Some("gz"));
        assert_eq!(sniff(b"<?xml version=\"1.0\"?>\n<kml xmlns=\"x\">"), Some("kml"));
        assert_eq!(sniff(b"<?xml version=\"1.0\"?>\n<root/>"), Some("xml"));
        assert_eq!(sniff(b"<OGRVRTDataSource><OGRVRTLayer name=\"x\"/></OGRVRTDataSource>"), Some("vrt"));
        assert_eq!(sniff(b"  <VRTDataset rasterXSize=\"1\">"), Some("vrt"));
        assert_eq!(sniff(b"  {\"type\":\"FeatureCollection\",\"features\":[]}"), Some("geojson"));
        assert_eq!(sniff(b"[{\"a\":1}]"), Some("json"));
        // a multi-byte character across the 4096th byte
        let mut cyrillic = String::from("{\"name\":\"");
        while cyrillic.len() < 5000 {
            cyrillic.push('Ж');
        }
        assert_eq!(sniff(format!(" {cyrillic}\"}}").as_bytes()), Some("json"));
        assert_eq!(sniff(b"name,lat,lon\nA,1,2\n"), Some("csv"));
        assert_eq!(sniff(&[0u8, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0]), None);
    }

    #[test]
    fn content_overrides_a_misleading_extension() {
        let zip = || "zip";
        let csv = b"a,b\n1,2\n";
        assert_eq!(effective_extension("data.xls", csv, zip).as_deref(), Some("csv"));
        assert_eq!(effective_extension("places.txt", b"<kml><Document/></kml>", zip).as_deref(), Some("kml"));
        assert_eq!(effective_extension("roads.tab", b"!table\n!version 300\n", zip).as_deref(), Some("tab"));
        assert_eq!(effective_extension("noext", csv, zip).as_deref(), Some("csv"));
        assert_eq!(effective_extension("book.csv", b"PK\x03\x04", || "xlsx").as_deref(), Some("xlsx"));
        assert_eq!(effective_extension("a.gml", b"<?xml version='1.0'?><x/>", zip).as_deref(), Some("gml"));
        assert_eq!(effective_extension("data.csv", csv, zip).as_deref(), Some("csv"));
        let vrt = b"<OGRVRTDataSource><OGRVRTLayer name=\"leak\"/></OGRVRTDataSource>";
        for name in ["innocent.vrt", "innocent.xml", "innocent.kml", "innocent.gml", "innocent"] {
            assert_eq!(effective_extension(name, vrt, zip).as_deref(), Some("vrt"), "{name}");
        }
    }

    #[test]
    fn every_workbook_extension_is_a_spreadsheet() {
        for ext in ["xls", "xlsx", "xlsm", "xlsb", "ods"] {
            assert_eq!(kind_of(&known_extension(&format!("book.{ext}")).unwrap()), Kind::Spreadsheet, "{ext}");
        }
        let zip = b"PK\x03\x04";
        assert_eq!(effective_extension("book.xlsm", zip, || "xlsx").as_deref(), Some("xlsm"));
        assert_eq!(effective_extension("book.xlsb", zip, || "xlsb").as_deref(), Some("xlsb"));
        assert_eq!(effective_extension("book", zip, || "xlsb").as_deref(), Some("xlsb"));
        assert_eq!(effective_extension("book.xlsb", b"a,b\n1,2\n", || "zip").as_deref(), Some("csv"));
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
