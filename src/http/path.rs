//! Path parameters, read the same way by every route (`RawPathParams` keeps the nested `/user/{username}`
//! prefix's parameter alongside the route's own).

use axum::extract::RawPathParams;
use uuid::Uuid;

use super::error::ApiError;

/// The value of the path parameter `name`.
pub fn param<'a>(params: &'a RawPathParams, name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The `{id}` of a route: anything that is not a UUID names nothing, so it is the 404 of `what`.
pub fn id(params: &RawPathParams, what: &'static str) -> Result<Uuid, ApiError> {
    param(params, "id").and_then(|v| Uuid::try_parse(v).ok()).ok_or(ApiError::NotFound(what))
}
