//! GeoJSON geometries read straight into `geo_types`: two f64 per position (further ordinates are dropped),
//! whatever the order of an object's members, and no more positions than a limit, so that a geometry never
//! takes more memory than the record limit allows. Used for the features of JSON files and for GeoJSON
//! written in text cells. (`serde_json::Value` and the geojson crate's types take several times as much.)

use std::borrow::Cow;
use std::cell::Cell;

use geo_types::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Positions read for one element, against a maximum.
#[derive(Debug)]
pub struct Positions {
    count: Cell<u64>,
    max: u64,
    exceeded: Cell<bool>,
}

impl Positions {
    pub fn new(max: u64) -> Positions {
        Positions { count: Cell::new(0), max, exceeded: Cell::new(false) }
    }

    /// A new element starts: its positions are counted from zero.
    pub fn reset(&self) {
        self.count.set(0);
    }

    /// Whether an element had more positions than allowed (and was refused for it).
    pub fn exceeded(&self) -> bool {
        self.exceeded.get()
    }

    fn add<E: serde::de::Error>(&self) -> Result<(), E> {
        let n = self.count.get() + 1;
        self.count.set(n);
        if n > self.max {
            self.exceeded.set(true);
            return Err(E::custom(format!("a geometry has more than {} positions", self.max)));
        }
        Ok(())
    }
}

/// A geometry written as GeoJSON text: a geometry object, or a Feature (its geometry). None when the text
/// is neither, or has more than `max_positions` positions.
pub fn parse_text(text: &str, max_positions: u64) -> Option<Geometry<f64>> {
    let positions = Positions::new(max_positions);
    let mut de = serde_json::Deserializer::from_str(text);
    let geometry = TextSeed { positions: &positions }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    geometry
}

/// A GeoJSON object in a text cell: a geometry, or a Feature whose geometry is wanted.
struct TextSeed<'a> {
    positions: &'a Positions,
}

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = Option<Geometry<f64>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = Option<Geometry<f64>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a GeoJSON geometry or Feature")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let positions = self.positions;
        let (mut kind, mut coordinates, mut geometries, mut feature_geometry) = (None::<String>, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => kind = Some(map.next_value()?),
                "coordinates" => coordinates = Some(map.next_value_seed(NodeSeed { positions })?),
                "geometries" => geometries = Some(map.next_value_seed(GeometriesSeed { positions })?),
                "geometry" => feature_geometry = Some(map.next_value_seed(GeometrySeed { positions, nullable: true })?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match kind.as_deref() {
            Some("Feature") => Ok(feature_geometry.flatten()),
            Some(kind) => build_geometry(kind, coordinates, geometries).map_err(A::Error::custom),
            None => Err(A::Error::custom("not a GeoJSON object")),
        }
    }
}

/// A string, borrowed from the parser's input when it has no escapes: member names and types are read
/// for every feature, and copying each would cost an allocation.
pub struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A GeoJSON geometry object, read straight into `geo_types`; with `nullable`, null is no geometry.
pub struct GeometrySeed<'a> {
    pub positions: &'a Positions,
    pub nullable: bool,
}

impl<'de> DeserializeSeed<'de> for GeometrySeed<'_> {
    type Value = Option<Geometry<f64>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if self.nullable { deserializer.deserialize_option(self) } else { deserializer.deserialize_map(self) }
    }
}

impl<'de> Visitor<'de> for GeometrySeed<'_> {
    type Value = Option<Geometry<f64>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a GeoJSON geometry")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let positions = self.positions;
        let (mut kind, mut coordinates, mut geometries) = (None, None, None);
        while let Some(key) = map.next_key_seed(StrSeed)? {
            match key.as_ref() {
                "type" => kind = Some(map.next_value_seed(StrSeed)?),
                "coordinates" => coordinates = Some(map.next_value_seed(NodeSeed { positions })?),
                "geometries" => geometries = Some(map.next_value_seed(GeometriesSeed { positions })?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| A::Error::custom("a geometry has no type"))?;
        build_geometry(&kind, coordinates, geometries).map_err(A::Error::custom)
    }
}

/// A GeometryCollection's `geometries`.
pub struct GeometriesSeed<'a> {
    pub positions: &'a Positions,
}

impl<'de> DeserializeSeed<'de> for GeometriesSeed<'_> {
    type Value = Vec<Geometry<f64>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for GeometriesSeed<'_> {
    type Value = Vec<Geometry<f64>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of geometries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(g) = seq.next_element_seed(GeometrySeed { positions: self.positions, nullable: false })? {
            out.extend(g);
        }
        Ok(out)
    }
}

/// Coordinates, at whatever depth they are nested: the geometry's type (which may come after them) says
/// which depth it needs.
#[derive(Debug)]
pub enum Node {
    Number(f64),
    Position(Coord<f64>),
    Line(Vec<Coord<f64>>),
    Lines(Vec<Vec<Coord<f64>>>),
    Polygons(Vec<Vec<Vec<Coord<f64>>>>),
    /// An array of empty arrays only (or an empty array): no depth to learn from it.
    Empty,
}

