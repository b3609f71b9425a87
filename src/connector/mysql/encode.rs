//! Writing MySQL rows as binary COPY rows of the staging table: `cartodb_id`, the two geometries, then
//! the data columns, each value converted by its column's [`Reading`].

use encoding_rs::Encoding;
use sqlx::Row;
use sqlx::mysql::MySqlRow;

use super::columns::{IntTarget, Reading};
use super::values::{self, Moment};
use crate::connector::load::{RowGeometry, Tally};
use crate::connector::{pgbinary, text};
use crate::load::copy::CopyBuffer;
use crate::load::geometry::{self, SRID_WGS84};

/// A data column: where it is in the result, how to read it, and its name (for the warnings).
#[derive(Debug, Clone)]
pub struct Field {
    pub source: usize,
    pub reading: Reading,
    pub name: String,
}

#[derive(Debug, Clone)]
pub enum GeometryPlan {
    None,
    Spatial(usize),
    Named { source: usize, reading: Reading },
    LatLon { lat: (usize, Reading), lon: (usize, Reading) },
}

/// How every row of the result is written.
#[derive(Debug, Clone)]
pub struct RowPlan {
    pub id: Option<(usize, Reading)>,
    pub geometry: GeometryPlan,
    pub fields: Vec<Field>,
    /// Whether the row ends with the geometry-named column's companion.
    pub companion: bool,
    /// Text arrives as stored, in this encoding (the `encoding` parameter), instead of as UTF-8.
    pub encoding: Option<&'static Encoding>,
}

/// The bytes of a value; None for NULL. Decoded directly rather than as `Option`, because the driver
/// reports zero dates as NULL, and we want to count them.
fn raw(row: &MySqlRow, i: usize) -> Option<&[u8]> {
    let value = row.try_get_raw(i).ok()?;
    <&[u8] as sqlx::Decode<sqlx::MySql>>::decode(value).ok()
}

impl RowPlan {
    pub fn field_count(&self) -> usize {
        3 + self.fields.len() + usize::from(self.companion)
    }

    /// Writes one row; `number` is its position, the key when the source has none.
    pub fn encode_row(&self, row: &MySqlRow, number: i64, out: &mut CopyBuffer, tally: &mut Tally) {
        out.begin_row(self.field_count());
        let id = self.id.and_then(|(i, r)| raw(row, i).and_then(|b| number_of(b, r))).filter(|v| v.fract() == 0.0);
        out.i64(id.map_or(number, |v| v as i64));
        let (pair, misfit) = self.geometry(row, tally);
        match pair {
            Some((wgs84, mercator)) => {
                out.ewkb(&wgs84);
                out.ewkb(&mercator);
            }
            None => {
                out.null();
                out.null();
            }
        }
        for f in &self.fields {
            self.write(f, raw(row, f.source), out, tally);
        }
        if self.companion {
            match misfit {
                Some(text) => out.text(&text),
                None => out.null(),
            }
        }
    }

    /// `the_geom` and `the_geom_webmercator` of a row, and the text of a geometry-named value that is no
    /// geometry.
    fn geometry(&self, row: &MySqlRow, tally: &mut Tally) -> RowGeometry {
        match &self.geometry {
            GeometryPlan::None => (None, None),
            GeometryPlan::Spatial(i) => {
                let Some(b) = raw(row, *i) else { return (None, None) };
                let pair = values::geometry(b).and_then(|(srid, wkb)| spatial_pair(wkb, srid, tally));
                if pair.is_none() {
                    tally.unreadable_geometry(b);
                }
                (pair, None)
            }
            GeometryPlan::Named { source, reading } => {
                let Some(b) = raw(row, *source) else { return (None, None) };
                let parsed = match reading {
                    Reading::Bytes => geometry::parse_wkb(b, 0)
                        .or_else(|| std::str::from_utf8(b).ok().and_then(geometry::parse_geometry_text)),
                    _ => geometry::parse_geometry_text(&text::decode(b, self.encoding)),
                };
                match parsed.and_then(|g| tally.geometry_pair(&g)) {
                    Some(pair) => (Some(pair), None),
                    None if b.iter().all(u8::is_ascii_whitespace) => (None, None),
                    None => {
                        let kept = match reading {
                            Reading::Bytes if std::str::from_utf8(b).is_err() => hex::encode(b),
                            _ => text::decode(b, self.encoding).into_owned(),
                        };
                        tally.not_geometry(&kept);
                        (None, Some(kept))
                    }
                }
            }
            GeometryPlan::LatLon { lat, lon } => {
                let lat = raw(row, lat.0).and_then(|b| number_of(b, lat.1));
                let lon = raw(row, lon.0).and_then(|b| number_of(b, lon.1));
                match (lat, lon) {
                    (Some(lat), Some(lon)) if geometry::valid_lon_lat(lon, lat) => {
                        (Some(geometry::point_pair(lon, lat)), None)
                    }
                    _ => (None, None),
                }
            }
        }
    }

