//! One function per statement on the imports table.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::state::{CANCEL_PREFIX, CollisionStrategy, DataType, ImportState, NOTIFY_CHANNEL, RUNNING_STATES};
use super::sync_runs::record_failure;
use crate::errors::{ImportError, codes};

/// A row of `geoimport.imports`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportJob {
    pub id: Uuid,
    pub user_id: Uuid,
    pub state: ImportState,
    pub data_type: DataType,
    pub staged_path: Option<String>,
    /// The validators of the answer a staged sync download came with.
    pub staged_etag: Option<String>,
    pub staged_last_modified: Option<String>,
    pub display_name: Option<String>,
    pub original_url: Option<String>,
    pub source_url: Option<String>,
    pub type_guessing: bool,
    pub quoted_fields_guessing: bool,
    pub content_guessing: bool,
    pub create_visualization: bool,
    pub privacy: Option<String>,
    pub collision_strategy: Option<CollisionStrategy>,
    pub user_defined_limits: String,
    pub synchronization_id: Option<Uuid>,
    pub table_id: Option<Uuid>,
    pub table_name: Option<String>,
    pub table_names: Vec<String>,
    pub tables_created_count: Option<i32>,
    pub rows_imported: Option<i64>,
    /// Every rejection of the rejections report, once complete.
    pub rejections: Option<i64>,
    pub error_code: Option<i32>,
    pub error_detail: Option<String>,
    pub warnings: Option<serde_json::Value>,
    pub http_response_code: Option<i32>,
    /// Whether its source held a raster.
    pub is_raster: bool,
    /// Whether it made a raster table, once complete.
    pub any_table_raster: bool,
    pub attempts: i32,
    pub lease_owner: Option<String>,
    /// Where its final status is POSTed.
    pub callback_url: Option<String>,
    /// Where it stands while it runs (phase, bytes, rows), as its worker last wrote it.
    pub progress: Option<serde_json::Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What the API records when it accepts an import.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub id: Uuid,
    pub user_id: Uuid,
    pub data_type: DataType,
    pub staged_path: Option<String>,
    pub display_name: String,
    pub original_url: Option<String>,
    /// For URL imports: the URL to download.
    pub source_url: Option<String>,
    pub synchronization_id: Option<Uuid>,
    pub options: ImportOptions,
    /// For uploads: the size of the staged file (0 otherwise).
    pub staged_bytes: i64,
}

/// The request's options, stored with the job and echoed in its status.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub type_guessing: bool,
    pub quoted_fields_guessing: bool,
    pub content_guessing: bool,
    pub create_visualization: bool,
    pub privacy: Option<String>,
    pub collision_strategy: Option<CollisionStrategy>,
    pub user_defined_limits: String,
    /// Where the final status is POSTed, signed (checked against the address policy when given).
    pub callback_url: Option<String>,
}

/// Inserts a pending import and wakes the workers. The NOTIFY is delivered when the caller's transaction
/// commits, so a worker never wakes for a row it cannot see yet.
pub async fn insert_import(conn: &mut PgConnection, job: &NewImport) -> Result<(), sqlx::Error> {
    let o = &job.options;
    sqlx::query(
        "INSERT INTO geoimport.imports (id, user_id, data_type, staged_path, display_name, original_url, \
         type_guessing, quoted_fields_guessing, content_guessing, create_visualization, privacy, \
         collision_strategy, user_defined_limits, source_url, synchronization_id, staged_bytes, callback_url) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(job.id)
    .bind(job.user_id)
    .bind(job.data_type)
    .bind(&job.staged_path)
    .bind(&job.display_name)
    .bind(&job.original_url)
    .bind(o.type_guessing)
    .bind(o.quoted_fields_guessing)
    .bind(o.content_guessing)
    .bind(o.create_visualization)
    .bind(&o.privacy)
    .bind(o.collision_strategy)
    .bind(&o.user_defined_limits)
    .bind(&job.source_url)
    .bind(job.synchronization_id)
    .bind(job.staged_bytes)
    .bind(&o.callback_url)
    .execute(&mut *conn)
    .await?;
    notify(conn).await
}

/// What a user has waiting: unfinished imports and resumable uploads, and the bytes their files hold (an
/// upload counts its whole announced length from the start: that is what it may still send).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct UnfinishedLoad {
    pub imports: i64,
    /// Resumable uploads that have neither become an import nor expired.
    pub uploads: i64,
    pub staged_bytes: i64,
}

/// Locks the user's row until the transaction ends, so that two imports queued for one user at once are
/// counted one after the other (claims lock the same row; the foreign keys of new imports only take
/// KEY SHARE, which this does not block). Call before [`unfinished_load`], in a statement of its own: a
/// statement's snapshot is taken before it waits for a lock.
pub async fn lock_user(tx: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM geoimport.users WHERE id = $1 FOR NO KEY UPDATE").bind(user_id).execute(tx).await?;
    Ok(())
}

