//! Re-framing the source's binary COPY stream into our staging table's rows, chunk by chunk: each source
//! row becomes `cartodb_id`, `the_geom`, `the_geom_webmercator` and the source's fields copied byte for
//! byte (the two servers share the binary formats, so values are never decoded, except the few we read:
//! the key, the geometry, latitude and longitude).
//!
//! The source row's fields come in the order the reader's SELECT put them: the key (if any), the geometry
//! source (if any), then the data columns.

use crate::connector::load::{RowGeometry, Tally};
use crate::errors::{ImportError, codes};
use crate::load::copy::{CHUNK_BYTES, CopyBuffer};
use crate::load::geometry;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// How a source value is read when we need its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bytea,
    /// PostGIS geometry: EWKB.
    Geometry,
    Other,
}

#[derive(Debug, Clone)]
pub enum Geometry {
    None,
    /// The second source field is the geometry (spatial, or a geometry-named text/bytea column).
    Field(Binary),
    /// Positions among the data fields.
    LatLon {
        lat: (usize, Binary),
        lon: (usize, Binary),
    },
}

#[derive(Debug, Clone)]
pub struct Frame {
    /// The first source field is the key, read as this.
    pub id: Option<Binary>,
    pub geometry: Geometry,
    pub data_fields: usize,
    /// Rows end with the geometry-named column's companion.
    pub companion: bool,
    pub max_rows: u64,
}

impl Frame {
    fn leading(&self) -> usize {
        usize::from(self.id.is_some()) + usize::from(matches!(self.geometry, Geometry::Field(_)))
    }
}

pub struct Transcoder {
    frame: Frame,
    /// A row (or the header) may not make the buffer grow past this.
    max_row_bytes: u64,
    pending: Vec<u8>,
    header_read: bool,
    ended: bool,
    out: CopyBuffer,
    ranges: Vec<Option<(usize, usize)>>,
    pub tally: Tally,
}

fn broken(what: &str) -> ImportError {
    ImportError::new(codes::CONNECTOR_ERROR, format!("the source's COPY stream is malformed: {what}"))
}

/// Largest header extension accepted. PostgreSQL sends none; a source that declares one larger than this is
/// not a PostgreSQL we can read, and must not make us buffer it.
const MAX_HEADER_EXTENSION: usize = 64 << 10;

fn too_large(cap: u64) -> ImportError {
    ImportError::new(
        codes::DATASET_TOO_BIG,
        format!("the source sent a row larger than {} MiB, the most one row may take; the read was stopped", cap >> 20),
    )
}

impl Transcoder {
    pub fn new(frame: Frame) -> Transcoder {
        Transcoder {
            max_row_bytes: crate::connector::connect::MAX_SOURCE_ROW_BYTES,
            frame,
            pending: Vec::with_capacity(CHUNK_BYTES * 2),
            header_read: false,
            ended: false,
            out: CopyBuffer::new(),
            ranges: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// Takes the next piece of the source stream; returns a chunk to send when one is full.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<Vec<u8>>, ImportError> {
        self.pending.extend_from_slice(chunk);
        let mut pos = 0;
        if !self.header_read {
            if self.pending.len() < SIGNATURE.len() + 8 {
                return Ok(None);
            }
            if &self.pending[..SIGNATURE.len()] != SIGNATURE {
                return Err(broken("no binary COPY signature"));
            }
            let ext = i32::from_be_bytes(self.pending[15..19].try_into().map_err(|_| broken("header"))?);
            let ext = usize::try_from(ext).map_err(|_| broken("header extension"))?;
            if ext > MAX_HEADER_EXTENSION {
                return Err(broken("the header declares an extension area of several megabytes"));
            }
            let end = 19 + ext;
            if self.pending.len() < end {
                return Ok(None);
            }
            pos = end;
            self.header_read = true;
        }
        while !self.ended {
            match self.row_at(pos)? {
                Some(next) => pos = next,
                None => break,
            }
        }
        self.pending.drain(..pos);
        // What is left is the start of a row that has not all come yet: it may not grow without bound.
        if self.pending.len() as u64 > self.max_row_bytes {
            return Err(too_large(self.max_row_bytes));
        }
        Ok((self.out.len() >= CHUNK_BYTES).then(|| self.out.take()))
    }

    /// The last chunk, once the source stream has ended.
    pub fn finish(self) -> Result<(Vec<u8>, Tally), ImportError> {
        if !self.ended || !self.pending.is_empty() {
            return Err(broken("the stream stopped in the middle"));
        }
        Ok((self.out.finish(), self.tally))
    }

    /// Handles the row starting at `pos`; returns where the next one starts, or None if it is not all
    /// here yet.
    fn row_at(&mut self, pos: usize) -> Result<Option<usize>, ImportError> {
        let buf = &self.pending;
        let Some(count) = buf.get(pos..pos + 2) else { return Ok(None) };
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            self.ended = true;
            return Ok(Some(pos + 2));
        }
        let expected = self.frame.leading() + self.frame.data_fields;
        if count as usize != expected {
            return Err(broken("a row has an unexpected number of fields"));
        }
        self.ranges.clear();
        let mut at = pos + 2;
        for _ in 0..count {
            let Some(len) = buf.get(at..at + 4) else { return Ok(None) };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            at += 4;
            if len < 0 {
                self.ranges.push(None);
                continue;
            }
            if len as u64 > self.max_row_bytes {
                return Err(too_large(self.max_row_bytes));
            }
            let end = at + len as usize;
            if end > buf.len() {
                return Ok(None);
            }
            self.ranges.push(Some((at, end)));
            at = end;
        }
        if self.tally.rows >= self.frame.max_rows {
            self.tally.truncated = true;
            return Ok(Some(at));
        }
        self.tally.rows += 1;
        self.write_row();
        Ok(Some(at))
    }

