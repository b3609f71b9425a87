//! Sync tables: a URL (or a database connector's table or query) imported again on an interval, its
//! table replaced in place each time. Connector runs have no change detection: every run re-imports.
//!
//! Each run is an ordinary import with `synchronization_id` set. The scheduler (run by every worker
//! process) claims due synchronizations with SKIP LOCKED and queues their import in the same transaction,
//! so several processes never queue the same run twice. The import's outcome is written back to the
//! synchronization in the transaction that finishes the import.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::connector::store::{self as connector_store, StoredConnector};
use crate::queue::{self, DataType, ImportOptions, NewImport, SyncState};
use crate::source::download::Validators;

/// Runs that failed this many times in a row are no longer scheduled (the reference's limit).
pub const MAX_RETRIES: i32 = 10;
/// Shortest interval, and the least time between manual runs.
pub const MIN_INTERVAL_SECS: i32 = 900;
pub const DEFAULT_INTERVAL_SECS: i32 = 3600;

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
    pub connector: Option<serde_json::Value>,
    /// Its connection, sealed; each run's import gets a copy.
    pub connector_secret: Option<Vec<u8>>,
}

/// What a new synchronization is made of.
pub struct NewSync {
    /// Chosen by the caller: a connector's connection is sealed for it before it exists.
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<String>,
    pub interval_secs: i32,
    /// Empty for a connector synchronization.
    pub url: String,
    pub options: ImportOptions,
    pub connector: Option<StoredConnector>,
}

