//! `/metrics`: the queue as Prometheus sees it. Workers may run in other processes, so every figure is
//! read from the database at scrape time rather than counted in this process: any API node gives the
//! whole picture. No label names a user or an import (Prometheus' advice on cardinality).
//!
//! The figures cover every user, so the route is served only at the root (not under `/user/<name>/`),
//! can ask for a bearer token (`GEOIMPORT_METRICS_TOKEN`), and answers scrapes that come within
//! [`FRESH_FOR`] of each other from one query, so that nobody can load the database by scraping.

use std::sync::atomic::AtomicU64;

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::state::AppState;
use crate::queue::ImportState;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// How long one reading of the database answers scrapes.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// Synchronization states, each always present.
const SYNC_STATES: [&str; 5] = ["created", "queued", "syncing", "success", "failure"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// Prometheus metrics of the queue and the synchronizations.
///
/// `geoimport_imports{state}`, `geoimport_oldest_pending_import_age_seconds`,
/// `geoimport_imported_rows`, `geoimport_synchronizations{state}`, in the OpenMetrics text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
        (status = 401, description = "GEOIMPORT_METRICS_TOKEN is set and the request does not carry it"),
        (status = 503, description = "The database did not answer"),
    )
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.runtime.metrics_token
        && !super::bearer::carries_token(&headers, token)
    {
        return (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, "Bearer")], "a metrics token is required\n")
            .into_response();
    }
    let mut cache = state.metrics_cache.lock().await;
    if let Some((_, text)) = cache.as_ref().filter(|(at, _)| at.elapsed() < FRESH_FOR) {
        return (StatusCode::OK, [(CONTENT_TYPE, OPENMETRICS)], text.clone()).into_response();
    }
    match render(&state).await {
        Ok(text) => {
            *cache = Some((Instant::now(), text.clone()));
            (StatusCode::OK, [(CONTENT_TYPE, OPENMETRICS)], text).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the database did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, [(CONTENT_TYPE, "text/plain")], "database unavailable\n").into_response()
        }
    }
}

async fn render(state: &AppState) -> Result<String, sqlx::Error> {
    let by_state = crate::queue::counts_by_state(&state.pool).await?;
    let (oldest, rows) = crate::queue::backlog_and_rows(&state.pool).await?;
    let syncs = crate::queue::sync_counts_by_state(&state.pool).await?;

    let mut registry = Registry::with_prefix("geoimport");
    let imports = Family::<StateLabel, Gauge>::default();
    registry.register("imports", "Imports by state, finished ones included", imports.clone());
    // Every state appears, at 0 when empty: a series that vanishes breaks rate() and alerts.
    for state in ImportState::ALL {
        imports.get_or_create(&StateLabel { state: state.as_str().to_string() }).set(0);
    }
    for (state, n) in by_state {
        imports.get_or_create(&StateLabel { state }).set(n);
    }
    let age = Gauge::<f64, AtomicU64>::default();
    registry.register(
        "oldest_pending_import_age_seconds",
        "How long the oldest import that could run has waited for a worker (0 when none waits)",
        age.clone(),
    );
    age.set(oldest.max(0.0));
    let imported = Gauge::<i64>::default();
    registry.register("imported_rows", "Rows loaded by the imports that completed", imported.clone());
    imported.set(rows);
    let synchronizations = Family::<StateLabel, Gauge>::default();
    registry.register("synchronizations", "Sync tables by state", synchronizations.clone());
    for state in SYNC_STATES {
        synchronizations.get_or_create(&StateLabel { state: state.to_string() }).set(0);
    }
    for (state, n) in syncs {
        synchronizations.get_or_create(&StateLabel { state }).set(n);
    }
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    Ok(text)
}