    fn value(&self, i: usize) -> Option<&[u8]> {
        self.ranges[i].map(|(a, b)| &self.pending[a..b])
    }

    fn write_row(&mut self) {
        let (id_kind, data_fields, companion) = (self.frame.id, self.frame.data_fields, self.frame.companion);
        let data_start = self.frame.leading();
        let total = 3 + data_fields + usize::from(companion);
        let id = id_kind.and_then(|b| self.value(0).and_then(|v| number(v, b)));
        let id = id.filter(|v| v.fract() == 0.0).map_or(self.tally.rows as i64, |v| v as i64);
        let (pair, misfit) = match self.frame.geometry.clone() {
            Geometry::None => (None, None),
            Geometry::Field(kind) => self.geometry_field(usize::from(id_kind.is_some()), kind),
            Geometry::LatLon { lat, lon } => {
                let lat = self.value(data_start + lat.0).and_then(|v| number(v, lat.1));
                let lon = self.value(data_start + lon.0).and_then(|v| number(v, lon.1));
                match (lat, lon) {
                    (Some(lat), Some(lon)) if geometry::valid_lon_lat(lon, lat) => {
                        (Some(geometry::point_pair(lon, lat)), None)
                    }
                    _ => (None, None),
                }
            }
        };
        let out = &mut self.out;
        out.begin_row(total);
        out.i64(id);
        match &pair {
            Some((wgs84, mercator)) => {
                out.ewkb(wgs84);
                out.ewkb(mercator);
            }
            None => {
                out.null();
                out.null();
            }
        }
        for i in data_start..data_start + data_fields {
            match self.ranges[i] {
                Some((a, b)) => out.bytes(&self.pending[a..b]),
                None => out.null(),
            }
        }
        if companion {
            match &misfit {
                Some(text) => out.text(text),
                None => out.null(),
            }
        }
        if let Some(text) = &misfit {
            self.tally.not_geometry(text);
        }
    }

    fn geometry_field(&mut self, i: usize, kind: Binary) -> RowGeometry {
        let Some(v) = self.ranges[i].map(|(a, b)| &self.pending[a..b]) else { return (None, None) };
        let tally = &mut self.tally;
        match kind {
            Binary::Geometry => {
                let pair = geometry::parse_wkb(v, 0).and_then(|g| tally.geometry_pair(&g));
                if pair.is_none() {
                    tally.unreadable_geometry(v);
                }
                (pair, None)
            }
            Binary::Bytea => match geometry::parse_wkb(v, 0).and_then(|g| tally.geometry_pair(&g)) {
                Some(pair) => (Some(pair), None),
                None => (None, Some(hex::encode(v))),
            },
            _ => {
                let text = String::from_utf8_lossy(v);
                match geometry::parse_geometry_text(&text).and_then(|g| tally.geometry_pair(&g)) {
                    Some(pair) => (Some(pair), None),
                    None if text.trim().is_empty() => (None, None),
                    None => (None, Some(text.into_owned())),
                }
            }
        }
    }
}

/// A number from its binary form.
fn number(v: &[u8], kind: Binary) -> Option<f64> {
    Some(match kind {
        Binary::Int2 => f64::from(i16::from_be_bytes(v.try_into().ok()?)),
        Binary::Int4 => f64::from(i32::from_be_bytes(v.try_into().ok()?)),
        Binary::Int8 => i64::from_be_bytes(v.try_into().ok()?) as f64,
        Binary::Float4 => f64::from(f32::from_be_bytes(v.try_into().ok()?)),
        Binary::Float8 => f64::from_be_bytes(v.try_into().ok()?),
        Binary::Numeric => numeric(v)?,
        _ => return None,
    })
}

