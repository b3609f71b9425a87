//! The free-space reserve of the data directory's filesystem. PostgreSQL often shares that disk (the
//! embedded cluster lives in the data directory): uploads, downloads and unpacked archives stop before
//! they eat into the reserve, instead of filling the disk the database needs.

use std::path::{Path, PathBuf};

use crate::errors::{ImportError, codes};

/// How often writers look at the free space: every this many bytes written.
pub const CHECK_EVERY: u64 = 8 << 20;

/// Free bytes to keep on the filesystem holding `dir`.
#[derive(Debug, Clone)]
pub struct DiskReserve {
    dir: PathBuf,
    reserve: u64,
}

impl DiskReserve {
    /// None when there is no reserve to keep (0).
    pub fn new(dir: &Path, reserve: u64) -> Option<DiskReserve> {
        (reserve > 0).then(|| DiskReserve { dir: dir.to_path_buf(), reserve })
    }

    /// Bytes available to unprivileged users on the filesystem, if it can be asked.
    pub fn free_bytes(&self) -> Option<u64> {
        free_bytes(&self.dir)
    }

    /// Ok while the free space is above the reserve (or cannot be read: the reserve protects the disk, it
    /// must not stop work when the filesystem will not say); Err with the free bytes otherwise.
    pub fn check(&self) -> Result<(), u64> {
        match self.free_bytes() {
            Some(free) if free < self.reserve => Err(free),
            _ => Ok(()),
        }
    }

    /// The failure of an import stopped at the reserve.
    pub fn exhausted(&self, free: u64) -> ImportError {
        ImportError::new(
            codes::FILE_IO,
            format!(
                "the server is short of disk space ({free} bytes free, {} kept in reserve), so the import stopped \
                 before filling it; try again later",
                self.reserve
            ),
        )
    }
}

/// Bytes available to unprivileged users on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    // Both fields are u64 on Linux; the casts keep other targets compiling.
    #[allow(clippy::unnecessary_cast)]
    nix::sys::statvfs::statvfs(dir).ok().map(|s| (s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_checked_against_the_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        assert!(DiskReserve::new(dir.path(), 1).unwrap().check().is_ok());
        assert!(DiskReserve::new(dir.path(), u64::MAX).unwrap().check().is_err());
        assert!(DiskReserve::new(dir.path(), 0).is_none());
    }
}
