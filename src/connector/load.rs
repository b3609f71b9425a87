//! From a producer of binary COPY chunks to a staging table with its indexes, for both providers: the
//! table is created and filled in one transaction (as files are), then what the source's types could not
//! express directly is fixed in that same transaction (a time zone to apply, a type the user asked for),
//! and the warnings are gathered.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::mpsc;

use crate::db::quote_ident;
use crate::errors::{ImportError, codes};
use crate::load::table::StagingTable;
use crate::load::{LoadContext, LoadedLayer};
use crate::load::{finish_staging, load_error};
use crate::queue::Rejections;

/// A row's geometry: `the_geom` and `the_geom_webmercator` as EWKB when the row has one, and the text of
/// a geometry-named value that was no geometry (kept in the companion column).
pub type RowGeometry = (Option<(Vec<u8>, Vec<u8>)>, Option<String>);

/// What a producer counted while reading.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub rows: u64,
    /// The source had more rows than the user's limit; the table stops at the limit.
    pub truncated: bool,
    /// Zero or partial dates ('0000-00-00', '2020-00-00') stored as NULL, per column.
    pub zero_dates: BTreeMap<String, u64>,
    /// Values of the geometry-named column that are not geometries (kept in the companion column).
    pub not_geometries: u64,
    /// Spatial values we could not place on Earth (an unknown SRID, broken WKB): `the_geom` is NULL.
    pub unreadable_geometries: u64,
    /// Values the source sent that do not fit their column (e.g. invalid JSON), stored as NULL.
    pub invalid_values: BTreeMap<String, u64>,
    /// Some geometry is not a point: only those can be invalid, so only then is the table checked.
    pub non_points: bool,
    /// Each of the above, row by row, for the rejections report.
    pub rejections: Rejections,
}

impl Tally {
    /// A spatial value that could not be placed on Earth: the row's `the_geom` is NULL.
    pub fn unreadable_geometry(&mut self, wkb: &[u8]) {
        self.unreadable_geometries += 1;
        self.rejections.add(self.rows, "the_geom", || {
            let why = "a spatial value that cannot be placed on Earth (unknown SRID or broken WKB): the row has none";
            (Some(hex::encode(&wkb[..wkb.len().min(crate::queue::rejections::VALUE_CHARS)])), why.into())
        });
    }

    /// A value of the geometry-named column that is no geometry, kept as text in its `_invalid` companion.
    pub fn not_geometry(&mut self, text: &str) {
        self.not_geometries += 1;
        self.rejections.add(self.rows, "the_geom", || {
            (Some(text.to_string()), "not a geometry we can read: the text is kept in the _invalid column".into())
        });
    }

    /// A value that does not fit its column, stored as NULL.
    pub fn invalid_value(&mut self, column: &str, value: &[u8], why: &str) {
        *self.invalid_values.entry(column.to_string()).or_default() += 1;
        self.rejections.add(self.rows, column, || {
            // Values arrive in the source's binary form: text is shown as text, anything else as hex.
            let shown = match std::str::from_utf8(value) {
                Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
                _ => hex::encode(&value[..value.len().min(crate::queue::rejections::VALUE_CHARS)]),
            };
            (Some(shown), format!("{why}: stored as NULL"))
        });
    }

    /// A zero or partial date, stored as NULL.
    pub fn zero_date(&mut self, column: &str, value: impl FnOnce() -> String) {
        *self.zero_dates.entry(column.to_string()).or_default() += 1;
        self.rejections.add(self.rows, column, || (Some(value()), "a zero or partial date: stored as NULL".into()));
    }

    /// Both geometries of a parsed source geometry, noting whether it needs the validity check.
    pub fn geometry_pair(&mut self, g: &geo_types::Geometry<f64>) -> Option<(Vec<u8>, Vec<u8>)> {
        self.non_points |= !matches!(g, geo_types::Geometry::Point(_));
        crate::load::geometry::encode_pair(g)
    }
}

/// How the loaded table is finished before its transaction commits.
#[derive(Debug, Default, Clone)]
pub struct Finishing {
    /// Columns loaded as `timestamp` whose values are wall-clock times of this zone: they become
    /// `timestamptz` (the zone is one PostgreSQL knows; fixed offsets are applied while encoding instead).
    pub zoned_timestamps: Vec<(String, String)>,
    /// Columns the user asked to have another type (`columns` parameter).
    pub retyped: Vec<(String, String)>,
    /// The companion of a geometry-named column, dropped when no value needed it.
    pub companion: Option<String>,
    /// Columns kept as `timestamp` (wall-clock times) because PostgreSQL does not know the source's zone,
    /// with that zone: the status says so.
    pub unzoned_datetimes: Vec<(String, String)>,
}

