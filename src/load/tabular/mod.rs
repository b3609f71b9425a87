//! Sources whose values arrive as text (CSV, spreadsheets, JSON arrays, GeoJSON properties) share one
//! pipeline: a first pass observes every value ([`ScanBuilder`]), the [`plan`] picks names, types and the
//! geometry, and a second pass writes each row as binary COPY ([`RowEncoder`]).

pub mod plan;

use std::borrow::Cow;

use geo_types::Geometry;
use tokio::sync::mpsc;

use super::copy::{CHUNK_BYTES, CopyBuffer};
use super::geometry::{encode_pair, parse_geometry_text, point_pair, valid_lon_lat};
use super::guess::{ColumnStats, GEOMETRY_COLUMN_NAMES};
use super::names::sanitize_column_name;
use super::values::{self, Number};
use crate::errors::{ImportError, codes};
pub use plan::{Emit, GeometrySource, GuessOptions, TablePlan, plan};

/// PostgreSQL allows 1600 columns; three are ours.
pub const MAX_SOURCE_COLUMNS: usize = 1600 - 3;

/// What the first pass learned.
#[derive(Debug)]
pub struct Scan {
    /// Column names as found, extended with `field_N` for columns only some rows have.
    pub headers: Vec<String>,
    pub stats: Vec<ColumnStats>,
    pub rows: u64,
    /// Rows with fewer fields than the header (the missing ones load as NULL).
    pub short_rows: u64,
}

/// Builds a [`Scan`] while a source is read.
pub struct ScanBuilder {
    scan: Scan,
    geometry_candidate: Vec<bool>,
    max_rows: Option<i64>,
}

impl ScanBuilder {
    pub fn new(headers: Vec<String>, max_rows: Option<i64>) -> Result<ScanBuilder, ImportError> {
        check_width(headers.len())?;
        let mut builder = ScanBuilder {
            scan: Scan { headers: Vec::new(), stats: Vec::new(), rows: 0, short_rows: 0 },
            geometry_candidate: Vec::new(),
            max_rows,
        };
        for h in headers {
            builder.push_column(h);
        }
        Ok(builder)
    }

    fn push_column(&mut self, name: String) -> usize {
        self.geometry_candidate.push(GEOMETRY_COLUMN_NAMES.contains(&sanitize_column_name(&name).as_str()));
        self.scan.headers.push(name);
        self.scan.stats.push(ColumnStats::default());
        self.scan.headers.len() - 1
    }

    /// Adds a column met after the start (a wider row, a new JSON key); returns its index.
    pub fn add_column(&mut self, name: String) -> Result<usize, ImportError> {
        check_width(self.scan.headers.len() + 1)?;
        Ok(self.push_column(name))
    }

    pub fn columns(&self) -> usize {
        self.scan.headers.len()
    }

    /// Counts a row; fails with 6668 once the user's row limit is passed.
    pub fn begin_row(&mut self) -> Result<(), ImportError> {
        self.scan.rows += 1;
        if let Some(max) = self.max_rows.filter(|max| self.scan.rows > *max as u64) {
            return Err(ImportError::new(
                codes::TOO_MANY_ROWS,
                format!("the data has more than {max} rows, the most your account allows in one table"),
            ));
        }
        Ok(())
    }

    pub fn short_row(&mut self) {
        self.scan.short_rows += 1;
    }

    pub fn observe(&mut self, column: usize, value: &str) {
        self.scan.stats[column].observe(value);
        if self.geometry_candidate[column] {
            self.scan.stats[column].observe_geometry(value);
        }
    }

    pub fn finish(self) -> Scan {
        self.scan
    }
}

pub fn check_width(columns: usize) -> Result<(), ImportError> {
    if columns > MAX_SOURCE_COLUMNS {
        return Err(ImportError::new(
            codes::TOO_MANY_COLUMNS,
            format!("the data has {columns} columns; a table can hold at most {MAX_SOURCE_COLUMNS} of them"),
        ));
    }
    Ok(())
}

