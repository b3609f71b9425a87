//! Running the API and the workers together, and stopping them in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::http::connections::{self, ConnectionLimits};
use crate::http::{self, AppState};
use crate::services::Services;
use crate::worker;

/// Serves the API on `listener` and runs the workers until `shutdown` fires. Then readiness fails, the
/// listener stops accepting, in-flight requests finish, and the workers drain (see [`worker::run_pool`]).
pub async fn serve(
    listener: TcpListener,
    pool: PgPool,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let draining = Arc::new(AtomicBool::new(false));
    // Built now, so that a bad key stops the server at start rather than failing imports later.
    let services = Services::build(&settings, &pool).await.map_err(std::io::Error::other)?;
    let state = AppState {
        pool: pool.clone(),
        settings: settings.clone(),
        services: services.clone(),
        draining: draining.clone(),
        metrics_cache: Default::default(),
        small_bodies: Default::default(),
    };
    let limits = ConnectionLimits {
        header_timeout: settings.runtime.header_timeout(),
        max_connections: settings.runtime.max_connections,
    };
    let backoff = settings.runtime.webhook_backoff();
    let webhooks = tokio::spawn(http::webhooks::deliver(pool.clone(), services.clone(), backoff, shutdown.clone()));
    let workers = tokio::spawn(worker::run_pool(pool, settings, services, shutdown.clone()));
    let stop_http = shutdown.clone();
    connections::serve(listener, http::app(state), limits, async move {
        stop_http.cancelled().await;
        draining.store(true, Ordering::Relaxed);
    })
    .await;
    shutdown.cancel();
    if let Err(e) = workers.await {
        tracing::error!(error = %e, "the worker pool stopped abnormally");
    }
    let _ = webhooks.await;
    Ok(())
}

/// Runs only the workers, until `shutdown` fires and they drain.
pub async fn work(pool: PgPool, settings: Arc<Settings>, shutdown: CancellationToken) -> std::io::Result<()> {
    let services = Services::build(&settings, &pool).await.map_err(std::io::Error::other)?;
    let backoff = settings.runtime.webhook_backoff();
    let webhooks = tokio::spawn(http::webhooks::deliver(pool.clone(), services.clone(), backoff, shutdown.clone()));
    worker::run_pool(pool, settings, services, shutdown).await;
    let _ = webhooks.await;
    Ok(())
}
