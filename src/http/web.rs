//! The web page at `/` and its files under `/assets/`, embedded in the binary at build time (build.rs
//! lists web/dist, which `scripts/build-web` makes with npm): no Node.js and no files at run time. These
//! routes are not in the OpenAPI document, which describes the API; they serve a page that calls it.
//!
//! Asset names carry a hash of their bytes, so a browser may keep them for a year; `index.html` names the
//! current ones and is asked for every time. The page is a client of the API like any other: it sends the
//! key as HTTP Basic on each request, never as a cookie, so the cross-site refusal (origin.rs) protects it
//! as it protects every client, and the Content-Security-Policy keeps it from loading anything but its own
//! files or being framed by another site's page.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::ApiError;
use super::state::AppState;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Only this server's files; MapLibre draws its canvas from blob: and data: images and sets inline styles
/// on the elements it places; no other site may frame the page (its buttons change things).
const POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
                      worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                      form-action 'none'";

/// `/` and `/assets/<file>`, served at the root only (not under `/user/<name>/`).
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page)).route("/assets/{file}", get(asset))
}

fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS.iter().find(|(p, _, _)| *p == path).map(|(_, kind, bytes)| (*kind, *bytes))
}

async fn page() -> Response {
    let Some((kind, bytes)) = find("index.html") else {
        return ApiError::NotFound("page").into_response();
    };
    let headers = [
        (CONTENT_TYPE, kind),
        (CACHE_CONTROL, "no-cache"),
        (CONTENT_SECURITY_POLICY, POLICY),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (StatusCode::OK, headers, bytes).into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match find(&format!("assets/{file}")) {
        Some((kind, bytes)) => {
            let headers = [
                (CONTENT_TYPE, kind),
                (CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ];
            (StatusCode::OK, headers, bytes).into_response()
        }
        None => ApiError::NotFound("asset").into_response(),
    }
}
