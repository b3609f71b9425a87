//! `/api/v1/connectors`: the reference's connector discovery routes (its §1.7). Which providers exist,
//! what each takes, whether a connection works, and which tables it can read. Connection parameters come
//! as flat query parameters (`?server=...&username=...`), as in the reference.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::path;
use super::state::AppState;
use crate::connector::connect;
use crate::connector::discover::{self, TableRef};
use crate::connector::params::{self, Connection, OPTIONAL_PARAMETERS, PROVIDERS, Provider};

/// A provider in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderSummary {
    pub name: String,
    pub description: String,
    pub enabled: bool,
}

/// What a provider can do and which parameters it takes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderDetails {
    /// `sql_queries`, `list_tables`... each true or false.
    #[schema(value_type = Object)]
    pub features: Value,
    /// Every parameter, with whether it is required; `connection` holds the connection's own.
    #[schema(value_type = Object)]
    pub parameters: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Connected {
    pub connected: bool,
}

fn provider_param(params: &RawPathParams) -> Result<Provider, ApiError> {
    params::parse_provider(path::param(params, "provider").unwrap_or_default())
        .map_err(|e| ApiError::Unprocessable(e.0))
}

/// The connection named by the query string; parameters that are not connection parameters (the API
/// key among them) are left aside.
fn connection_from_query(provider: Provider, request: &Request) -> Result<Connection, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or("")).unwrap_or_default();
    let (required, optional) = provider.connection_parameters();
    let map: Map<String, Value> = pairs
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            required.contains(&k.as_str()) || optional.contains(&k.as_str())
        })
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    params::parse_connection(provider, &map).map_err(|e| e.0)
}

/// The database connectors this server offers.
#[utoipa::path(
    get,
    path = "/api/v1/connectors",
    tag = "connectors",
    responses(
        (status = 200, description = "Providers by id", body = BTreeMap<String, ProviderSummary>),
        (status = 401, description = "Missing or wrong API key"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn list(_caller: Caller) -> Json<BTreeMap<String, ProviderSummary>> {
    Json(
        PROVIDERS
            .iter()
            .map(|p| {
                (
                    p.id().to_string(),
                    ProviderSummary { name: p.name().into(), description: p.description().into(), enabled: true },
                )
            })
            .collect(),
    )
}

/// A provider's features and parameters.
#[utoipa::path(
    get,
    path = "/api/v1/connectors/{provider}",
    tag = "connectors",
    params(("provider" = String, Path, description = "mysql or postgres")),
    responses(
        (status = 200, description = "Features and parameters", body = ProviderDetails),
        (status = 401, description = "Missing or wrong API key"),
        (status = 422, description = "No such provider"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn show(_caller: Caller, params: RawPathParams) -> Result<Json<ProviderDetails>, ApiError> {
    let provider = provider_param(&params)?;
    let (required, optional) = provider.connection_parameters();
    let mut connection = Map::new();
    for p in required {
        connection.insert(p.to_string(), json!({"required": true}));
    }
    for p in optional {
        connection.insert(p.to_string(), json!({"required": false}));
    }
    let mut parameters = Map::new();
    parameters.insert("connection".into(), Value::Object(connection));
    for p in OPTIONAL_PARAMETERS {
        parameters.insert(p.to_string(), json!({"required": false}));
    }
    Ok(Json(ProviderDetails {
        features: json!({"sql_queries": true, "list_databases": false, "list_tables": true,
                         "preview_table": false, "dry_run": false, "list_projects": false}),
        parameters: Value::Object(parameters),
    }))
}

/// The tables a connection can read (at most 500).
///
/// Connection parameters as query parameters: `server`, `port`, `database`, `username`, `password`, and
/// `sslmode` for PostgreSQL.
#[utoipa::path(
    get,
    path = "/api/v1/connectors/{provider}/tables",
    tag = "connectors",
    params(("provider" = String, Path, description = "mysql or postgres")),
    responses(
        (status = 200, description = "Tables and views", body = Vec<TableRef>),
        (status = 400, description = "The connection failed; `errors` says why"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 422, description = "No such provider, or invalid connection parameters"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn tables(
    State(state): State<AppState>,
    _caller: Caller,
    params: RawPathParams,
    request: Request,
) -> Result<Json<Vec<TableRef>>, ApiError> {
    let provider = provider_param(&params)?;
    let connection = connection_from_query(provider, &request).map_err(ApiError::Unprocessable)?;
    let timeout = state.settings.runtime.connect_timeout();
    discover::tables(provider, &state.services.connectors.policy, &connection, timeout)
        .await
        .map(Json)
        .map_err(|e| ApiError::Invalid(format!("could not list the tables of {}: {}", provider.name(), e.message)))
}

/// Whether a connection works: `{"connected": true}`, or 422 with `connected` false and the reason.
#[utoipa::path(
    get,
    path = "/api/v1/connectors/{provider}/connect",
    tag = "connectors",
    params(("provider" = String, Path, description = "mysql or postgres")),
    responses(
        (status = 200, description = "Connected", body = Connected),
        (status = 401, description = "Missing or wrong API key"),
        (status = 422, description = "Not connected: invalid parameters, or the connection failed"),
    ),
    security(("api_key" = []), ("basic" = []))
)]
pub async fn connect(
    State(state): State<AppState>,
    _caller: Caller,
    params: RawPathParams,
    request: Request,
) -> Result<Response, ApiError> {
    let provider = provider_param(&params)?;
    let not_connected = |message: String| {
        (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"connected": false, "errors": message}))).into_response()
    };
    let connection = match connection_from_query(provider, &request) {
        Ok(c) => c,
        Err(message) => return Ok(not_connected(message)),
    };
    let timeout = state.settings.runtime.connect_timeout();
    Ok(match connect::check(provider, &state.services.connectors.policy, &connection, timeout).await {
        Ok(()) => Json(Connected { connected: true }).into_response(),
        Err(e) => not_connected(e.message),
    })
}
