//! `/api/v1/synchronizations`: the reference's Sync Tables API. A synchronization re-imports a URL every
//! `interval` seconds (at least 900) and replaces its table in place.

use axum::Json;
use axum::extract::{RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, Credentials, authenticate};
use super::error::ApiError;
use super::imports::params::ParamBag;
use super::path;
use super::state::AppState;
use crate::queue::{self, SyncPatch, Synchronization};
use crate::source::accept_url;
use crate::sync::{self, DEFAULT_INTERVAL_SECS, MIN_INTERVAL_SECS, NewSync};
use crate::users::User;

/// A synchronization, with the reference's fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncJson {
    pub id: Uuid,
    /// The table name asked for at creation.
    pub name: Option<String>,
    /// Seconds between runs.
    pub interval: i32,
    /// The file's URL; null for a connector synchronization.
    pub url: Option<String>,
    /// created, queued, syncing, success or failure.
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    /// When the next run is due.
    pub run_at: String,
    pub retried_times: i32,
    /// The last import this synchronization made.
    pub log_id: Option<Uuid>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub ran_at: Option<String>,
    /// The source's Last-Modified at the last successful run.
    pub modified_at: Option<String>,
    pub etag: Option<String>,
    pub checksum: String,
    pub user_id: Uuid,
    /// "connector" for a connector synchronization.
    pub service_name: Option<String>,
    /// The URL; for a connector, its parameters as JSON text (never its connection).
    pub service_item_id: Option<String>,
    pub type_guessing: bool,
    pub quoted_fields_guessing: bool,
    pub content_guessing: bool,
    pub visualization_id: Option<Uuid>,
    pub from_external_source: bool,
    /// Extension: the tables this synchronization maintains.
    pub table_names: Vec<String>,
}

/// The reference's timestamp shape: `2014-08-05T13:39:15+00:00`.
fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl From<Synchronization> for SyncJson {
    fn from(s: Synchronization) -> Self {
        // The reference: service_name "connector" and the connector's parameters as service_item_id.
        let (service_name, service_item_id, url) = match &s.connector {
            Some(spec) => (Some("connector".to_string()), Some(spec.to_string()), None),
            None => (None, Some(crate::source::shown_url(&s.url)), Some(crate::source::shown_url(&s.url))),
        };
        SyncJson {
            id: s.id,
            name: s.name,
            interval: s.interval_secs,
            service_item_id,
            url,
            state: s.state.as_str().to_string(),
            created_at: timestamp(s.created_at),
            updated_at: timestamp(s.updated_at),
            run_at: timestamp(s.run_at),
            retried_times: s.retried_times,
            log_id: s.log_id,
            error_code: s.error_code,
            error_message: s.error_message,
            ran_at: s.ran_at.map(timestamp),
            modified_at: s.modified_at.map(timestamp),
            checksum: s.etag.clone().unwrap_or_default(),
            etag: s.etag,
            user_id: s.user_id,
            service_name,
            type_guessing: s.type_guessing,
            quoted_fields_guessing: s.quoted_fields_guessing,
            content_guessing: s.content_guessing,
            visualization_id: None,
            from_external_source: false,
            table_names: s.table_names,
        }
    }
}