/// Counts the encoder reports back.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct EncodeStats {
    pub rows: u64,
    pub rows_with_geometry: u64,
    /// Whether any geometry other than a point was written (only those can be invalid).
    pub non_points: bool,
}

/// Writes rows of a planned table as binary COPY chunks.
pub struct RowEncoder<'a> {
    plan: &'a TablePlan,
    out: CopyBuffer,
    chunks: mpsc::Sender<Vec<u8>>,
    stats: EncodeStats,
}

impl<'a> RowEncoder<'a> {
    pub fn new(plan: &'a TablePlan, chunks: mpsc::Sender<Vec<u8>>) -> Self {
        RowEncoder { plan, out: CopyBuffer::new(), chunks, stats: EncodeStats::default() }
    }

    /// Writes one row: `field(i)` is the text of source column `i` (empty when missing); `feature` is
    /// the row's own geometry, for sources that have one.
    pub fn row<'v>(
        &mut self,
        field: impl Fn(usize) -> Cow<'v, str>,
        feature: Option<&Geometry<f64>>,
    ) -> Result<(), ImportError> {
        let plan = self.plan;
        let out = &mut self.out;
        self.stats.rows += 1;
        out.begin_row(3 + plan.columns.len());
        match plan.id_column {
            Some(i) => match values::parse_number(field(i).trim()) {
                Number::Int(id) => out.i64(id),
                // the scan saw an integer here: the source changed under us
                _ => return Err(ImportError::new(codes::FILE_IO, "the source changed while it was loaded")),
            },
            None => out.i64(self.stats.rows as i64),
        }
        let mut geometry_failed = false;
        let pair = match plan.geometry {
            GeometrySource::None => None,
            GeometrySource::LatLon { lat, lon } => lon_lat(&field(lon), &field(lat)).map(|(x, y)| point_pair(x, y)),
            GeometrySource::Column(i) => {
                let raw = field(i);
                let parsed = parse_geometry_text(&raw);
                self.stats.non_points |= parsed.as_ref().is_some_and(|g| !matches!(g, Geometry::Point(_)));
                let pair = parsed.and_then(|g| encode_pair(&g));
                geometry_failed = pair.is_none() && !values::is_null_marker(raw.trim());
                pair
            }
            GeometrySource::Feature => {
                self.stats.non_points |= feature.is_some_and(|g| !matches!(g, Geometry::Point(_)));
                feature.and_then(encode_pair)
            }
        };
        match pair {
            Some((wgs84, mercator)) => {
                self.stats.rows_with_geometry += 1;
                out.ewkb(&wgs84);
                out.ewkb(&mercator);
            }
            None => {
                out.null();
                out.null();
            }
        }
        for emit in &plan.emits {
            match *emit {
                Emit::Value { source, kind, overflow } => {
                    let raw = field(source);
                    let fitted = kind.encode(&raw, out);
                    if !fitted {
                        out.null();
                    }
                    if overflow {
                        if fitted { out.null() } else { out.text(&raw) }
                    }
                }
                Emit::GeometryOverflow { source } => {
                    if geometry_failed {
                        out.text(&field(source))
                    } else {
                        out.null()
                    }
                }
            }
        }
        if out.len() >= CHUNK_BYTES {
            let chunk = out.take();
            self.chunks.blocking_send(chunk).map_err(|_| receiver_gone())?;
        }
        Ok(())
    }

    /// Sends the last chunk; returns what was written.
    pub fn finish(self) -> Result<EncodeStats, ImportError> {
        self.chunks.blocking_send(self.out.finish()).map_err(|_| receiver_gone())?;
        Ok(self.stats)
    }
}

pub fn receiver_gone() -> ImportError {
    ImportError::new(codes::UNABLE_TO_LOAD, "the database stopped receiving rows")
}

fn lon_lat(lon: &str, lat: &str) -> Option<(f64, f64)> {
    let number = |v: &str| match values::parse_number(v.trim()) {
        Number::Int(i) => Some(i as f64),
        Number::Float(f) => Some(f),
        _ => None,
    };
    let (x, y) = (number(lon)?, number(lat)?);
    valid_lon_lat(x, y).then_some((x, y))
}