/// Creates a synchronization and queues its first import; returns it with the import's id.
pub async fn create(pool: &PgPool, new: NewSync) -> Result<(Synchronization, Uuid), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id = new.id;
    let o = &new.options;
    sqlx::query(
        "INSERT INTO geoimport.synchronizations (id, user_id, name, interval_secs, url, type_guessing, \
         quoted_fields_guessing, content_guessing, create_visualization, connector, connector_secret) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(new.user_id)
    .bind(&new.name)
    .bind(new.interval_secs)
    .bind(&new.url)
    .bind(o.type_guessing)
    .bind(o.quoted_fields_guessing)
    .bind(o.content_guessing)
    .bind(o.create_visualization)
    .bind(new.connector.as_ref().map(|c| &c.spec))
    .bind(new.connector.as_ref().map(|c| &c.sealed_connection))
    .execute(&mut *tx)
    .await?;
    let sync = sqlx::query_as::<_, Synchronization>("SELECT * FROM geoimport.synchronizations WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let import_id = queue_run(&mut tx, &sync).await?;
    // Read back inside the transaction: after the commit a worker may already have moved it to syncing,
    // and the answer must describe the synchronization as created (queued).
    let sync = sqlx::query_as::<_, Synchronization>("SELECT * FROM geoimport.synchronizations WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((sync, import_id))
}

/// Queues an import for a synchronization and marks it queued. Call inside a transaction.
async fn queue_run(conn: &mut PgConnection, sync: &Synchronization) -> Result<Uuid, sqlx::Error> {
    let import_id = Uuid::new_v4();
    let url = url::Url::parse(&sync.url).ok();
    let connector = match (&sync.connector, &sync.connector_secret) {
        (Some(spec), Some(sealed)) => Some(StoredConnector { spec: spec.clone(), sealed_connection: sealed.clone() }),
        _ => None,
    };
    let (data_type, display_name, source_url) = match &connector {
        Some(c) => {
            let spec = serde_json::from_value::<crate::connector::ConnectorSpec>(c.spec.clone());
            (DataType::Datasource, spec.map(|s| s.wanted_name().to_string()).unwrap_or_default(), None)
        }
        None => (
            DataType::Url,
            url.as_ref().map(crate::source::display_name_of_url).unwrap_or_else(|| sync.url.clone()),
            Some(sync.url.clone()),
        ),
    };
    let job = NewImport {
        id: import_id,
        user_id: sync.user_id,
        data_type,
        staged_path: None,
        display_name,
        original_url: Some(sync.url.clone()),
        source_url,
        synchronization_id: Some(sync.id),
        options: ImportOptions {
            type_guessing: sync.type_guessing,
            quoted_fields_guessing: sync.quoted_fields_guessing,
            content_guessing: sync.content_guessing,
            create_visualization: sync.create_visualization,
            privacy: None,
            collision_strategy: None,
            user_defined_limits: r#"{"twitter_credits_limit":0}"#.into(),
        },
        staged_bytes: 0,
    };
    queue::insert_import(conn, &job).await?;
    if let Some(c) = &connector {
        connector_store::attach(conn, import_id, c).await?;
    }
    sqlx::query(
        "UPDATE geoimport.synchronizations SET state = 'queued', log_id = $2, updated_at = now() WHERE id = $1",
    )
    .bind(sync.id)
    .bind(import_id)
    .execute(conn)
    .await?;
    Ok(import_id)
}

/// Queues the runs of up to `limit` due synchronizations. Safe with many processes: each due row is
/// claimed with SKIP LOCKED and leaves the due set in the same transaction.
pub async fn queue_due(pool: &PgPool, limit: i64) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due = sqlx::query_as::<_, Synchronization>(
        "SELECT * FROM geoimport.synchronizations \
         WHERE run_at <= now() AND (state = 'success' OR (state = 'failure' AND retried_times < $1)) \
         ORDER BY ran_at NULLS FIRST FOR UPDATE SKIP LOCKED LIMIT $2",
    )
    .bind(MAX_RETRIES)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    for sync in &due {
        queue_run(&mut tx, sync).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// A manual run (`PUT .../sync_now`): allowed when the synchronization is idle (or queued for long) and
/// its last run was at least 15 minutes ago. Returns whether a run was queued.
pub async fn sync_now(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<Option<bool>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let sync = sqlx::query_as::<_, Synchronization>(
        "SELECT * FROM geoimport.synchronizations WHERE id = $1 AND user_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(sync) = sync else { return Ok(None) };
    let now = OffsetDateTime::now_utc();
    let gap = time::Duration::seconds(i64::from(MIN_INTERVAL_SECS));
    // A run queued long ago may still be waiting its turn: never start a second one beside it.
    let last_run_finished = queue::has_ended(&mut tx, sync.log_id).await?;
    let idle = last_run_finished
        && (matches!(sync.state, SyncState::Success | SyncState::Failure)
            || (sync.state == SyncState::Queued && sync.updated_at + gap < now));
    let rested = sync.ran_at.is_none_or(|ran| ran + gap < now);
    if !(idle && rested) {
        return Ok(Some(false));
    }
    queue_run(&mut tx, &sync).await?;
    tx.commit().await?;
    Ok(Some(true))
}

pub async fn find(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<Option<Synchronization>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.synchronizations WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

pub async fn list(pool: &PgPool, user_id: Uuid) -> Result<Vec<Synchronization>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.synchronizations WHERE user_id = $1 ORDER BY created_at")
        .bind(user_id)
        .fetch_all(pool)
        .await
}

/// Changes the settable fields; None leaves a field as it is. A new interval moves the next run.
pub async fn update(
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

#[derive(Debug, Default)]
pub struct SyncPatch {
    pub interval_secs: Option<i32>,
    pub name: Option<String>,
    pub type_guessing: Option<bool>,
    pub quoted_fields_guessing: Option<bool>,
    pub content_guessing: Option<bool>,
}

/// Deletes a synchronization; its table stays, as an ordinary table.
pub async fn delete(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM geoimport.synchronizations WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The validators to send with a run: only once a run succeeded and its tables still exist.
pub async fn validators(pool: &PgPool, id: Uuid) -> Result<Option<Validators>, sqlx::Error> {
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

/// A synchronization by id, whoever owns it (workers act for every user).
pub async fn find_any(pool: &PgPool, id: Uuid) -> Result<Option<Synchronization>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM geoimport.synchronizations WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// Completes a sync run whose source did not change: no table is touched, and the synchronization stays
/// a success. False when the job is no longer ours.
pub async fn complete_unchanged(
    pool: &PgPool,
    import_id: Uuid,
    owner: &str,
    sync_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = queue::Completion {
        table_id: None,
        table_names: Vec::new(),
        rows_imported: 0,
        error_code: None,
        warnings: Some(serde_json::json!({ "source_unchanged": true })),
    };
    if !queue::mark_complete(&mut tx, import_id, owner, &done).await? {
        return Ok(false);
    }
    queue::record_success(&mut tx, sync_id, None, None).await?;
    tx.commit().await?;
    Ok(true)
}
