//! Archives: zip (and kmz, .carto), gzip, tar, tar.gz and bzip2, nested, unpacked into the job's work area
//! under limits that stop archive bombs, with no entry able to write outside that area.
//!
//! Every entry's bytes are counted as they are written, and compressed bytes as they are read (archive headers
//! can lie): the total, the number of entries, each entry's and each archive's expansion ratio are capped,
//! and crossing a cap fails the import with 6666.
//! Paths that climb out (`..`) or are absolute make the archive unsafe (1003); links are not extracted.

mod budget;
mod stream;
mod zip;

use std::path::Path;

use crate::errors::{ImportError, codes};

#[cfg(test)]
use budget::safe_join;
pub use budget::{Budget, Limits, RATIO_MIN_BYTES, corrupt};
pub use zip::zip_flavour;

/// Archive kinds by (effective) extension.
pub fn is_archive(ext: &str) -> bool {
    matches!(ext, "zip" | "kmz" | "carto" | "gz" | "tgz" | "tar" | "bz2")
}

/// Unpacks `archive` (of kind `ext`) into `dest`, which must not exist yet.
pub fn extract(archive: &Path, ext: &str, dest: &Path, budget: &mut Budget) -> Result<(), ImportError> {
    std::fs::create_dir_all(dest)
        .map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot create {}: {e}", dest.display())))?;
    let stem = archive.file_stem().and_then(|s| s.to_str()).unwrap_or("data").to_string();
    let tarred = stem.to_ascii_lowercase().ends_with(".tar");
    match ext {
        "zip" | "kmz" | "carto" => zip::extract(archive, dest, budget),
        "tar" => stream::extract_tar(std::fs::File::open(archive).map_err(open_error)?, None, dest, budget),
        "tgz" => extract_compressed_tar(stream::gunzip(archive, budget)?, dest, budget),
        "gz" if tarred => extract_compressed_tar(stream::gunzip(archive, budget)?, dest, budget),
        "gz" => stream::extract_single(stream::gunzip(archive, budget)?, &dest.join(&stem), budget),
        "bz2" if tarred => extract_compressed_tar(stream::bunzip(archive, budget)?, dest, budget),
        "bz2" => stream::extract_single(stream::bunzip(archive, budget)?, &dest.join(&stem), budget),
        other => Err(corrupt(format!("'{other}' is not an archive format"))),
    }
}

fn extract_compressed_tar(source: stream::Decompressed, dest: &Path, budget: &mut Budget) -> Result<(), ImportError> {
    stream::extract_tar(source.reader, Some(source.packed_read), dest, budget)
}

fn open_error(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("cannot open the archive: {e}"))
}

/// Whether a file or folder inside an archive is clutter rather than data: hidden files, `__MACOSX`,
/// README and VERSION texts.
pub fn is_clutter(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("__")
        || (lower.ends_with(".txt") && (lower.contains("readme") || lower.contains("version")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::Read;
    use std::rc::Rc;
    use tokio_util::sync::CancellationToken;

    #[test]
    fn entries_cannot_escape() {
        let dest = Path::new("/work/x");
        assert_eq!(safe_join(dest, Path::new("a/b.csv")).unwrap(), Path::new("/work/x/a/b.csv"));
        assert!(safe_join(dest, Path::new("../etc/passwd")).is_err());
        assert!(safe_join(dest, Path::new("a/../../b")).is_err());
        assert!(safe_join(dest, Path::new("/etc/passwd")).is_err());
        assert!(safe_join(dest, Path::new("")).is_err());
    }

    #[test]
    fn clutter_is_recognised() {
        for c in ["__MACOSX", ".DS_Store", "README.txt", "readme_first.TXT", "VERSION.txt", "data.version.txt"] {
            assert!(is_clutter(c), "{c}");
        }
        for d in ["data.csv", "readme.csv", "roads.shp"] {
            assert!(!is_clutter(d), "{d}");
        }
    }

    #[test]
    fn the_budget_stops_bombs() {
        let limits = Limits { max_total_bytes: 100, max_entries: 2, max_ratio: 10, max_depth: 2 };
        let mut b = Budget::new(limits, CancellationToken::new());
        b.entry().unwrap();
        b.entry().unwrap();
        assert_eq!(b.entry().unwrap_err().code, codes::DATASET_TOO_BIG);
        assert_eq!(b.bytes(101).unwrap_err().code, codes::DATASET_TOO_BIG);
        let b = Budget::new(Limits::default(), CancellationToken::new());
        assert!(b.check_ratio(RATIO_MIN_BYTES, 1, "an entry").is_ok(), "small entries may compress well");
        assert_eq!(b.check_ratio(RATIO_MIN_BYTES + 1, 1000, "an entry").unwrap_err().code, codes::DATASET_TOO_BIG);
        assert!(b.check_ratio(RATIO_MIN_BYTES + 1, 1 << 20, "an entry").is_ok());
    }

    #[test]
    fn a_stopped_job_unpacks_nothing_more() {
        let stop = CancellationToken::new();
        let mut b = Budget::new(Limits::default(), stop.clone());
        b.entry().unwrap();
        b.bytes(10).unwrap();
        stop.cancel();
        assert_eq!(b.entry().unwrap_err().code, codes::CANCELLED);
        assert_eq!(b.bytes(10).unwrap_err().code, codes::CANCELLED);
        let mut reader = b.meter(&b"data"[..], Rc::new(Cell::new(0)));
        assert!(reader.read(&mut [0u8; 4]).is_err());
    }
}