/// `numeric` in binary form, as f64.
fn numeric(v: &[u8]) -> Option<f64> {
    let word = |i: usize| v.get(i..i + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let (ndigits, weight, sign) = (word(0)?, word(2)?, word(4)? as u16);
    if sign == 0xC000 {
        return None;
    }
    let mut value = 0f64;
    for k in 0..ndigits as usize {
        value += f64::from(word(8 + 2 * k)?) * 10000f64.powi(i32::from(weight) - k as i32);
    }
    Some(if sign == 0x4000 { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut s = SIGNATURE.to_vec();
        s.extend_from_slice(&0i32.to_be_bytes());
        s.extend_from_slice(&0i32.to_be_bytes());
        for row in rows {
            s.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for f in row {
                match f {
                    Some(b) => {
                        s.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        s.extend_from_slice(b);
                    }
                    None => s.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        }
        s.extend_from_slice(&(-1i16).to_be_bytes());
        s
    }

    #[test]
    fn rows_split_anywhere_come_out_whole_with_points_from_lat_lon() {
        let rows: Vec<Vec<Option<Vec<u8>>>> = (0..3)
            .map(|i| {
                vec![
                    Some(format!("name {i}").into_bytes()),
                    Some(40.5f64.to_be_bytes().to_vec()),
                    Some((-3.5f64 + f64::from(i)).to_be_bytes().to_vec()),
                ]
            })
            .collect();
        let stream = source_stream(&rows);
        let frame = Frame {
            id: None,
            geometry: Geometry::LatLon { lat: (1, Binary::Float8), lon: (2, Binary::Float8) },
            data_fields: 3,
            companion: false,
            max_rows: 2,
        };
        let mut t = Transcoder::new(frame);
        for piece in stream.chunks(7) {
            assert!(t.feed(piece).unwrap().is_none());
        }
        let (out, tally) = t.finish().unwrap();
        assert_eq!(tally.rows, 2);
        assert!(tally.truncated);
        // header (19) + per row: 2 + (4+8) + 2*(4+25) + (4+6) + 2*(4+8) + trailer 2
        assert_eq!(out.len(), 19 + 2 * (2 + 12 + 58 + 10 + 24) + 2);
        let first_point = &out[19 + 2 + 12 + 4..19 + 2 + 12 + 4 + 25];
        assert_eq!(first_point, geometry::ewkb_point(-3.5, 40.5, 4326).as_slice());
    }

    #[test]
    fn numerics_and_damage() {
        let n = crate::connector::pgbinary::numeric("-12345.5").unwrap();
        assert_eq!(numeric(&n), Some(-12345.5));
        let mut t = Transcoder::new(Frame {
            id: None,
            geometry: Geometry::None,
            data_fields: 1,
            companion: false,
            max_rows: 10,
        });
        assert!(t.feed(b"not a copy stream at all").is_err());
    }

    fn one_text_column() -> Frame {
        Frame { id: None, geometry: Geometry::None, data_fields: 1, companion: false, max_rows: 10 }
    }

    #[test]
    fn a_declared_header_extension_of_gigabytes_is_refused_before_it_is_buffered() {
        let mut stream = SIGNATURE.to_vec();
        stream.extend_from_slice(&0i32.to_be_bytes());
        stream.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        let mut t = Transcoder::new(one_text_column());
        let e = t.feed(&stream).unwrap_err();
        assert_eq!(e.code, codes::CONNECTOR_ERROR, "{}", e.detail);
    }

    #[test]
    fn a_field_or_row_past_the_cap_fails_6666_without_waiting_for_its_bytes() {
        let mut t = Transcoder::new(one_text_column());
        t.max_row_bytes = 1000;
        let mut stream = source_stream(&[]);
        stream.truncate(stream.len() - 2);
        stream.extend_from_slice(&1i16.to_be_bytes());
        stream.extend_from_slice(&(1i32 << 30).to_be_bytes());
        let e = t.feed(&stream).unwrap_err();
        assert_eq!(e.code, codes::DATASET_TOO_BIG, "{}", e.detail);
        // a field under the cap whose bytes trickle in: the buffer may not pass the cap either
        let mut t = Transcoder::new(one_text_column());
        t.max_row_bytes = 1000;
        let mut stream = source_stream(&[]);
        stream.truncate(stream.len() - 2);
        stream.extend_from_slice(&1i16.to_be_bytes());
        stream.extend_from_slice(&900i32.to_be_bytes());
        assert!(t.feed(&stream).unwrap().is_none());
        assert!(t.feed(&[b'x'; 500]).unwrap().is_none());
        assert!(t.feed(&[b'x'; 400]).is_ok(), "the row is complete at 900 bytes");
    }
}
