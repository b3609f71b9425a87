//! Reading the body of `POST /api/v1/imports`: a multipart form whose `file` field streams to the staging
//! area, a raw body (named by the `filename` parameter) that does the same, or a small JSON or form body of
//! parameters. The file is never held in memory, and never written past the size limit.

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};

use super::guard::{Budget, FORM_FIELDS_LIMIT, FORM_TEXT_LIMIT, GuardError};
use super::limits::{self, FREE_SPACE_CHECK_EVERY};
use super::params::ParamBag;
use crate::http::auth::{Credentials, authenticate};
use crate::http::body_error::body_error;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::source::staging::{StagedUpload, safe_file_name};
use crate::users::User;

use super::guard::DRAIN_AFTER_LIMIT;

/// A body as the import reader takes it: the request's, through the upload guard.
pub trait UploadStream: Stream<Item = Result<Bytes, GuardError>> + Send + Unpin + 'static {}
impl<S: Stream<Item = Result<Bytes, GuardError>> + Send + Unpin + 'static> UploadStream for S {}

/// A file received in the request.
pub struct ReceivedFile {
    pub upload: StagedUpload,
    /// The client's file name, made safe for disk.
    pub name: String,
    /// The body held more bytes than the limit; `upload` holds only the part before it.
    pub over_limit: bool,
}

/// The kind of body, from its Content-Type.
pub enum BodyKind {
    Multipart(String),
    Json,
    Form,
    Raw,
}

pub fn body_kind(content_type: Option<&str>) -> BodyKind {
    let Some(ct) = content_type else {
        return BodyKind::Raw;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "multipart/form-data"
        && let Ok(boundary) = multer::parse_boundary(ct)
    {
        return BodyKind::Multipart(boundary);
    }
    match mime.as_str() {
        "application/json" => BodyKind::Json,
        "application/x-www-form-urlencoded" => BodyKind::Form,
        _ => BodyKind::Raw,
    }
}

/// Reads a multipart body: the `file` field (or a `filename` field carrying a file) is staged, every
/// other field is a parameter. An `api_key` field authenticates `user` when the request did not already
/// (and raises the body's `budget` to the user's); a file that arrives before anyone is authenticated is
/// refused (401) rather than written to disk. A form may have [`FORM_FIELDS_LIMIT`] parts, whose text
/// adds up to at most [`FORM_TEXT_LIMIT`] bytes.
pub async fn read_multipart(
    body: impl UploadStream,
    boundary: String,
    state: &AppState,
    creds: &mut Credentials,
    user: &mut Option<User>,
    budget: &Budget,
    bag: &mut ParamBag,
) -> Result<Option<ReceivedFile>, ApiError> {
    let mut multipart = multer::Multipart::new(body, boundary);
    let mut file = None;
    let mut fields = 0;
    let mut text_bytes = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| body_error(&e))? {
        fields += 1;
        if fields > FORM_FIELDS_LIMIT {
            return Err(ApiError::PayloadTooLarge(format!("the form has more than {FORM_FIELDS_LIMIT} fields")));
        }
        let name = field.name().unwrap_or("").to_string();
        let client_file_name = field.file_name().map(str::to_owned);
        let is_file = name == "file" || (name == "filename" && client_file_name.is_some());
        if is_file && file.is_none() {
            let Some(owner) = user.as_ref() else { return Err(ApiError::Unauthorized) };
            let limit = owner.max_file_size.max(0) as u64;
            let name = safe_file_name(client_file_name.as_deref().unwrap_or("upload"));
            let upload = state.services.staging.begin(&name).await.map_err(store_error)?;
            let staged = stage(state, upload, &mut field, limit).await?;
            let gave_up = staged.gave_up;
            file = Some(ReceivedFile { upload: staged.upload, name, over_limit: staged.over_limit });
            if gave_up {
                break;
            }
        } else if is_file {
            // A second file is not ours to import; skip its bytes.
            while field.chunk().await.map_err(|e| body_error(&e))?.is_some() {}
        } else {
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| body_error(&e))? {
                text_bytes += chunk.len();
                if text_bytes > FORM_TEXT_LIMIT {
                    return Err(ApiError::PayloadTooLarge(format!(
                        "the form's text fields hold more than {FORM_TEXT_LIMIT} bytes together"
                    )));
                }
                text.extend_from_slice(&chunk);
            }
            let text = String::from_utf8_lossy(&text).into_owned();
            if name == "api_key" && user.is_none() {
                creds.api_key = Some(text.clone());
                let known = authenticate(state, creds).await?;
                limits::check_before_upload(state, &known).await?;
                budget.authenticated(known.max_file_size.max(0) as u64);
                *user = Some(known);
            }
            bag.insert_text(&name, text);
        }
    }
    Ok(file)
}

