//! Sources whose values arrive as text (CSV, spreadsheets, JSON arrays, GeoJSON properties) share one
//! pipeline: a first pass observes every value ([`ScanBuilder`]), the [`plan`] picks names, types and the
//! geometry, and a second pass writes each row as binary COPY ([`RowEncoder`]).

pub mod plan;
mod scan;
mod second_pass;

use std::borrow::Cow;

use geo_types::{Geometry, Point};
use tokio::sync::mpsc;

pub use super::copy::EncodeStats;
use super::copy::{CHUNK_BYTES, CopyBuffer};
use super::geometry::{
    SRID_WEBMERCATOR, SRID_WGS84, ewkb_len, parse_geometry_text_within, point_pair, valid_lon_lat, write_ewkb,
};
use super::guess::ValueKind;
use super::values::{self, Number};
use crate::errors::{ImportError, codes};
pub use plan::{Emit, GeometrySource, GuessOptions, TablePlan, plan};
pub use scan::{MAX_SOURCE_COLUMNS, POSITION_BYTES, Scan, ScanBuilder, check_width};
pub use second_pass::{load_planned, plan_for};

/// Writes rows of a planned table as binary COPY chunks.
pub struct RowEncoder<'a> {
    plan: &'a TablePlan,
    /// The table column each emit writes, and the one its misfits go to: for the rejections report.
    emit_columns: Vec<(&'a str, Option<&'a str>)>,
    out: CopyBuffer,
    chunks: mpsc::Sender<Vec<u8>>,
    stats: EncodeStats,
}

impl<'a> RowEncoder<'a> {
    pub fn new(plan: &'a TablePlan, chunks: mpsc::Sender<Vec<u8>>) -> Self {
        let mut next = 0;
        let emit_columns = plan
            .emits
            .iter()
            .map(|emit| {
                let name = |i: usize| plan.columns.get(i).map_or("", |c| c.name.as_str());
                let names = match emit {
                    Emit::Value { overflow: true, .. } => (name(next), Some(name(next + 1))),
                    _ => (name(next), None),
                };
                next += 1 + usize::from(names.1.is_some());
                names
            })
            .collect();
        RowEncoder { plan, emit_columns, out: CopyBuffer::new(), chunks, stats: EncodeStats::default() }
    }

