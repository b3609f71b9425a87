//! Probes. Liveness never touches the database (a database outage must not make an orchestrator restart
//! every API process); readiness does, and fails while the server drains.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/livez", tag = "health", responses((status = 200, body = Health)))]
pub async fn livez() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The process can serve: its database answers and it is not shutting down. Also at `/healthz`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health))
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    if state.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "draining" }));
    }
    let check = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool),
    )
    .await;
    match check {
        Ok(Ok(_)) => (StatusCode::OK, Json(Health { status: "ok" })),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "database unavailable" })),
    }
}
