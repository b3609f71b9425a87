//! Authentication. A request names its master API key in the `api_key` query parameter, a form or JSON
//! field of the body, or HTTP Basic `username:api_key`; under `/user/<name>/` (or `/u/<name>/`) the key
//! must belong to that user. Handlers that need a user take a [`Caller`], so none can forget the check.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use base64::Engine;

use super::error::ApiError;
use super::state::AppState;
use crate::users::{self, User};

/// The authenticated user of a request.
pub struct Caller(pub User);

/// What a request says about who it is, before the body is read.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    pub api_key: Option<String>,
    /// From HTTP Basic.
    pub basic_user: Option<String>,
    /// From a `/user/<name>/` prefix.
    pub path_user: Option<String>,
}

impl Credentials {
    pub async fn from_parts(parts: &mut Parts, state: &AppState) -> Credentials {
        let mut creds = Credentials { api_key: query_param(parts.uri.query(), "api_key"), ..Default::default() };
        if let Some((user, key)) = basic_auth(parts) {
            creds.basic_user = Some(user).filter(|u| !u.is_empty());
            creds.api_key = creds.api_key.or(Some(key));
        }
        if let Ok(params) = RawPathParams::from_request_parts(parts, state).await {
            creds.path_user = super::path::param(&params, "username").map(str::to_string);
        }
        creds
    }

    pub fn has_key(&self) -> bool {
        self.api_key.as_deref().is_some_and(|k| !k.is_empty())
    }
}

/// The user the credentials prove, or 401.
pub async fn authenticate(state: &AppState, creds: &Credentials) -> Result<User, ApiError> {
    let key = creds.api_key.as_deref().filter(|k| !k.is_empty()).ok_or(ApiError::Unauthorized)?;
    if let (Some(a), Some(b)) = (&creds.basic_user, &creds.path_user)
        && a != b
    {
        return Err(ApiError::Unauthorized);
    }
    let named = creds.basic_user.as_deref().or(creds.path_user.as_deref());
    match users::authenticate(&state.pool, key, named).await? {
        users::KeyCheck::User(user) => Ok(user),
        users::KeyCheck::Disabled(name) => Err(ApiError::AccountDisabled(name)),
        users::KeyCheck::Unknown => Err(ApiError::Unauthorized),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let creds = Credentials::from_parts(parts, state).await;
        Ok(Caller(authenticate(state, &creds).await?))
    }
}

/// The first value of a query parameter.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn basic_auth(parts: &Parts) -> Option<(String, String)> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, key) = text.split_once(':')?;
    Some((user.to_string(), key.to_string()))
}
