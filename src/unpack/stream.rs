//! Stream-compressed files (gzip, bzip2) and tar archives, possibly one inside the other.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use super::{Budget, corrupt, safe_join};
use crate::errors::{ImportError, codes};

pub fn gunzip(path: &Path) -> Result<Box<dyn Read>, ImportError> {
    let file = open(path)?;
    Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))))
}

pub fn bunzip(path: &Path) -> Result<Box<dyn Read>, ImportError> {
    let file = open(path)?;
    Ok(Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(file))))
}

fn open(path: &Path) -> Result<File, ImportError> {
    File::open(path).map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot open the archive: {e}")))
}

/// Writes a decompressed stream to `target`. `packed` is the compressed file's size: the expansion ratio
/// is checked against it as bytes come out.
pub fn extract_single(
    mut source: impl Read,
    target: &Path,
    packed: Option<u64>,
    budget: &mut Budget,
) -> Result<(), ImportError> {
    budget.entry()?;
    let mut unpacked = 0;
    copy_counted(&mut source, target, packed, &mut unpacked, budget)
}

/// Unpacks a tar stream; with `packed` (the size of a compressed tar), the whole archive's expansion
/// ratio is checked.
pub fn extract_tar(
    source: impl Read,
    dest: &Path,
    packed: Option<u64>,
    budget: &mut Budget,
) -> Result<(), ImportError> {
    let mut unpacked = 0;
    let mut archive = tar::Archive::new(source);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        budget.entry()?;
        let name = entry.path().map_err(corrupt)?.into_owned();
        let target = safe_join(dest, &name)?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&target).map_err(write_error)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(write_error)?;
                }
                copy_counted(&mut entry, &target, packed, &mut unpacked, budget)?;
            }
            other => tracing::info!(entry = %name.display(), kind = ?other, "skipping a non-file archive entry"),
        }
    }
    Ok(())
}

/// Copies with every byte counted; `unpacked` is the running total of the archive the data comes from.
fn copy_counted(
    source: &mut impl Read,
    target: &Path,
    packed: Option<u64>,
    unpacked: &mut u64,
    budget: &mut Budget,
) -> Result<(), ImportError> {
    let mut out = File::create(target).map_err(write_error)?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = source.read(&mut buf).map_err(corrupt)?;
        if n == 0 {
            return Ok(());
        }
        *unpacked += n as u64;
        budget.bytes(n as u64, *unpacked, packed)?;
        out.write_all(&buf[..n]).map_err(write_error)?;
    }
}

fn write_error(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("cannot write an unpacked file: {e}"))
}
