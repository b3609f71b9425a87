//! The queue as operators see one account: its imports counted, stopped when the account is disabled or
//! deleted, and listed so that their files can go.

use sqlx::PgPool;
use uuid::Uuid;

use super::storage::stopped_early;
use crate::errors::ImportError;

/// Imports the user created in the last `hours` hours.
pub async fn imports_since(pool: &PgPool, user_id: Uuid, hours: i32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM geoimport.imports WHERE user_id = $1 AND created_at > now() - make_interval(hours => $2)",
    )
    .bind(user_id)
    .bind(hours)
    .fetch_one(pool)
    .await
}

/// The user's imports that have not ended.
pub async fn unfinished_of_user(pool: &PgPool, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM geoimport.imports WHERE user_id = $1 AND state NOT IN ('complete', 'failure')",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
}

/// Every import of the user, ended or not (their files are to be removed).
pub async fn jobs_of_user(pool: &PgPool, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM geoimport.imports WHERE user_id = $1").bind(user_id).fetch_all(pool).await
}

/// Ends every unfinished import of the user with `error`, as a cancel does: the workers holding them are
/// told at once and publish nothing, and the synchronizations they ran for record the failure.
pub async fn fail_unfinished_of_user(pool: &PgPool, user_id: Uuid, error: &ImportError) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE geoimport.imports SET state = 'failure', error_code = $2, error_detail = $3, lease_owner = NULL, \
         lease_expires_at = NULL, finished_at = now(), updated_at = now() \
         WHERE user_id = $1 AND state NOT IN ('complete', 'failure') RETURNING id",
    )
    .bind(user_id)
    .bind(error.code)
    .bind(&error.detail)
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        stopped_early(&mut tx, *id, error).await?;
    }
    tx.commit().await?;
    Ok(ids.len() as u64)
}
