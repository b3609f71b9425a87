//! Storing a new import: its row, what comes with it (a connector's sealed connection, or the failure of an
//! upload refused at once) and its Idempotency-Key, in one transaction, within the user's limits.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::idempotency::IdempotencyKey;
use super::limits;
use crate::connector::store::{self, StoredConnector};
use crate::errors::ImportError;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::queue::{self, NewImport};
use crate::users::User;

/// The answer to a create request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The import's id: poll `GET /api/v1/imports/{id}` with it.
    pub item_queue_id: Uuid,
    pub success: bool,
}

/// What is stored with a new import besides its row.
pub(crate) enum Extra<'a> {
    None,
    /// The import failed before any worker could take it (an upload past the size limit).
    Failed(&'a ImportError),
    /// A connector import's sealed connection.
    Connector(&'a StoredConnector),
    /// The finished resumable upload the import's file was assembled from: taken in the same transaction,
    /// so that one upload starts at most one import.
    Upload(Uuid),
}

/// What [`enqueue`] did.
pub(crate) enum Enqueued {
    New,
    /// The Idempotency-Key was used before, for this import: nothing was stored.
    Earlier(Uuid),
}

impl Enqueued {
    /// The answer to the request that queued import `id`.
    pub(crate) fn answer(&self, id: Uuid) -> Created {
        let item_queue_id = match self {
            Enqueued::New => id,
            Enqueued::Earlier(earlier) => *earlier,
        };
        Created { item_queue_id, success: true }
    }
}

/// Stores `job` with its `extra` and its Idempotency-Key in one transaction and commits; or, when the key
/// names an earlier import, rolls everything back and says which import that was. An import that would
/// take the user past `max_pending_imports` or `max_staged_bytes` is not stored (429); a retry answered
/// with its first import is not refused.
pub(crate) async fn enqueue(
    state: &AppState,
    user: &User,
    job: &NewImport,
    key: Option<&IdempotencyKey>,
    extra: Extra<'_>,
) -> Result<Enqueued, ApiError> {
    let mut tx = state.pool.begin().await?;
    match extra {
        Extra::Failed(error) => queue::insert_failed_import(&mut tx, job, error).await?,
        Extra::None | Extra::Connector(_) | Extra::Upload(_) => queue::insert_import(&mut tx, job).await?,
    }
    if let Extra::Connector(stored) = extra {
        store::attach(&mut tx, job.id, stored).await?;
    }
    if let Some(key) = key
        && let Some(earlier) = key.claim(&mut tx, user.id, job.id).await?
    {
        tracing::info!(import = %earlier, "a retried request (same Idempotency-Key): answered with its first import");
        return Ok(Enqueued::Earlier(earlier));
    }
    if let Extra::Upload(upload) = extra {
        let expiry = state.settings.runtime.upload_expiry_secs();
        if !queue::take_upload(&mut tx, user.id, upload, job.id, expiry).await? {
            return Err(ApiError::Conflict(
                "the upload has just started another import (or is gone); an upload starts one import".into(),
            ));
        }
    }
    // An import that failed at once (an upload past the size limit) waits for nothing.
    if !matches!(extra, Extra::Failed(_)) {
        limits::check_while_queueing(&mut tx, user, job.staged_bytes).await?;
    }
    tx.commit().await?;
    Ok(Enqueued::New)
}
