//! The staging store and where a job's objects live in it: `<prefix>/<job id>/<file name>`. The job row
//! records `<job id>/<file name>` (its `staged_path`), so every process given the same
//! `GEOIMPORT_STAGING_URL` finds the object, whichever machine it runs on.

use std::collections::HashSet;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use uuid::Uuid;

/// Parts of a multipart upload to a remote store. S3 wants at least 5 MiB for every part but the last;
/// 8 MiB keeps the request count of a 1 GiB upload near 128 without holding much per upload.
const REMOTE_PART_BYTES: usize = 8 << 20;
/// Parts written to a local directory, which has no minimum: small parts keep many concurrent uploads
/// as cheap in memory as the plain file writes they replace.
const LOCAL_PART_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("GEOIMPORT_STAGING_URL '{0}': {1}")]
    Url(String, String),
    #[error("the staging directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
}

#[derive(Debug, Clone)]
pub struct StagingArea {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) prefix: Path,
    data_dir: PathBuf,
    /// The default store, `staging/` in the data directory: workers read its files where they lie (they
    /// are on the same disk, inside the directory GDAL readers may see) instead of copying them.
    pub(super) local: Option<Arc<LocalFileSystem>>,
    /// Any store that is a local directory (the default or a `file://` URL): an aborted upload leaves
    /// its job's directory there, empty, to remove.
    pub(super) directory: Option<Arc<LocalFileSystem>>,
    pub(super) part_bytes: usize,
}

impl StagingArea {
    /// The store `url` names, or the data directory's `staging/` when there is none. Cloud stores read
    /// their credentials and endpoints from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub fn open(data_dir: &FsPath, url: Option<&str>) -> Result<StagingArea, StagingError> {
        let Some(raw) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            let local = Arc::new(local_directory(&data_dir.join("staging"))?);
            return Ok(StagingArea {
                store: local.clone(),
                prefix: Path::default(),
                data_dir: data_dir.to_path_buf(),
                local: Some(local.clone()),
                directory: Some(local),
                part_bytes: LOCAL_PART_BYTES,
            });
        };
        let bad = |e: String| StagingError::Url(raw.to_string(), e);
        let parsed = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
        let data_dir = data_dir.to_path_buf();
        if parsed.scheme() == "file" {
            // Built here rather than by parse_url_opts, whose local store neither fsyncs (an acknowledged
            // upload must survive a crash) nor removes a job's emptied directory.
            let dir = parsed.to_file_path().map_err(|()| bad("not an absolute directory".into()))?;
            let directory = Arc::new(local_directory(&dir)?);
            return Ok(StagingArea {
                store: directory.clone(),
                prefix: Path::default(),
                data_dir,
                local: None,
                directory: Some(directory),
                part_bytes: LOCAL_PART_BYTES,
            });
        }
        let (store, prefix) = super::remote::open(&parsed).map_err(bad)?;
        Ok(StagingArea {
            store: Arc::from(store),
            prefix,
            data_dir,
            local: None,
            directory: None,
            part_bytes: REMOTE_PART_BYTES,
        })
    }

    /// Whether staged files are on this machine's data disk (the default store): then what an upload
    /// costs is disk space the free-space reserve guards.
    pub fn on_data_disk(&self) -> bool {
        self.local.is_some()
    }

    /// Where the objects of `job` live.
    pub(super) fn job_prefix(&self, job: Uuid) -> Path {
        self.prefix.clone().join(job.to_string())
    }

    /// The object a job row's `staged_path` names: `<job>/<name>`, or `staging/<job>/<name>` as rows
    /// written before the store was an object store have it (the default store is that directory).
    pub(super) fn location(&self, staged: &str) -> Option<Path> {
        let mut parts = staged.rsplitn(3, '/');
        let (name, job) = (parts.next()?, parts.next()?);
        Some(self.job_prefix(Uuid::try_parse(job).ok()?).join(name))
    }

    /// A job's private scratch directory on this machine, for files a worker derives from the upload.
    pub fn work_dir(&self, job_id: Uuid) -> PathBuf {
        self.data_dir.join("work").join(job_id.to_string())
    }

    /// Removes a job's scratch directory and its staged objects (after the job ends). The directory goes
    /// first: it is on this disk and quick to remove, while a remote store takes a listing and requests.
    pub async fn remove_job(&self, job_id: Uuid) {
        remove_dir(&self.work_dir(job_id)).await;
        self.remove_objects_under(&self.job_prefix(job_id)).await;
    }

    /// Removes every object under `prefix` (a job's or a resumable upload's directory).
    pub(super) async fn remove_objects_under(&self, prefix: &Path) {
        // A local directory store: the directory goes at once, with whatever an interrupted upload left
        // in it (object_store's `<name>#<n>` part files, which listings skip).
        if let Some(dir) = self.directory.as_ref().and_then(|d| d.path_to_filesystem(prefix).ok()) {
            remove_dir(&dir).await;
            return;
        }
        let locations = self.store.list(Some(prefix)).map_ok(|meta| meta.location).boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(error = %e, prefix = %prefix, "could not remove a staged object"),
            }
        }
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

    /// Jobs with an object written more than `grace` ago: the janitor removes those whose job has ended or
    /// does not exist (an upload whose job row was never committed). The grace lets an upload that has
    /// just been completed get its row. Files of the old `.incoming/` directory that old are removed here.
    pub async fn jobs_with_objects_older_than(&self, grace: Duration) -> Vec<Uuid> {
        let cutoff = unix_secs_ago(grace);
        let mut jobs = HashSet::new();
        let mut listed = self.store.list(Some(&self.prefix));
        while let Some(meta) = listed.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the staging store");
                    break;
                }
            };
            if meta.last_modified.timestamp() > cutoff {
                continue;
            }
            let first = meta.location.prefix_match(&self.prefix).and_then(|mut rest| rest.next());
            match first.as_ref().map(|part| part.as_ref()) {
                Some(".incoming") => {
                    let _ = self.store.delete(&meta.location).await;
                }
                Some(dir) => jobs.extend(Uuid::try_parse(dir).ok()),
                None => {}
            }
        }
        // A local directory also holds the part files of uploads a crash interrupted, which listings skip:
        // its job directories are judged by their own age too.
        let root = self.directory.as_ref().and_then(|d| d.path_to_filesystem(&Path::from("x")).ok());
        if let Some(root) = root.as_deref().and_then(FsPath::parent) {
            jobs.extend(job_dirs_older_than(root, grace).await);
        }
        jobs.into_iter().collect()
    }
}

