//! Zip archives (also `.kmz` and `.carto`).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use super::{Budget, corrupt, safe_join};
use crate::errors::{ImportError, codes};

/// What a zip holds, from its entry names: `xlsx`, `ods`, `kmz` (a KML document), or `zip`.
pub fn zip_flavour(path: &Path) -> &'static str {
    let Ok(file) = File::open(path) else { return "zip" };
    let Ok(archive) = ::zip::ZipArchive::new(file) else { return "zip" };
    let names: Vec<String> = archive.file_names().filter_map(|n| n.ok()).map(|n| n.to_ascii_lowercase()).collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    if has("xl/workbook.xml") {
        "xlsx"
    } else if has("content.xml") && has("mimetype") {
        "ods"
    } else if has("doc.kml") || (names.len() <= 3 && names.iter().any(|n| n.ends_with(".kml"))) {
        "kmz"
    } else {
        "zip"
    }
}

pub fn extract(archive: &Path, dest: &Path, budget: &mut Budget) -> Result<(), ImportError> {
    let file =
        File::open(archive).map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot open the archive: {e}")))?;
    let mut zip = ::zip::ZipArchive::new(file).map_err(corrupt)?;
    for i in 0..zip.len() {
        budget.entry()?;
        {
            let raw = zip.by_index_raw(i).map_err(corrupt)?;
            if raw.encrypted() {
                return Err(ImportError::new(
                    codes::PASSWORD_PROTECTED,
                    format!("the entry '{}' is encrypted", raw.name().unwrap_or_default()),
                ));
            }
        }
        let mut entry = zip.by_index(i).map_err(corrupt)?;
        let name = entry.name().map_err(corrupt)?.into_owned();
        let target = safe_join(dest, Path::new(&name))?;
        if entry.is_symlink() {
            tracing::info!(entry = %name, "skipping a symbolic link in an archive");
            continue;
        }
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(write_error)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        let compressed = entry.compressed_size();
        let mut out = File::create(&target).map_err(write_error)?;
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(corrupt)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            budget.bytes(n as u64, total, Some(compressed))?;
            out.write_all(&buf[..n]).map_err(write_error)?;
        }
    }
    Ok(())
}

fn write_error(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("cannot write an unpacked file: {e}"))
}
