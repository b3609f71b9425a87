//! What a download brings, the limits it is held to, and the writing of its bytes to the job's work area:
//! shared by the HTTP and FTP downloaders.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::address_policy::{PolicyError, ResolveError};
use super::disk::DiskReserve;
use crate::errors::{ImportError, codes};
pub use crate::queue::Validators;

/// Bytes kept from the start of the body to recognise its format.
const HEAD_BYTES: usize = 64 << 10;

#[derive(Debug)]
pub enum Fetched {
    File(Downloaded),
    /// The source has not changed since the validators were taken.
    NotModified,
}

#[derive(Debug)]
pub struct Downloaded {
    pub path: PathBuf,
    pub file_name: String,
    pub bytes: u64,
    pub validators: Validators,
}

/// How much a download may bring: the user's largest file, and what their storage quota has left.
#[derive(Debug, Clone, Copy)]
pub struct SizeLimits {
    pub max_bytes: u64,
    pub storage_left: Option<u64>,
}

impl SizeLimits {
    /// The error for a file of at least `size` bytes, if it is too big: 6666 past the file limit, 8001
    /// past the quota.
    pub fn check(&self, size: u64) -> Result<(), ImportError> {
        if size > self.max_bytes {
            return Err(too_big(size, self.max_bytes));
        }
        match self.storage_left {
            Some(left) if size > left => Err(ImportError::new(
                codes::STORAGE_QUOTA,
                format!("the file is at least {size} bytes and your storage quota has {left} bytes left"),
            )),
            _ => Ok(()),
        }
    }
}

pub fn too_big(size: u64, max: u64) -> ImportError {
    ImportError::new(
        codes::DATASET_TOO_BIG,
        format!("the file is larger than {max} bytes, the most your account may import at once (at least {size})"),
    )
}

/// Where a download goes, and within which limits.
pub struct Target<'a> {
    pub dir: &'a Path,
    pub limits: SizeLimits,
    pub reserve: Option<&'a DiskReserve>,
    /// Told how many bytes have arrived.
    pub meter: Option<&'a super::meter::Meter>,
}

/// A body written to the work area, under a temporary name until its own is known.
pub struct Written {
    part: PathBuf,
    pub bytes: u64,
    /// The first bytes, to recognise the format by.
    pub head: Vec<u8>,
}

impl Written {
    /// Gives the file its name; its path.
    pub async fn keep(self, dir: &Path, name: &str) -> Result<PathBuf, ImportError> {
        let path = dir.join(name);
        tokio::fs::rename(&self.part, &path).await.map_err(io_error)?;
        Ok(path)
    }

    /// Removes the file (the transfer turned out incomplete); returns `error`.
    pub async fn discard(self, error: ImportError) -> ImportError {
        let _ = tokio::fs::remove_file(&self.part).await;
        error
    }
}

/// Streams `body` into the target's work area within its limits and disk reserve. `check` is told the
/// bytes written after each read (for limits of its own); `read_error` names a failed read, given the bytes
/// written. On any failure the partial file is removed.
pub async fn write_body(
    body: &mut (impl AsyncRead + Unpin),
    target: &Target<'_>,
    mut check: impl FnMut(u64) -> Result<(), ImportError>,
    read_error: impl Fn(std::io::Error, u64) -> ImportError,
) -> Result<Written, ImportError> {
    tokio::fs::create_dir_all(target.dir).await.map_err(io_error)?;
    let part = target.dir.join(".download.part");
    let written = copy(body, &part, target, &mut check, &read_error).await;
    match written {
        Ok((bytes, head)) => Ok(Written { part, bytes, head }),
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

async fn copy(
    body: &mut (impl AsyncRead + Unpin),
    part: &Path,
    target: &Target<'_>,
    check: &mut impl FnMut(u64) -> Result<(), ImportError>,
    read_error: &impl Fn(std::io::Error, u64) -> ImportError,
) -> Result<(u64, Vec<u8>), ImportError> {
    let mut file = tokio::fs::File::create(part).await.map_err(io_error)?;
    let mut chunk = vec![0u8; 64 << 10];
    let (mut written, mut next_disk_check) = (0u64, 0u64);
    let mut head = Vec::with_capacity(HEAD_BYTES);
    loop {
        let n = body.read(&mut chunk).await.map_err(|e| read_error(e, written))?;
        if n == 0 {
            break;
        }
        written += n as u64;
        if let Some(meter) = target.meter {
            meter.bytes(written);
        }
        target.limits.check(written)?;
        check(written)?;
        if let Some(reserve) = target.reserve.filter(|_| written >= next_disk_check) {
            next_disk_check = written + super::disk::CHECK_EVERY;
            reserve.check().map_err(|free| reserve.exhausted(free))?;
        }
        if head.len() < HEAD_BYTES {
            head.extend_from_slice(&chunk[..n.min(HEAD_BYTES - head.len())]);
        }
        file.write_all(&chunk[..n]).await.map_err(io_error)?;
    }
    file.flush().await.map_err(io_error)?;
    Ok((written, head))
}

pub fn io_error(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("could not write the download: {e}"))
}

/// What a refusal of the address policy is to an import.
pub fn policy_error(e: &PolicyError) -> ImportError {
    match e {
        PolicyError::Blocked(_) | PolicyError::OwnDatabase(_) => ImportError::new(codes::UNKNOWN_SERVER, e.to_string()),
        PolicyError::Scheme | PolicyError::NoHost => ImportError::new(codes::DOWNLOAD_ERROR, e.to_string()),
    }
}

/// A host name that does not resolve, or only to refused addresses: 1102.
pub fn resolve_error(e: &ResolveError) -> ImportError {
    match e {
        ResolveError::Policy(p) => policy_error(p),
        ResolveError::Lookup(_) => ImportError::new(codes::UNKNOWN_SERVER, "the host name does not resolve"),
    }
}
