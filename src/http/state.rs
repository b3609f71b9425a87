//! What every handler can reach: the pool, the settings and the services built from them, and the few
//! things the server shares across requests.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sqlx::PgPool;

use super::small_body;
use crate::config::Settings;
use crate::services::Services;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    /// The staging area, the address policies checked when an import is requested, the sealer.
    pub services: Arc<Services>,
    /// Set when the server starts shutting down: readiness then fails so balancers stop sending traffic.
    pub draining: Arc<AtomicBool>,
    /// The last `/metrics` answer and when it was made (scrapes within a few seconds share it).
    pub metrics_cache: Arc<tokio::sync::Mutex<Option<(std::time::Instant, String)>>>,
    /// Bounds the bodies read whole (JSON and form parameters), for the whole process.
    pub small_bodies: small_body::SmallBodies,
}