/// Streams a raw body into the staging area.
pub async fn read_raw(
    mut stream: impl UploadStream,
    file_name: &str,
    state: &AppState,
    limit: u64,
) -> Result<ReceivedFile, ApiError> {
    let name = safe_file_name(file_name);
    let upload = state.services.staging.begin(&name).await.map_err(store_error)?;
    let staged = stage(state, upload, &mut stream, limit).await?;
    Ok(ReceivedFile { upload: staged.upload, name, over_limit: staged.over_limit })
}

/// A file's bytes as [`stage`] left them.
struct Staged {
    upload: StagedUpload,
    /// The bytes went past the limit; `upload` holds only those before it.
    over_limit: bool,
    /// Past the limit, more than [`DRAIN_AFTER_LIMIT`] bytes came: the rest of the body is not read.
    gave_up: bool,
}

/// Streams `chunks` into `upload` up to `limit` bytes, then reads (and drops) at most
/// [`DRAIN_AFTER_LIMIT`] more, so that the client can read the answer; checks the free space every few
/// megabytes. On an error the upload is aborted before the error returns: once the client has its
/// answer, nothing of the upload is left.
async fn stage<E: std::error::Error + 'static>(
    state: &AppState,
    mut upload: StagedUpload,
    chunks: &mut (impl Stream<Item = Result<Bytes, E>> + Unpin),
    limit: u64,
) -> Result<Staged, ApiError> {
    let mut over_limit = false;
    let mut drained = 0u64;
    let mut next_space_check = FREE_SPACE_CHECK_EVERY;
    loop {
        let chunk = match chunks.try_next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => return Err(aborting(upload, body_error(&e)).await),
        };
        if over_limit {
            drained += chunk.len() as u64;
            if drained > DRAIN_AFTER_LIMIT {
                return Ok(Staged { upload, over_limit, gave_up: true });
            }
        } else if upload.len() + chunk.len() as u64 > limit {
            over_limit = true;
        } else {
            if let Err(e) = upload.write(chunk).await {
                return Err(aborting(upload, store_error(e)).await);
            }
            if upload.len() >= next_space_check {
                if let Err(refused) = limits::check_free_space(state).await {
                    return Err(aborting(upload, refused).await);
                }
                next_space_check = upload.len() + FREE_SPACE_CHECK_EVERY;
            }
        }
    }
    Ok(Staged { upload, over_limit, gave_up: false })
}

/// Aborts `upload`, then gives back `error`.
async fn aborting(upload: StagedUpload, error: ApiError) -> ApiError {
    upload.abort().await;
    error
}

/// Reads a small body whole (JSON or form parameters), under the process-wide bound of [`SmallBodies`].
pub async fn read_small(state: &AppState, body: impl UploadStream) -> Result<Vec<u8>, ApiError> {
    Ok(state.small_bodies.read(body).await?.to_vec())
}

pub fn store_error(e: object_store::Error) -> ApiError {
    ApiError::StoreUnavailable(format!("staging the upload: {e}"))
}
