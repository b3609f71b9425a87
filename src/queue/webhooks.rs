//! Webhook deliveries: queued by a trigger when an import with a `callback_url` ends (migration 0014),
//! claimed by workers under a short lease so that two never send the same one at once, and marked
//! delivered, or due again later, or given up.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

/// A delivery to make: the import whose final status goes, where, and how many attempts came before.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub import_id: Uuid,
    pub url: String,
    pub attempts: i32,
}

/// Takes up to `limit` due deliveries for `lease` (a process that dies while sending leaves them due again
/// once it lapses: a delivery may arrive twice, never not at all).
pub async fn claim_deliveries(pool: &PgPool, lease: Duration, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE geoimport.webhook_deliveries SET next_at = now() + make_interval(secs => $1) \
         WHERE import_id IN (SELECT import_id FROM geoimport.webhook_deliveries \
                             WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_at <= now() \
                             ORDER BY next_at FOR UPDATE SKIP LOCKED LIMIT $2) \
         RETURNING import_id, url, attempts",
    )
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn delivered(pool: &PgPool, import_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE geoimport.webhook_deliveries SET delivered_at = now(), attempts = attempts + 1, last_error = NULL \
         WHERE import_id = $1",
    )
    .bind(import_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// An attempt failed with `error`: due again in `retry_in`, or given up when None.
pub async fn delivery_failed(
    pool: &PgPool,
    import_id: Uuid,
    error: &str,
    retry_in: Option<Duration>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE geoimport.webhook_deliveries SET attempts = attempts + 1, last_error = left($2, 500), \
           next_at = now() + make_interval(secs => coalesce($3, 0)), \
           gave_up_at = CASE WHEN $3 IS NULL THEN now() END \
         WHERE import_id = $1",
    )
    .bind(import_id)
    .bind(error)
    .bind(retry_in.map(|d| d.as_secs_f64()))
    .execute(pool)
    .await?;
    Ok(())
}

/// Import `id`, whoever owns it (for its delivery).
pub async fn find_import(pool: &PgPool, id: Uuid) -> Result<Option<super::ImportJob>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.imports WHERE id = $1").bind(id).fetch_optional(pool).await
}
