//! The staging area: uploaded bytes wait here, durably, until a worker takes their job.
//!
//! An upload is written under `.incoming/` with a temporary name, fsync'd, then renamed into the job's own
//! directory (and the directory fsync'd) before the job row is committed. A crash or an aborted upload can
//! therefore leave only a `.part` file, never a half-written file that a job points to.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct StagingArea {
    data_dir: PathBuf,
}

/// The staged bytes of one upload in progress.
pub struct StagedUpload {
    part_path: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
    finished: bool,
    /// SHA-256 of the bytes so far: what tells a retried upload from another file (Idempotency-Key).
    hash: Sha256,
}

impl StagingArea {
    pub fn new(data_dir: &Path) -> Self {
        StagingArea { data_dir: data_dir.to_path_buf() }
    }

    fn root(&self) -> PathBuf {
        self.data_dir.join("staging")
    }

    /// Opens a temporary file for an upload.
    pub async fn begin(&self) -> std::io::Result<StagedUpload> {
        let incoming = self.root().join(".incoming");
        tokio::fs::create_dir_all(&incoming).await?;
        let part_path = incoming.join(format!("{}.part", Uuid::new_v4()));
        let file = tokio::fs::File::create(&part_path).await?;
        Ok(StagedUpload { part_path, file: Some(file), written: 0, finished: false, hash: Sha256::new() })
    }

    /// Absolute path of a staged file recorded in a job row.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.data_dir.join(relative)
    }

    /// Removes a job's staged upload and work area (after the job ends).
    pub async fn remove_job(&self, job_id: Uuid) {
        for dir in [self.root().join(job_id.to_string()), self.work_dir(job_id)] {
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, dir = %dir.display(), "could not remove a job's files");
            }
        }
    }

    /// A job's private scratch directory, for files a worker derives from the upload.
    pub fn work_dir(&self, job_id: Uuid) -> PathBuf {
        self.data_dir.join("work").join(job_id.to_string())
    }

    /// Jobs that have a scratch directory (downloads and unpacked files live there).
    pub async fn jobs_with_work_dirs(&self) -> Vec<Uuid> {
        let Ok(mut entries) = tokio::fs::read_dir(self.data_dir.join("work")).await else { return Vec::new() };
        let mut ids = Vec::new();
        while let Ok(Some(entry)) = entries.next_entry().await {
            if let Ok(id) = Uuid::try_parse(&entry.file_name().to_string_lossy()) {
                ids.push(id);
            }
        }
        ids
    }

    /// Removes `.part` files older than `age` (uploads that died with their process).
    pub async fn sweep_incoming(&self, age: std::time::Duration) {
        let Ok(mut entries) = tokio::fs::read_dir(self.root().join(".incoming")).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let old = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed > age);
            if old {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
}

impl StagedUpload {
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if let Some(file) = self.file.as_mut() {
            file.write_all(chunk).await?;
            self.written += chunk.len() as u64;
            self.hash.update(chunk);
        }
        Ok(())
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

    /// Makes the upload durable under the job's directory; returns its path relative to the data dir.
    pub async fn finish(mut self, area: &StagingArea, job_id: Uuid, file_name: &str) -> std::io::Result<String> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        let dir = area.root().join(job_id.to_string());
        tokio::fs::create_dir_all(&dir).await?;
        let target = dir.join(file_name);
        tokio::fs::rename(&self.part_path, &target).await?;
        for d in [&dir, &area.root()] {
            tokio::fs::File::open(d).await?.sync_all().await?;
        }
        self.finished = true;
        Ok(format!("staging/{job_id}/{file_name}"))
    }
}

impl Drop for StagedUpload {
    fn drop(&mut self) {
        if !self.finished {
            // An upload that was not finished is garbage whatever the reason.
            let _ = std::fs::remove_file(&self.part_path);
        }
    }
}

/// The name a staged file gets: the client's base name, without directories or characters that would
/// make it awkward on disk. Its extension is kept because format detection starts from it.
pub fn safe_file_name(client_name: &str) -> String {
    let base = client_name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() || c == ' ' { '_' } else { c })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string();
    let cleaned = truncate_utf8(&cleaned, 200);
    if cleaned.is_empty() { "upload".to_string() } else { cleaned }
}

fn truncate_utf8(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_directories_and_spaces() {
        assert_eq!(safe_file_name("/home/me/prism tour.csv"), "prism_tour.csv");
        assert_eq!(safe_file_name("..\\..\\evil.csv"), "evil.csv");
        assert_eq!(safe_file_name("../.."), "upload");
        assert_eq!(safe_file_name(""), "upload");
        assert_eq!(safe_file_name("café.csv"), "café.csv");
    }

    #[tokio::test]
    async fn an_unfinished_upload_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::new(dir.path());
        let mut up = area.begin().await.unwrap();
        up.write(b"a,b\n").await.unwrap();
        let part = up.part_path.clone();
        assert!(part.exists());
        drop(up);
        assert!(!part.exists());
    }

    #[tokio::test]
    async fn a_finished_upload_lands_in_the_job_directory() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::new(dir.path());
        let mut up = area.begin().await.unwrap();
        up.write(b"a,b\n1,2\n").await.unwrap();
        let id = Uuid::new_v4();
        let rel = up.finish(&area, id, "x.csv").await.unwrap();
        assert_eq!(std::fs::read(area.resolve(&rel)).unwrap(), b"a,b\n1,2\n");
        area.remove_job(id).await;
        assert!(!area.resolve(&rel).exists());
    }
}
