//! `/api/v1/imports`: create an import, read its status, list the unfinished ones.

mod body;
pub(crate) mod connector;
mod enqueue;
mod from_upload;
pub mod guard;
pub mod idempotency;
pub(crate) mod limits;
pub mod params;
pub(crate) mod rejections;
mod status;

use axum::Json;
use axum::extract::{OriginalUri, RawPathParams, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, Credentials, authenticate};
use super::error::ApiError;
use super::path;
use super::state::AppState;
use crate::errors::{ImportError, codes};
use crate::queue::{self, DataType, ImportOptions, NewImport};
use crate::source::{accept_url, display_name_of_url};
use crate::users::User;
use crate::worker::runner::too_big;
use body::{BodyKind, ReceivedFile};
pub use enqueue::Created;
use enqueue::{Enqueued, Extra, enqueue};
use guard::{Budget, GuardedBody, MULTIPART_SLACK};
use idempotency::IdempotencyKey;
use params::ParamBag;
pub use params::check_callback;
pub use status::ImportStatus;

/// The caller's unfinished imports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportList {
    pub imports: Vec<Uuid>,
    pub success: bool,
}

/// Queue an import.
///
/// Send the file as the multipart field `file` (`curl -F file=@data.csv`), or as the raw body with a
/// `filename` parameter; or, in a JSON body, a `url` to download, a `connector` to read a MySQL/MariaDB
/// or PostgreSQL table or query (`{"connector": {"provider": "mysql", "connection": {...}, "table": "t"}}`),
/// or the `upload_id` of a finished resumable upload (`/api/v1/uploads`), which it consumes.
/// Options (`type_guessing`, `quoted_fields_guessing`, `content_guessing`, `create_vis`, `privacy`,
/// `collision_strategy`) are read from the query string, form fields or a JSON body. The answer comes once the bytes are safely stored and the job is queued; poll the status with the
/// returned id. Also served under `/user/{username}/api/v1/imports`.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    tag = "imports",
    params(
        ("api_key" = Option<String>, Query, description = "The user's master API key (or use HTTP Basic)"),
        ("filename" = Option<String>, Query, description = "Name of the file sent as the raw body"),
        ("upload_id" = Option<String>, Query, description = "A finished resumable upload of the caller's to import (also a form or JSON field); it starts one import"),
        ("type_guessing" = Option<bool>, Query, description = "Guess column types and lat/lon (default true)"),
        ("quoted_fields_guessing" = Option<bool>, Query, description = "Guess types of quoted values too (default true)"),
        ("content_guessing" = Option<bool>, Query, description = "Accepted and stored (default false)"),
        ("create_vis" = Option<bool>, Query, description = "Accepted and stored (default false)"),
        ("privacy" = Option<String>, Query, description = "public, private or link"),
        ("collision_strategy" = Option<String>, Query, description = "Absent: rename to name_1, name_2...; skip; overwrite"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key (and the same request) gets the first import's id; remembered for 24 hours"),
    ),
    request_body(content_type = "multipart/form-data", description = "The file, as the field `file`"),
    responses(
        (status = 200, description = "Queued", body = Created, headers(
            ("Location" = String, description = "The import's status resource"),
            ("Retry-After" = u32, description = "Seconds to wait before the first poll"),
        )),
        (status = 400, description = "Invalid parameter (a request with nothing to import is accepted as an import that failed with 1005, as the reference does)"),
        (status = 401, description = "Missing or wrong API key, or more than 64 KiB of body before the key"),
        (status = 403, description = "Sent from another site's page (Origin or Sec-Fetch-Site): refused"),
        (status = 408, description = "The body did not arrive within the upload deadline"),
        (status = 413, description = "Content-Length above the user's maximum file size; a part header over 16 KiB; more than 64 form fields or 1 MiB of form text"),
        (status = 429, description = "The user has as many unfinished imports, or as many bytes of uploads waiting, as allowed"),
        (status = 404, description = "The upload_id names no upload of the caller's"),
        (status = 409, description = "The upload_id names an upload not finished, or one that already started an import"),
        (status = 410, description = "The upload_id names an upload that expired"),
        (status = 422, description = "The Idempotency-Key was used for a different request"),
        (status = 507, description = "The server's disk is below its reserve: no uploads for now"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn create(State(state): State<AppState>, request: Request) -> Result<impl IntoResponse, ApiError> {
    // Where to poll, under the same prefix the request came by (`/user/{name}/...` included).
    let uri = request.extensions().get::<OriginalUri>().map_or(request.uri(), |o| &o.0);
    let collection = uri.path().trim_end_matches('/').to_string();
    let created = queue_import(&state, request).await?;
    let location = format!("{collection}/{}", created.item_queue_id);
    Ok(([(LOCATION, location), (RETRY_AFTER, POLL_AFTER_SECS.to_string())], Json(created)))
}

/// What clients are told to wait before their first poll (`Retry-After`); old clients ignore it.
const POLL_AFTER_SECS: u32 = 1;

/// What a create request carries, read within the limits of who sends it.
struct ImportRequest {
    user: User,
    bag: ParamBag,
    file: Option<ReceivedFile>,
    /// The `Idempotency-Key` header, if any.
    key: Option<String>,
}

/// Authenticates the request (the key may come in the query, a header, or the body) and reads its body:
/// parameters, and a file staged while it arrives. Nothing is written for a request without a key, and an
/// upload larger than the user's limit is refused as early as its size is known.
async fn read_import_request(state: &AppState, request: Request) -> Result<ImportRequest, ApiError> {
    let (mut parts, body) = request.into_parts();
    let key = idempotency::key_from(&parts.headers)?;
    let mut creds = Credentials::from_parts(&mut parts, state).await;
    // With a key outside the body we know the user (and their size limit) before reading a byte.
    let mut user = if creds.has_key() { Some(authenticate(state, &creds).await?) } else { None };
    let limit = user.as_ref().map_or(state.settings.user_defaults.max_file_size, |u| u.max_file_size).max(0) as u64;
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit + MULTIPART_SLACK) {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body is {} bytes; the most this account may upload is {limit} bytes",
            declared.unwrap_or_default()
        )));
    }
    let mut bag = ParamBag::from_query(parts.uri.query());
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let kind = body::body_kind(content_type);
    // An upload is refused before its body is read when the user or the disk has no room for it.
    if let (BodyKind::Multipart(_) | BodyKind::Raw, Some(known)) = (&kind, &user) {
        limits::check_before_upload(state, known).await?;
    }
    // A multipart body may carry the key, so until it does it may hold only a little; the other kinds
    // have their own caps (JSON and forms 1 MiB, a raw body needs the key first).
    let budget = match (&kind, &user) {
        (BodyKind::Multipart(_), None) => Budget::anonymous(),
        _ => Budget::known(limit),
    };
    let boundary = match &kind {
        BodyKind::Multipart(boundary) => Some(boundary.as_str()),
        _ => None,
    };
    let body =
        GuardedBody::new(body.into_data_stream(), budget.clone(), state.settings.runtime.upload_timeout(), boundary);
    let file = match kind {
        BodyKind::Multipart(boundary) => {
            body::read_multipart(body, boundary, state, &mut creds, &mut user, &budget, &mut bag).await?
        }
        BodyKind::Json => {
            bag.merge_json(&body::read_small(state, body).await?)?;
            None
        }
        BodyKind::Form => {
            bag.merge_form(&body::read_small(state, body).await?);
            None
        }
        // A raw body cannot carry the key: without one already, nothing is written.
        BodyKind::Raw => match (bag.text("filename").filter(|f| !f.is_empty()), &user) {
            (Some(name), Some(_)) => Some(body::read_raw(body, &name, state, limit).await?),
            (Some(_), None) => return Err(ApiError::Unauthorized),
            (None, _) => None,
        },
    };
    let user = match user {
        Some(u) => u,
        None => {
            creds.api_key = bag.text("api_key");
            authenticate(state, &creds).await?
        }
    };
    Ok(ImportRequest { user, bag, file, key })
}

