//! Geometry values: reading them from text cells (WKT/EWKT, GeoJSON, hex WKB/EWKB, KML) and writing the two
//! geometry columns every table has, `the_geom` (EPSG:4326) and `the_geom_webmercator` (EPSG:3857), as EWKB
//! for binary COPY.
//!
//! The web-mercator copy is computed here rather than with `ST_Transform` in the database: it is a closed
//! formula, and doing it while encoding saves rewriting every row after the load.

use std::str::FromStr;

use geo::MapCoords;
use geo_types::{Coord, Geometry, LineString, Polygon};
use geozero::{CoordDimensions, ToGeo, ToWkb};

use super::wkb_check::ewkb_srid;
pub use super::wkb_check::wkb_counts_fit;

pub const SRID_WGS84: i32 = 4326;
pub const SRID_WEBMERCATOR: i32 = 3857;

/// Earth radius of the spherical mercator (EPSG:3857).
const MERCATOR_RADIUS: f64 = 6_378_137.0;
/// Web mercator is undefined at the poles; like CARTO's own transform, latitudes are clamped here.
const MAX_MERCATOR_LAT: f64 = 85.051_128_779_806_59;

/// Positions a geometry read from text may have where no record limit is given (connectors): what the
/// default record limit allows, at 16 bytes a position.
pub const DEFAULT_MAX_POSITIONS: u64 = (32 << 20) / 16;

/// Reads a geometry written as text, returning it in EPSG:4326 coordinates. None when the text is not a
/// geometry, or is in a reference system we cannot convert without the database.
pub fn parse_geometry_text(value: &str) -> Option<Geometry<f64>> {
    parse_geometry_text_within(value, DEFAULT_MAX_POSITIONS)
}

/// Like [`parse_geometry_text`], and None for a geometry of more than `max_positions` positions: what a
/// geometry takes in memory (16 bytes a position) stays within the record limit, whatever the text.
pub fn parse_geometry_text_within(value: &str, max_positions: u64) -> Option<Geometry<f64>> {
    let v = value.trim();
    let geometry = match v.as_bytes().first()? {
        b'{' => super::geojson::parse_text(v, max_positions),
        b'<' => parse_kml(v, max_positions),
        // WKB is checked by parse_wkb, as it is for the connectors.
        _ if looks_like_hex(v) => return parse_hex_wkb(v, max_positions),
        _ => parse_wkt(v, max_positions),
    };
    geometry.and_then(fit_for_postgis)
}

/// The geometry, if PostGIS can store it: its parser refuses a line of fewer than two points and a ring of
/// fewer than four or not closed (a polygon collapsed in digitising), and one such value would fail the
/// whole COPY. None otherwise: the caller keeps the row without it, and counts it.
pub fn fit_for_postgis(geometry: Geometry<f64>) -> Option<Geometry<f64>> {
    fits(&geometry).then_some(geometry)
}

/// Whether PostGIS can store the geometry (see [`fit_for_postgis`]).
pub fn fits(geometry: &Geometry<f64>) -> bool {
    let line = |l: &LineString<f64>| l.0.len() >= 2;
    let ring = |r: &LineString<f64>| r.0.len() >= 4 && r.0.first() == r.0.last();
    let polygon = |p: &Polygon<f64>| ring(p.exterior()) && p.interiors().iter().all(ring);
    match geometry {
        Geometry::LineString(l) => line(l),
        Geometry::MultiLineString(m) => m.0.iter().all(line),
        // An empty polygon is a polygon; a polygon with an empty exterior ring and holes is not.
        Geometry::Polygon(p) => p.exterior().0.is_empty() && p.interiors().is_empty() || polygon(p),
        Geometry::MultiPolygon(m) => m.0.iter().all(polygon),
        Geometry::GeometryCollection(c) => c.0.iter().all(fits),
        Geometry::Point(_)
        | Geometry::MultiPoint(_)
        | Geometry::Line(_)
        | Geometry::Rect(_)
        | Geometry::Triangle(_) => true,
    }
}

