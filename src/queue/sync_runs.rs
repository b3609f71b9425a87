//! The outcome of a synchronization's run, written in the transaction that ends its import: a success
//! (with the source's validators for the next conditional request) or a failure (the next try an interval
//! later). Here, with the statements that end imports, so that no way of ending one can forget the sync.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::state::RUNNING_STATES;
use crate::errors::{ImportError, error_text};

/// What a previous download of the same source returned, for conditional requests.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A run succeeded (or found the source unchanged: `tables` None). Call in the completing transaction.
pub async fn record_success(
    conn: &mut PgConnection,
    id: Uuid,
    validators: Option<&Validators>,
    tables: Option<&[String]>,
) -> Result<(), sqlx::Error> {
    let modified_at = validators
        .and_then(|v| v.last_modified.as_deref())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .map(OffsetDateTime::from);
    sqlx::query(
        "UPDATE geoimport.synchronizations SET state = 'success', error_code = NULL, error_message = NULL, \
           retried_times = 0, ran_at = now(), run_at = now() + interval_secs * interval '1 second', \
           etag = CASE WHEN $2 THEN $3 ELSE etag END, last_modified = CASE WHEN $2 THEN $4 ELSE last_modified END, \
           modified_at = CASE WHEN $2 THEN $5 ELSE modified_at END, \
           table_names = coalesce($6, table_names), updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(validators.is_some())
    .bind(validators.and_then(|v| v.etag.clone()))
    .bind(validators.and_then(|v| v.last_modified.clone()))
    .bind(modified_at)
    .bind(tables)
    .execute(conn)
    .await?;
    Ok(())
}

/// A run failed: the error is recorded and the next try scheduled an interval later.
pub async fn record_failure(conn: &mut PgConnection, import_id: Uuid, error: &ImportError) -> Result<(), sqlx::Error> {
    let text = error_text(error.code, None);
    sqlx::query(
        "UPDATE geoimport.synchronizations s SET state = 'failure', error_code = $2, error_message = $3, \
           retried_times = s.retried_times + 1, ran_at = now(), run_at = now() + s.interval_secs * interval '1 second', \
           updated_at = now() \
         FROM geoimport.imports i WHERE i.id = $1 AND s.id = i.synchronization_id",
    )
    .bind(import_id)
    .bind(error.code)
    .bind(format!("{} {}", text.title, error.detail))
    .execute(conn)
    .await?;
    Ok(())
}

/// A run started.
pub async fn mark_syncing(pool: &PgPool, id: Uuid, import_id: Uuid, owner: &str) -> Result<(), sqlx::Error> {
    // Only while the run's import is still held: a cancel that landed first has set the synchronization's
    // outcome already, and must not be overwritten with a 'syncing' that nothing would ever end.
    sqlx::query(
        "UPDATE geoimport.synchronizations SET state = 'syncing', updated_at = now() WHERE id = $1 \
         AND EXISTS (SELECT 1 FROM geoimport.imports WHERE id = $2 AND lease_owner = $3 AND state = ANY($4))",
    )
    .bind(id)
    .bind(import_id)
    .bind(owner)
    .bind(RUNNING_STATES)
    .execute(pool)
    .await?;
    Ok(())
}
