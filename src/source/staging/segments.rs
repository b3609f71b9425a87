//! The pieces of a resumable upload in the staging store, `uploads/<upload>/<start>-<random>`: one object
//! per PATCH, because S3's multipart parts must hold 5 MiB (all but the last) while a tus client sends
//! pieces of any size. Each piece streams in through a [`StagedUpload`] like any upload, so a piece of a
//! gigabyte costs no more memory than a small one. The random part of a name keeps two PATCHes racing from
//! the same offset (only one will be counted) from writing the same object. When the upload becomes an
//! import, its pieces are copied, in order, into one staged object of the new job: the worker then reads
//! it as it reads any upload.

use std::path::Path as FsPath;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use uuid::Uuid;

use super::area::{StagingArea, job_dirs_older_than, unix_secs_ago};
use super::upload::StagedUpload;

/// The directory of resumable uploads in the store (beside the jobs' directories, which are UUIDs).
const UPLOADS_DIR: &str = "uploads";

impl StagingArea {
    fn uploads_root(&self) -> Path {
        self.prefix.clone().join(UPLOADS_DIR)
    }

    fn upload_prefix(&self, upload: Uuid) -> Path {
        self.uploads_root().join(upload.to_string())
    }

    /// Starts the piece of `upload` that begins at byte `start`; its name is [`StagedUpload::name`].
    pub async fn begin_segment(&self, upload: Uuid, start: u64) -> Result<StagedUpload, object_store::Error> {
        let name = format!("{start:020}-{:08x}", rand::random::<u32>());
        self.begin_under(self.upload_prefix(upload), upload, &name).await
    }

    /// Deletes the piece `name` of `upload` (one that was not counted).
    pub async fn remove_segment(&self, upload: Uuid, name: &str) {
        match self.store.delete(&self.upload_prefix(upload).join(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(error = %e, %upload, "could not remove a piece of an upload"),
        }
    }

    /// Removes every object of `upload`.
    pub async fn remove_upload(&self, upload: Uuid) {
        self.remove_objects_under(&self.upload_prefix(upload)).await;
    }

    /// Copies the pieces `segments` (name and size, in order) of `upload` into the staged file `name` of
    /// job `job`; returns what the job row records. A piece missing or of another size than recorded is
    /// an error, and the copy is then aborted.
    pub async fn assemble_upload(
        &self,
        upload: Uuid,
        segments: &[(String, u64)],
        job: Uuid,
        name: &str,
    ) -> Result<String, object_store::Error> {
        let mut staged = self.begin_for(job, name).await?;
        for (segment, size) in segments {
            if let Err(e) = self.copy_segment(upload, segment, *size, &mut staged).await {
                staged.abort().await;
                return Err(e);
            }
        }
        staged.finish().await
    }

    async fn copy_segment(
        &self,
        upload: Uuid,
        segment: &str,
        size: u64,
        into: &mut StagedUpload,
    ) -> Result<(), object_store::Error> {
        let before = into.len();
        let mut stream = self.store.get(&self.upload_prefix(upload).join(segment)).await?.into_stream();
        while let Some(chunk) = stream.next().await {
            into.write(chunk?).await?;
        }
        let copied = into.len() - before;
        if copied != size {
            let message = format!("the piece {segment} of upload {upload} holds {copied} bytes, not {size}");
            return Err(object_store::Error::Generic { store: "staging", source: message.into() });
        }
        Ok(())
    }

    /// Uploads with an object written more than `grace` ago: the janitor removes those that have no row
    /// (their process died between writing a piece and the row's end, or the account was deleted).
    pub async fn uploads_with_objects_older_than(&self, grace: Duration) -> Vec<Uuid> {
        let cutoff = unix_secs_ago(grace);
        let root = self.uploads_root();
        let mut uploads = std::collections::HashSet::new();
        let mut listed = self.store.list(Some(&root));
        while let Some(meta) = listed.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the uploads of the staging store");
                    break;
                }
            };
            if meta.last_modified.timestamp() > cutoff {
                continue;
            }
            let first = meta.location.prefix_match(&root).and_then(|mut rest| rest.next());
            uploads.extend(first.and_then(|part| Uuid::try_parse(part.as_ref()).ok()));
        }
        // A local directory also holds part files that listings skip: its directories are judged by age.
        let dir = self.directory.as_ref().and_then(|d| d.path_to_filesystem(&root.clone().join("x")).ok());
        if let Some(dir) = dir.as_deref().and_then(FsPath::parent) {
            uploads.extend(job_dirs_older_than(dir, grace).await);
        }
        uploads.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    async fn segment(area: &StagingArea, upload: Uuid, start: u64, bytes: &'static [u8]) -> (String, u64) {
        let mut piece = area.begin_segment(upload, start).await.unwrap();
        piece.write(Bytes::from_static(bytes)).await.unwrap();
        let name = piece.name().to_string();
        piece.finish().await.unwrap();
        (name, bytes.len() as u64)
    }

    #[tokio::test]
    async fn pieces_become_one_staged_file_in_order_and_go_with_their_upload() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(dir.path(), None).unwrap();
        let upload = Uuid::new_v4();
        let first = segment(&area, upload, 0, b"a,b\n").await;
        let second = segment(&area, upload, 4, b"1,2\n3,4\n").await;
        let lost = segment(&area, upload, 4, b"x").await;
        assert_ne!(second.0, lost.0, "two pieces from one offset share an object");
        let job = Uuid::new_v4();
        let staged = area.assemble_upload(upload, &[first.clone(), second], job, "t.csv").await.unwrap();
        assert_eq!(staged, format!("{job}/t.csv"));
        let file = dir.path().join("staging").join(job.to_string()).join("t.csv");
        assert_eq!(std::fs::read(&file).unwrap(), b"a,b\n1,2\n3,4\n");
        // A piece whose size is not the recorded one is refused, and its copy leaves no file.
        let other = Uuid::new_v4();
        let wrong = (first.0.clone(), 99);
        assert!(area.assemble_upload(upload, &[wrong], other, "t.csv").await.is_err());
        assert!(!dir.path().join("staging").join(other.to_string()).join("t.csv").exists());
        assert_eq!(area.uploads_with_objects_older_than(Duration::ZERO).await, [upload]);
        area.remove_upload(upload).await;
        assert!(!dir.path().join("staging/uploads").join(upload.to_string()).exists());
        assert!(area.uploads_with_objects_older_than(Duration::ZERO).await.is_empty());
        // The jobs' janitor does not take the uploads' directory for a job.
        let kept = segment(&area, Uuid::new_v4(), 0, b"z").await;
        assert!(!kept.0.is_empty());
        assert!(area.jobs_with_objects_older_than(Duration::ZERO).await.iter().all(|j| *j == job));
    }
}
