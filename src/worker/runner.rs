//! Running one claimed job: fetch its source, pick a reader, load, publish. Everything that can go wrong
//! ends as an [`ImportError`] with a catalogue code; the caller records it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use crate::config::Settings;
use crate::errors::{ImportError, codes};
use crate::formats::{self, SourceLimits, SourceLoad};
use crate::load::{LoadContext, LoadedLayer, Stage, table};
use crate::publish::{self, PublishError, SyncTarget};
use crate::queue::{self, DataType, ImportJob, ImportState};
use crate::services::Services;
use crate::source::disk::DiskReserve;
use crate::source::download::{Fetched, SizeLimits, Validators};
use crate::source::input::Input;
use crate::source::meter::Meter;
use crate::sync;
use crate::unpack::Limits;
use crate::users::{self, User};

/// Everything a job run needs from its worker.
pub struct JobContext {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub services: Arc<Services>,
    pub owner: String,
    /// Progress; the worker's reporter writes each state to the job row, every one and in order (a
    /// client that polls may miss a short one, the row's history does not).
    pub state: Progress,
    /// Bytes moved and rows counted, which the job's watcher writes into its progress.
    pub meter: Arc<Meter>,
}

/// How a run ended, when it did not fail.
pub enum RunOutcome {
    Published(publish::Published),
    /// A sync run found its source unchanged: nothing was imported, and the sync stays a success.
    Unchanged,
    /// The lease was lost before publishing: another worker owns the job now, so this one stays silent.
    LeaseLost,
}

/// The file a job imports, wherever it came from.
struct SourceFile {
    input: Input,
    validators: Option<Validators>,
}

/// The file of an upload or a URL import; None when a sync run's URL answered that nothing changed. A
/// file streamed from the store is read until `stop` is cancelled.
async fn fetch_source(
    ctx: &JobContext,
    job: &ImportJob,
    user: &User,
    stop: &CancellationToken,
) -> Result<Option<SourceFile>, ImportError> {
    let source = match job.data_type {
        // An earlier attempt downloaded the file and staged it: read it there, whichever worker did.
        DataType::Url if job.staged_path.is_some() => staged_file(ctx, job, user, stop).await?,
        DataType::Url => match download(ctx, job, user).await? {
            Some(file) => file,
            None => return Ok(None),
        },
        _ => staged_file(ctx, job, user, stop).await?,
    };
    let name = source.input.name();
    if ctx.settings.runtime.hooks.panic_on_file.as_deref() == Some(name) {
        panic!("test hook: panicking on {name}");
    }
    Ok(Some(source))
}

/// Test hook: waits before publishing (so that a test can kill the worker there), then maybe fails.
async fn test_hold(ctx: &JobContext) -> Result<(), ImportError> {
    let hold = ctx.settings.runtime.hooks.hold_before_publish_ms;
    if hold > 0 {
        tracing::warn!(hold_ms = hold, "holding before publish (test hook)");
        tokio::time::sleep(Duration::from_millis(hold)).await;
        if ctx.settings.runtime.hooks.fail_after_hold {
            return Err(ImportError::unknown("test hook: failing after the hold"));
        }
    }
    Ok(())
}

/// The import's warnings: one table's stand at the top, as the reference has them; several tables' are
/// listed by table, beside the source's own.
fn merge_warnings(
    mut warnings: serde_json::Map<String, serde_json::Value>,
    layers: &[LoadedLayer],
) -> serde_json::Map<String, serde_json::Value> {
    match layers {
        [only] => warnings.extend(only.warnings.clone()),
        many => {
            let by_table: serde_json::Map<String, serde_json::Value> = many
                .iter()
                .filter(|l| !l.warnings.is_empty())
                .map(|l| (l.proposed_name.clone(), l.warnings.clone().into()))
                .collect();
            if !by_table.is_empty() {
                warnings.insert("tables".into(), by_table.into());
            }
        }
    }
    warnings
}