    /// Writes one row: `field(i)` is the text of source column `i` (empty when missing); `feature` is
    /// the row's own geometry, for sources that have one.
    pub fn row<'v>(
        &mut self,
        field: impl Fn(usize) -> Cow<'v, str>,
        feature: Option<&Geometry<f64>>,
    ) -> Result<(), ImportError> {
        let plan = self.plan;
        self.stats.rows += 1;
        self.out.begin_row(3 + plan.columns.len());
        match plan.id_column {
            Some(i) => match values::parse_number(field(i).trim()) {
                Number::Int(id) => self.out.i64(id),
                // the scan saw an integer here: the source changed under us
                _ => return Err(ImportError::new(codes::FILE_IO, "the source changed while it was loaded")),
            },
            None => self.out.i64(self.stats.rows as i64),
        }
        let mut geometry_failed = false;
        match plan.geometry {
            GeometrySource::None => {
                self.geometry(None)?;
            }
            GeometrySource::LatLon { lat, lon } => {
                let (lon, lat) = (field(lon), field(lat));
                let point = lon_lat(&lon, &lat).map(|(x, y)| Geometry::Point(Point::new(x, y)));
                if point.is_none() && !(is_blank(&lon) && is_blank(&lat)) {
                    self.stats.rejections.add(self.stats.rows, "the_geom", || {
                        let reason = "the longitude and latitude are not a position on Earth: the row has no geometry";
                        (Some(format!("{}, {}", lon.trim(), lat.trim())), reason.into())
                    });
                }
                self.geometry(point.as_ref())?;
            }
            GeometrySource::Column(i) => {
                let raw = field(i);
                let parsed = parse_geometry_text_within(&raw, plan.max_geometry_positions);
                geometry_failed = !self.geometry(parsed.as_ref())? && !values::is_null_marker(raw.trim());
                if geometry_failed {
                    let kept_in = plan.emits.iter().zip(&self.emit_columns).find_map(|(e, c)| match e {
                        Emit::GeometryOverflow { .. } => Some(c.0),
                        _ => None,
                    });
                    self.stats.rejections.add(self.stats.rows, "the_geom", || {
                        let reason = match kept_in {
                            Some(c) => format!("not a geometry we can read: the text is kept in {c}"),
                            None => "not a geometry we can read".into(),
                        };
                        (Some(raw.to_string()), reason)
                    });
                }
            }
            GeometrySource::Feature => {
                // A feature's geometry PostGIS cannot hold: the row goes without it, counted.
                let kept = feature.filter(|g| super::geometry::fits(g));
                if feature.is_some() && kept.is_none() {
                    self.stats.unreadable_geometries += 1;
                    self.stats.rejections.add(self.stats.rows, "the_geom", || {
                        (None, "a geometry PostGIS cannot hold (too many positions, or not a finite number): the row has none".into())
                    });
                }
                self.geometry(kept)?;
            }
        }
        for (i, emit) in plan.emits.iter().enumerate() {
            let column = self.emit_columns[i];
            match *emit {
                Emit::Value { source, kind: ValueKind::Text, overflow: _ } => {
                    let raw = field(source);
                    if raw.is_empty() { self.out.null() } else { self.text(&raw)? }
                }
                Emit::Value { source, kind, overflow } => {
                    let raw = field(source);
                    let fitted = kind.encode(&raw, &mut self.out);
                    if !fitted {
                        self.out.null();
                        let (name, misfits) = column;
                        self.stats.rejections.add(self.stats.rows, name, || {
                            let kept = misfits.map(|m| format!(": the text is kept in {m}")).unwrap_or_default();
                            (Some(raw.to_string()), format!("not a {}{kept}", kind.pg_type().sql()))
                        });
                    }
                    if overflow {
                        if fitted { self.out.null() } else { self.text(&raw)? }
                    }
                }
                Emit::GeometryOverflow { source } => {
                    if geometry_failed {
                        self.text(&field(source))?
                    } else {
                        self.out.null()
                    }
                }
            }
        }
        if self.out.len() >= CHUNK_BYTES {
            send(&self.chunks, self.out.take())?;
        }
        Ok(())
    }

    /// Writes a text field. One longer than a chunk goes out in pieces as it is copied, so that a large value
    /// is not held twice (by the reader and here).
    fn text(&mut self, v: &str) -> Result<(), ImportError> {
        if v.len() <= CHUNK_BYTES || v.as_bytes().contains(&0) {
            self.out.text(v);
            return Ok(());
        }
        self.out.field_header(v.len());
        for piece in v.as_bytes().chunks(CHUNK_BYTES) {
            self.out.raw(piece);
            if self.out.len() >= CHUNK_BYTES {
                send(&self.chunks, self.out.take())?;
            }
        }
        Ok(())
    }

    /// Writes both geometry columns of a row from `geometry` (nulls without one); returns whether it did.
    /// Points take the fast path; any other geometry is written as it is encoded, chunks going out as they
    /// fill, so that a large geometry's EWKB is never held whole (twice, with the web-mercator copy).
    fn geometry(&mut self, geometry: Option<&Geometry<f64>>) -> Result<bool, ImportError> {
        let len = geometry.map(ewkb_len).filter(|len| *len <= i32::MAX as usize);
        let (Some(g), Some(len)) = (geometry, len) else {
            self.out.null();
            self.out.null();
            return Ok(false);
        };
        self.stats.rows_with_geometry += 1;
        if let Geometry::Point(p) = g {
            let (wgs84, mercator) = point_pair(p.x(), p.y());
            self.out.ewkb(&wgs84);
            self.out.ewkb(&mercator);
            return Ok(true);
        }
        self.stats.non_points = true;
        for srid in [SRID_WGS84, SRID_WEBMERCATOR] {
            self.out.field_header(len);
            write_ewkb(g, srid, &mut |bytes| {
                self.out.raw(bytes);
                if self.out.len() >= CHUNK_BYTES {
                    send(&self.chunks, self.out.take())?;
                }
                Ok(())
            })?;
        }
        Ok(true)
    }

    /// Sends the last chunk; returns what was written.
    pub fn finish(self) -> Result<EncodeStats, ImportError> {
        send(&self.chunks, self.out.finish())?;
        Ok(self.stats)
    }
}

/// Hands a chunk to the COPY. A chunk that a large row made larger than two chunks goes in pieces of one,
/// so that the chunks in flight hold a few MiB, whatever the rows.
fn send(chunks: &mpsc::Sender<Vec<u8>>, chunk: Vec<u8>) -> Result<(), ImportError> {
    if chunk.len() <= 2 * CHUNK_BYTES {
        return chunks.blocking_send(chunk).map_err(|_| receiver_gone());
    }
    for piece in chunk.chunks(CHUNK_BYTES) {
        chunks.blocking_send(piece.to_vec()).map_err(|_| receiver_gone())?;
    }
    Ok(())
}

pub fn receiver_gone() -> ImportError {
    ImportError::new(codes::UNABLE_TO_LOAD, "the database stopped receiving rows")
}

fn is_blank(v: &str) -> bool {
    values::is_null_marker(v.trim())
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