/// Whether `v` is XML whose every element is closed, in order.
fn well_formed_xml(v: &str) -> bool {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(v);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => depth += 1,
            Ok(Event::End(_)) if depth > 0 => depth -= 1,
            Ok(Event::End(_)) | Err(_) => return false,
            Ok(Event::Eof) => return depth == 0,
            Ok(_) => {}
        }
    }
}

/// Runs `f`; None if it panicked. A cell of a hostile file may make a parser panic once per row, so such
/// panics are not printed (the panic hook stays quiet for this thread meanwhile).
fn quietly_unless_panicking<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    thread_local!(static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.get() {
                previous(info)
            }
        }));
    });
    QUIET.set(true);
    let result = std::panic::catch_unwind(f).ok();
    QUIET.set(false);
    result
}

fn looks_like_hex(v: &str) -> bool {
    v.len() >= 18 && v.len().is_multiple_of(2) && v.bytes().all(|c| c.is_ascii_hexdigit())
}

fn parse_kml(v: &str, max_positions: u64) -> Option<Geometry<f64>> {
    // The kml crate holds a document tree and three optional ordinates per position, three to four times
    // what we keep: every position has a comma, so counting them bounds the positions cheaply first.
    if v.bytes().filter(|b| *b == b',').count() as u64 > max_positions / 4 {
        return None;
    }
    // kml 0.15 loops for ever on an element left open (reader.rs:1190), and panics on a Point without
    // coordinates or a Polygon without an outer ring (reader.rs:309, 387)
    if !well_formed_xml(v) {
        return None;
    }
    let kml = quietly_unless_panicking(|| kml::Kml::<f64>::from_str(v))?.ok()?;
    let mut geometries = Vec::<Geometry<f64>>::try_from(kml).ok()?;
    match geometries.len() {
        0 => None,
        1 => geometries.pop(),
        _ => Some(Geometry::GeometryCollection(geo_types::GeometryCollection(geometries))),
    }
}

fn parse_hex_wkb(v: &str, max_positions: u64) -> Option<Geometry<f64>> {
    // A position takes at least 16 bytes of WKB, and the counts are checked against the bytes below.
    if v.len() as u64 / 32 > max_positions {
        return None;
    }
    parse_wkb(&hex::decode(v).ok()?, 0)
}

/// Reads WKB or EWKB bytes (a binary column, PostGIS's binary form) as EPSG:4326 coordinates. `srid`
/// applies when the bytes carry none (MySQL keeps it beside the WKB). None when the bytes are not a
/// geometry, or are in a reference system we cannot convert without the database.
pub fn parse_wkb(bytes: &[u8], srid: i32) -> Option<Geometry<f64>> {
    // geozero allocates what a count declares before reading it: a short value must not declare billions
    if !wkb_counts_fit(bytes) {
        return None;
    }
    let embedded = ewkb_srid(bytes)?;
    let geometry = geozero::wkb::Ewkb(bytes).to_geo().ok()?;
    to_wgs84(geometry, if embedded != 0 { embedded } else { srid }).and_then(fit_for_postgis)
}

fn parse_wkt(v: &str, max_positions: u64) -> Option<Geometry<f64>> {
    let (srid, text) = match v.split_once(';') {
        Some((prefix, rest)) if prefix.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("SRID=")) => {
            (prefix.get(5..)?.trim().parse::<i32>().ok()?, rest)
        }
        _ => (0, v),
    };
    // Cheap rejection before the parser: every WKT starts with a geometry keyword.
    if !text.as_bytes().first()?.is_ascii_alphabetic() {
        return None;
    }
    to_wgs84(super::wkt::parse(text, max_positions)?, srid)
}