pub async fn run(ctx: &JobContext, job: &ImportJob) -> Result<RunOutcome, ImportError> {
    // A previous attempt of this job may have died half way; its staging tables go first.
    table::drop_earlier_attempt_tables(&ctx.pool, job.id, job.attempts).await.map_err(internal)?;
    let user = users::find_by_id(&ctx.pool, job.user_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ImportError::new(codes::ACCOUNT_DISABLED, "the import's owner no longer exists"))?;
    // Claimed in the moment its account was disabled (which fails the account's imports).
    if user.disabled_at.is_some() {
        return Err(ImportError::new(codes::ACCOUNT_DISABLED, "the account was disabled by an operator"));
    }
    if let Some(sync_id) = job.synchronization_id {
        crate::queue::mark_syncing(&ctx.pool, sync_id, job.id, &ctx.owner).await.map_err(internal)?;
    }
    // Cancelled when this run ends or is dropped (timeout, cancel, lost lease): GDAL readers still at work
    // for it are killed, and blocking passes (unpacking, scans) stop.
    let readers_stop = CancellationToken::new();
    let _stop_readers = readers_stop.clone().drop_guard();
    let gdal = crate::formats::ogr::process::GdalReader::new(&ctx.services.gdal, readers_stop.clone());
    let report = |stage: Stage| {
        ctx.state.enter(match stage {
            Stage::Guessing => ImportState::Guessing,
            Stage::Importing => ImportState::Importing,
            Stage::Raster => {
                // Shown at once while the import runs; written again, awaited, before it ends.
                ctx.meter.found_raster();
                let (pool, id) = (ctx.pool.clone(), job.id);
                let slow = Duration::from_millis(ctx.settings.runtime.hooks.slow_state_writes_ms);
                tokio::spawn(async move {
                    tokio::time::sleep(slow).await;
                    if let Err(e) = crate::queue::mark_raster(&pool, id).await {
                        tracing::warn!(error = %e, "could not record that the import holds a raster");
                    }
                });
                return;
            }
            Stage::Counted(rows) => return ctx.meter.rows_total(rows),
            Stage::Loaded(rows) => return ctx.meter.rows_loaded(rows),
        });
    };
    let load = LoadContext {
        pool: &ctx.pool,
        job_id: job.id,
        attempt: job.attempts,
        user: &user,
        type_guessing: job.type_guessing,
        quoted_fields_guessing: job.quoted_fields_guessing,
        report: &report,
        max_record_bytes: ctx.settings.runtime.max_record_bytes.max(1 << 20),
        stop: readers_stop.clone(),
    };
    let (loaded, validators) = if job.data_type == DataType::Datasource {
        let layers = crate::connector::load_job(&load, &ctx.services.connectors).await?;
        (SourceLoad { layers, warnings: serde_json::Map::new() }, None)
    } else {
        let Some(source) = fetch_source(ctx, job, &user, &readers_stop).await? else {
            // Only sync runs send validators, so only they can find their source unchanged.
            let sync_id = job
                .synchronization_id
                .ok_or_else(|| ImportError::new(codes::DOWNLOAD_ERROR, "the server answered 304 Not Modified"))?;
            let recorded = sync::complete_unchanged(&ctx.pool, job.id, &ctx.owner, sync_id).await.map_err(internal)?;
            return Ok(if recorded { RunOutcome::Unchanged } else { RunOutcome::LeaseLost });
        };
        let runtime = &ctx.settings.runtime;
        let limits = SourceLimits {
            max_tables: runtime.max_tables_per_import.max(1),
            unpack: Limits { max_total_bytes: runtime.max_unpacked_bytes, ..Limits::default() },
            reserve: DiskReserve::new(&ctx.settings.data_dir, runtime.min_free_bytes),
        };
        let work_dir = ctx.services.staging.work_dir(job.id);
        (formats::load_source(&load, &gdal, &source.input, &work_dir, limits).await?, source.validators)
    };
    test_hold(ctx).await?;
    ctx.state.written().await;
    if ctx.meter.raster() {
        queue::mark_raster(&ctx.pool, job.id).await.map_err(internal)?;
    }
    let layers = loaded.layers;
    let warnings = merge_warnings(loaded.warnings, &layers);
    let target = match job.synchronization_id {
        Some(id) => queue::find_any_sync(&ctx.pool, id).await.map_err(internal)?.map(|s| SyncTarget {
            id: s.id,
            tables: s.table_names,
            name: s.name,
            validators: validators.clone(),
        }),
        None => None,
    };
    match publish::publish(&ctx.pool, job, &ctx.owner, &user, layers, warnings, target).await {
        Ok(p) => Ok(RunOutcome::Published(p)),
        Err(PublishError::LeaseLost) => Ok(RunOutcome::LeaseLost),
        Err(PublishError::Import(e)) => Err(e),
    }
}

