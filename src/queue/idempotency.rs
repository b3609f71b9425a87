//! The `Idempotency-Key`s of `POST /api/v1/imports`, one row per user and key, recorded in the transaction
//! that commits the import (the HTTP side, in `http::imports::idempotency`, parses and fingerprints them).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// How long a key is remembered; the janitor forgets older ones.
pub const IDEMPOTENCY_KEY_LIFETIME: &str = "24 hours";

/// Records `key` for `import_id`, after forgetting an expired record of it. Returns None when it is
/// recorded, or the fingerprint and import of the request that recorded it first (a racing request with
/// the same key waits here for the first to commit).
pub async fn claim_idempotency_key(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    fingerprint: &str,
    import_id: Uuid,
) -> Result<Option<(String, Uuid)>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM geoimport.idempotency_keys WHERE user_id = $1 AND key = $2 \
         AND created_at < now() - interval '{IDEMPOTENCY_KEY_LIFETIME}'"
    )))
    .bind(user_id)
    .bind(key)
    .execute(&mut *conn)
    .await?;
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO geoimport.idempotency_keys (user_id, key, fingerprint, import_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, key) DO NOTHING RETURNING import_id",
    )
    .bind(user_id)
    .bind(key)
    .bind(fingerprint)
    .bind(import_id)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(None);
    }
    let earlier =
        sqlx::query_as("SELECT fingerprint, import_id FROM geoimport.idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(user_id)
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Some(earlier))
}

/// The fingerprint and import `key` was recorded with, if it is remembered (a retry of a request whose
/// source, a resumable upload, its first attempt consumed).
pub async fn find_idempotency_key(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
) -> Result<Option<(String, Uuid)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT fingerprint, import_id FROM geoimport.idempotency_keys WHERE user_id = $1 AND key = $2 \
         AND created_at >= now() - interval '{IDEMPOTENCY_KEY_LIFETIME}'"
    )))
    .bind(user_id)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Forgets keys older than their lifetime; returns how many.
pub async fn forget_expired_idempotency_keys(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "DELETE FROM geoimport.idempotency_keys WHERE created_at < now() - interval '{IDEMPOTENCY_KEY_LIFETIME}'"
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?.rows_affected())
}
