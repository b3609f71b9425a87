//! `/api/v1/uploads`: resumable uploads with the tus 1.0 protocol (core, creation, termination,
//! expiration), for large files over links that drop. A client creates an upload (POST, with its
//! length), sends its bytes in as many PATCHes as it takes, asks where it stands after a break (HEAD), and
//! then imports it with `POST /api/v1/imports {"upload_id": ...}` with the usual import parameters.
//!
//! - [`tus`]: the protocol's version check, headers and metadata.
//! - [`receive`]: one PATCH's body, made a piece of the upload.
//!
//! Uploads belong to their user (another user's id is 404) and count against the same limits as imports
//! from the moment they are created (see `imports::limits`). Their pieces live in the staging store.

mod receive;
mod tus;

use axum::body::Body;
use axum::extract::{OriginalUri, RawPathParams, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::{Caller, Credentials, authenticate};
use super::error::ApiError;
use super::imports::limits;
use super::path;
use super::state::AppState;
use crate::queue::{self, NewUpload, Upload};
use crate::source::staging::safe_file_name;
use receive::{Ending, receive};
use tus::{
    EXTENSIONS, TUS_EXTENSION, TUS_MAX_SIZE, TUS_VERSION, UPLOAD_DEFER_LENGTH, UPLOAD_EXPIRES, UPLOAD_LENGTH,
    UPLOAD_METADATA, UPLOAD_OFFSET, VERSION,
};

/// The routes, under the protocol's version check.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(options, create))
        .routes(routes!(offset, append, terminate))
        .layer(axum::middleware::from_fn(tus::protocol))
}

/// What the server supports.
///
/// The tus protocol's discovery: version 1.0.0, the extensions creation, termination and expiration, and
/// the largest upload the caller may make (with a key; otherwise the server's default). Needs no
/// `Tus-Resumable`.
#[utoipa::path(
    options,
    path = "/api/v1/uploads",
    tag = "uploads",
    responses((status = 204, description = "What the server supports", headers(
        ("Tus-Version" = String, description = "1.0.0"),
        ("Tus-Extension" = String, description = "creation,termination,expiration"),
        ("Tus-Max-Size" = u64, description = "The caller's maximum file size, in bytes"),
    ))),
)]
pub async fn options(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    let creds = Credentials::from_parts(&mut parts, &state).await;
    let max = match creds.has_key() {
        true => authenticate(&state, &creds).await?.max_file_size,
        false => state.settings.user_defaults.max_file_size,
    };
    let headers =
        [(TUS_VERSION, VERSION.to_string()), (TUS_EXTENSION, EXTENSIONS.into()), (TUS_MAX_SIZE, max.to_string())];
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// Create a resumable upload.
///
/// `Upload-Length` (required) is the file's size; `Upload-Metadata` may name the file (`filename`, base64),
/// which the import's table is named after. Answers 201 with the upload's URL in `Location` and when it
/// expires unless it receives bytes. Send the key with HTTP Basic (`username:api_key`): tus clients keep
/// headers, not the query string, for the URL they are given. Also served under `/user/{username}/`.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    tag = "uploads",
    params(
        ("Tus-Resumable" = String, Header, description = "1.0.0"),
        ("Upload-Length" = u64, Header, description = "The file's size in bytes"),
        ("Upload-Metadata" = Option<String>, Header, description = "Comma-separated `key base64(value)` pairs; `filename` names the file"),
    ),
    responses(
        (status = 201, description = "Created", headers(
            ("Location" = String, description = "The upload's URL"),
            ("Upload-Expires" = String, description = "When it expires unless more bytes arrive (HTTP date)"),
        )),
        (status = 400, description = "Upload-Length missing or not a number (Upload-Defer-Length is not supported), or bad Upload-Metadata"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 412, description = "Tus-Resumable is not 1.0.0"),
        (status = 413, description = "Upload-Length above the user's maximum file size"),
        (status = 429, description = "As many unfinished uploads, imports or staged bytes as the account may have"),
        (status = 507, description = "The server's disk is below its reserve"),
    ),
    security(("basic" = []), ("api_key" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Caller(user): Caller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if headers.contains_key(UPLOAD_DEFER_LENGTH) {
        return Err(bad("Upload-Defer-Length is not supported: send Upload-Length"));
    }
    let length = tus::number(&headers, &UPLOAD_LENGTH)?.ok_or_else(|| bad("Upload-Length is required"))?;
    let max = user.max_file_size.max(0) as u64;
    if length > max {
        return Err(ApiError::PayloadTooLarge(format!(
            "the upload would be {length} bytes; the most this account may upload is {max} bytes"
        )));
    }
    let raw_metadata = headers.get(UPLOAD_METADATA).map(|v| v.to_str().unwrap_or_default().to_string());
    let metadata = tus::metadata(raw_metadata.as_deref().unwrap_or_default())?;
    let file_name = safe_file_name(&tus::file_name(&metadata).unwrap_or_default());
    limits::check_free_space(&state).await?;
    let new = NewUpload {
        id: Uuid::new_v4(),
        user_id: user.id,
        file_name: &file_name,
        upload_length: length as i64,
        metadata: raw_metadata.as_deref().filter(|m| !m.trim().is_empty()),
        expiry_secs: state.settings.runtime.upload_expiry_secs(),
    };
    let mut tx = state.pool.begin().await?;
    limits::check_before_new_upload(&mut tx, &user, new.upload_length, state.settings.runtime.max_unfinished_uploads)
        .await?;
    let expires_at = queue::insert_upload(&mut tx, &new).await?;
    tx.commit().await?;
    tracing::info!(upload = %new.id, user = %user.username, length, file = %file_name, "resumable upload created");
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), new.id);
    let headers = [(LOCATION, location), (UPLOAD_EXPIRES, tus::http_date(expires_at))];
    Ok((StatusCode::CREATED, headers).into_response())
}

