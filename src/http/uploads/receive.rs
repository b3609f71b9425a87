//! The body of one PATCH, made a piece of its upload: streamed into an object of its own, completed with
//! whatever arrived, then counted. A body cut short (the client's link dropped, it went silent, the upload
//! deadline passed) is not an error here: the bytes that came are good bytes, so they are kept and counted
//! and the client resumes from there, which is what the protocol is for. The offset moves only once the
//! piece's object is complete in the store, so no offset a client is told can be lost.
//!
//! The work runs in a task of its own: when a client goes away, hyper drops the request's handler, and the
//! bytes already received must still be completed and counted.

use axum::body::Body;
use futures_util::StreamExt;
use time::OffsetDateTime;

use crate::http::body_error::body_error;
use crate::http::error::ApiError;
use crate::http::imports::limits::{self, FREE_SPACE_CHECK_EVERY};
use crate::http::state::AppState;
use crate::queue::{self, Upload};
use crate::source::staging::StagedUpload;

/// How the body ended.
pub enum Ending {
    /// It arrived whole.
    Whole,
    /// It stopped early, for this reason; what came before was kept.
    Cut(ApiError),
}

/// Where the upload stands after a PATCH.
pub struct Received {
    pub offset: i64,
    pub expires_at: OffsetDateTime,
    pub ending: Ending,
}

/// Receives `body` as the piece of `upload` that starts at its current offset, in a task that finishes
/// even if the request's handler is dropped.
pub async fn receive(state: AppState, upload: Upload, body: Body) -> Result<Received, ApiError> {
    tokio::spawn(receive_piece(state, upload, body))
        .await
        .map_err(|e| ApiError::Internal(format!("receiving a piece of an upload failed: {e}")))?
}

async fn receive_piece(state: AppState, upload: Upload, body: Body) -> Result<Received, ApiError> {
    let staging = &state.services.staging;
    let start = upload.upload_offset;
    let room = (upload.upload_length - start).max(0) as u64;
    let deadline = tokio::time::Instant::now() + state.settings.runtime.upload_timeout();
    let mut stream = body.into_data_stream();
    // Begun with the first byte: an empty PATCH costs the store nothing.
    let mut piece: Option<StagedUpload> = None;
    let mut next_space_check = FREE_SPACE_CHECK_EVERY;
    let ending = loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => break Ending::Cut(ApiError::UploadDeadline(state.settings.runtime.upload_timeout_secs)),
            Ok(None) => break Ending::Whole,
            Ok(Some(Err(e))) => break Ending::Cut(body_error(&e)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        if chunk.is_empty() {
            continue;
        }
        let written = piece.as_ref().map_or(0, StagedUpload::len);
        if written + chunk.len() as u64 > room {
            // A client that sends more than it announced is confused about what it sends: keep nothing.
            if let Some(piece) = piece {
                piece.abort().await;
            }
            return Err(ApiError::PayloadTooLarge(format!(
                "the body goes past the upload's length ({} bytes); nothing of it was kept",
                upload.upload_length
            )));
        }
        if piece.is_none() {
            piece = Some(staging.begin_segment(upload.id, start as u64).await.map_err(store_error)?);
        }
        let Some(writer) = piece.as_mut() else { continue };
        if let Err(e) = writer.write(chunk).await {
            if let Some(piece) = piece {
                piece.abort().await;
            }
            return Err(store_error(e));
        }
        if writer.len() >= next_space_check {
            if let Err(refused) = limits::check_free_space(&state).await {
                break Ending::Cut(refused);
            }
            next_space_check = writer.len() + FREE_SPACE_CHECK_EVERY;
        }
    };
    let Some(piece) = piece else {
        return match ending {
            Ending::Whole => Ok(Received { offset: start, expires_at: upload.expires_at, ending }),
            Ending::Cut(error) => Err(error),
        };
    };
    let name = piece.name().to_string();
    let count = piece.len() as i64;
    piece.finish().await.map_err(store_error)?;
    let expiry = state.settings.runtime.upload_expiry_secs();
    // On a database error the piece stays: it may have been counted (the commit's answer was lost); if
    // not, it goes with the upload's other objects.
    match queue::record_segment(&state.pool, upload.id, start, count, &name, expiry).await? {
        Some((offset, expires_at)) => {
            if let Ending::Cut(reason) = &ending {
                tracing::info!(upload = %upload.id, offset, reason = %reason, "a cut PATCH kept the bytes it brought");
            }
            Ok(Received { offset, expires_at, ending })
        }
        None => {
            staging.remove_segment(upload.id, &name).await;
            Err(ApiError::Conflict(
                "another request moved the upload's offset while this one was sent (or the upload is gone); \
                 ask for the offset (HEAD) and resume from it"
                    .into(),
            ))
        }
    }
}

fn store_error(e: object_store::Error) -> ApiError {
    ApiError::Internal(format!("storing a piece of an upload failed: {e}"))
}
