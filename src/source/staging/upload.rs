//! One file streamed into the staging store as it arrives: in parts (a multipart upload), so that memory
//! stays flat whatever the file's size, under the id of the job it will belong to, so that it is written
//! once, where the worker will look. The upload is completed before the job row is committed (invariant
//! 1: an acknowledged upload is whole in the store); one that is not completed is aborted, so that a
//! cut body leaves no parts behind.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::area::StagingArea;

/// Parts being sent at once: enough to keep a remote store's link busy while the next part fills, few
/// enough that an upload holds at most three parts in memory.
const PARTS_IN_FLIGHT: usize = 2;

/// The staged bytes of one file in progress.
pub struct StagedUpload {
    job_id: Uuid,
    name: String,
    location: Path,
    /// The job's directory when the store is a local directory: removed (if empty) after an abort.
    local_dir: Option<std::path::PathBuf>,
    /// None once finished or aborted.
    writer: Option<WriteMultipart>,
    written: u64,
    /// SHA-256 of the bytes so far: what tells a retried upload from another file (Idempotency-Key).
    hash: Sha256,
}

impl StagingArea {
    /// Starts the upload of file `name` (already made safe) of a new job, whose id is chosen now.
    pub async fn begin(&self, name: &str) -> Result<StagedUpload, object_store::Error> {
        self.begin_for(Uuid::new_v4(), name).await
    }

    /// Starts the upload of file `name` of job `job_id`.
    pub async fn begin_for(&self, job_id: Uuid, name: &str) -> Result<StagedUpload, object_store::Error> {
        self.begin_under(self.job_prefix(job_id), job_id, name).await
    }

    /// Starts the upload of object `name` under `dir`, the directory of `owner` (a job, or a resumable
    /// upload whose piece this is).
    pub(super) async fn begin_under(
        &self,
        dir: Path,
        owner: Uuid,
        name: &str,
    ) -> Result<StagedUpload, object_store::Error> {
        let location = dir.join(name);
        let upload = self.store.put_multipart(&location).await?;
        let local_dir = self.directory.as_ref().and_then(|d| d.path_to_filesystem(&location).ok());
        Ok(StagedUpload {
            job_id: owner,
            name: name.to_string(),
            local_dir: local_dir.and_then(|file| file.parent().map(ToOwned::to_owned)),
            location,
            writer: Some(WriteMultipart::new_with_chunk_size(upload, self.part_bytes)),
            written: 0,
            hash: Sha256::new(),
        })
    }
}

impl StagedUpload {
    /// Adds `chunk`; waits while as many parts as allowed are on their way (so a fast client is held back
    /// to the store's pace instead of filling memory).
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), object_store::Error> {
        let Some(writer) = self.writer.as_mut() else { return Ok(()) };
        writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.written += chunk.len() as u64;
        self.hash.update(&chunk);
        writer.put(chunk);
        Ok(())
    }

    /// The id of the job this file is staged for.
    pub fn job_id(&self) -> Uuid {
        self.job_id
    }

    /// The object's name in its job's (or resumable upload's) directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Hex SHA-256 of the bytes written so far.
    pub fn digest(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }

    /// Completes the upload: once this returns, the object is whole in the store. Returns what the job
    /// row records (`<job>/<name>`). On failure the upload has been aborted.
    pub async fn finish(mut self) -> Result<String, object_store::Error> {
        if let Some(writer) = self.writer.take() {
            writer.finish().await?;
        }
        Ok(format!("{}/{}", self.job_id, self.name))
    }

    /// Gives the upload up: the parts sent so far are deleted.
    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            abort(writer, self.location.clone(), self.local_dir.take()).await;
        }
    }
}

async fn abort(writer: WriteMultipart, location: Path, local_dir: Option<std::path::PathBuf>) {
    if let Err(e) = writer.abort().await {
        tracing::warn!(error = %e, object = %location, "could not abort a staged upload");
    }
    if let Some(dir) = local_dir {
        // Only if empty: a finished file of the same job (there is none today) would keep it.
        let _ = tokio::fs::remove_dir(dir).await;
    }
}

impl Drop for StagedUpload {
    /// An upload dropped unfinished (the client went away mid-body, an error returned early) is aborted in
    /// the background: its parts would otherwise stay in an S3 bucket, unlisted but paid for.
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(abort(writer, self.location.clone(), self.local_dir.take()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unfinished_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(dir.path(), None).unwrap();
        let mut up = area.begin("a.csv").await.unwrap();
        up.write(Bytes::from_static(b"a,b\n")).await.unwrap();
        let id = up.job_id();
        up.abort().await;
        let mut up = area.begin("b.csv").await.unwrap();
        up.write(Bytes::from_static(b"a,b\n")).await.unwrap();
        drop(up);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let left: Vec<_> = walk(&dir.path().join("staging"));
        assert!(left.is_empty(), "left {left:?} (job {id})");
    }

    #[tokio::test]
    async fn a_finished_upload_lands_in_the_job_directory_and_goes_with_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(dir.path(), None).unwrap();
        let mut up = area.begin("x.csv").await.unwrap();
        up.write(Bytes::from_static(b"a,b\n")).await.unwrap();
        up.write(Bytes::from_static(b"1,2\n")).await.unwrap();
        let id = up.job_id();
        let staged = up.finish().await.unwrap();
        assert_eq!(staged, format!("{id}/x.csv"));
        let file = dir.path().join("staging").join(id.to_string()).join("x.csv");
        assert_eq!(std::fs::read(&file).unwrap(), b"a,b\n1,2\n");
        area.remove_job(id).await;
        assert!(!file.exists());
        assert!(!file.parent().unwrap().exists(), "the job's directory stays");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { found.extend(walk(&path)) } else { found.push(path) }
        }
        found
    }
}
