//! What a download brings, and the limits it is held to: shared by the HTTP and FTP downloaders.

use std::path::PathBuf;

use crate::errors::{ImportError, codes};
pub use crate::queue::Validators;

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
