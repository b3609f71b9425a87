//! Well-known text read straight into `geo_types`: two f64 per position (Z and M are dropped), and no more
//! positions than a limit, so that a geometry read from a text cell never takes more memory than the record
//! limit allows. (The wkt crate keeps four ordinates per position, about 64 bytes with the conversion, which
//! made a 32 MiB cell of `0 0,` pairs take 800 MB.)
//!
//! Accepts what the wkt crate did: any case, dimension tags (`POINT Z`, `POINTZ`, `ZM`, `M`), `EMPTY`,
//! MULTIPOINT with or without parentheses around its points, nested GEOMETRYCOLLECTIONs.

use geo_types::{
    Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
};

/// Collections nested deeper than this are refused (a stack is not a place for user input to grow).
const MAX_DEPTH: usize = 32;

/// The geometry `text` describes (without any `SRID=...;` prefix). None when it is not WKT, or has more
/// than `max_positions` positions. An empty point is no geometry; other empty geometries are empty.
pub fn parse(text: &str, max_positions: u64) -> Option<Geometry<f64>> {
    let mut p = Parser { s: text.as_bytes(), at: 0, positions: 0, max_positions };
    let geometry = p.geometry(0)?;
    p.blank();
    if p.at != p.s.len() {
        return None;
    }
    geometry
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    positions: u64,
    max_positions: u64,
}

impl Parser<'_> {
    fn blank(&mut self) {
        while self.s.get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.blank();
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// A keyword, upper-cased.
    fn word(&mut self) -> Option<String> {
        self.blank();
        let start = self.at;
        while self.s.get(self.at).is_some_and(u8::is_ascii_alphabetic) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.s[start..self.at]).to_ascii_uppercase())
    }

    /// Whether the next word is `EMPTY` (consumed) or a dimension tag (consumed too).
    fn empty_after_tags(&mut self) -> bool {
        let start = self.at;
        match self.word().as_deref() {
            Some("Z" | "M" | "ZM") => self.empty_after_tags(),
            Some("EMPTY") => true,
            _ => {
                self.at = start;
                false
            }
        }
    }

    fn number(&mut self) -> Option<f64> {
        self.blank();
        let start = self.at;
        while self.s.get(self.at).is_some_and(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at]).ok()?.parse().ok()
    }

    fn starts_number(&mut self) -> bool {
        self.peek().is_some_and(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+'))
    }

    /// `x y [z [m]]`.
    fn position(&mut self) -> Option<Coord<f64>> {
        let (x, y) = (self.number()?, self.number()?);
        while self.starts_number() {
            self.number()?;
        }
        self.positions += 1;
        (self.positions <= self.max_positions).then_some(Coord { x, y })
    }

    /// `( item, item, ... )`.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.expect(b'(')?;
        let mut out = vec![item(self)?];
        while self.eat(b',') {
            out.push(item(self)?);
        }
        self.expect(b')')?;
        Some(out)
    }

    fn line(&mut self) -> Option<LineString<f64>> {
        if self.empty_after_tags() {
            return Some(LineString::new(Vec::new()));
        }
        self.list(Self::position).map(LineString::new)
    }

    fn polygon(&mut self) -> Option<Polygon<f64>> {
        if self.empty_after_tags() {
            return Some(Polygon::new(LineString::new(Vec::new()), Vec::new()));
        }
        let mut rings = self.list(Self::line)?.into_iter();
        let exterior = rings.next()?;
        Some(Polygon::new(exterior, rings.collect()))
    }

    /// A point of a MULTIPOINT: `x y` or `(x y)`.
    fn multi_point_member(&mut self) -> Option<Point<f64>> {
        if self.eat(b'(') {
            let c = self.position()?;
            self.expect(b')')?;
            Some(Point(c))
        } else {
            self.position().map(Point)
        }
    }

    /// A tagged geometry; `Some(None)` for an empty point.
    fn geometry(&mut self, depth: usize) -> Option<Option<Geometry<f64>>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let word = self.word()?;
        // `POINTZ`, `LINESTRINGZM`...: the tag written without a space.
        let kind = ["ZM", "Z", "M"]
            .iter()
            .find_map(|tag| word.strip_suffix(tag).filter(|k| is_kind(k)))
            .unwrap_or(word.as_str());
        if !is_kind(kind) {
            return None;
        }
        let empty = self.empty_after_tags();
        let geometry = match (kind, empty) {
            ("POINT", true) => return Some(None),
            ("POINT", false) => {
                self.expect(b'(')?;
                let c = self.position()?;
                self.expect(b')')?;
                Geometry::Point(Point(c))
            }
            ("LINESTRING", true) => Geometry::LineString(LineString::new(Vec::new())),
            ("LINESTRING", false) => Geometry::LineString(self.list(Self::position).map(LineString::new)?),
            ("POLYGON", true) => Geometry::Polygon(Polygon::new(LineString::new(Vec::new()), Vec::new())),
            ("POLYGON", false) => Geometry::Polygon(self.polygon()?),
            ("MULTIPOINT", true) => Geometry::MultiPoint(MultiPoint(Vec::new())),
            ("MULTIPOINT", false) => Geometry::MultiPoint(MultiPoint(self.list(Self::multi_point_member)?)),
            ("MULTILINESTRING", true) => Geometry::MultiLineString(MultiLineString(Vec::new())),
            ("MULTILINESTRING", false) => Geometry::MultiLineString(MultiLineString(self.list(Self::line)?)),
            ("MULTIPOLYGON", true) => Geometry::MultiPolygon(MultiPolygon(Vec::new())),
            ("MULTIPOLYGON", false) => Geometry::MultiPolygon(MultiPolygon(self.list(Self::polygon)?)),
            ("GEOMETRYCOLLECTION", true) => Geometry::GeometryCollection(GeometryCollection(Vec::new())),
            (_, _) => {
                let members = self.list(|p| p.geometry(depth + 1))?;
                Geometry::GeometryCollection(GeometryCollection(members.into_iter().flatten().collect()))
            }
        };
        Some(Some(geometry))
    }
}

