//! What GDAL may do with an upload: read that file with the one driver its format calls for, and nothing
//! else. GDAL's drivers can follow references out of a file: an OGR VRT names any other file or URL as its
//! source, MapInfo seamless tables and views name other tables, GML downloads its schemas, and any path
//! GDAL opens may be a `/vsicurl/` URL. Uploads are hostile, so the reader child
//!
//! - opens the file with an explicit list of drivers for its format, and removes every other driver from
//!   its process first, so that no nested open inside a driver can reach VRT, WFS, WMS, CSV...;
//! - refuses MapInfo tables that are not plain (seamless tables and views read other files);
//! - runs without network: in a network namespace of its own where the system allows it (then no socket
//!   reaches anything), and in any case with GDAL's network features switched off;
//! - sees, of the data directory, only the folder of the file it reads: in a mount namespace of its own,
//!   the data directory is an empty tmpfs with that one folder bound back, so that a reader subverted by
//!   a file finds neither the server's keys nor other users' uploads.

use std::path::{Path, PathBuf};

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
        // JSON the native reader leaves to GDAL (see detect::json_flavour).
        "esrijson" => &["ESRIJSON"],
        "topojson" => &["TopoJSON"],
        // XML that says nothing more: the XML formats we read, never OGR VRT.
        "xml" => &["GML", "LIBKML", "KML", "GPX", "OSM"],
        _ => return None,
    })
}

/// The GDAL raster drivers that may read a file of this (effective) extension. A PNG or JPEG finds its
/// world file and `.aux.xml` beside it without another driver; a JPEG 2000 reader is also a vector
/// driver, but is only ever opened for rasters.
pub fn raster_drivers_for(ext: &str) -> Option<&'static [&'static str]> {
    Some(match ext {
        "tif" | "tiff" => &["GTiff"],
        "jp2" => &["JP2OpenJPEG"],
        "img" => &["HFA"],
        "asc" => &["AAIGrid"],
        "png" => &["PNG"],
        "jpg" | "jpeg" => &["JPEG"],
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

/// What a reader may see of the data directory: the directory itself (`root`), the one folder it reads
/// from (`keep`), and files elsewhere that it must not read (a key file kept outside the data directory).
#[derive(Debug, Clone)]
pub struct View {
    pub root: PathBuf,
    pub keep: PathBuf,
    pub hide: Vec<PathBuf>,
}

/// In the reader child, before any other thread exists: network and mount namespaces of its own (no
/// connection reaches anything; of the data directory only `view.keep` is left), and GDAL's network
/// features off. Returns why a namespace could not be made, if it could not (the rest still applies).
pub fn isolate(view: Option<&View>) -> Option<String> {
    network_features_off();
    use nix::sched::{CloneFlags, unshare};
    // Root may make these namespaces directly; anyone else needs a user namespace to hold them, which
    // leaves file access (judged by the real uid) as it was.
    let mut flags = CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS;
    if !nix::unistd::geteuid().is_root() {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    if let Err(e) = unshare(flags) {
        return Some(format!("no namespaces: {e}"));
    }
    let view = view?;
    narrow(view).err().map(|e| format!("the data directory stays visible: {e}"))
}

/// Turns GDAL's own network features off (whatever the namespaces): no driver fetches anything.
pub fn network_features_off() {
    for (key, value) in NO_NETWORK {
        let _ = gdal::config::set_config_option(key, value);
    }
}

/// Covers the data directory with an empty tmpfs, binds the kept folder back, and covers hidden files.
fn narrow(view: &View) -> Result<(), nix::Error> {
    use nix::fcntl::{OFlag, open};
    use nix::mount::{MsFlags, mount};
    use nix::sys::stat::Mode;
    const NONE: Option<&str> = None;
    // Nothing mounted here may propagate back to the server's namespace.
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)?;
    let kept = open(&view.keep, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("tmpfs"), &view.root, Some("tmpfs"), flags, Some("size=64k,mode=0755"))?;
    std::fs::create_dir_all(&view.keep).map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))?;
    use std::os::fd::AsRawFd;
    let source = format!("/proc/self/fd/{}", kept.as_raw_fd());
    mount(Some(source.as_str()), &view.keep, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)?;
    for file in view.hide.iter().filter(|f| f.exists()) {
        mount(Some("/dev/null"), file, NONE, MsFlags::MS_BIND, NONE)?;
    }
    Ok(())
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
        for ext in ["xls", "xlsx", "xlsb", "ods"] {
            assert!(drivers_for(ext).is_none(), "spreadsheets are read with calamine, never by GDAL: {ext}");
        }
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
