//! Archives made and read by the tests.

/// A zip of `(name in the archive, bytes)` entries.
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    buf.into_inner()
}

/// Every file under `dir` (ending in any of `extensions`, case-insensitive) as zip entries named by their
/// path relative to `dir`.
pub fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub fn zip_dir(dir: &std::path::Path) -> Vec<u8> {
    let files = files_under(dir);
    let entries: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    zip_of(&entries)
}

/// `source` (any file ogr2ogr reads) written by ogr2ogr as the shapefile `<name>.shp`, with `extra` options,
/// alone in a new folder under `dir`; the folder (zip it with [`zip_dir`], after changing a file if need be).
pub fn shapefile_folder(dir: &std::path::Path, name: &str, source: &str, extra: &[&str]) -> std::path::PathBuf {
    let folder = dir.join(format!("{name}_shapefile"));
    std::fs::create_dir(&folder).unwrap();
    let shp = folder.join(format!("{name}.shp")).display().to_string();
    super::process::ogr2ogr(&[&["-f", "ESRI Shapefile", &shp, source][..], extra].concat());
    folder
}