/// The file the API (or an earlier attempt's download) staged for this job. In the default store it is
/// read where it lies. In a cloud store, delimited text and JSON are read from the store itself, pass
/// after pass, which its name and first bytes (one ranged GET) tell; anything else is copied into the
/// job's scratch directory first, under the disk's reserve, for readers that seek. (A `file://` store is
/// still copied whole, as before streaming came: streaming is for cloud stores, where the copy is a second
/// download of the whole file onto a disk that may be small.)
async fn staged_file(
    ctx: &JobContext,
    job: &ImportJob,
    user: &User,
    stop: &CancellationToken,
) -> Result<SourceFile, ImportError> {
    let staged = job
        .staged_path
        .as_deref()
        .ok_or_else(|| ImportError::new(codes::NOT_A_FILE, "the import has no file to read"))?;
    let staging = &ctx.services.staging;
    let size = staging.staged_size(staged).await?;
    if size > user.max_file_size as u64 {
        return Err(too_big(size, user.max_file_size));
    }
    let name = staged.rsplit('/').next().unwrap_or("upload").to_string();
    // A sync run's download carries the validators of its answer, for the sync to record.
    let validators = (job.data_type == DataType::Url && job.synchronization_id.is_some())
        .then(|| Validators { etag: job.staged_etag.clone(), last_modified: job.staged_last_modified.clone() });
    if staging.is_remote() {
        let object = staging.staged_object(staged, size, stop)?;
        let head = object.prefix(formats::HEAD_BYTES as u64).await?;
        if formats::reads_from_start(&name, &head) {
            tracing::info!(file = %name, size, "read from the staging store, without a local copy");
            return Ok(SourceFile { input: Input::object(object, name), validators });
        }
    }
    let reserve = DiskReserve::new(&ctx.settings.data_dir, ctx.settings.runtime.min_free_bytes);
    let scratch = staging.work_dir(job.id).join("staged");
    let path = staging.local_file(staged, &scratch, reserve.as_ref(), Some(ctx.meter.as_ref())).await?;
    Ok(SourceFile { input: Input::file(path, name), validators })
}

/// Downloads a URL import into the job's work area. None when a sync run finds the source unchanged.
async fn download(ctx: &JobContext, job: &ImportJob, user: &User) -> Result<Option<SourceFile>, ImportError> {
    let raw = job.source_url.as_deref().ok_or_else(|| ImportError::new(codes::NOT_A_FILE, "the import has no URL"))?;
    let url = url::Url::parse(raw).map_err(|e| ImportError::new(codes::DOWNLOAD_ERROR, format!("invalid URL: {e}")))?;
    let conditional = match job.synchronization_id {
        Some(id) => queue::sync_validators(&ctx.pool, id).await.map_err(internal)?,
        None => None,
    };
    let dir = ctx.services.staging.work_dir(job.id);
    let limits = SizeLimits {
        max_bytes: user.max_file_size.max(0) as u64,
        storage_left: users::storage_left(&ctx.pool, user).await.map_err(internal)?,
    };
    let reserve = DiskReserve::new(&ctx.settings.data_dir, ctx.settings.runtime.min_free_bytes);
    let meter = Some(ctx.meter.as_ref());
    match ctx.services.downloader.fetch(&url, &dir, limits, conditional.as_ref(), reserve.as_ref(), meter).await? {
        Fetched::NotModified => Ok(None),
        Fetched::File(d) => {
            stage_download(ctx, job, &d.path, &d.file_name, &d.validators).await?;
            ctx.state.enter(ImportState::Unpacking);
            Ok(Some(SourceFile { input: Input::file(d.path, d.file_name), validators: Some(d.validators) }))
        }
    }
}

/// Puts a URL import's download into a shared staging store and records it on the job, so that a retry
/// on any worker reads it instead of downloading again. Not with the default store: it is this machine's
/// disk, where the download already is. A sync run's validators are kept with it: a retry from the stored
/// file records them as a fresh download would.
async fn stage_download(
    ctx: &JobContext,
    job: &ImportJob,
    path: &Path,
    name: &str,
    validators: &Validators,
) -> Result<(), ImportError> {
    let staging = &ctx.services.staging;
    if staging.on_data_disk() {
        return Ok(());
    }
    let staged = staging.stage_file(job.id, path, name).await.map_err(|e| {
        tracing::warn!(error = %e, "the download could not be staged");
        ImportError::new(codes::FILE_IO, "the download could not be put into the staging store")
    })?;
    let validators = job.synchronization_id.is_some().then_some(validators);
    if !queue::record_staged_download(&ctx.pool, job.id, &ctx.owner, &staged, validators).await.map_err(internal)? {
        tracing::warn!("the job was no longer ours when recording its staged download");
    }
    Ok(())
}

pub fn too_big(size: u64, max: i64) -> ImportError {
    ImportError::new(
        codes::DATASET_TOO_BIG,
        format!("the file is {size} bytes and your account may import at most {max} bytes at once"),
    )
}

fn internal(e: sqlx::Error) -> ImportError {
    ImportError::unknown(format!("database error: {e}"))
}