async fn queue_import(state: &AppState, request: Request) -> Result<Created, ApiError> {
    let ImportRequest { user, bag, file, key } = read_import_request(state, request).await?;
    let options = bag.import_options()?;
    params::check_callback(&state.services.url_policy, &options)?;
    let key = key.map(|k| IdempotencyKey::new(k, &bag, file.as_ref().map(|f| (f.name.as_str(), f.upload.digest()))));
    let key = key.as_ref();
    // The reference's order: a URL first, then a connector, then the file.
    if let Some(raw) = bag.text("url").filter(|u| !u.trim().is_empty()) {
        return queue_url_import(state, &user, &raw, options, key).await;
    }
    if let Some(value) = bag.get("connector") {
        return connector::queue_import(state, &user, value, options, key).await;
    }
    if let Some(upload) = bag.text("upload_id").filter(|u| !u.trim().is_empty()) {
        return from_upload::queue_upload_import(state, &user, &upload, options, key).await;
    }
    let Some(file) = file else {
        return queue_nothing(state, &user, options, key).await;
    };
    queue_file_import(state, &user, file, options, key).await
}

/// A request with no file, URL or connector is accepted, as the reference accepts it (CARTO's SDK sends
/// one before the real request), as an import that has already failed: its status says what was missing,
/// and, ended, it never shows in the user's list of imports under way.
async fn queue_nothing(
    state: &AppState,
    user: &User,
    options: ImportOptions,
    key: Option<&IdempotencyKey>,
) -> Result<Created, ApiError> {
    let id = Uuid::new_v4();
    let job = NewImport {
        id,
        user_id: user.id,
        data_type: DataType::File,
        staged_path: None,
        display_name: String::new(),
        original_url: Some(String::new()),
        source_url: None,
        synchronization_id: None,
        options,
        staged_bytes: 0,
    };
    let error = ImportError::new(
        codes::EMPTY_FILE,
        "the request carried no file, URL or connector: send the file as the multipart field 'file' (or as the \
         body with a 'filename' parameter), or a 'url' or 'connector' in a JSON body",
    );
    enqueue(state, user, &job, key, Extra::Failed(&error)).await.map(|queued| queued.answer(id))
}

