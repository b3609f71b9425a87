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
use crate::queue::{self, DataType, ImportOptions, NewImport, SyncRow, SyncState, Synchronization};

/// Runs that failed this many times in a row are no longer scheduled (the reference's limit).
pub const MAX_RETRIES: i32 = 10;
/// Shortest interval, and the least time between manual runs.
pub const MIN_INTERVAL_SECS: i32 = 900;
pub const DEFAULT_INTERVAL_SECS: i32 = 3600;

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
    let row = SyncRow {
        id: new.id,
        user_id: new.user_id,
        name: new.name.as_deref(),
        interval_secs: new.interval_secs,
        url: &new.url,
        options: &new.options,
        connector: new.connector.as_ref().map(|c| (&c.spec, c.sealed_connection.as_slice())),
    };
    let sync = queue::insert_sync(&mut tx, &row).await?;
    let import_id = queue_run(&mut tx, &sync).await?;
    // Read back inside the transaction: after the commit a worker may already have moved it to syncing,
    // and the answer must describe the synchronization as created (queued).
    let sync = queue::reread_sync(&mut tx, new.id).await?;
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
        original_url: Some(crate::source::shown_url(&sync.url)),
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
            callback_url: sync.callback_url.clone(),
        },
        staged_bytes: 0,
    };
    queue::insert_import(conn, &job).await?;
    if let Some(c) = &connector {
        connector_store::attach(conn, import_id, c).await?;
    }
    queue::mark_queued(conn, sync.id, import_id).await?;
    Ok(import_id)
}

/// Queues the runs of up to `limit` due synchronizations. Safe with many processes: each due row is
/// claimed with SKIP LOCKED and leaves the due set in the same transaction.
pub async fn queue_due(pool: &PgPool, limit: i64) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due = queue::claim_due_syncs(&mut tx, MAX_RETRIES, limit).await?;
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
    let sync = queue::lock_sync(&mut tx, user_id, id).await?;
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
        rejections: 0,
        error_code: None,
        warnings: Some(serde_json::json!({ "source_unchanged": true })),
        any_table_raster: false,
    };
    if !queue::mark_complete(&mut tx, import_id, owner, &done).await? {
        return Ok(false);
    }
    queue::record_success(&mut tx, sync_id, None, None).await?;
    tx.commit().await?;
    Ok(true)
}
