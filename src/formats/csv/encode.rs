//! The second pass: every row read again and written as binary COPY, in chunks handed to the loader.
//! Runs on a blocking thread; it stops as soon as the receiving side goes away.

use std::path::Path;

use tokio::sync::mpsc;

use super::plan::{CsvPlan, Emit, GeometrySource};
use super::reader::{Records, field_str};
use super::sniff::Dialect;
use crate::errors::{ImportError, codes};
use crate::load::copy::{CHUNK_BYTES, CopyBuffer};
use crate::load::geometry::{encode_pair, parse_geometry_text, point_pair, valid_lon_lat};
use crate::load::values::{self, Number};

/// Counts the encoder reports back.
#[derive(Debug, Default)]
pub struct EncodeStats {
    pub rows: u64,
    pub rows_with_geometry: u64,
}

pub fn encode_rows(
    path: &Path,
    dialect: &Dialect,
    plan: &CsvPlan,
    chunks: mpsc::Sender<Vec<u8>>,
) -> Result<EncodeStats, ImportError> {
    let mut records = Records::open(path, dialect)?;
    let mut record = csv::ByteRecord::new();
    records.next(&mut record)?; // the header
    let fields = 3 + plan.columns.len();
    let mut out = CopyBuffer::new();
    let mut stats = EncodeStats::default();
    let gone = || ImportError::new(codes::UNABLE_TO_LOAD, "the database stopped receiving rows");
    while records.next(&mut record)? {
        stats.rows += 1;
        let field = |i: usize| field_str(record.get(i).unwrap_or(b""));
        out.begin_row(fields);
        match plan.id_column {
            Some(i) => match values::parse_number(field(i).trim()) {
                Number::Int(id) => out.i64(id),
                // the scan saw an integer here; the file changed under us
                _ => {
                    return Err(ImportError::new(codes::FILE_IO, "the staged file changed while it was loaded"));
                }
            },
            None => out.i64(stats.rows as i64),
        }
        let mut geometry_failed = false;
        let pair = match plan.geometry {
            GeometrySource::None => None,
            GeometrySource::LatLon { lat, lon } => lon_lat(&field(lon), &field(lat)).map(|(x, y)| point_pair(x, y)),
            GeometrySource::Column(i) => {
                let raw = field(i);
                let parsed = parse_geometry_text(&raw).and_then(|g| encode_pair(&g));
                geometry_failed = parsed.is_none() && !values::is_null_marker(raw.trim());
                parsed
            }
        };
        match pair {
            Some((wgs84, mercator)) => {
                stats.rows_with_geometry += 1;
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
                    let fitted = kind.encode(&raw, &mut out);
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
            chunks.blocking_send(out.take()).map_err(|_| gone())?;
        }
    }
    chunks.blocking_send(out.finish()).map_err(|_| gone())?;
    Ok(stats)
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