/// Where an upload stands.
///
/// `Upload-Offset` is how many bytes the server holds (resume from there), `Upload-Length` the whole.
/// Another user's upload is 404; one that expired, or already became an import, 410.
#[utoipa::path(
    head,
    path = "/api/v1/uploads/{id}",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "The id at the end of the upload's Location"),
        ("Tus-Resumable" = String, Header, description = "1.0.0"),
    ),
    responses(
        (status = 200, description = "The upload", headers(
            ("Upload-Offset" = u64, description = "Bytes received and stored"),
            ("Upload-Length" = u64, description = "The file's size"),
            ("Upload-Expires" = String, description = "When it expires unless more bytes arrive"),
            ("Upload-Metadata" = String, description = "As sent at creation"),
            ("Cache-Control" = String, description = "no-store"),
        )),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "No such upload for this user"),
        (status = 410, description = "Expired, or already imported"),
        (status = 412, description = "Tus-Resumable is not 1.0.0"),
    ),
    security(("basic" = []), ("api_key" = []))
)]
pub async fn offset(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let upload = open_upload(&state, user.id, &params).await?;
    let mut headers = vec![
        (UPLOAD_OFFSET, upload.upload_offset.to_string()),
        (UPLOAD_LENGTH, upload.upload_length.to_string()),
        (UPLOAD_EXPIRES, tus::http_date(upload.expires_at)),
        (CACHE_CONTROL, "no-store".to_string()),
    ];
    headers.extend(upload.metadata.map(|m| (UPLOAD_METADATA, m)));
    Ok((StatusCode::OK, header_map(headers)).into_response())
}

