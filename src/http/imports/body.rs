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
            let mut upload = state.services.staging.begin().await.map_err(io_error)?;
            let mut over_limit = false;
            let mut drained = 0u64;
            let mut next_space_check = FREE_SPACE_CHECK_EVERY;
            while let Some(chunk) = field.chunk().await.map_err(|e| body_error(&e))? {
                if over_limit {
                    drained += chunk.len() as u64;
                    if drained > DRAIN_AFTER_LIMIT {
                        break;
                    }
                    continue;
                }
                if upload.len() + chunk.len() as u64 > limit {
                    over_limit = true;
                    continue;
                }
                upload.write(&chunk).await.map_err(io_error)?;
                if upload.len() >= next_space_check {
                    // On a refusal `upload` is dropped, and its file with it.
                    limits::check_free_space(state).await?;
                    next_space_check = upload.len() + FREE_SPACE_CHECK_EVERY;
                }
            }
            let name = safe_file_name(client_file_name.as_deref().unwrap_or("upload"));
            file = Some(ReceivedFile { upload, name, over_limit });
            if over_limit && drained > DRAIN_AFTER_LIMIT {
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
    let mut upload = state.services.staging.begin().await.map_err(io_error)?;
    let mut next_space_check = FREE_SPACE_CHECK_EVERY;
    let mut over_limit = false;
    let mut drained = 0u64;
    while let Some(chunk) = stream.try_next().await.map_err(|e| body_error(&e))? {
        if over_limit {
            drained += chunk.len() as u64;
            if drained > DRAIN_AFTER_LIMIT {
                break;
            }
        } else if upload.len() + chunk.len() as u64 > limit {
            over_limit = true;
        } else {
            upload.write(&chunk).await.map_err(io_error)?;
            if upload.len() >= next_space_check {
                limits::check_free_space(state).await?;
                next_space_check = upload.len() + FREE_SPACE_CHECK_EVERY;
            }
        }
    }
    Ok(ReceivedFile { upload, name: safe_file_name(file_name), over_limit })
}

/// Reads a small body whole (JSON or form parameters), under the process-wide bound of [`SmallBodies`].
pub async fn read_small(state: &AppState, body: impl UploadStream) -> Result<Vec<u8>, ApiError> {
    Ok(state.small_bodies.read(body).await?.to_vec())
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("staging the upload failed: {e}"))
}