/// Brings a geometry to EPSG:4326 from the systems we can convert without PROJ: 4326 itself (or no SRID,
/// which files almost always mean as 4326) and web mercator.
fn to_wgs84(geometry: Geometry<f64>, srid: i32) -> Option<Geometry<f64>> {
    match srid {
        0 | SRID_WGS84 => Some(geometry),
        SRID_WEBMERCATOR | 900913 => Some(geometry.map_coords(from_mercator)),
        _ => None,
    }
}

fn to_mercator(c: Coord<f64>) -> Coord<f64> {
    let lat = c.y.clamp(-MAX_MERCATOR_LAT, MAX_MERCATOR_LAT);
    Coord {
        x: c.x.to_radians() * MERCATOR_RADIUS,
        y: (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0).tan().ln() * MERCATOR_RADIUS,
    }
}

fn from_mercator(c: Coord<f64>) -> Coord<f64> {
    Coord {
        x: (c.x / MERCATOR_RADIUS).to_degrees(),
        y: (2.0 * (c.y / MERCATOR_RADIUS).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees(),
    }
}

/// The two EWKB values of a geometry: (the_geom in 4326, the_geom_webmercator in 3857). Z and M are dropped.
pub fn encode_pair(geometry: &Geometry<f64>) -> Option<(Vec<u8>, Vec<u8>)> {
    if let Geometry::Point(p) = geometry {
        return Some(point_pair(p.x(), p.y()));
    }
    let wgs84 = geometry.to_ewkb(CoordDimensions::xy(), Some(SRID_WGS84)).ok()?;
    let mercator = geometry.map_coords(to_mercator).to_ewkb(CoordDimensions::xy(), Some(SRID_WEBMERCATOR)).ok()?;
    Some((wgs84, mercator))
}

/// Fast path for the most common geometry (every lat/lon row): both EWKB points written directly.
pub fn point_pair(lon: f64, lat: f64) -> (Vec<u8>, Vec<u8>) {
    let m = to_mercator(Coord { x: lon, y: lat });
    (ewkb_point(lon, lat, SRID_WGS84), ewkb_point(m.x, m.y, SRID_WEBMERCATOR))
}

/// Length of an EWKB 2D point: order byte, type, SRID, x, y.
const EWKB_POINT_LEN: usize = 25;

pub fn ewkb_point(x: f64, y: f64, srid: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(EWKB_POINT_LEN);
    write_ewkb_point(&mut out, x, y, srid);
    out
}

fn write_ewkb_point(out: &mut Vec<u8>, x: f64, y: f64, srid: i32) {
    out.push(1); // little endian
    out.extend_from_slice(&0x2000_0001u32.to_le_bytes()); // point, with SRID
    out.extend_from_slice(&srid.to_le_bytes());
    out.extend_from_slice(&x.to_le_bytes());
    out.extend_from_slice(&y.to_le_bytes());
}

/// The length of `geometry` as 2D EWKB with an SRID (what [`write_ewkb`] writes).
pub fn ewkb_len(geometry: &Geometry<f64>) -> usize {
    1 + 4 + 4 + body_len(geometry)
}

fn body_len(geometry: &Geometry<f64>) -> usize {
    let line = |n: usize| 4 + 16 * n;
    let polygon = |p: &Polygon<f64>| {
        4 + line(p.exterior().0.len()) + p.interiors().iter().map(|r| line(r.0.len())).sum::<usize>()
    };
    match geometry {
        Geometry::Point(_) => 16,
        Geometry::Line(_) => line(2),
        Geometry::LineString(l) => line(l.0.len()),
        Geometry::Polygon(p) => polygon(p),
        Geometry::Rect(r) => polygon(&r.to_polygon()),
        Geometry::Triangle(t) => polygon(&t.to_polygon()),
        Geometry::MultiPoint(m) => 4 + m.0.len() * (5 + 16),
        Geometry::MultiLineString(m) => 4 + m.0.iter().map(|l| 5 + line(l.0.len())).sum::<usize>(),
        Geometry::MultiPolygon(m) => 4 + m.0.iter().map(|p| 5 + polygon(p)).sum::<usize>(),
        Geometry::GeometryCollection(c) => 4 + c.0.iter().map(|g| 5 + body_len(g)).sum::<usize>(),
    }
}

/// Writes `geometry` as 2D EWKB in `srid` (4326, or 3857 with every coordinate projected to web mercator),
/// handing the bytes to `sink` in pieces of at most [`EWKB_PIECE`] bytes: a large geometry's EWKB is never
/// held whole. The same bytes as geozero's writer (see the tests), [`ewkb_len`] of them.
pub fn write_ewkb<E>(
    geometry: &Geometry<f64>,
    srid: i32,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let project = if srid == SRID_WEBMERCATOR { to_mercator } else { |c| c };
    let mut w = EwkbWriter { buf: Vec::with_capacity(EWKB_PIECE), sink, project };
    w.geometry(geometry, Some(srid))?;
    w.flush()
}

/// Bytes an EWKB writer gathers before handing them on.
pub const EWKB_PIECE: usize = 64 << 10;

struct EwkbWriter<'s, E> {
    buf: Vec<u8>,
    sink: &'s mut dyn FnMut(&[u8]) -> Result<(), E>,
    project: fn(Coord<f64>) -> Coord<f64>,
}