/// Send bytes of an upload.
///
/// The body (`Content-Type: application/offset+octet-stream`) continues the upload at `Upload-Offset`,
/// which must be where the server stands (409 otherwise: ask with HEAD). A body cut short is kept as far
/// as it came: HEAD then says where to resume. Answers 204 with the new `Upload-Offset`.
#[utoipa::path(
    patch,
    path = "/api/v1/uploads/{id}",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "The id at the end of the upload's Location"),
        ("Tus-Resumable" = String, Header, description = "1.0.0"),
        ("Upload-Offset" = u64, Header, description = "Where this body starts: the offset HEAD gives"),
    ),
    request_body(content_type = "application/offset+octet-stream", description = "The next bytes of the file"),
    responses(
        (status = 204, description = "Stored", headers(
            ("Upload-Offset" = u64, description = "Bytes received and stored, this body's included"),
            ("Upload-Expires" = String, description = "When it expires unless more bytes arrive"),
        )),
        (status = 400, description = "Upload-Offset missing or not a number"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "No such upload for this user"),
        (status = 409, description = "Upload-Offset is not the upload's offset"),
        (status = 410, description = "Expired, or already imported"),
        (status = 412, description = "Tus-Resumable is not 1.0.0"),
        (status = 413, description = "The body goes past Upload-Length (nothing of it is kept)"),
        (status = 415, description = "Content-Type is not application/offset+octet-stream"),
        (status = 507, description = "The server's disk is below its reserve"),
    ),
    security(("basic" = []), ("api_key" = []))
)]
pub async fn append(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !tus::is_offset_stream(&headers) {
        return Err(ApiError::UnsupportedMediaType(format!("a PATCH's body must be {}", tus::OFFSET_STREAM)));
    }
    let claimed = tus::number(&headers, &UPLOAD_OFFSET)?.ok_or_else(|| bad("Upload-Offset is required"))?;
    let upload = open_upload(&state, user.id, &params).await?;
    if claimed != upload.upload_offset as u64 {
        return Err(ApiError::Conflict(format!(
            "Upload-Offset is {claimed} but the server holds {} bytes of this upload; resume from there",
            upload.upload_offset
        )));
    }
    let announced = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| claimed.saturating_add(n) > upload.upload_length as u64) {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body would take the upload past its length ({} bytes)",
            upload.upload_length
        )));
    }
    limits::check_free_space(&state).await?;
    let received = receive(state.clone(), upload, body).await?;
    if let Ending::Cut(reason) = received.ending {
        return Err(reason);
    }
    let headers = [(UPLOAD_OFFSET, received.offset.to_string()), (UPLOAD_EXPIRES, tus::http_date(received.expires_at))];
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// Delete an upload.
///
/// The termination extension: the upload and its bytes are deleted (204). Another user's is 404.
#[utoipa::path(
    delete,
    path = "/api/v1/uploads/{id}",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "The id at the end of the upload's Location"),
        ("Tus-Resumable" = String, Header, description = "1.0.0"),
    ),
    responses(
        (status = 204, description = "Deleted, with its bytes"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "No such upload for this user"),
        (status = 412, description = "Tus-Resumable is not 1.0.0"),
    ),
    security(("basic" = []), ("api_key" = []))
)]
pub async fn terminate(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<StatusCode, ApiError> {
    let id = path::id(&params, "upload")?;
    // The row first: a PATCH still under way then finds it gone and deletes its own piece.
    if !queue::delete_upload(&state.pool, user.id, id).await? {
        return Err(ApiError::NotFound("upload"));
    }
    state.services.staging.remove_upload(id).await;
    tracing::info!(upload = %id, user = %user.username, "resumable upload deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's upload the path names, if bytes may still be sent to it or read about: 404 when it is not
/// the caller's, 410 when it expired or became an import.
async fn open_upload(state: &AppState, user_id: Uuid, params: &RawPathParams) -> Result<Upload, ApiError> {
    let id = path::id(params, "upload")?;
    let upload = queue::find_upload(&state.pool, user_id, id).await?.ok_or(ApiError::NotFound("upload"))?;
    if let Some(import) = upload.import_id {
        return Err(ApiError::Gone(format!("the upload became import {import}; its bytes were deleted")));
    }
    if upload.expired {
        return Err(ApiError::Gone("the upload has expired and its bytes were deleted".into()));
    }
    Ok(upload)
}

fn header_map(pairs: Vec<(HeaderName, String)>) -> HeaderMap {
    pairs.into_iter().filter_map(|(name, value)| Some((name, value.parse().ok()?))).collect()
}

fn bad(message: &str) -> ApiError {
    ApiError::BadRequest("uploads", message.to_string())
}