/// Creates `staging`, streams the producer's chunks into it, finishes and indexes it.
pub async fn load(
    ctx: &LoadContext<'_>,
    mut staging: StagingTable,
    finishing: Finishing,
    chunks: mpsc::Receiver<Vec<u8>>,
    producer: tokio::task::JoinHandle<Result<Tally, ImportError>>,
    proposed_name: String,
    max_rows: i64,
) -> Result<LoadedLayer, ImportError> {
    let started = std::time::Instant::now();
    let mut conn = ctx.pool.acquire().await.map_err(load_error)?;
    let mut tx = conn.begin().await.map_err(load_error)?;
    let (tally, copied) = staging
        .create_and_copy(&mut tx, chunks, producer, |e| {
            ImportError::unknown(format!("the connector's reader stopped unexpectedly: {e}"))
        })
        .await?;
    (ctx.report)(crate::load::Stage::Loaded(copied));
    let t = staging.qualified();
    for (column, zone) in &finishing.zoned_timestamps {
        let c = quote_ident(column);
        let sql = format!(
            "ALTER TABLE {t} ALTER COLUMN {c} TYPE timestamptz USING {c} AT TIME ZONE {}",
            crate::db::quote_literal(zone)
        );
        sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(load_error)?;
    }
    for (column, pg_type) in &finishing.retyped {
        let c = quote_ident(column);
        let sql = format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE {pg_type} USING {c}::{pg_type}");
        if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await {
            let said = e.as_database_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            return Err(ImportError::new(
                codes::CONNECTOR_ERROR,
                format!("the column {column} cannot become {pg_type} as the columns parameter asks: {said}"),
            ));
        }
    }
    if let Some(companion) = finishing.companion.as_ref().filter(|_| tally.not_geometries == 0) {
        sqlx::query(AssertSqlSafe(format!("ALTER TABLE {t} DROP COLUMN {}", quote_ident(companion))))
            .execute(&mut *tx)
            .await
            .map_err(load_error)?;
        staging.columns.retain(|c| &c.name != companion);
    }
    tx.commit().await.map_err(load_error)?;
    drop(conn);
    let copy_secs = started.elapsed().as_secs_f64();
    if let Some(limit) = ctx.user.max_rows_per_table.filter(|limit| copied as i64 > *limit) {
        return Err(ImportError::new(
            codes::TOO_MANY_ROWS,
            format!("the source has more than {limit} rows, the most your account allows in one table"),
        ));
    }
    // The same steps files take: a source database may hold self-intersecting polygons and the like.
    let indexing = std::time::Instant::now();
    let finished = finish_staging(ctx.pool, &staging, tally.non_points).await?;
    let mut warnings = finished.warnings();
    warnings.extend(source_warnings(&tally, &finishing, max_rows));
    tracing::info!(
        rows = copied,
        truncated = tally.truncated,
        copy_secs,
        index_secs = indexing.elapsed().as_secs_f64(),
        "connector load finished"
    );
    let mut rejections = tally.rejections;
    rejections.extend(finished.repaired);
    Ok(LoadedLayer { staging, proposed_name, rows: copied as i64, warnings, rejections, overviews: None })
}

/// What the reading found that the user should know.
fn source_warnings(tally: &Tally, finishing: &Finishing, max_rows: i64) -> serde_json::Map<String, serde_json::Value> {
    let mut w = serde_json::Map::new();
    if tally.truncated {
        w.insert("max_rows_per_connection".into(), max_rows.into());
    }
    if !tally.zero_dates.is_empty() {
        w.insert("zero_dates".into(), serde_json::json!(tally.zero_dates));
    }
    let mut invalid = tally.invalid_values.clone();
    if let (Some(companion), n @ 1..) = (&finishing.companion, tally.not_geometries) {
        invalid.insert(companion.trim_end_matches("_invalid").to_string(), n);
    }
    if !invalid.is_empty() {
        w.insert("invalid_values".into(), serde_json::json!(invalid));
    }
    if tally.unreadable_geometries > 0 {
        w.insert("unreadable_geometries".into(), tally.unreadable_geometries.into());
    }
    if !finishing.unzoned_datetimes.is_empty() {
        let columns: serde_json::Map<String, serde_json::Value> =
            finishing.unzoned_datetimes.iter().map(|(c, z)| (c.clone(), z.clone().into())).collect();
        w.insert("datetimes_in_unknown_zone".into(), columns.into());
    }
    w
}

/// Sends a chunk to the COPY; false when the COPY side has gone (it failed; the producer should stop).
pub async fn send(sender: &mpsc::Sender<Vec<u8>>, chunk: Vec<u8>) -> bool {
    sender.send(chunk).await.is_ok()
}
