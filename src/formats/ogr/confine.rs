//! What GDAL may do with an upload: read that file with the one driver its format calls for, and nothing
//! else. GDAL's drivers can follow references out of a file: an OGR VRT names any other file or URL as its
//! source, MapInfo seamless tables and views name other tables, GML downloads its schemas, and any path
//! GDAL opens may be a `/vsicurl/` URL. Uploads are hostile, so the reader child
//!
//! - opens the file with an explicit list of drivers for its format, and removes every other driver from
//!   its process first, so that no nested open inside a driver can reach VRT, WFS, WMS, CSV...;
//! - refuses MapInfo tables that are not plain (seamless tables and views read other files);
//! - runs without network: in a network namespace of its own where the system allows it (then no socket
//!   reaches anything), and in any case with GDAL's network features switched off.

use std::path::Path;

use crate::errors::{ImportError, codes};

/// The GDAL drivers that may read a file of this (effective) extension. None: GDAL does not read it.
pub fn drivers_for(ext: &str) -> Option<&'static [&'static str]> {
    Some(match ext {
        "shp" => &["ESRI Shapefile"],
        "kml" => &["LIBKML", "KML"],
        "gpx" => &["GPX"],
        "gpkg" => &["GPKG"],
        "osm" | "pbf" => &["OSM"],
        "tab" | "mif" => &["MapInfo File"],
        "gml" => &["GML"],
        "fgb" => &["FlatGeobuf"],
        "dxf" => &["DXF"],
        "gdb" | "fgdb" => &["OpenFileGDB"],
        "xlsx" => &["XLSX"],
        "ods" => &["ODS"],
        "xls" => &["XLS"],
        // XML that says nothing more: the XML formats we read, never OGR VRT.
        "xml" => &["GML", "LIBKML", "KML", "GPX", "OSM"],
        _ => return None,
    })
}

/// GDAL open options that keep a driver from reaching out of the file.
pub fn open_options_for(ext: &str) -> &'static [&'static str] {
    match ext {
        "gml" | "xml" => &["DOWNLOAD_SCHEMA=NO"],
        _ => &[],
    }
}

/// Configuration set in every reader process before GDAL opens anything: no network, whatever a file says.
const NO_NETWORK: &[(&str, &str)] = &[
    // /vsicurl/ then treats every URL as a missing file.
    ("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ".geoimport-no-network"),
    ("GDAL_HTTP_TIMEOUT", "1"),
    ("GDAL_HTTP_CONNECTTIMEOUT", "1"),
    ("GDAL_HTTP_MAX_RETRY", "0"),
    ("GML_DOWNLOAD_WFS_SCHEMA", "NO"),
    ("GML_SKIP_RESOLVE_ELEMS", "ALL"),
    ("LIBKML_RESOLVE_STYLE", "NO"),
];

/// In the reader child, before any other thread exists: a network namespace of its own (only a loopback
/// interface that is down, so no connection reaches anything), and GDAL's network features off. Returns
/// why the namespace could not be made, if it could not (the configuration still applies).
pub fn isolate() -> Option<String> {
    for (key, value) in NO_NETWORK {
        let _ = gdal::config::set_config_option(key, value);
    }
    use nix::sched::{CloneFlags, unshare};
    // Root may make a network namespace directly; anyone else needs a user namespace to hold it, which
    // leaves file access (judged by the real uid) as it was.
    let flags = if nix::unistd::geteuid().is_root() {
        CloneFlags::CLONE_NEWNET
    } else {
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET
    };
    unshare(flags).err().map(|e| e.to_string())
}

/// Removes every driver but `allowed` from this process (the reader child), so that no driver can open
/// anything with another one.
pub fn keep_only(allowed: &[&str]) {
    use gdal::DriverManager;
    // count() registers every driver first (once per process); what is deregistered here stays so.
    let others: Vec<gdal::Driver> = (0..DriverManager::count())
        .filter_map(|i| DriverManager::get_driver(i).ok())
        .filter(|d| !allowed.contains(&d.short_name().as_str()))
        .collect();
    for driver in &others {
        DriverManager::deregister_driver(driver);
    }
}

/// A MapInfo `.tab` must be a plain table: seamless tables and views are lists of other tables, by path.
pub fn check_mapinfo(path: &Path) -> Result<(), ImportError> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 << 10).read_to_end(&mut head))
        .map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot read the MapInfo table: {e}")))?;
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let declared = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("type"))
        .map(|t| t.trim().trim_matches('"').split_whitespace().next().unwrap_or("").to_string());
    let plain = matches!(declared.as_deref(), None | Some("native"));
    if !plain || text.contains("create view") {
        return Err(ImportError::new(
            codes::UNSUPPORTED_FORMAT,
            "MapInfo seamless tables and views only point at other tables, which are not imported; send the \
             tables themselves",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_has_its_own_drivers_and_vrt_none() {
        for ext in ["shp", "kml", "gpx", "gpkg", "osm", "pbf", "tab", "mif", "gml", "fgb", "dxf", "gdb", "xml"] {
            let drivers = drivers_for(ext).unwrap();
            assert!(!drivers.iter().any(|d| d.contains("VRT") || *d == "CSV" || d.starts_with("WFS")), "{ext}");
        }
        assert!(drivers_for("vrt").is_none());
        assert!(drivers_for("csv").is_none(), "delimited text is read natively, never by GDAL");
    }

    #[test]
    fn only_plain_mapinfo_tables_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let tab = dir.path().join("t.tab");
        std::fs::write(&tab, "!table\n!version 300\n!charset WindowsLatin1\n\nDefinition Table\n  Type NATIVE Charset \"WindowsLatin1\"\n").unwrap();
        assert!(check_mapinfo(&tab).is_ok());
        std::fs::write(&tab, "!table\n!version 300\nDefinition Table\n  Type SEAMLESS\n").unwrap();
        assert_eq!(check_mapinfo(&tab).unwrap_err().code, codes::UNSUPPORTED_FORMAT);
        std::fs::write(
            &tab,
            "!Table\n!Version 100\nOpen Table \"/srv/other\" Hide\ncreate view t As Select * from a, b\n",
        )
        .unwrap();
        assert_eq!(check_mapinfo(&tab).unwrap_err().code, codes::UNSUPPORTED_FORMAT);
    }
}
