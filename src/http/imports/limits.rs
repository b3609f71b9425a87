//! What a user may leave waiting, and the disk's reserve (review #8). An upload stays in the staging area
//! from the moment it is accepted until its import ends, and `max_concurrent_imports` only bounds what
//! runs; so each user also has `max_pending_imports` (unfinished imports of any kind) and
//! `max_staged_bytes` (the staged files of those imports), and the server keeps `min_free_bytes` free on
//! the data directory's filesystem, which the embedded PostgreSQL may share.
//!
//! A resumable upload (tus) counts as an unfinished import from its creation, with its whole announced
//! length as staged bytes, until it becomes an import (which then counts instead) or expires; a user may
//! also have at most `GEOIMPORT_MAX_UNFINISHED_UPLOADS` of them.
//!
//! The user's limits are checked before an upload's body is read, when they are already reached (429),
//! and again as the import is queued, under a lock on the user's row, with the upload's real size: an
//! import that would cross a limit is not queued and its file is removed (429). The free space is checked
//! before the body is read and every [`FREE_SPACE_CHECK_EVERY`] bytes while it streams in (507).

use sqlx::PgConnection;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::queue::{self, UnfinishedLoad};
use crate::users::User;

/// How many bytes of an upload are written between two checks of the free space.
pub const FREE_SPACE_CHECK_EVERY: u64 = 8 << 20;

/// Before an upload's body is read: 507 when the disk is below its reserve, 429 when the user may queue
/// nothing more.
pub async fn check_before_upload(state: &AppState, user: &User) -> Result<(), ApiError> {
    check_free_space(state).await?;
    let mut conn = state.pool.acquire().await?;
    let load = queue::unfinished_load(&mut conn, user.id).await?;
    // A new upload is one more import of at least one byte.
    refuse_beyond(user, load, 1).map_err(|breach| breach.before())
}

/// Before a URL or connector import is accepted: 429 when the user has as many unfinished imports as
/// allowed.
pub async fn check_before_import(state: &AppState, user: &User) -> Result<(), ApiError> {
    let mut conn = state.pool.acquire().await?;
    let load = queue::unfinished_load(&mut conn, user.id).await?;
    refuse_beyond(user, load, 0).map_err(Breach::before)
}

/// In the transaction that has just inserted an unfinished import of `staged_bytes` (0 for URL and
/// connector imports), before it commits: locks the user's row, so that imports queued at once are
/// counted one after the other, and refuses (429) an import that takes the user past a limit (the caller
/// then rolls back).
pub async fn check_while_queueing(tx: &mut PgConnection, user: &User, staged_bytes: i64) -> Result<(), ApiError> {
    queue::lock_user(tx, user.id).await?;
    // This transaction's own import is counted: take it out to see what was there before.
    let load = queue::unfinished_load(tx, user.id).await?;
    let before = UnfinishedLoad { imports: load.imports - 1, staged_bytes: load.staged_bytes - staged_bytes, ..load };
    refuse_beyond(user, before, staged_bytes).map_err(|breach| breach.queueing(staged_bytes))
}

/// In the transaction that is about to insert a resumable upload of `length` bytes: locks the user's row
/// (as [`check_while_queueing`] does) and refuses (429) an upload that takes the user past a limit, or
/// past `max_uploads` unfinished uploads.
pub async fn check_before_new_upload(
    tx: &mut PgConnection,
    user: &User,
    length: i64,
    max_uploads: i64,
) -> Result<(), ApiError> {
    queue::lock_user(tx, user.id).await?;
    let load = queue::unfinished_load(tx, user.id).await?;
    if load.uploads >= max_uploads {
        return Err(ApiError::TooManyRequests(format!(
            "you have {} unfinished resumable uploads, as many as allowed ({max_uploads}); finish or delete \
             some (or let them expire), then try again",
            load.uploads
        )));
    }
    refuse_beyond(user, load, length).map_err(|breach| breach.queueing(length))
}

/// 507 when the data directory's filesystem has less free space than the reserve. A filesystem that
/// cannot be asked is let through (and logged): the reserve protects the disk, it must not stop uploads.
pub async fn check_free_space(state: &AppState) -> Result<(), ApiError> {
    let reserve = state.settings.runtime.min_free_bytes;
    // Uploads staged in a remote store take nothing of this machine's disk.
    if reserve == 0 || !state.services.staging.on_data_disk() {
        return Ok(());
    }
    let dir = state.settings.data_dir.clone();
    let free = tokio::task::spawn_blocking(move || crate::source::disk::free_bytes(&dir).ok_or("statvfs failed")).await;
    match free {
        Ok(Ok(free)) if free < reserve => {
            tracing::warn!(free, reserve, "an upload was refused: the data directory's disk is below its reserve");
            Err(ApiError::InsufficientStorage(
                "The server is short of disk space and accepts no uploads for now; try again later.".into(),
            ))
        }
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the free space of the data directory");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the free space of the data directory");
            Ok(())
        }
    }
}

/// Which limit one more import of `staged_bytes` would cross.
enum Breach {
    Imports { have: i64, max: i32 },
    StagedBytes { have: i64, max: i64 },
}

fn refuse_beyond(user: &User, load: UnfinishedLoad, staged_bytes: i64) -> Result<(), Breach> {
    let waiting = load.imports + load.uploads;
    if waiting + 1 > i64::from(user.max_pending_imports) {
        return Err(Breach::Imports { have: waiting, max: user.max_pending_imports });
    }
    if staged_bytes > 0 && load.staged_bytes.saturating_add(staged_bytes) > user.max_staged_bytes {
        return Err(Breach::StagedBytes { have: load.staged_bytes, max: user.max_staged_bytes });
    }
    Ok(())
}

impl Breach {
    /// The answer before anything was read: the limit is already reached.
    fn before(self) -> ApiError {
        ApiError::TooManyRequests(match self {
            Breach::Imports { have, max } => format!(
                "you have {have} unfinished imports (resumable uploads included), as many as your account may \
                 have waiting ({max}); wait for some to finish (or cancel them), then try again"
            ),
            Breach::StagedBytes { have, max } => format!(
                "your unfinished imports hold {have} bytes of uploaded files, as much as your account may keep \
                 waiting ({max}); wait for some to finish, then try again"
            ),
        })
    }

    /// The answer to an import of `staged_bytes` that would cross the limit.
    fn queueing(self, staged_bytes: i64) -> ApiError {
        match self {
            Breach::Imports { .. } => self.before(),
            Breach::StagedBytes { have, max } => ApiError::TooManyRequests(format!(
                "this upload of {staged_bytes} bytes would take the uploaded files of your unfinished imports to \
                 {} bytes, more than your account may keep waiting ({max}); wait for some to finish, then try \
                 again",
                have.saturating_add(staged_bytes)
            )),
        }
    }
}