impl<E> EwkbWriter<'_, E> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), E> {
        if self.buf.len() + bytes.len() > EWKB_PIECE {
            self.flush()?;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), E> {
        if !self.buf.is_empty() {
            (self.sink)(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Byte order, type (with the SRID flag on the outermost geometry only) and SRID.
    fn header(&mut self, kind: u32, srid: Option<i32>) -> Result<(), E> {
        self.put(&[1])?;
        match srid {
            Some(srid) => {
                self.put(&(kind | 0x2000_0000).to_le_bytes())?;
                self.put(&srid.to_le_bytes())
            }
            None => self.put(&kind.to_le_bytes()),
        }
    }

    fn count(&mut self, n: usize) -> Result<(), E> {
        self.put(&(n as u32).to_le_bytes())
    }

    fn coord(&mut self, c: Coord<f64>) -> Result<(), E> {
        let c = (self.project)(c);
        let mut xy = [0u8; 16];
        xy[..8].copy_from_slice(&c.x.to_le_bytes());
        xy[8..].copy_from_slice(&c.y.to_le_bytes());
        self.put(&xy)
    }

    fn line(&mut self, coords: &[Coord<f64>]) -> Result<(), E> {
        self.count(coords.len())?;
        coords.iter().try_for_each(|c| self.coord(*c))
    }

    fn polygon(&mut self, p: &Polygon<f64>) -> Result<(), E> {
        self.count(1 + p.interiors().len())?;
        self.line(&p.exterior().0)?;
        p.interiors().iter().try_for_each(|r| self.line(&r.0))
    }

    fn geometry(&mut self, geometry: &Geometry<f64>, srid: Option<i32>) -> Result<(), E> {
        match geometry {
            Geometry::Point(p) => {
                self.header(1, srid)?;
                self.coord(p.0)
            }
            Geometry::Line(l) => {
                self.header(2, srid)?;
                self.line(&[l.start, l.end])
            }
            Geometry::LineString(l) => {
                self.header(2, srid)?;
                self.line(&l.0)
            }
            Geometry::Polygon(p) => {
                self.header(3, srid)?;
                self.polygon(p)
            }
            Geometry::Rect(r) => self.geometry(&Geometry::Polygon(r.to_polygon()), srid),
            Geometry::Triangle(t) => self.geometry(&Geometry::Polygon(t.to_polygon()), srid),
            Geometry::MultiPoint(m) => {
                self.header(4, srid)?;
                self.count(m.0.len())?;
                m.0.iter().try_for_each(|p| {
                    self.header(1, None)?;
                    self.coord(p.0)
                })
            }
            Geometry::MultiLineString(m) => {
                self.header(5, srid)?;
                self.count(m.0.len())?;
                m.0.iter().try_for_each(|l| {
                    self.header(2, None)?;
                    self.line(&l.0)
                })
            }
            Geometry::MultiPolygon(m) => {
                self.header(6, srid)?;
                self.count(m.0.len())?;
                m.0.iter().try_for_each(|p| {
                    self.header(3, None)?;
                    self.polygon(p)
                })
            }
            Geometry::GeometryCollection(c) => {
                self.header(7, srid)?;
                self.count(c.0.len())?;
                c.0.iter().try_for_each(|g| self.geometry(g, None))
            }
        }
    }
}

/// Whether a longitude/latitude pair can be a point on Earth.
pub fn valid_lon_lat(lon: f64, lat: f64) -> bool {
    lon.is_finite() && lat.is_finite() && (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(g: Geometry<f64>) -> (f64, f64) {
        match g {
            Geometry::Point(p) => (p.x(), p.y()),
            other => panic!("not a point: {other:?}"),
        }
    }

    #[test]
    fn reads_every_text_form() {
        assert_eq!(point(parse_geometry_text("POINT(1 2)").unwrap()), (1.0, 2.0));
        assert_eq!(point(parse_geometry_text("SRID=4326;POINT(1 2)").unwrap()), (1.0, 2.0));
        assert_eq!(point(parse_geometry_text(r#"{"type":"Point","coordinates":[1,2]}"#).unwrap()), (1.0, 2.0));
        assert_eq!(point(parse_geometry_text("<Point><coordinates>1,2,0</coordinates></Point>").unwrap()), (1.0, 2.0));
        let hex_wkb = hex::encode(ewkb_point(1.0, 2.0, 4326));
        assert_eq!(point(parse_geometry_text(&hex_wkb).unwrap()), (1.0, 2.0));
        let (x, y) = point(parse_geometry_text("SRID=3857;POINT(111319.49079327357 0)").unwrap());
        assert!((x - 1.0).abs() < 1e-9 && y.abs() < 1e-9);
        assert!(matches!(parse_geometry_text("POLYGON((0 0,1 0,1 1,0 0))"), Some(Geometry::Polygon(_))));
        assert!(matches!(parse_geometry_text("POINT Z (1 2 3)"), Some(Geometry::Point(_))));
    }

    #[test]
    fn rejects_what_is_not_a_geometry() {
        for v in ["", "hello", "12.5", "POINT(", "{\"a\":1}", "SRID=2154;POINT(1 2)", "deadbeef", "<b>x</b>"] {
            assert!(parse_geometry_text(v).is_none(), "{v}");
        }
    }

    #[test]
    fn forged_wkb_counts_are_refused_without_allocating() {
        // a MultiPolygon and a LineString claiming 2^32-1 parts
        assert!(parse_geometry_text("0106000000FFFFFFFF").is_none());
        assert!(parse_geometry_text("0102000000FFFFFFFF00000000").is_none());
        assert!(parse_geometry_text("0103000000FFFFFFFF00000000").is_none());
        let line = "01020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F";
        assert!(matches!(parse_geometry_text(line), Some(Geometry::LineString(_))));
        assert!(parse_geometry_text("SRIDé;POINT(1 2)").is_none());
        // found by fuzzing: the kml crate panics on these
        assert!(parse_geometry_text("<Point>ates></Point>").is_none());
        assert!(parse_geometry_text("<Point>,\u{80}am").is_none(), "kml loops for ever on an open element");
        assert!(parse_geometry_text("<Polygon><outerBoundaryIs></outerBoundaryIs></Polygon>").is_none());
        assert!(parse_geometry_text("<Point><coordinates>1,2</coordinates></Point>").is_some());
        // the same from a database's binary column (MySQL, PostgreSQL bytea)
        for forged in ["0106000000FFFFFFFF", "0102000000FFFFFFFF00000000", "0103000000FFFFFFFF00000000"] {
            assert!(parse_wkb(&hex::decode(forged).unwrap(), 4326).is_none(), "{forged}");
        }
        assert!(parse_wkb(&hex::decode(line).unwrap(), 4326).is_some());
        // found by fuzzing: a type word read as a point here and as a compound curve of 11 GB by geozero
        let found = &include_bytes!("../../fuzz/regressions/wkb/type-word-read-two-ways")[1..];
        assert!(!wkb_counts_fit(found) && parse_wkb(found, 4326).is_none());
        // and a MultiPolygon whose part says MultiLineString, which geozero reads as a polygon of 2^32 rings
        let found = include_bytes!("../../fuzz/regressions/wkb/multipolygon-part-of-another-kind");
        assert!(!wkb_counts_fit(found) && parse_wkb(found, 4326).is_none());
    }

    #[test]
    fn mercator_matches_the_known_values() {
        let m = to_mercator(Coord { x: 180.0, y: 0.0 });
        assert!((m.x - 20_037_508.342_789_244).abs() < 1e-6);
        let m = to_mercator(Coord { x: 0.0, y: 90.0 });
        assert!(m.y.is_finite() && (m.y - 20_037_508.342_789_244).abs() < 1.0);
        let back = from_mercator(to_mercator(Coord { x: -3.7038, y: 40.4168 }));
        assert!((back.x + 3.7038).abs() < 1e-9 && (back.y - 40.4168).abs() < 1e-9);
    }

    #[test]
    fn the_streaming_writer_writes_what_geozero_writes() {
        for text in [
            "POINT(1 2)",
            "LINESTRING(0 0,1 1,2 3)",
            "POLYGON((0 0,1 0,1 1,0 0),(0.1 0.1,0.2 0.1,0.2 0.2,0.1 0.1))",
            "MULTIPOINT(1 2,3 4)",
            "MULTILINESTRING((0 0,1 1),(2 2,3 3))",
            "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
            "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1),GEOMETRYCOLLECTION(POINT(3 4)))",
        ] {
            let g = parse_geometry_text(text).unwrap();
            let (wgs84, mercator) = encode_pair(&g).unwrap();
            for (srid, expected) in [(SRID_WGS84, wgs84), (SRID_WEBMERCATOR, mercator)] {
                let mut written = Vec::new();
                write_ewkb::<()>(&g, srid, &mut |b| {
                    written.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
                assert_eq!(written, expected, "{text} in {srid}");
                assert_eq!(ewkb_len(&g), expected.len(), "{text}");
            }
        }
        // A large geometry comes out in pieces.
        let line = format!("LINESTRING({})", vec!["1 2"; 20_000].join(","));
        let mut pieces = Vec::new();
        write_ewkb::<()>(&parse_geometry_text(&line).unwrap(), SRID_WGS84, &mut |b| {
            pieces.push(b.len());
            Ok(())
        })
        .unwrap();
        assert!(pieces.len() > 4 && pieces.iter().all(|n| *n <= EWKB_PIECE), "{pieces:?}");
    }

    #[test]
    fn text_geometries_past_the_position_limit_are_not_read() {
        let line = format!("LINESTRING({})", vec!["0 0"; 1001].join(","));
        assert!(parse_geometry_text_within(&line, 1001).is_some());
        assert!(parse_geometry_text_within(&line, 1000).is_none());
        let geojson = format!(r#"{{"type":"LineString","coordinates":[{}]}}"#, vec!["[0,0]"; 1001].join(","));
        assert!(parse_geometry_text_within(&geojson, 1001).is_some());
        assert!(parse_geometry_text_within(&geojson, 1000).is_none());
        let feature = format!(r#"{{"geometry":{geojson},"type":"Feature","properties":null}}"#);
        assert!(parse_geometry_text_within(&feature, 1001).is_some());
    }

    #[test]
    fn point_fast_path_equals_the_general_encoder() {
        let g = Geometry::Point(geo_types::Point::new(-3.7, 40.4));
        let general = g.to_ewkb(CoordDimensions::xy(), Some(4326)).unwrap();
        assert_eq!(point_pair(-3.7, 40.4).0, general);
    }
}