    fn write(&self, f: &Field, bytes: Option<&[u8]>, out: &mut CopyBuffer, tally: &mut Tally) {
        let Some(b) = bytes else {
            out.null();
            return;
        };
        let mut zero_date = || {
            let shown = if matches!(f.reading, Reading::Year) { "0000".into() } else { values::moment_text(b) };
            tally.zero_date(&f.name, || shown)
        };
        let written = match f.reading {
            Reading::Bool => {
                out.bool(b.iter().any(|x| *x != 0));
                true
            }
            Reading::Int { unsigned, target } => {
                values::integer(b, unsigned).is_some_and(|v| write_int(v, target, out))
            }
            Reading::Float => values::float(b).map(|v| out.bytes(&v.to_be_bytes())).is_some(),
            Reading::Double => values::double(b).map(|v| out.f64(v)).is_some(),
            Reading::Decimal => {
                std::str::from_utf8(b).ok().and_then(pgbinary::numeric).map(|n| out.bytes(&n)).is_some()
            }
            Reading::Year => match values::integer(b, true) {
                Some(0) => {
                    zero_date();
                    out.null();
                    true
                }
                Some(y) => i16::try_from(y).map(|y| out.bytes(&y.to_be_bytes())).is_ok(),
                None => false,
            },
            Reading::Date | Reading::DateTime { .. } | Reading::Timestamp => match values::moment(b) {
                Some(Moment::Zero) => {
                    zero_date();
                    out.null();
                    true
                }
                Some(Moment::At { days, micros }) => {
                    match f.reading {
                        Reading::Date => out.date(days),
                        Reading::DateTime { offset: Some(secs) } => {
                            out.timestamp(Moment::pg_micros(days, micros) - i64::from(secs) * 1_000_000)
                        }
                        _ => out.timestamp(Moment::pg_micros(days, micros)),
                    }
                    true
                }
                None => false,
            },
            Reading::Time => values::duration(b).map(|us| out.bytes(&pgbinary::interval(us))).is_some(),
            Reading::Bits { wide } => {
                let v = values::bits(b);
                match i64::try_from(v) {
                    Ok(small) if !wide => out.i64(small),
                    _ => out.bytes(&pgbinary::numeric(&v.to_string()).unwrap_or_default()),
                }
                true
            }
            Reading::Text => {
                out.text(&text::decode(b, self.encoding));
                true
            }
            Reading::Json => match std::str::from_utf8(b) {
                Ok(s) if serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok() && !s.contains("\\u0000") => {
                    out.bytes(&pgbinary::jsonb(s));
                    true
                }
                _ => false,
            },
            Reading::Bytes => {
                out.bytes(b);
                true
            }
            Reading::Spatial => {
                match values::geometry(b).and_then(|(srid, wkb)| values::ewkb(wkb, srid)) {
                    Some(e) => out.ewkb(&e),
                    None => {
                        tally.unreadable_geometry(b);
                        out.null();
                    }
                }
                true
            }
            Reading::Null => {
                out.null();
                true
            }
        };
        if !written {
            tally.invalid_value(&f.name, b, "a value that does not fit the column's type");
            out.null();
        }
    }
}

/// Writes an integer as its column's type; false (nothing written) if it does not fit, which the
/// widening of unsigned types rules out for values MySQL can hold.
fn write_int(v: i128, target: IntTarget, out: &mut CopyBuffer) -> bool {
    match target {
        IntTarget::SmallInt => i16::try_from(v).map(|v| out.bytes(&v.to_be_bytes())).is_ok(),
        IntTarget::Integer => i32::try_from(v).map(|v| out.i32(v)).is_ok(),
        IntTarget::BigInt => i64::try_from(v).map(|v| out.i64(v)).is_ok(),
        IntTarget::Numeric => pgbinary::numeric(&v.to_string()).map(|n| out.bytes(&n)).is_some(),
    }
}

/// A numeric value as f64 (latitudes, longitudes, a source key).
fn number_of(b: &[u8], reading: Reading) -> Option<f64> {
    match reading {
        Reading::Int { unsigned, .. } => values::integer(b, unsigned).map(|v| v as f64),
        Reading::Year => values::integer(b, true).map(|v| v as f64),
        Reading::Float => values::float(b).map(f64::from),
        Reading::Double => values::double(b),
        Reading::Decimal => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        Reading::Bits { .. } => Some(values::bits(b) as f64),
        _ => None,
    }
}

/// Both geometries of a spatial value, with a fast path for the commonest value (a 2D point in lon/lat).
fn spatial_pair(wkb: &[u8], srid: i32, tally: &mut Tally) -> Option<(Vec<u8>, Vec<u8>)> {
    if wkb.len() == 21 && wkb[0] == 1 && wkb[1..5] == [1, 0, 0, 0] && (srid == 0 || srid == SRID_WGS84) {
        let x = f64::from_le_bytes(wkb[5..13].try_into().ok()?);
        let y = f64::from_le_bytes(wkb[13..21].try_into().ok()?);
        return Some(geometry::point_pair(x, y));
    }
    geometry::parse_wkb(wkb, srid).and_then(|g| tally.geometry_pair(&g))
}
