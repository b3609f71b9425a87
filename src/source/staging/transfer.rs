//! Between the staging store and a worker's disk. Archives and GDAL's formats seek, so their readers need
//! a local file: a worker copies such a staged object into the job's scratch directory first, under the
//! disk's free-space reserve (delimited text and JSON in a cloud store are read from it instead, see
//! `stream`); the default store's files are on this disk already and are read in place. The other way, a
//! downloaded URL import goes into the store, so that a retry on any worker finds it.

use std::path::{Path as FsPath, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::area::StagingArea;
use crate::errors::{ImportError, codes};
use crate::source::disk::{CHECK_EVERY, DiskReserve};
use crate::source::meter::Meter;

/// How much of a local file is read at once when it is sent to the store.
const READ_BYTES: usize = 1 << 20;

impl StagingArea {
    /// The size of the staged object a job row names (1000-range errors when it is not there).
    pub async fn staged_size(&self, staged: &str) -> Result<u64, ImportError> {
        let location = self.location(staged).ok_or_else(|| missing(format!("'{staged}' names no staged object")))?;
        let meta = self.store.head(&location).await.map_err(unreadable)?;
        Ok(meta.size)
    }

    /// The staged object `staged` as a local file: the default store's own file, or a copy written into
    /// `scratch` (created), checked against `reserve` every few megabytes.
    pub async fn local_file(
        &self,
        staged: &str,
        scratch: &FsPath,
        reserve: Option<&DiskReserve>,
        meter: Option<&Meter>,
    ) -> Result<PathBuf, ImportError> {
        let location = self.location(staged).ok_or_else(|| missing(format!("'{staged}' names no staged object")))?;
        if let Some(local) = &self.local {
            return local.path_to_filesystem(&location).map_err(|e| missing(e.to_string()));
        }
        let name = staged.rsplit('/').next().unwrap_or("upload");
        tokio::fs::create_dir_all(scratch).await.map_err(io)?;
        let target = scratch.join(name);
        let object = self.store.get(&location).await.map_err(unreadable)?;
        if let Some(meter) = meter {
            meter.start_bytes(Some(object.meta.size));
        }
        let mut stream = object.into_stream();
        let mut file = tokio::fs::File::create(&target).await.map_err(io)?;
        let (mut written, mut next_check) = (0u64, 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(unreadable)?;
            if written >= next_check {
                if let Some(reserve) = reserve
                    && let Err(free) = reserve.check()
                {
                    return Err(reserve.exhausted(free));
                }
                next_check = written + CHECK_EVERY;
            }
            file.write_all(&chunk).await.map_err(io)?;
            written += chunk.len() as u64;
            if let Some(meter) = meter {
                meter.bytes(written);
            }
        }
        file.flush().await.map_err(io)?;
        Ok(target)
    }

    /// Sends the local file `path` into the store as job `job_id`'s file `name`; returns what the job row
    /// records. A failure aborts the upload.
    pub async fn stage_file(&self, job_id: Uuid, path: &FsPath, name: &str) -> Result<String, object_store::Error> {
        let mut upload = self.begin_for(job_id, name).await?;
        let mut file = tokio::fs::File::open(path).await.map_err(local_error)?;
        loop {
            let mut buf = Vec::with_capacity(READ_BYTES);
            let n = (&mut file).take(READ_BYTES as u64).read_to_end(&mut buf).await.map_err(local_error)?;
            if n == 0 {
                break;
            }
            upload.write(Bytes::from(buf)).await?;
        }
        upload.finish().await
    }
}

/// The store's own words go to the log only: they name its paths or bucket, which are the operator's
/// business, not the user's.
/// A store's error: the object is gone (its job ended, or the store lost it), or the store failed.
pub(super) fn unreadable(e: object_store::Error) -> ImportError {
    match e {
        object_store::Error::NotFound { .. } => missing(e.to_string()),
        e => {
            tracing::warn!(error = %e, "the staging store could not be read");
            ImportError::new(
                codes::FILE_IO,
                "the staging store could not be read (it did not answer, or refused the request); send the file \
                 again once the store is back",
            )
        }
    }
}

pub(super) fn missing(detail: String) -> ImportError {
    tracing::warn!(detail, "a staged upload could not be found or read");
    ImportError::new(codes::FILE_IO, "the staged upload is missing from the staging store")
}

fn io(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("copying the staged upload to the worker's disk: {e}"))
}

fn local_error(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic { store: "staging", source: Box::new(e) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_goes_into_a_shared_store_and_comes_back_as_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("shared").display());
        let area = StagingArea::open(&dir.path().join("data"), Some(&url)).unwrap();
        let source = dir.path().join("in.csv");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&source, &bytes).unwrap();
        let job = Uuid::new_v4();
        let staged = area.stage_file(job, &source, "in.csv").await.unwrap();
        assert_eq!(area.staged_size(&staged).await.unwrap(), bytes.len() as u64);
        let scratch = area.work_dir(job).join("staged");
        let copy = area.local_file(&staged, &scratch, None, None).await.unwrap();
        assert!(copy.starts_with(&scratch));
        assert_eq!(std::fs::read(&copy).unwrap(), bytes);
        area.remove_job(job).await;
        assert_eq!(area.staged_size(&staged).await.unwrap_err().code, codes::FILE_IO);
        assert!(!scratch.exists());
    }

    #[tokio::test]
    async fn a_copy_stops_at_the_disk_reserve_with_1000() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("shared").display());
        let area = StagingArea::open(&dir.path().join("data"), Some(&url)).unwrap();
        let source = dir.path().join("in.csv");
        std::fs::write(&source, b"a,b\n1,2\n").unwrap();
        let job = Uuid::new_v4();
        let staged = area.stage_file(job, &source, "in.csv").await.unwrap();
        let reserve = DiskReserve::new(dir.path(), u64::MAX).unwrap();
        let err = area.local_file(&staged, &area.work_dir(job).join("staged"), Some(&reserve), None).await.unwrap_err();
        assert_eq!(err.code, codes::FILE_IO);
        assert!(err.detail.contains("short of disk space"), "{}", err.detail);
    }
}
