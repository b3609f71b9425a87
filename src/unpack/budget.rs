//! What an archive may still unpack to, checked at every entry and every chunk written: the limits, the
//! job's stop signal and the disk's reserve, with the errors that crossing them gives.

use std::cell::Cell;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use tokio_util::sync::CancellationToken;

use crate::errors::{ImportError, check_stop, codes, stopped};
use crate::source::disk::{self, DiskReserve};

/// How much an archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_total_bytes: u64,
    pub max_entries: usize,
    /// An entry, or an archive, past [`RATIO_MIN_BYTES`] may not expand more than this many times.
    pub max_ratio: u64,
    pub max_depth: usize,
}

/// The limits compressed HTTP bodies have too.
pub use crate::source::encoding::{MAX_RATIO, RATIO_MIN_BYTES};

impl Default for Limits {
    fn default() -> Self {
        Limits { max_total_bytes: 16 << 30, max_entries: 10_000, max_ratio: MAX_RATIO, max_depth: 4 }
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
    pub(super) fn meter<R>(&self, inner: R, read: Rc<Cell<u64>>) -> Metered<R> {
        Metered { inner, read, stop: self.stop.clone(), packed: None }
    }

    /// Like [`Self::meter`], for what a decompressor makes of `packed` compressed bytes: reads fail as soon
    /// as the expansion ratio is crossed, even inside data the caller skips without looking at it.
    pub(super) fn meter_expansion<R>(&self, inner: R, read: Rc<Cell<u64>>, packed: Rc<Cell<u64>>) -> Metered<R> {
        Metered { inner, read, stop: self.stop.clone(), packed: Some((packed, self.limits.max_ratio)) }
    }

    /// The error for a failed read: the stop, if that is why, else a damaged archive.
    pub(super) fn read_error(&self, e: impl std::fmt::Display) -> ImportError {
        self.or_stopped(corrupt(e))
    }

    /// `e`, unless the job was stopped, which is then why reading failed.
    pub(super) fn or_stopped(&self, e: ImportError) -> ImportError {
        if self.stop.is_cancelled() { stopped() } else { e }
    }

    /// Entries an archive may still hold.
    pub(super) fn entries_left(&self) -> u64 {
        self.limits.max_entries.saturating_sub(self.entries) as u64
    }

    pub(super) fn entry(&mut self) -> Result<(), ImportError> {
        check_stop(&self.stop)?;
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(bomb(format!("the archive holds more than {} entries", self.limits.max_entries)));
        }
        Ok(())
    }

    /// Counts `n` more bytes written.
    pub(super) fn bytes(&mut self, n: u64) -> Result<(), ImportError> {
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
    pub(super) fn check_ratio(&self, unpacked: u64, packed: u64, what: &str) -> Result<(), ImportError> {
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
pub(super) struct Metered<R> {
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

pub(super) fn bomb(detail: String) -> ImportError {
    ImportError::new(codes::DATASET_TOO_BIG, detail)
}

pub fn corrupt(detail: impl std::fmt::Display) -> ImportError {
    ImportError::new(codes::DECOMPRESSION, format!("the archive could not be unpacked: {detail}"))
}

/// The path an entry named `name` gets under `dest`, or an error if the name would escape it.
pub(super) fn safe_join(dest: &Path, name: &Path) -> Result<PathBuf, ImportError> {
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