/// Queues an uploaded file: staged under the import's id, or recorded as failed at once when it is larger
/// than the user may import.
async fn queue_file_import(
    state: &AppState,
    user: &User,
    file: ReceivedFile,
    options: ImportOptions,
    key: Option<&IdempotencyKey>,
) -> Result<Created, ApiError> {
    let ReceivedFile { upload, name, over_limit } = file;
    // The file was staged under the id its job gets.
    let id = upload.job_id();
    let mut job = NewImport {
        id,
        user_id: user.id,
        data_type: DataType::File,
        staged_path: None,
        display_name: name.clone(),
        original_url: Some(String::new()),
        source_url: None,
        synchronization_id: None,
        options,
        staged_bytes: upload.len() as i64,
    };
    let size_limit = user.max_file_size.max(0) as u64;
    if over_limit || upload.len() > size_limit {
        // The import exists and has failed; its status says why, as for any other failure.
        let error = if over_limit {
            ImportError::new(
                codes::DATASET_TOO_BIG,
                format!("the upload went past {size_limit} bytes, the most your account may import at once"),
            )
        } else {
            too_big(upload.len(), user.max_file_size)
        };
        upload.abort().await;
        // Nothing of it is kept.
        job.staged_bytes = 0;
        return enqueue(state, user, &job, key, Extra::Failed(&error)).await.map(|queued| queued.answer(id));
    }
    // Invariant 1: the object is whole in the store before the job row that points at it is committed.
    let staged = upload.finish().await.map_err(body::store_error)?;
    job.staged_path = Some(staged);
    let queued = enqueue(state, user, &job, key, Extra::None).await;
    match &queued {
        Ok(Enqueued::New) => tracing::info!(import = %id, user = %user.username, file = %name, "import queued"),
        // An error, or a retry answered with its first import: this request's copy of the file is garbage.
        _ => state.services.staging.remove_job(id).await,
    }
    queued.map(|queued| queued.answer(id))
}