fn is_kind(word: &str) -> bool {
    matches!(
        word,
        "POINT" | "LINESTRING" | "POLYGON" | "MULTIPOINT" | "MULTILINESTRING" | "MULTIPOLYGON" | "GEOMETRYCOLLECTION"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkt(text: &str) -> Option<Geometry<f64>> {
        parse(text, 1_000)
    }

    /// What the wkt crate reads, for comparison.
    fn reference(text: &str) -> Option<Geometry<f64>> {
        use std::str::FromStr;
        Geometry::try_from(::wkt::Wkt::<f64>::from_str(text).ok()?).ok()
    }

    #[test]
    fn reads_what_the_wkt_crate_reads() {
        for text in [
            "POINT(1 2)",
            "point (1.5 -2e3)",
            "POINT Z (1 2 3)",
            "POINTZ(1 2 3)",
            "POINT ZM (1 2 3 4)",
            "LINESTRING(0 0, 1 1, 2 2)",
            "LINESTRING EMPTY",
            "POLYGON((0 0,1 0,1 1,0 0),(0.1 0.1,0.2 0.1,0.2 0.2,0.1 0.1))",
            "MULTIPOINT(1 2, 3 4)",
            "MULTIPOINT((1 2), (3 4))",
            "MULTILINESTRING((0 0,1 1),(2 2,3 3))",
            "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
            "MULTIPOLYGON EMPTY",
            "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1),GEOMETRYCOLLECTION(POINT(3 4)))",
            " POLYGON Z ((0 0 1,1 0 1,1 1 1,0 0 1)) ",
        ] {
            assert_eq!(wkt(text), reference(text), "{text}");
            assert!(wkt(text).is_some(), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_wkt_and_geometries_past_the_limit() {
        for text in ["", "POINT", "POINT(", "POINT(1)", "POINT(1 2", "POINT(1 2) x", "CIRCLE(1 2)", "POINT(a b)"] {
            assert_eq!(wkt(text), None, "{text}");
        }
        assert_eq!(wkt("POINT EMPTY"), None);
        let line = |n: usize| format!("LINESTRING({})", vec!["0 0"; n].join(","));
        assert!(parse(&line(1000), 1000).is_some());
        assert!(parse(&line(1001), 1000).is_none());
        let deep = format!("{}POINT(1 2){}", "GEOMETRYCOLLECTION(".repeat(40), ")".repeat(40));
        assert!(wkt(&deep).is_none());
    }
}
