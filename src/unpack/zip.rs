//! Zip archives (also `.kmz` and `.carto`).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use super::{Budget, corrupt, safe_join};
use crate::errors::{ImportError, codes};

/// Entries past which a zip is not even opened: its directory alone would fill memory.
const MAX_DIRECTORY_ENTRIES: u64 = 100_000;

/// What a zip holds, from its entry names: `xlsx`, `ods`, `kmz` (a KML document), or `zip`.
pub fn zip_flavour(path: &Path) -> &'static str {
    if declared_entries(path).is_none_or(|n| n > MAX_DIRECTORY_ENTRIES) {
        return "zip";
    }
    let Ok(file) = File::open(path) else { return "zip" };
    let Ok(archive) = ::zip::ZipArchive::new(file) else { return "zip" };
    let names = || archive.file_names().filter_map(|n| n.ok()).map(|n| n.to_ascii_lowercase());
    let has = |wanted: &str| names().any(|n| n == wanted);
    if has("xl/workbook.xml") {
        "xlsx"
    } else if has("content.xml") && has("mimetype") {
        "ods"
    } else if has("doc.kml") || (archive.len() <= 3 && names().any(|n| n.ends_with(".kml"))) {
        "kmz"
    } else {
        "zip"
    }
}

/// The entry count a zip's end-of-central-directory record declares (zip64 included), read without
/// loading the directory.
fn declared_entries(path: &Path) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let tail_len = len.min(65_557);
    file.seek(SeekFrom::Start(len - tail_len)).ok()?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail).ok()?;
    let eocd = tail.windows(4).rposition(|w| w == b"PK\x05\x06")?;
    let entries = u16::from_le_bytes(tail.get(eocd + 10..eocd + 12)?.try_into().ok()?);
    if entries != u16::MAX {
        return Some(u64::from(entries));
    }
    // zip64: the locator just before the record points at the zip64 end record
    let locator = eocd.checked_sub(20)?;
    if tail.get(locator..locator + 4)? != b"PK\x06\x07" {
        return Some(u64::from(entries));
    }
    let record_at = u64::from_le_bytes(tail.get(locator + 8..locator + 16)?.try_into().ok()?);
    file.seek(SeekFrom::Start(record_at + 32)).ok()?;
    let mut count = [0u8; 8];
    file.read_exact(&mut count).ok()?;
    Some(u64::from_le_bytes(count))
}

pub fn extract(archive: &Path, dest: &Path, budget: &mut Budget) -> Result<(), ImportError> {
    if let Some(n) = declared_entries(archive) {
        budget.expect_entries(n)?;
    }
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
            budget.bytes(n as u64)?;
            budget.check_ratio(total, compressed, "an entry")?;
            out.write_all(&buf[..n]).map_err(write_error)?;
        }
    }
    Ok(())
}

fn write_error(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("cannot write an unpacked file: {e}"))
}