/// Queues the download of `raw` after checking it (400 when it is not a URL we may fetch).
async fn queue_url_import(
    state: &AppState,
    user: &User,
    raw: &str,
    options: ImportOptions,
    key: Option<&IdempotencyKey>,
) -> Result<Created, ApiError> {
    let url = accept_url(&state.services.url_policy, raw)
        .await
        .map_err(|reason| ApiError::bad_import(format!("cannot import from this URL: {reason}")))?;
    let id = Uuid::new_v4();
    let job = NewImport {
        id,
        user_id: user.id,
        data_type: DataType::Url,
        staged_path: None,
        display_name: display_name_of_url(&url),
        original_url: Some(crate::source::shown_url(raw)),
        source_url: Some(url.to_string()),
        synchronization_id: None,
        options,
        staged_bytes: 0,
    };
    let queued = enqueue(state, user, &job, key, Extra::None).await?;
    if let Enqueued::New = queued {
        tracing::info!(import = %id, user = %user.username, "URL import queued");
    }
    Ok(queued.answer(id))
}

/// An import's status.
///
/// Poll until `state` is `complete` or `failure`. Only the owner of an import can see it; any other id
/// answers 404. Also served under `/user/{username}/api/v1/imports/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}",
    tag = "imports",
    params(("id" = String, Path, description = "The item_queue_id returned at creation")),
    responses(
        (status = 200, description = "The import", body = ImportStatus),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "No such import for this user"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<Json<ImportStatus>, ApiError> {
    let id = path::id(&params, "import")?;
    let job = queue::find_for_user(&state.pool, user.id, id).await?.ok_or(ApiError::NotFound("import"))?;
    Ok(Json(ImportStatus::from(job)))
}

/// Cancel an import.
///
/// An import that has not ended fails at once with 6672 ("Import cancelled"); a worker that holds it is
/// notified, stops at once and publishes nothing. The answer is the import's status. An import that
/// has already ended answers 409. Not in the reference, which cannot cancel imports. Also served under
/// `/user/{username}/api/v1/imports/{id}/cancel`.
#[utoipa::path(
    post,
    path = "/api/v1/imports/{id}/cancel",
    tag = "imports",
    params(("id" = String, Path, description = "The item_queue_id returned at creation")),
    responses(
        (status = 200, description = "Cancelled; the import's status", body = ImportStatus),
        (status = 401, description = "Missing or wrong API key"),
        (status = 403, description = "Sent from another site's page (Origin or Sec-Fetch-Site): refused"),
        (status = 404, description = "No such import for this user"),
        (status = 409, description = "The import has already ended"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<Json<ImportStatus>, ApiError> {
    let id = path::id(&params, "import")?;
    match queue::cancel(&state.pool, id, user.id).await? {
        queue::Cancelled::NotFound => return Err(ApiError::NotFound("import")),
        queue::Cancelled::AlreadyEnded(s) => {
            return Err(ApiError::Conflict(format!(
                "the import has already ended ({}); there is nothing to cancel",
                s.as_str()
            )));
        }
        queue::Cancelled::Now => tracing::info!(import = %id, user = %user.username, "import cancelled"),
    }
    let job = queue::find_for_user(&state.pool, user.id, id).await?.ok_or(ApiError::NotFound("import"))?;
    Ok(Json(ImportStatus::from(job)))
}

/// The caller's unfinished imports of the last 24 hours, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/imports",
    tag = "imports",
    responses(
        (status = 200, description = "Ids of imports not yet complete or failed", body = ImportList),
        (status = 401, description = "Missing or wrong API key"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn list(State(state): State<AppState>, Caller(user): Caller) -> Result<Json<ImportList>, ApiError> {
    let imports = queue::list_unfinished(&state.pool, user.id).await?;
    Ok(Json(ImportList { imports, success: true }))
}