pub struct NodeSeed<'a> {
    pub positions: &'a Positions,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("coordinates")
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Number(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v as f64))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v as f64))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let positions = self.positions;
        // Empty arrays before the first that says how deep this one is.
        let mut empties = 0usize;
        let first = loop {
            match seq.next_element_seed(NodeSeed { positions })? {
                None => return Ok(Node::Empty),
                Some(Node::Empty) => empties += 1,
                Some(node) => break node,
            }
        };
        let uneven = || A::Error::custom("coordinates are not nested evenly");
        match first {
            Node::Number(x) if empties == 0 => {
                let y: f64 = seq.next_element()?.ok_or_else(|| A::Error::custom("a position has one number"))?;
                // Z, M and anything further are dropped.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                positions.add()?;
                Ok(Node::Position(Coord { x, y }))
            }
            Node::Number(_) => Err(uneven()),
            Node::Position(c) if empties == 0 => {
                let mut line = vec![c];
                while let Some(node) = seq.next_element_seed(NodeSeed { positions })? {
                    let Node::Position(c) = node else { return Err(uneven()) };
                    line.push(c);
                }
                Ok(Node::Line(line))
            }
            Node::Position(_) => Err(uneven()),
            Node::Line(first) => {
                let mut lines = vec![Vec::new(); empties];
                lines.push(first);
                while let Some(node) = seq.next_element_seed(NodeSeed { positions })? {
                    match node {
                        Node::Line(l) => lines.push(l),
                        Node::Empty => lines.push(Vec::new()),
                        _ => return Err(uneven()),
                    }
                }
                Ok(Node::Lines(lines))
            }
            Node::Lines(first) => {
                let mut polygons = vec![Vec::new(); empties];
                polygons.push(first);
                while let Some(node) = seq.next_element_seed(NodeSeed { positions })? {
                    match node {
                        Node::Lines(p) => polygons.push(p),
                        Node::Empty => polygons.push(Vec::new()),
                        _ => return Err(uneven()),
                    }
                }
                Ok(Node::Polygons(polygons))
            }
            Node::Polygons(_) => Err(A::Error::custom("coordinates are nested too deep")),
            Node::Empty => unreachable!("empty arrays are counted above"),
        }
    }
}

/// The geometry of a GeoJSON type from its coordinates (or member geometries). Empty coordinates make an
/// empty geometry (an empty point, none).
pub fn build_geometry(
    kind: &str,
    coordinates: Option<Node>,
    geometries: Option<Vec<Geometry<f64>>>,
) -> Result<Option<Geometry<f64>>, String> {
    if kind == "GeometryCollection" {
        let members = geometries.ok_or("a GeometryCollection has no geometries")?;
        return Ok(Some(Geometry::GeometryCollection(members.into())));
    }
    let node = coordinates.ok_or_else(|| format!("a {kind} has no coordinates"))?;
    let wrong = || format!("the coordinates of a {kind} are not nested as a {kind}'s are");
    let line = |l: Vec<Coord<f64>>| LineString::new(l);
    let polygon = |rings: Vec<Vec<Coord<f64>>>| {
        let mut rings = rings.into_iter().map(line);
        let exterior = rings.next().unwrap_or_else(|| LineString::new(Vec::new()));
        Polygon::new(exterior, rings.collect())
    };
    let geometry = match (kind, node) {
        ("Point", Node::Position(c)) => Geometry::Point(Point(c)),
        ("Point", Node::Empty) => return Ok(None),
        ("LineString", Node::Line(l)) => Geometry::LineString(line(l)),
        ("LineString", Node::Empty) => Geometry::LineString(line(Vec::new())),
        ("MultiPoint", Node::Line(l)) => Geometry::MultiPoint(MultiPoint(l.into_iter().map(Point).collect())),
        ("MultiPoint", Node::Empty) => Geometry::MultiPoint(MultiPoint(Vec::new())),
        ("Polygon", Node::Lines(rings)) => Geometry::Polygon(polygon(rings)),
        ("Polygon", Node::Empty) => Geometry::Polygon(polygon(Vec::new())),
        ("MultiLineString", Node::Lines(ls)) => {
            Geometry::MultiLineString(MultiLineString(ls.into_iter().map(line).collect()))
        }
        ("MultiLineString", Node::Empty) => Geometry::MultiLineString(MultiLineString(Vec::new())),
        ("MultiPolygon", Node::Polygons(ps)) => {
            Geometry::MultiPolygon(MultiPolygon(ps.into_iter().map(polygon).collect()))
        }
        ("MultiPolygon", Node::Empty) => Geometry::MultiPolygon(MultiPolygon(Vec::new())),
        ("Point" | "LineString" | "MultiPoint" | "Polygon" | "MultiLineString" | "MultiPolygon", _) => {
            return Err(wrong());
        }
        _ => return Err(format!("'{kind}' is not a GeoJSON geometry type")),
    };
    Ok(Some(geometry))
}
