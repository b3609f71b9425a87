//! Statements on the imports table for the floors above the queue: the publisher's check that it still
//! holds its job, the janitor's question which jobs ended, a sync's question whether its last run ended,
//! connector imports' details, the metrics' counts, and where a worker staged a download.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::state::RUNNING_STATES;
use super::sync_runs::Validators;

/// Locks the row of job `id` if `owner` still holds it (running, under its lease), for the rest of the
/// caller's transaction; false when the job is no longer the caller's.
pub async fn lock_if_held(conn: &mut PgConnection, id: Uuid, owner: &str) -> Result<bool, sqlx::Error> {
    let held: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM geoimport.imports WHERE id = $1 AND lease_owner = $2 AND state = ANY($3) FOR UPDATE",
    )
    .bind(id)
    .bind(owner)
    .bind(RUNNING_STATES)
    .fetch_optional(conn)
    .await?;
    Ok(held.is_some())
}

/// Which of `ids` are finished jobs, or jobs that no longer exist at all.
pub async fn ended_among(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "SELECT t.id FROM unnest($1::uuid[]) AS t(id) LEFT JOIN geoimport.imports i ON i.id = t.id \
         WHERE i.id IS NULL OR i.state IN ('complete', 'failure')",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Whether import `id` has ended (true also when there is no such import, or no id).
pub async fn has_ended(conn: &mut PgConnection, id: Option<Uuid>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce((SELECT state IN ('complete', 'failure') FROM geoimport.imports WHERE id = $1), true)",
    )
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Gives a just-inserted import its connector (spec and sealed connection). Call in the transaction that
/// inserts the import: the workers' NOTIFY is delivered at commit, so no worker can claim the row before it
/// has its connector.
pub async fn attach_connector(
    conn: &mut PgConnection,
    import_id: Uuid,
    spec: &Value,
    sealed: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE geoimport.imports SET connector = $2, connector_secret = $3 WHERE id = $1")
        .bind(import_id)
        .bind(spec)
        .bind(sealed)
        .execute(conn)
        .await?;
    Ok(())
}

/// The connector of an import: (spec, sealed connection, its synchronization). The sealed part is None
/// once the import ended.
pub async fn connector_of(
    pool: &PgPool,
    import_id: Uuid,
) -> Result<Option<(Option<Value>, Option<Vec<u8>>, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as("SELECT connector, connector_secret, synchronization_id FROM geoimport.imports WHERE id = $1")
        .bind(import_id)
        .fetch_optional(pool)
        .await
}

/// Imports by state.
pub async fn counts_by_state(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, count(*) FROM geoimport.imports GROUP BY state").fetch_all(pool).await
}

/// How long the oldest due pending import has waited, in seconds (0 when none), and the rows all
/// completed imports have imported.
pub async fn backlog_and_rows(pool: &PgPool) -> Result<(f64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(extract(epoch FROM now() - min(run_after) FILTER (WHERE state = 'pending' \
         AND run_after <= now())), 0)::float8, \
         coalesce(sum(rows_imported) FILTER (WHERE state = 'complete'), 0)::bigint FROM geoimport.imports",
    )
    .fetch_one(pool)
    .await
}

/// Records where a running job's downloaded file waits in the staging store (with the validators of the
/// answer it came with, for a sync run), so that a later attempt (on any worker) reads it there instead
/// of downloading again. False when the job is no longer ours.
pub async fn record_staged_download(
    pool: &PgPool,
    id: Uuid,
    owner: &str,
    staged: &str,
    validators: Option<&Validators>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE geoimport.imports SET staged_path = $3, staged_etag = $4, staged_last_modified = $5 \
         WHERE id = $1 AND lease_owner = $2 AND state NOT IN ('complete', 'failure')",
    )
    .bind(id)
    .bind(owner)
    .bind(staged)
    .bind(validators.and_then(|v| v.etag.as_deref()))
    .bind(validators.and_then(|v| v.last_modified.as_deref()))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What a running job's worker says of where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub rows_done: Option<u64>,
    pub rows_total: Option<u64>,
}

/// Writes job `id`'s `progress` (if it is still ours and running): the phase is its state, bytes are shown
/// while it downloads or unpacks, rows while it guesses and loads. False when the job is no longer ours.
pub async fn write_progress(pool: &PgPool, id: Uuid, owner: &str, standing: &Standing) -> Result<bool, sqlx::Error> {
    let number = |v: Option<u64>| v.map(|v| v.min(i64::MAX as u64) as i64);
    let done = sqlx::query(
        "UPDATE geoimport.imports SET progress = jsonb_strip_nulls(jsonb_build_object( \
           'phase', state, \
           'bytes_done', CASE WHEN state IN ('uploading', 'unpacking') THEN $3::bigint END, \
           'bytes_total', CASE WHEN state IN ('uploading', 'unpacking') THEN $4::bigint END, \
           'rows_done', CASE WHEN state IN ('guessing', 'importing') THEN $5::bigint END, \
           'rows_total', CASE WHEN state IN ('guessing', 'importing') THEN $6::bigint END, \
           'updated_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))) \
         WHERE id = $1 AND lease_owner = $2 AND state = ANY($7)",
    )
    .bind(id)
    .bind(owner)
    .bind(number(Some(standing.bytes_done)))
    .bind(number(standing.bytes_total))
    .bind(number(standing.rows_done))
    .bind(number(standing.rows_total))
    .bind(RUNNING_STATES)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
