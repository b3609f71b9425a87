//! Statements on the synchronizations table: one function per statement. What a sync table does with
//! them (when a run is due, when a manual run is allowed) is the sync floor's; the outcome of a run is
//! written by [`super::sync_runs`] in the transaction that ends its import.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::state::SyncState;
use super::storage::ImportOptions;
use super::sync_runs::Validators;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Synchronization {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<String>,
    pub interval_secs: i32,
    pub url: String,
    pub state: SyncState,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub run_at: OffsetDateTime,
    pub ran_at: Option<OffsetDateTime>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub modified_at: Option<OffsetDateTime>,
    pub log_id: Option<Uuid>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub retried_times: i32,
    pub type_guessing: bool,
    pub quoted_fields_guessing: bool,
    pub content_guessing: bool,
    pub create_visualization: bool,
    pub table_names: Vec<String>,
    /// A connector synchronization's spec (its `url` is empty).
    pub connector: Option<Value>,
    /// Its connection, sealed; each run's import gets a copy.
    pub connector_secret: Option<Vec<u8>>,
    /// Where each run's final status is POSTed.
    pub callback_url: Option<String>,
}

/// The columns a new synchronization is inserted with.
pub struct SyncRow<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<&'a str>,
    pub interval_secs: i32,
    /// Empty for a connector synchronization.
    pub url: &'a str,
    pub options: &'a ImportOptions,
    /// A connector synchronization's spec and sealed connection.
    pub connector: Option<(&'a Value, &'a [u8])>,
}

/// The fields a client may change; None leaves a field as it is.
#[derive(Debug, Default)]
pub struct SyncPatch {
    pub interval_secs: Option<i32>,
    pub name: Option<String>,
    pub type_guessing: Option<bool>,
    pub quoted_fields_guessing: Option<bool>,
    pub content_guessing: Option<bool>,
}

/// Inserts a synchronization (state `created`, due at once) and returns it as stored.
pub async fn insert_sync(conn: &mut PgConnection, row: &SyncRow<'_>) -> Result<Synchronization, sqlx::Error> {
    let o = row.options;
    sqlx::query_as(
        "INSERT INTO geoimport.synchronizations (id, user_id, name, interval_secs, url, type_guessing, \
         quoted_fields_guessing, content_guessing, create_visualization, connector, connector_secret, callback_url) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *",
    )
    .bind(row.id)
    .bind(row.user_id)
    .bind(row.name)
    .bind(row.interval_secs)
    .bind(row.url)
    .bind(o.type_guessing)
    .bind(o.quoted_fields_guessing)
    .bind(o.content_guessing)
    .bind(o.create_visualization)
    .bind(row.connector.map(|(spec, _)| spec))
    .bind(row.connector.map(|(_, sealed)| sealed))
    .bind(&o.callback_url)
    .fetch_one(conn)
    .await
}

/// Synchronization `id` as the caller's transaction sees it now.
pub async fn reread_sync(conn: &mut PgConnection, id: Uuid) -> Result<Synchronization, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.synchronizations WHERE id = $1").bind(id).fetch_one(conn).await
}

/// Marks a synchronization queued with its run's import `import_id`.
pub async fn mark_queued(conn: &mut PgConnection, id: Uuid, import_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE geoimport.synchronizations SET state = 'queued', log_id = $2, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(import_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims up to `limit` due synchronizations for the caller's transaction (SKIP LOCKED: another process
/// claiming at the same time gets others). Due: its time came, and it succeeded last, or failed fewer than
/// `max_retries` times in a row; the synchronizations of a disabled account wait until it is enabled.
pub async fn claim_due_syncs(
    conn: &mut PgConnection,
    max_retries: i32,
    limit: i64,
) -> Result<Vec<Synchronization>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM geoimport.synchronizations s \
         WHERE run_at <= now() AND (state = 'success' OR (state = 'failure' AND retried_times < $1)) \
         AND NOT EXISTS (SELECT 1 FROM geoimport.users u WHERE u.id = s.user_id AND u.disabled_at IS NOT NULL) \
         ORDER BY ran_at NULLS FIRST FOR UPDATE SKIP LOCKED LIMIT $2",
    )
    .bind(max_retries)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The user's synchronization `id`, locked for the caller's transaction; None if it is not theirs.
pub async fn lock_sync(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Synchronization>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.synchronizations WHERE id = $1 AND user_id = $2 FOR UPDATE")
        .bind(id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// The user's synchronization `id`; None if it is not theirs.
pub async fn find_sync(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<Option<Synchronization>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.synchronizations WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

/// A synchronization by id, whoever owns it (workers act for every user).
pub async fn find_any_sync(pool: &PgPool, id: Uuid) -> Result<Option<Synchronization>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.synchronizations WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// The user's synchronizations, oldest first.
pub async fn list_syncs(pool: &PgPool, user_id: Uuid) -> Result<Vec<Synchronization>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.synchronizations WHERE user_id = $1 ORDER BY created_at")
        .bind(user_id)
        .fetch_all(pool)
        .await
}

/// Applies `patch` and returns the result; a new interval moves the next run. None if it is not theirs.
pub async fn update_sync(
    pool: &PgPool,
    user_id: Uuid,
    id: Uuid,
    patch: &SyncPatch,
) -> Result<Option<Synchronization>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE geoimport.synchronizations SET \
           interval_secs = coalesce($3, interval_secs), \
           run_at = CASE WHEN $3 IS NULL THEN run_at ELSE coalesce(ran_at, created_at) + $3 * interval '1 second' END, \
           name = coalesce($4, name), type_guessing = coalesce($5, type_guessing), \
           quoted_fields_guessing = coalesce($6, quoted_fields_guessing), \
           content_guessing = coalesce($7, content_guessing), updated_at = now() \
         WHERE id = $1 AND user_id = $2 RETURNING *",
    )
    .bind(id)
    .bind(user_id)
    .bind(patch.interval_secs)
    .bind(&patch.name)
    .bind(patch.type_guessing)
    .bind(patch.quoted_fields_guessing)
    .bind(patch.content_guessing)
    .fetch_optional(pool)
    .await
}

/// Deletes the user's synchronization; its table stays, as an ordinary table. False if it was not theirs.
pub async fn delete_sync(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM geoimport.synchronizations WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The validators to send with a run: only once a run succeeded and its tables still exist.
pub async fn sync_validators(pool: &PgPool, id: Uuid) -> Result<Option<Validators>, sqlx::Error> {
    let row: Option<(Option<String>, Option<String>, bool)> = sqlx::query_as(
        "SELECT s.etag, s.last_modified, \
           cardinality(s.table_names) > 0 AND NOT EXISTS ( \
             SELECT 1 FROM unnest(s.table_names) t(name) \
             WHERE NOT EXISTS (SELECT 1 FROM pg_tables p WHERE p.schemaname = u.schema_name AND p.tablename = t.name)) \
         FROM geoimport.synchronizations s JOIN geoimport.users u ON u.id = s.user_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(etag, last_modified, tables_exist)| {
        (tables_exist && (etag.is_some() || last_modified.is_some())).then_some(Validators { etag, last_modified })
    }))
}

/// How many synchronizations are in each state (states with none are absent), for the metrics.
pub async fn sync_counts_by_state(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, count(*) FROM geoimport.synchronizations GROUP BY state").fetch_all(pool).await
}
