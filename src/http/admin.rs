//! `/api/v1/admin/users…`: the operators' tools of `geoimport user …` over HTTP, for systems that provision
//! accounts without a shell on the server. Off (404) unless `GEOIMPORT_ADMIN_TOKEN` is set; then every
//! request must carry `Authorization: Bearer <token>` (compared in constant time). Served at the root only,
//! never under `/user/<name>/`, and a user's API key opens nothing here.

use axum::Json;
use axum::extract::{FromRequestParts, Query, RawPathParams, State};
use axum::http::request::Parts;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::error::ApiError;
use super::path;
use super::state::AppState;
use crate::admin::{self, Account, AdminError, Deleted};
use crate::users::keys::{self, IssuedKey};
use crate::users::manage::{Limit, LimitChanges};
use crate::users::{self, ExtraLimits, NewUser, UserError};

/// Proof that the request carries the admin token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Without a token the routes do not exist, as far as anyone can tell.
        let Some(token) = &state.settings.runtime.admin_token else { return Err(ApiError::NotFound("route")) };
        if super::bearer::carries_token(&parts.headers, token) { Ok(Operator) } else { Err(ApiError::AdminToken) }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NoUser(_) => ApiError::NotFound("user"),
            AdminError::Busy(..) => ApiError::Conflict(e.to_string()),
            AdminError::Invalid(message) => ApiError::Invalid(message),
            AdminError::Sql(e) => ApiError::Database(e),
        }
    }
}

fn name(params: &RawPathParams) -> Result<String, ApiError> {
    path::param(params, "name").map(str::to_string).ok_or(ApiError::NotFound("user"))
}

/// List users.
///
/// Every account with its limits, imports of the last 24 hours, unfinished imports, tables and bytes used.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    responses((status = 200, body = Vec<Account>), (status = 401, description = "Missing or wrong admin token"),
        (status = 404, description = "GEOIMPORT_ADMIN_TOKEN is not set")),
    security(("admin_token" = [])))]
pub async fn list(_: Operator, State(state): State<AppState>) -> Result<Json<Vec<Account>>, ApiError> {
    Ok(Json(admin::list(&state.pool).await?))
}

/// A new user: its name and the limits beyond the server's defaults.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAccount {
    pub username: String,
    pub max_rows_per_table: Option<i64>,
    pub table_quota: Option<i32>,
    pub quota_in_bytes: Option<i64>,
}

/// Create a user.
///
/// Answers with the master API key, shown this once.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = NewAccount,
    responses((status = 200, description = "{\"id\", \"username\", \"api_key\"}"),
        (status = 400, description = "Invalid or reserved username"), (status = 401), (status = 409, description = "The name is taken")),
    security(("admin_token" = [])))]
pub async fn create(
    _: Operator,
    State(state): State<AppState>,
    Json(body): Json<NewAccount>,
) -> Result<Json<NewUser>, ApiError> {
    let extra = ExtraLimits {
        max_rows_per_table: body.max_rows_per_table,
        table_quota: body.table_quota,
        quota_in_bytes: body.quota_in_bytes,
    };
    let limits = crate::services::user_limits(&state.settings.user_defaults, extra);
    match users::create_user(&state.pool, &body.username, &limits).await {
        Ok(created) => Ok(Json(created)),
        Err(UserError::Exists(name)) => Err(ApiError::Conflict(format!("a user named '{name}' already exists"))),
        Err(UserError::Sql(e)) => Err(ApiError::Database(e)),
        Err(e) => Err(ApiError::Invalid(e.to_string())),
    }
}

/// Show a user.
#[utoipa::path(get, path = "/api/v1/admin/users/{name}", tag = "admin",
    params(("name" = String, Path)), responses((status = 200, body = Account), (status = 401), (status = 404)),
    security(("admin_token" = [])))]
pub async fn show(
    _: Operator,
    State(state): State<AppState>,
    params: RawPathParams,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(admin::show(&state.pool, &name(&params)?).await?))
}

/// A present field that may be null (`Some(None)`), told apart from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn nullable<T>(v: Option<Option<T>>) -> Limit<T> {
    match v {
        None => Limit::Keep,
        Some(None) => Limit::Unlimited,
        Some(Some(v)) => Limit::Set(v),
    }
}

/// New limits: absent fields stay as they are; `null` lifts a limit that may be absent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LimitsPatch {
    pub max_file_size: Option<i64>,
    pub max_concurrent_imports: Option<i32>,
    #[serde(default, deserialize_with = "present")]
    pub max_rows_per_table: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub table_quota: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    pub quota_in_bytes: Option<Option<i64>>,
}

/// Change a user's limits.
#[utoipa::path(patch, path = "/api/v1/admin/users/{name}", tag = "admin", params(("name" = String, Path)),
    request_body = LimitsPatch, responses((status = 200, body = Account), (status = 400), (status = 401), (status = 404)),
    security(("admin_token" = [])))]