/// The user's unfinished imports (any state but complete and failure), unfinished resumable uploads, and
/// the bytes of both.
pub async fn unfinished_load(conn: &mut PgConnection, user_id: Uuid) -> Result<UnfinishedLoad, sqlx::Error> {
    sqlx::query_as(
        "WITH i AS (SELECT count(*) AS n, coalesce(sum(staged_bytes), 0) AS bytes FROM geoimport.imports \
                    WHERE user_id = $1 AND state NOT IN ('complete', 'failure')), \
              u AS (SELECT count(*) AS n, coalesce(sum(upload_length), 0) AS bytes FROM geoimport.uploads \
                    WHERE user_id = $1 AND import_id IS NULL AND expires_at > now()) \
         SELECT i.n AS imports, u.n AS uploads, (i.bytes + u.bytes)::bigint AS staged_bytes FROM i, u",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await
}

/// Records an import that failed before any worker could take it (an upload cut at the size limit).
pub async fn insert_failed_import(
    tx: &mut PgConnection,
    job: &NewImport,
    error: &ImportError,
) -> Result<(), sqlx::Error> {
    insert_import(&mut *tx, job).await?;
    sqlx::query(
        "UPDATE geoimport.imports SET state = 'failure', error_code = $2, error_detail = $3, \
         finished_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(job.id)
    .bind(error.code)
    .bind(&error.detail)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn notify(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')").bind(NOTIFY_CHANNEL).execute(conn).await?;
    Ok(())
}

/// Claims a runnable pending job, fairly across users: first the user with the fewest running jobs, then
/// the oldest job, never for a user at their concurrency limit or among `crowding` (users this worker
/// keeps from taking its last free slot). Moves it to `uploading` (URL imports, which download first) or
/// `unpacking` under a lease. The returned job's `lease_owner` is the claim's token, which every later
/// write must present. Returns None when there is nothing to do.
///
/// The owner's row is locked before counting that owner's running jobs, so two workers claiming for the
/// same user at once cannot both squeeze under the limit.
pub async fn claim_next(
    pool: &PgPool,
    worker: &str,
    lease: Duration,
    crowding: &[Uuid],
) -> Result<Option<ImportJob>, sqlx::Error> {
    // Each claim gets a token of its own: even the same worker claiming the same job again after losing it
    // (its lease lapsed while the database was away) cannot act for the earlier claim.
    let owner = format!("{worker}/{}", Uuid::new_v4().simple());
    let mut tx = pool.begin().await?;
    // Per user: jobs running now, and when their latest job started. Fewest running first, then whoever
    // started least recently: with one free slot and two busy users, they take turns.
    let candidate: Option<(Uuid, Uuid)> = sqlx::query_as(
        "WITH users_now AS ( \
           SELECT user_id, count(*) FILTER (WHERE state IN ('uploading', 'unpacking', 'guessing', 'importing')) \
                  AS running, max(started_at) AS last_start \
           FROM geoimport.imports \
           WHERE state IN ('uploading', 'unpacking', 'guessing', 'importing') \
              OR started_at > now() - interval '1 hour' \
           GROUP BY user_id) \
         SELECT i.id, i.user_id FROM geoimport.imports i JOIN geoimport.users u ON u.id = i.user_id \
         LEFT JOIN users_now r ON r.user_id = i.user_id \
         WHERE i.state = 'pending' AND i.run_after <= now() \
           AND coalesce(r.running, 0) < u.max_concurrent_imports AND NOT (i.user_id = ANY($1)) \
         ORDER BY coalesce(r.running, 0), r.last_start NULLS FIRST, i.run_after, i.created_at \
         FOR UPDATE OF i SKIP LOCKED LIMIT 1",
    )
    .bind(crowding)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, user_id)) = candidate else {
        return Ok(None);
    };
    // Lock first, count after, in separate statements: a statement's snapshot is taken before it waits for
    // a lock, so counting in the locking statement could miss a claim committed while it waited.
    sqlx::query("SELECT 1 FROM geoimport.users WHERE id = $1 FOR UPDATE").bind(user_id).execute(&mut *tx).await?;
    let under_limit: bool = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM geoimport.imports r WHERE r.user_id = u.id AND r.state = ANY($2)) \
                < u.max_concurrent_imports \
         FROM geoimport.users u WHERE u.id = $1",
    )
    .bind(user_id)
    .bind(RUNNING_STATES)
    .fetch_one(&mut *tx)
    .await?;
    if !under_limit {
        return Ok(None);
    }
    let job = sqlx::query_as::<_, ImportJob>(
        "UPDATE geoimport.imports SET attempts = attempts + 1, lease_owner = $2, \
         state = CASE WHEN data_type = 'url' THEN 'uploading' ELSE 'unpacking' END, \
         lease_expires_at = now() + $3 * interval '1 millisecond', started_at = coalesce(started_at, now()), \
         updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(&owner)
    .bind(lease.as_millis() as f64)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(job))
}

