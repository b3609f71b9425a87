//! An import of a finished resumable upload: `POST /api/v1/imports` with `upload_id` (query, form or JSON)
//! beside the usual import parameters. The upload's pieces are copied, in order, into one staged file of
//! the new job before its row is committed (invariant 1 holds as for any upload: the file is whole in the
//! store first), and the row's transaction takes the upload, so that one upload starts at most one import.
//! The pieces are deleted once the import is queued; the upload's row stays until it expires, to tell a
//! second import of it which import took it (409), or a retry with the same Idempotency-Key that import.

use uuid::Uuid;

use super::enqueue::{Created, Enqueued, Extra, enqueue};
use super::idempotency::IdempotencyKey;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::queue::{self, DataType, ImportOptions, NewImport};
use crate::users::User;

/// Queues the import of the caller's finished upload `raw_id`: 404 when it is not the caller's (or not an
/// id), 410 when it expired, 409 when it is not finished or already started an import.
pub(super) async fn queue_upload_import(
    state: &AppState,
    user: &User,
    raw_id: &str,
    options: ImportOptions,
    key: Option<&IdempotencyKey>,
) -> Result<Created, ApiError> {
    let id = Uuid::try_parse(raw_id.trim()).map_err(|_| ApiError::NotFound("upload"))?;
    let upload = queue::find_upload(&state.pool, user.id, id).await?.ok_or(ApiError::NotFound("upload"))?;
    if let Some(taken) = upload.import_id {
        if let Some(key) = key {
            let mut conn = state.pool.acquire().await?;
            if let Some(earlier) = key.earlier(&mut conn, user.id).await? {
                return Ok(Created { item_queue_id: earlier, success: true });
            }
        }
        return Err(ApiError::Conflict(format!(
            "the upload has already started import {taken}; an upload starts one import"
        )));
    }
    if upload.expired {
        return Err(ApiError::Gone("the upload has expired and its bytes were deleted".into()));
    }
    if upload.upload_offset < upload.upload_length {
        return Err(ApiError::Conflict(format!(
            "the upload is not finished: {} of its {} bytes have arrived; send the rest (PATCH) first",
            upload.upload_offset, upload.upload_length
        )));
    }
    // The limit may have been lowered since the upload began.
    if upload.upload_length > user.max_file_size {
        return Err(ApiError::PayloadTooLarge(format!(
            "the upload is {} bytes; the most this account may import is {} bytes",
            upload.upload_length, user.max_file_size
        )));
    }
    let segments: Vec<(String, u64)> = queue::upload_segments(&state.pool, id)
        .await?
        .into_iter()
        .map(|s| (s.object_name, s.byte_count.max(0) as u64))
        .collect();
    let job_id = Uuid::new_v4();
    let staging = &state.services.staging;
    let staged =
        staging.assemble_upload(id, &segments, job_id, &upload.file_name).await.map_err(super::body::store_error)?;
    let job = NewImport {
        id: job_id,
        user_id: user.id,
        data_type: DataType::File,
        staged_path: Some(staged),
        display_name: upload.file_name.clone(),
        original_url: Some(String::new()),
        source_url: None,
        synchronization_id: None,
        options,
        staged_bytes: upload.upload_length,
    };
    let queued = enqueue(state, user, &job, key, Extra::Upload(id)).await;
    match &queued {
        Ok(Enqueued::New) => {
            tracing::info!(import = %job_id, upload = %id, user = %user.username, "import of an upload queued");
            staging.remove_upload(id).await;
        }
        // Refused, or a retry answered with its first import: this request's copy is garbage.
        _ => staging.remove_job(job_id).await,
    }
    queued.map(|queued| queued.answer(job_id))
}