pub async fn update(
    _: Operator,
    State(state): State<AppState>,
    params: RawPathParams,
    Json(patch): Json<LimitsPatch>,
) -> Result<Json<Account>, ApiError> {
    let changes = LimitChanges {
        max_file_size: patch.max_file_size,
        max_concurrent_imports: patch.max_concurrent_imports,
        max_rows_per_table: nullable(patch.max_rows_per_table),
        table_quota: nullable(patch.table_quota),
        quota_in_bytes: nullable(patch.quota_in_bytes),
    };
    Ok(Json(admin::set_limits(&state.pool, &name(&params)?, changes).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeleteOptions {
    /// Drop the user's schema and tables too.
    #[serde(default)]
    pub drop_tables: bool,
    /// Cancel the user's unfinished imports first (otherwise they make it a 409).
    #[serde(default)]
    pub force: bool,
}

/// Delete a user.
///
/// Its imports, synchronizations, keys and staged files go; with `drop_tables`, its tables too.
#[utoipa::path(delete, path = "/api/v1/admin/users/{name}", tag = "admin",
    params(("name" = String, Path), DeleteOptions),
    responses((status = 200, body = Deleted), (status = 401), (status = 404), (status = 409, description = "Imports still run or wait (use force)")),
    security(("admin_token" = [])))]
pub async fn delete(
    _: Operator,
    State(state): State<AppState>,
    params: RawPathParams,
    Query(options): Query<DeleteOptions>,
) -> Result<Json<Deleted>, ApiError> {
    let staging = &state.services.staging;
    Ok(Json(admin::delete(&state.pool, staging, &name(&params)?, options.drop_tables, options.force).await?))
}

/// Rotate a user's master key.
///
/// The old key stops working at once; the new one is in the answer, this once.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/rotate-key", tag = "admin", params(("name" = String, Path)),
    responses((status = 200, body = IssuedKey), (status = 401), (status = 404)), security(("admin_token" = [])))]
pub async fn rotate_key(
    _: Operator,
    State(state): State<AppState>,
    params: RawPathParams,
) -> Result<Json<IssuedKey>, ApiError> {
    keys::rotate_master(&state.pool, &name(&params)?).await?.map(Json).ok_or(ApiError::NotFound("user"))
}

/// Disable a user.
///
/// Its keys get 401 from now on, its unfinished imports fail with 6673, its synchronizations pause.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/disable", tag = "admin", params(("name" = String, Path)),
    responses((status = 200, body = Account), (status = 401), (status = 404)), security(("admin_token" = [])))]
pub async fn disable(
    _: Operator,
    State(state): State<AppState>,
    params: RawPathParams,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(admin::disable(&state.pool, &name(&params)?).await?))
}

/// Enable a disabled user.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/enable", tag = "admin", params(("name" = String, Path)),
    responses((status = 200, body = Account), (status = 401), (status = 404)), security(("admin_token" = [])))]
pub async fn enable(
    _: Operator,
    State(state): State<AppState>,
    params: RawPathParams,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(admin::enable(&state.pool, &name(&params)?).await?))
}

/// A labelled key to add.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewKey {
    pub label: String,
    /// When the key stops working (RFC 3339); never when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Add a labelled key.
///
/// Usable exactly like the master key until it expires; shown in the answer, this once.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/keys", tag = "admin", params(("name" = String, Path)),
    request_body = NewKey, responses((status = 200, body = IssuedKey), (status = 400), (status = 401), (status = 404)),
    security(("admin_token" = [])))]
pub async fn add_key(
    _: Operator,
    State(state): State<AppState>,
    params: RawPathParams,
    Json(body): Json<NewKey>,
) -> Result<Json<IssuedKey>, ApiError> {
    let issued = keys::add_key(&state.pool, &name(&params)?, &body.label, body.expires_at).await;
    Ok(Json(issued.map_err(AdminError::from)?))
}

/// Revoke a labelled key.
#[utoipa::path(delete, path = "/api/v1/admin/users/{name}/keys/{label}", tag = "admin",
    params(("name" = String, Path), ("label" = String, Path)),
    responses((status = 200), (status = 401), (status = 404, description = "No such user or key")),
    security(("admin_token" = [])))]
pub async fn revoke_key(
    _: Operator,
    State(state): State<AppState>,
    params: RawPathParams,
) -> Result<Json<Value>, ApiError> {
    let (user, label) = (name(&params)?, path::param(&params, "label").unwrap_or_default().to_string());
    if !keys::revoke_key(&state.pool, &user, &label).await? {
        return Err(ApiError::NotFound("key"));
    }
    Ok(Json(serde_json::json!({ "username": user, "label": label, "revoked": true })))
}