/// Where the first import of a new synchronization can be followed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataImportRef {
    pub endpoint: String,
    pub item_queue_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSync {
    pub data_import: DataImportRef,
    #[serde(flatten)]
    pub synchronization: SyncJson,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncList {
    pub synchronizations: Vec<SyncJson>,
    pub total_entries: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncNowAnswer {
    pub enqueued: bool,
    pub synchronization_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncState {
    pub state: String,
}

/// Reads a JSON (or form) body into parameters, after those of the query string.
/// The caller and the request's parameters. The API key may also be a field of the body, as on
/// `POST /api/v1/imports`.
async fn caller_and_params(state: &AppState, request: Request) -> Result<(User, ParamBag), ApiError> {
    let (mut parts, body) = request.into_parts();
    let mut creds = Credentials::from_parts(&mut parts, state).await;
    let bag = read_params(state, &parts, body).await?;
    if !creds.has_key() {
        creds.api_key = bag.text("api_key");
    }
    Ok((authenticate(state, &creds).await?, bag))
}

async fn read_params(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
) -> Result<ParamBag, ApiError> {
    let mut bag = ParamBag::from_query(parts.uri.query());
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let bytes = state.small_bodies.read(body.into_data_stream()).await?;
    if is_form {
        bag.merge_form(&bytes);
    } else {
        bag.merge_json(&bytes).map_err(|_| ApiError::Invalid("the body must be a JSON object".into()))?;
    }
    Ok(bag)
}

/// The interval parameter: seconds, at least 900.
fn interval(bag: &ParamBag) -> Result<Option<i32>, ApiError> {
    let Some(value) = bag.get("interval") else { return Ok(None) };
    let seconds = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match seconds {
        Some(s) if s >= i64::from(MIN_INTERVAL_SECS) && s <= i64::from(i32::MAX) => Ok(Some(s as i32)),
        _ => Err(ApiError::Invalid(format!(
            "Invalid interval: a synchronization must run at most every {MIN_INTERVAL_SECS} seconds (15 minutes)"
        ))),
    }
}

/// Create a synchronization and queue its first import.
///
/// Body (JSON): `url` or `connector` (a database connector, as for imports), `interval` (seconds, default 3600, at least 900), `type_guessing`,
/// `quoted_fields_guessing`, `content_guessing`, `create_vis`, `table_name`.
#[utoipa::path(
    post,
    path = "/api/v1/synchronizations",
    tag = "synchronizations",
    responses(
        (status = 200, description = "Created; the first import is queued", body = CreatedSync),
        (status = 400, description = "Invalid URL or interval"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 403, description = "Sent from another site's page (Origin or Sec-Fetch-Site): refused"),
        (status = 429, description = "The user has as many unfinished imports as allowed"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn create(State(state): State<AppState>, request: Request) -> Result<Json<CreatedSync>, ApiError> {
    let (user, bag) = caller_and_params(&state, request).await?;
    // The first run is an import now: it counts toward the user's unfinished imports.
    super::imports::limits::check_before_import(&state, &user).await?;
    let interval_secs = interval(&bag)?.unwrap_or(DEFAULT_INTERVAL_SECS);
    let options = bag.import_options()?;
    super::imports::check_callback(&state.services.url_policy, &options)?;
    let name = bag.text("table_name").filter(|n| !n.trim().is_empty());
    if let Some(value) = bag.get("connector") {
        let id = Uuid::now_v7();
        let binding = crate::connector::seal::Binding { user: user.id, owner: id };
        let (_, stored) = super::imports::connector::accept(&state, value, binding).await.map_err(ApiError::Invalid)?;
        let new =
            NewSync { id, user_id: user.id, name, interval_secs, url: String::new(), options, connector: Some(stored) };
        return created(&state, new).await;
    }
    let raw = bag
        .text("url")
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ApiError::Invalid("a url (or a connector) is required".into()))?;
    let url = accept_url(&state.services.url_policy, &raw)
        .await
        .map_err(|reason| ApiError::Invalid(format!("Invalid URL, cannot synchronize it: {reason}")))?;
    let new = NewSync {
        id: Uuid::now_v7(),
        user_id: user.id,
        name,
        interval_secs,
        url: url.to_string(),
        options,
        connector: None,
    };
    created(&state, new).await
}

/// Stores a new synchronization, queues its first run, and answers with both.
async fn created(state: &AppState, new: NewSync) -> Result<Json<CreatedSync>, ApiError> {
    let (sync, import_id) = sync::create(&state.pool, new).await?;
    tracing::info!(synchronization = %sync.id, import = %import_id, "synchronization created");
    Ok(Json(CreatedSync {
        data_import: DataImportRef { endpoint: "/api/v1/imports".into(), item_queue_id: import_id },
        synchronization: sync.into(),
    }))
}

/// The caller's synchronizations.
#[utoipa::path(
    get,
    path = "/api/v1/synchronizations",
    tag = "synchronizations",
    responses((status = 200, body = SyncList), (status = 401, description = "Missing or wrong API key")),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn list(State(state): State<AppState>, Caller(user): Caller) -> Result<Json<SyncList>, ApiError> {
    let synchronizations: Vec<SyncJson> =
        queue::list_syncs(&state.pool, user.id).await?.into_iter().map(Into::into).collect();
    Ok(Json(SyncList { total_entries: synchronizations.len(), synchronizations }))
}

/// One synchronization. Another user's answers 404.
#[utoipa::path(
    get,
    path = "/api/v1/synchronizations/{id}",
    tag = "synchronizations",
    params(("id" = String, Path)),
    responses((status = 200, body = SyncJson), (status = 404, description = "No such synchronization for this user")),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<Json<SyncJson>, ApiError> {
    let id = path::id(&params, "synchronization")?;
    let sync = queue::find_sync(&state.pool, user.id, id).await?.ok_or(ApiError::NotFound("synchronization"))?;
    Ok(Json(sync.into()))
}

/// Change a synchronization: `interval`, `table_name` (or `name`), and the guessing options.
#[utoipa::path(
    put,
    path = "/api/v1/synchronizations/{id}",
    tag = "synchronizations",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = SyncJson),
        (status = 400, description = "Invalid interval"),
        (status = 403, description = "Sent from another site's page (Origin or Sec-Fetch-Site): refused"),
        (status = 404)
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    params: RawPathParams,
    request: Request,
) -> Result<Json<SyncJson>, ApiError> {
    let id = path::id(&params, "synchronization")?;
    let (user, bag) = caller_and_params(&state, request).await?;
    let flag = |k: &str| bag.text(k).map(|v| v == "true");
    let patch = SyncPatch {
        interval_secs: interval(&bag)?,
        name: bag.text("table_name").or_else(|| bag.text("name")).filter(|n| !n.trim().is_empty()),
        type_guessing: flag("type_guessing"),
        quoted_fields_guessing: flag("quoted_fields_guessing"),
        content_guessing: flag("content_guessing"),
    };
    let sync =
        queue::update_sync(&state.pool, user.id, id, &patch).await?.ok_or(ApiError::NotFound("synchronization"))?;
    Ok(Json(sync.into()))
}

/// Delete a synchronization. Its table stays, as an ordinary table.
#[utoipa::path(
    delete,
    path = "/api/v1/synchronizations/{id}",
    tag = "synchronizations",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Sent from another site's page (Origin or Sec-Fetch-Site): refused"),
        (status = 404)
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<StatusCode, ApiError> {
    let id = path::id(&params, "synchronization")?;
    if queue::delete_sync(&state.pool, user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("synchronization"))
    }
}

/// Run a synchronization now. Allowed when it is idle and its last run was at least 15 minutes ago;
/// otherwise `enqueued` is false.
#[utoipa::path(
    put,
    path = "/api/v1/synchronizations/{id}/sync_now",
    tag = "synchronizations",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = SyncNowAnswer),
        (status = 403, description = "Sent from another site's page (Origin or Sec-Fetch-Site): refused"),
        (status = 404),
        (status = 429, description = "The user has as many unfinished imports as allowed")
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn sync_now(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<Json<SyncNowAnswer>, ApiError> {
    let id = path::id(&params, "synchronization")?;
    super::imports::limits::check_before_import(&state, &user).await?;
    let enqueued = sync::sync_now(&state.pool, user.id, id).await?.ok_or(ApiError::NotFound("synchronization"))?;
    Ok(Json(SyncNowAnswer { enqueued, synchronization_id: id }))
}

/// A synchronization's state (whether a run is under way).
#[utoipa::path(
    get,
    path = "/api/v1/synchronizations/{id}/sync_now",
    tag = "synchronizations",
    params(("id" = String, Path)),
    responses((status = 200, body = SyncState), (status = 404)),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn sync_state(
    State(state): State<AppState>,
    Caller(user): Caller,
    params: RawPathParams,
) -> Result<Json<SyncState>, ApiError> {
    let id = path::id(&params, "synchronization")?;
    let sync = queue::find_sync(&state.pool, user.id, id).await?.ok_or(ApiError::NotFound("synchronization"))?;
    Ok(Json(SyncState { state: sync.state.as_str().to_string() }))
}
