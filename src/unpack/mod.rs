//! Archives: zip (and kmz, .carto), gzip, tar, tar.gz and bzip2, nested, unpacked into the job's work area
//! under limits that stop archive bombs, with no entry able to write outside that area.
//!
//! Every entry's bytes are counted as they are written, and compressed bytes as they are read (archive headers
//! can lie): the total, the number of entries, each entry's and each archive's expansion ratio are capped,
//! and crossing a cap fails the import with 6666.
//! Paths that climb out (`..`) or are absolute make the archive unsafe (1003); links are not extracted.

mod stream;
mod zip;

use std::cell::Cell;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use tokio_util::sync::CancellationToken;

use crate::errors::{ImportError, codes};
use crate::load::{check_stop, stopped};
use crate::source::disk::{self, DiskReserve};

pub use zip::zip_flavour;

/// How much an archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_total_bytes: u64,
    pub max_entries: usize,
    /// An entry, or an archive, past [`RATIO_MIN_BYTES`] may not expand more than this many times.
    pub max_ratio: u64,
    pub max_depth: usize,
}

/// Below this size nothing counts as a bomb, whatever its ratio (tiny files compress absurdly well).
pub const RATIO_MIN_BYTES: u64 = 8 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits { max_total_bytes: 16 << 30, max_entries: 10_000, max_ratio: 200, max_depth: 4 }
    }
}

/// What is left of the limits while unpacking, and the job's stop signal, checked at every entry and
/// every chunk written (and by the readers under the decompressors at every read).
pub struct Budget {
    limits: Limits,
    written: u64,
    entries: usize,
    stop: CancellationToken,
    /// The disk's free-space reserve, looked at every [`disk::CHECK_EVERY`] bytes written.
    reserve: Option<DiskReserve>,
    next_disk_check: u64,
}

impl Budget {
    pub fn new(limits: Limits, stop: CancellationToken) -> Budget {
        Budget { limits, written: 0, entries: 0, stop, reserve: None, next_disk_check: 0 }
    }

    /// The same budget, also stopping before the disk's free space falls under `reserve`.
    pub fn keeping(mut self, reserve: Option<DiskReserve>) -> Budget {
        self.reserve = reserve;
        self
    }

    /// A reader over `inner` that counts into `read` and fails once the job is stopped.
    fn meter<R>(&self, inner: R, read: Rc<Cell<u64>>) -> Metered<R> {
        Metered { inner, read, stop: self.stop.clone(), packed: None }
    }

    /// Like [`Self::meter`], for what a decompressor makes of `packed` compressed bytes: reads fail as soon
    /// as the expansion ratio is crossed, even inside data the caller skips without looking at it.
    fn meter_expansion<R>(&self, inner: R, read: Rc<Cell<u64>>, packed: Rc<Cell<u64>>) -> Metered<R> {
        Metered { inner, read, stop: self.stop.clone(), packed: Some((packed, self.limits.max_ratio)) }
    }

    /// The error for a failed read: the stop, if that is why, else a damaged archive.
    fn read_error(&self, e: impl std::fmt::Display) -> ImportError {
        self.or_stopped(corrupt(e))
    }

    /// `e`, unless the job was stopped, which is then why reading failed.
    fn or_stopped(&self, e: ImportError) -> ImportError {
        if self.stop.is_cancelled() { stopped() } else { e }
    }

    /// Entries an archive may still hold.
    fn entries_left(&self) -> u64 {
        self.limits.max_entries.saturating_sub(self.entries) as u64
    }

    fn entry(&mut self) -> Result<(), ImportError> {
        check_stop(&self.stop)?;
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(bomb(format!("the archive holds more than {} entries", self.limits.max_entries)));
        }
        Ok(())
    }

    /// Counts `n` more bytes written.
    fn bytes(&mut self, n: u64) -> Result<(), ImportError> {
        check_stop(&self.stop)?;
        self.written += n;
        if self.written > self.limits.max_total_bytes {
            return Err(bomb(format!("the archive unpacks to more than {} bytes", self.limits.max_total_bytes)));
        }
        if let Some(reserve) = self.reserve.as_ref().filter(|_| self.written >= self.next_disk_check) {
            self.next_disk_check = self.written + disk::CHECK_EVERY;
            reserve.check().map_err(|free| reserve.exhausted(free))?;
        }
        Ok(())
    }

    /// Refuses `what` (an entry, an archive) once it has made `unpacked` bytes, past [`RATIO_MIN_BYTES`], from
    /// fewer than 1/max_ratio as many `packed` bytes actually read.
    fn check_ratio(&self, unpacked: u64, packed: u64, what: &str) -> Result<(), ImportError> {
        if unpacked > RATIO_MIN_BYTES && unpacked / packed.max(1) > self.limits.max_ratio {
            return Err(bomb(format!(
                "{what} expands more than {} times ({unpacked} bytes from {packed}), which only archive bombs do",
                self.limits.max_ratio
            )));
        }
        Ok(())
    }
}

/// A reader that counts the bytes read through it into a shared cell, and fails once the job is stopped
/// (or, with `packed`, once what it read expands the compressed bytes more than the ratio allows).
struct Metered<R> {
    inner: R,
    read: Rc<Cell<u64>>,
    stop: CancellationToken,
    packed: Option<(Rc<Cell<u64>>, u64)>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.is_cancelled() {
            return Err(std::io::Error::other("the import was stopped"));
        }
        let n = self.inner.read(buf)?;
        let read = self.read.get() + n as u64;
        self.read.set(read);
        if let Some((packed, max_ratio)) = &self.packed
            && read > RATIO_MIN_BYTES
            && read / packed.get().max(1) > *max_ratio
        {
            return Err(std::io::Error::other("the archive expands too much"));
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for Metered<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn bomb(detail: String) -> ImportError {
    ImportError::new(codes::DATASET_TOO_BIG, detail)
}

pub fn corrupt(detail: impl std::fmt::Display) -> ImportError {
    ImportError::new(codes::DECOMPRESSION, format!("the archive could not be unpacked: {detail}"))
}

/// The path an entry named `name` gets under `dest`, or an error if the name would escape it.
fn safe_join(dest: &Path, name: &Path) -> Result<PathBuf, ImportError> {
    let mut out = dest.to_path_buf();
    for part in name.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(ImportError::new(
                    codes::DECOMPRESSION,
                    format!("the archive is unsafe: the entry '{}' points outside the archive", name.display()),
                ));
            }
        }
    }
    if out == dest {
        return Err(corrupt(format!("an entry has an empty name: '{}'", name.display())));
    }
    Ok(out)
}

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