/// The instant `grace` ago, in seconds since the epoch (what object timestamps compare with).
pub(super) fn unix_secs_ago(grace: Duration) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.saturating_sub(grace).as_secs()).unwrap_or(i64::MAX)
}

/// The jobs whose directory under `root` was last changed more than `grace` ago.
pub(super) async fn job_dirs_older_than(root: &FsPath, grace: Duration) -> Vec<Uuid> {
    let mut found = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(root).await else { return found };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let Ok(id) = Uuid::try_parse(&entry.file_name().to_string_lossy()) else { continue };
        let old = entry.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if old.is_some_and(|age| age >= grace) {
            found.push(id);
        }
    }
    found
}

/// Removes `dir` and everything under it, if it is there.
async fn remove_dir(dir: &FsPath) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, dir = %dir.display(), "could not remove a job's files");
    }
}

/// A local directory as a store: created if missing, every write fsync'd, a job's directory removed with
/// its last file.
fn local_directory(dir: &FsPath) -> Result<LocalFileSystem, StagingError> {
    std::fs::create_dir_all(dir).map_err(|e| StagingError::Dir(dir.to_path_buf(), e))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| StagingError::Dir(dir.to_path_buf(), std::io::Error::other(e)))?;
    Ok(store.with_automatic_cleanup(true).with_fsync(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_path_names_the_jobs_object_old_rows_included() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(dir.path(), None).unwrap();
        let job = Uuid::new_v4();
        let new = area.location(&format!("{job}/a b.csv")).unwrap();
        assert_eq!(area.location(&format!("staging/{job}/a b.csv")), Some(new.clone()));
        assert_eq!(new.parts().count(), 2);
        assert_eq!(area.location("x/y.csv"), None);
    }

    #[tokio::test]
    async fn a_job_directory_holding_only_a_crashed_uploads_part_is_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(dir.path(), None).unwrap();
        let job = Uuid::new_v4();
        let crashed = dir.path().join("staging").join(job.to_string());
        std::fs::create_dir_all(&crashed).unwrap();
        std::fs::write(crashed.join("big.csv#1"), b"a,b\n").unwrap();
        assert!(area.jobs_with_objects_older_than(Duration::from_secs(3600)).await.is_empty());
        assert_eq!(area.jobs_with_objects_older_than(Duration::ZERO).await, [job]);
        area.remove_job(job).await;
        assert!(!crashed.exists());
    }

    #[test]
    fn a_url_names_its_store_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        let url = format!("file://{}", shared.display());
        let area = StagingArea::open(dir.path(), Some(&url)).unwrap();
        assert!(!area.on_data_disk());
        assert!(shared.is_dir());
        assert!(StagingArea::open(dir.path(), None).unwrap().on_data_disk());
        assert!(StagingArea::open(dir.path(), Some("not a url")).is_err());
        assert!(StagingArea::open(dir.path(), Some("ftp://host/x")).is_err());
    }
}
