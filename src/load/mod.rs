//! From rows to a staging table: names, type guessing, geometry encoding, and binary COPY into a table of
//! the staging schema ([`crate::publish`] then moves it into the user's schema).

pub mod copy;
pub mod geojson;
pub mod geometry;
pub mod guess;
pub mod names;
pub mod table;
pub mod tabular;
pub mod values;
mod wkb_check;
mod wkt;

use sqlx::{Connection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::errors::ImportError;
use crate::queue::Rejections;
use crate::users::User;
use copy::CHUNKS_IN_FLIGHT;
use copy::EncodeStats;
pub use table::load_error;
use table::{IdOutcome, StagingTable};

/// How far a load has come. Readers know no jobs: the worker turns this into the job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The file is read a first time, to learn its columns and types.
    Guessing,
    /// Rows are being copied into the staging table.
    Importing,
    /// The source holds a raster (the job's status says so, whatever becomes of it).
    Raster,
    /// The first pass counted this many rows (features, elements) in the source: the progress's total.
    Counted(u64),
    /// A table's COPY ended with this many rows (the rows of a COPY under way PostgreSQL counts itself).
    Loaded(u64),
}

/// What a reader needs to load a layer.
pub struct LoadContext<'a> {
    pub pool: &'a PgPool,
    pub job_id: Uuid,
    /// The job's attempt number: staging tables of different attempts never share a name.
    pub attempt: i32,
    pub user: &'a User,
    pub type_guessing: bool,
    pub quoted_fields_guessing: bool,
    /// Told each stage the load reaches; the worker shows it as the job's state.
    pub report: &'a (dyn Fn(Stage) + Send + Sync),
    /// Largest record (CSV row, JSON element) a reader may hold, in bytes.
    pub max_record_bytes: u64,
    /// Cancelled when the job stops (cancel, timeout, lost lease, shutdown). Aborting the job's task does not
    /// stop work on blocking threads, so every blocking pass checks this as it goes (per archive entry and
    /// copied chunk, per read of a file) and returns [`stopped`] at once, writing nothing more.
    pub stop: CancellationToken,
}

/// A layer loaded into its staging table, waiting to be published.
#[derive(Debug)]
pub struct LoadedLayer {
    pub staging: table::StagingTable,
    /// The sanitized name the table should get, before collisions are settled.
    pub proposed_name: String,
    pub rows: i64,
    /// Things the user should know that did not stop the import.
    pub warnings: serde_json::Map<String, serde_json::Value>,
    /// What could not be kept as the source had it, for the rejections report.
    pub rejections: Rejections,
    /// For a raster table: its overview tables (published as `o_<factor>_<name>`). None for vector data.
    pub overviews: Option<Vec<Overview>>,
}

/// An overview table of a raster, `factor` times coarser than its table.
#[derive(Debug)]
pub struct Overview {
    pub factor: usize,
    pub staging: table::StagingTable,
}

/// What loading a staging table did.
pub struct Loaded {
    pub stats: EncodeStats,
    pub rows: u64,
    pub finished: Finished,
}

/// What the steps after the COPY did.
pub struct Finished {
    pub ids: IdOutcome,
    /// Invalid geometries made valid (or dropped, when nothing of the source's kind was left).
    pub repaired: Rejections,
}

/// The steps every load takes once its rows are in: invalid geometries repaired (only non-points can be
/// invalid), then the key and the spatial indexes.
pub async fn finish_staging(pool: &PgPool, staging: &StagingTable, non_points: bool) -> Result<Finished, ImportError> {
    let repaired = if non_points { staging.repair_geometries(pool).await? } else { Rejections::default() };
    let ids = staging.build_indexes(pool).await.map_err(load_error)?;
    Ok(Finished { ids, repaired })
}

impl Finished {
    /// The warnings these steps give, the same for every loader.
    pub fn warnings(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut w = serde_json::Map::new();
        if let IdOutcome::Renumbered { kept_as } = &self.ids {
            w.insert("cartodb_id_renumbered".into(), kept_as.clone().into());
        }
        if self.repaired.total > 0 {
            w.insert("invalid_geometries_repaired".into(), self.repaired.total.into());
        }
        w
    }
}

/// Creates `staging` and fills it with the binary COPY chunks `produce` sends (it runs on a blocking thread),
/// in one transaction; then repairs invalid geometries and builds the key and indexes. A producer error
/// aborts the COPY and is returned as is.
pub async fn load_into_staging<F>(
    ctx: &LoadContext<'_>,
    staging: &StagingTable,
    produce: F,
) -> Result<Loaded, ImportError>
where
    F: FnOnce(mpsc::Sender<Vec<u8>>) -> Result<EncodeStats, ImportError> + Send + 'static,
{
    let mut conn = ctx.pool.acquire().await.map_err(load_error)?;
    let mut tx = conn.begin().await.map_err(load_error)?;
    let (sender, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let producer = tokio::task::spawn_blocking(move || produce(sender));
    let (stats, rows) = staging.create_and_copy(&mut tx, chunks, producer, panicked).await?;
    tx.commit().await.map_err(load_error)?;
    (ctx.report)(Stage::Loaded(rows));
    let finished = finish_staging(ctx.pool, staging, stats.non_points).await?;
    Ok(Loaded { stats, rows, finished })
}

impl Loaded {
    /// The warnings every loader reports the same way.
    pub fn warnings(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut warnings = self.finished.warnings();
        if self.stats.unreadable_geometries > 0 {
            warnings.insert("unreadable_geometries".into(), self.stats.unreadable_geometries.into());
        }
        warnings
    }

    /// Everything the load rejected: the readers' rejections, then the repairs'.
    pub fn rejections(&self) -> Rejections {
        let mut all = self.stats.rejections.clone();
        all.extend(self.finished.repaired.clone());
        all
    }
}

/// Runs blocking file work off the async threads; a panic there fails this import only.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImportError> + Send + 'static,
) -> Result<T, ImportError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(panicked(e)))
}

pub fn panicked(e: tokio::task::JoinError) -> ImportError {
    ImportError::unknown(format!("the reader stopped unexpectedly: {e}"))
}