/// Extends the lease; false means the job is no longer ours (lapsed and taken, or finished).
pub async fn renew_lease(pool: &PgPool, id: Uuid, owner: &str, lease: Duration) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE geoimport.imports SET lease_expires_at = now() + $3 * interval '1 millisecond' \
         WHERE id = $1 AND lease_owner = $2 AND state = ANY($4)",
    )
    .bind(id)
    .bind(owner)
    .bind(lease.as_millis() as f64)
    .bind(RUNNING_STATES)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Moves a running job to another running state, so that clients see its progress.
pub async fn set_state(pool: &PgPool, id: Uuid, owner: &str, state: ImportState) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE geoimport.imports SET state = $3, updated_at = now() \
         WHERE id = $1 AND lease_owner = $2 AND state = ANY($4)",
    )
    .bind(id)
    .bind(owner)
    .bind(state.as_str())
    .bind(RUNNING_STATES)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks a job we hold as failed. False if the lease was lost meanwhile (the new holder decides).
pub async fn fail(
    pool: &PgPool,
    id: Uuid,
    owner: &str,
    error: &ImportError,
    warnings: Option<&serde_json::Value>,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let r = sqlx::query(
        "UPDATE geoimport.imports SET state = 'failure', error_code = $3, error_detail = $4, \
         warnings = coalesce($5, warnings), http_response_code = $7, lease_owner = NULL, \
         lease_expires_at = NULL, finished_at = now(), updated_at = now() \
         WHERE id = $1 AND lease_owner = $2 AND state = ANY($6)",
    )
    .bind(id)
    .bind(owner)
    .bind(error.code)
    .bind(&error.detail)
    .bind(warnings)
    .bind(RUNNING_STATES)
    .bind(error.http_status.map(i32::from))
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 1 {
        record_failure(&mut tx, id, error).await?;
    }
    notify(&mut tx).await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

/// The result a completed job records, in the transaction that publishes its tables.
#[derive(Debug, Clone)]
pub struct Completion {
    pub table_id: Option<Uuid>,
    pub table_names: Vec<String>,
    pub rows_imported: i64,
    /// Rejections counted, kept or not (see [`super::rejections`]).
    pub rejections: i64,
    pub error_code: Option<i32>,
    pub warnings: Option<serde_json::Value>,
    /// Whether any of the tables is a raster table.
    pub any_table_raster: bool,
}

/// Marks a job complete inside the publishing transaction. Must be the transaction's first write: it locks
/// the row and returns false when the lease is no longer ours, in which case the caller rolls back.
pub async fn mark_complete(
    conn: &mut PgConnection,
    id: Uuid,
    owner: &str,
    done: &Completion,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE geoimport.imports SET state = 'complete', table_id = $3, table_names = $4, \
         table_name = $4[array_upper($4, 1)], tables_created_count = cardinality($4), rows_imported = $5, \
         error_code = $6, warnings = $7, rejections = $9, any_table_raster = $10, lease_owner = NULL, lease_expires_at = NULL, \
         finished_at = now(), updated_at = now() \
         WHERE id = $1 AND lease_owner = $2 AND state = ANY($8)",
    )
    .bind(id)
    .bind(owner)
    .bind(done.table_id)
    .bind(&done.table_names)
    .bind(done.rows_imported)
    .bind(done.error_code)
    .bind(&done.warnings)
    .bind(RUNNING_STATES)
    .bind(done.rejections)
    .bind(done.any_table_raster)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 1 {
        notify(conn).await?;
    }
    Ok(r.rows_affected() == 1)
}

/// Records that a job's source holds a raster (the status's `is_raster`), whatever becomes of the job.
pub async fn mark_raster(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE geoimport.imports SET is_raster = true WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

/// Gives a job back to the queue without counting the attempt (graceful shutdown).
pub async fn hand_back(pool: &PgPool, id: Uuid, owner: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let r = sqlx::query(
        "UPDATE geoimport.imports SET state = 'pending', attempts = greatest(attempts - 1, 0), \
         lease_owner = NULL, lease_expires_at = NULL, run_after = now(), updated_at = now() \
         WHERE id = $1 AND lease_owner = $2 AND state = ANY($3)",
    )
    .bind(id)
    .bind(owner)
    .bind(RUNNING_STATES)
    .execute(&mut *tx)
    .await?;
    notify(&mut tx).await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

/// Running jobs whose lease lapsed (their worker died or hung): back to pending for another attempt, or
/// failed with 6671 once `max_attempts` were spent. Returns (requeued, failed).
pub async fn reclaim_expired(pool: &PgPool, max_attempts: i32) -> Result<(u64, u64), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let stuck = ImportError::new(
        codes::STUCK,
        format!("the import lost its worker {max_attempts} times in a row, so it was given up"),
    );
    let failed: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE geoimport.imports SET state = 'failure', error_code = $2, error_detail = $3, \
         lease_owner = NULL, lease_expires_at = NULL, finished_at = now(), updated_at = now() \
         WHERE state = ANY($4) AND lease_expires_at < now() AND attempts >= $1 RETURNING id",
    )
    .bind(max_attempts)
    .bind(stuck.code)
    .bind(&stuck.detail)
    .bind(RUNNING_STATES)
    .fetch_all(&mut *tx)
    .await?;
    for id in &failed {
        record_failure(&mut tx, *id, &stuck).await?;
    }
    let failed = failed.len() as u64;
    let requeued = sqlx::query(
        "UPDATE geoimport.imports SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, \
         run_after = now(), updated_at = now() \
         WHERE state = ANY($2) AND lease_expires_at < now() AND attempts < $1",
    )
    .bind(max_attempts)
    .bind(RUNNING_STATES)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if failed + requeued > 0 {
        notify(&mut tx).await?;
    }
    tx.commit().await?;
    Ok((requeued, failed))
}

/// One import of one user; None for another user's import, so that its existence does not leak.
pub async fn find_for_user(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<Option<ImportJob>, sqlx::Error> {
    sqlx::query_as::<_, ImportJob>("SELECT * FROM geoimport.imports WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

/// The user's unfinished imports of the last 24 hours, newest first (what the reference lists).
pub async fn list_unfinished(pool: &PgPool, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM geoimport.imports WHERE user_id = $1 AND state NOT IN ('complete', 'failure') \
         AND created_at > now() - interval '24 hours' ORDER BY created_at DESC",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// Finished jobs whose staged file may still be on disk; the janitor removes those files.
pub async fn finished_with_staged_files(pool: &PgPool) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, staged_path FROM geoimport.imports \
         WHERE state IN ('complete', 'failure') AND staged_path IS NOT NULL LIMIT 1000",
    )
    .fetch_all(pool)
    .await
}

/// Forgets the staged file of a job once it has been removed.
pub async fn clear_staged_path(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE geoimport.imports SET staged_path = NULL WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

/// What a cancel request found.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// The import now has failed with 6672; a worker holding it loses its lease and publishes nothing.
    Now,
    /// It had already ended, in this state.
    AlreadyEnded(ImportState),
    /// No such import for this user.
    NotFound,
}

/// Cancels a user's unfinished import. Clearing the lease is what stops a worker that holds it: its next
/// renewal fails, and publishing checks the lease in the same transaction.
pub async fn cancel(pool: &PgPool, id: Uuid, user_id: Uuid) -> Result<Cancelled, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let state: Option<ImportState> =
        sqlx::query_scalar("SELECT state FROM geoimport.imports WHERE id = $1 AND user_id = $2 FOR UPDATE")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(state) = state else { return Ok(Cancelled::NotFound) };
    if state.is_final() {
        return Ok(Cancelled::AlreadyEnded(state));
    }
    let error = ImportError::new(codes::CANCELLED, "cancelled by its owner");
    sqlx::query(
        "UPDATE geoimport.imports SET state = 'failure', error_code = $2, error_detail = $3, lease_owner = NULL, \
         lease_expires_at = NULL, finished_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(error.code)
    .bind(&error.detail)
    .execute(&mut *tx)
    .await?;
    stopped_early(&mut tx, id, &error).await?;
    tx.commit().await?;
    Ok(Cancelled::Now)
}

/// What follows a job ended from outside (cancelled, its account disabled): the synchronization it ran
/// for records the failure, and the worker holding it, if any, stops at once rather than at its next
/// lease renewal.
pub(super) async fn stopped_early(conn: &mut PgConnection, id: Uuid, error: &ImportError) -> Result<(), sqlx::Error> {
    record_failure(&mut *conn, id, error).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(format!("{CANCEL_PREFIX}{id}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A job's state, whoever owns it.
pub async fn find_state(pool: &PgPool, id: Uuid) -> Result<Option<ImportState>, sqlx::Error> {
    sqlx::query_scalar("SELECT state FROM geoimport.imports WHERE id = $1").bind(id).fetch_optional(pool).await
}
