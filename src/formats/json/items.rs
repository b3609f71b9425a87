//! The streaming reader under the JSON loader: walks a file's features or rows one element at a time,
//! counting the bytes (and geometry positions) of each against the record limit, and hands each element to
//! a visitor with its properties as raw JSON text and its geometry parsed.

use std::borrow::Cow;
use std::cell::RefCell;

use geo_types::Geometry;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::properties::Properties;
use super::utf8::Utf8Input;
use crate::errors::{ImportError, codes};
use crate::load::geojson::{GeometriesSeed, GeometrySeed, Node, NodeSeed, Positions, StrSeed, build_geometry};

/// How the file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A top-level array, of flat objects or of features.
    Array,
    /// One or more top-level objects: a FeatureCollection (its `features` streamed), a Feature, a geometry,
    /// or one feature or row per line.
    Objects,
}

/// One element of the file: its properties and, for features, its geometry.
pub struct Item<'a> {
    pub properties: Properties<'a>,
    pub geometry: Option<Geometry<f64>>,
    pub is_feature: bool,
}

/// How the file is laid out, from its first bytes.
pub fn layout_of(source: &Utf8Input) -> Result<Layout, ImportError> {
    let head = source.head(4096)?;
    let text = String::from_utf8_lossy(&head);
    match text.trim_start_matches('\u{feff}').trim_start().chars().next() {
        None => Err(ImportError::new(codes::EMPTY_FILE, "the file is empty")),
        Some('[') => Ok(Layout::Array),
        Some('{') => Ok(Layout::Objects),
        Some(_) => Err(invalid("the file does not start with a JSON object or array")),
    }
}

/// Which pass reads the file: the first checks everything; the second reads what the first found valid,
/// more quickly (see `trusted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Checking,
    Trusting,
}

pub(super) fn invalid(detail: impl Into<String>) -> ImportError {
    ImportError::new(codes::INVALID_GEOJSON, detail)
}

/// What the visitors of an element share.
pub(super) struct Progress {
    /// The positions of the element being read.
    pub(super) positions: Positions,
    /// Why reading stopped, when it was not the JSON's fault.
    pub(super) failure: RefCell<Option<ImportError>>,
}

impl Progress {
    /// Records why reading stops; the parser's own error only carries the message.
    fn fail<E: serde::de::Error>(&self, e: ImportError) -> E {
        let message = E::custom(&e.detail);
        self.failure.borrow_mut().get_or_insert(e);
        message
    }
}

pub(super) fn too_large(max_element: u64) -> ImportError {
    ImportError::new(
        codes::DATASET_TOO_BIG,
        format!(
            "an element of the JSON (a feature, a row, or a member of the top object) is larger than {}, the \
             most one may be (GEOIMPORT_MAX_RECORD_BYTES)",
            describe_bytes(max_element)
        ),
    )
}

fn describe_bytes(n: u64) -> String {
    if n.is_multiple_of(1 << 20) { format!("{} MiB", n >> 20) } else { format!("{n} bytes") }
}

pub type Visit<'v> = dyn FnMut(Item<'_>) -> Result<(), ImportError> + 'v;

/// One element: a Feature, a geometry or a flat row. Members are kept as raw text only while what the
/// object is remains unknown.
pub(super) struct ObjectSeed<'a, 'v> {
    pub(super) progress: &'a Progress,
    pub(super) visit: &'a mut Visit<'v>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// The parts of an object read so far.
#[derive(Default)]
struct ObjectParts<'de> {
    /// The `type` member, when it is a string.
    kind: Option<Cow<'de, str>>,
    /// Members kept raw while the object may still be a row (or a Feature or geometry whose type comes late).
    members: Properties<'de>,
    /// A Feature's properties and geometry, read directly once the object is known to be one.
    properties: Option<Properties<'de>>,
    geometry: Option<Option<Geometry<f64>>>,
    /// A geometry's coordinates (read directly whatever the object turns out to be: an object with
    /// coordinates is a geometry) and, for a GeometryCollection, its members.
    coordinates: Option<Node>,
    geometries: Option<Vec<Geometry<f64>>>,
}

/// A JSON string's text, borrowed when it has no escapes.
pub(super) fn string_of(text: &str) -> Option<Cow<'_, str>> {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(Cow::Borrowed(inner)),
        Some(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
        None => None,
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a GeoJSON object or a flat object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let progress = self.progress;
        let mut parts = ObjectParts::default();
        while let Some(key) = map.next_key_seed(StrSeed)? {
            let kind = parts.kind.as_deref();
            match key.as_ref() {
                "type" => {
                    let raw: &'de RawValue = map.next_value()?;
                    parts.kind = string_of(raw.get());
                    keep(progress, &mut parts.members, key, raw)?;
                }
                "properties" if kind == Some("Feature") => {
                    parts.properties = Some(map.next_value_seed(PropertiesSeed { progress })?);
                }
                "geometry" if kind == Some("Feature") => {
                    parts.geometry =
                        Some(map.next_value_seed(GeometrySeed { positions: &progress.positions, nullable: true })?);
                }
                _ if kind == Some("Feature") => {
                    map.next_value::<IgnoredAny>()?;
                }
                "coordinates" => {
                    parts.coordinates = Some(map.next_value_seed(NodeSeed { positions: &progress.positions })?)
                }
                "geometries" if kind == Some("GeometryCollection") => {
                    parts.geometries = Some(map.next_value_seed(GeometriesSeed { positions: &progress.positions })?);
                }
                _ => {
                    let raw: &'de RawValue = map.next_value()?;
                    keep(progress, &mut parts.members, key, raw)?;
                }
            }
        }
        let item = item_of(parts, progress).map_err(|e| progress.fail(e))?;
        (self.visit)(item).map_err(|e| progress.fail(e))
    }
}

/// Keeps a member (see [`Properties::push`] for what is refused).
fn keep<'de, E: serde::de::Error>(
    progress: &Progress,
    members: &mut Properties<'de>,
    key: Cow<'de, str>,
    raw: &'de RawValue,
) -> Result<(), E> {
    members.push(key, raw.get()).map_err(|e| progress.fail(e))
}

/// What an object turned out to be, once read.
fn item_of<'de>(parts: ObjectParts<'de>, progress: &Progress) -> Result<Item<'de>, ImportError> {
    let kind = parts.kind.as_deref().unwrap_or("");
    if kind == "Feature" {
        let properties = match (parts.properties, parts.members.last("properties")) {
            (Some(p), _) => p,
            (None, Some(raw)) => from_raw(raw, PropertiesSeed { progress }, "a feature's properties")?,
            (None, None) => Properties::new(),
        };
        let geometry = match (parts.geometry, parts.members.last("geometry")) {
            (Some(g), _) => g,
            (None, Some(raw)) => {
                from_raw(raw, GeometrySeed { positions: &progress.positions, nullable: true }, "a feature's geometry")?
            }
            (None, None) => None,
        };
        return Ok(Item { properties, geometry, is_feature: true });
    }
    if parts.coordinates.is_some() || kind == "GeometryCollection" {
        let geometries = match (parts.geometries, parts.members.last("geometries")) {
            (Some(g), _) => Some(g),
            (None, Some(raw)) => {
                Some(from_raw(raw, GeometriesSeed { positions: &progress.positions }, "a geometry collection")?)
            }
            (None, None) => None,
        };
        let geometry = build_geometry(kind, parts.coordinates, geometries).map_err(|e| invalid(e.to_string()))?;
        return Ok(Item { properties: Properties::new(), geometry, is_feature: true });
    }
    Ok(Item { properties: parts.members, geometry: None, is_feature: false })
}

/// Reads a member kept raw with the seed that would have read it in place.
fn from_raw<'de, T>(raw: &'de str, seed: impl DeserializeSeed<'de, Value = T>, what: &str) -> Result<T, ImportError> {
    let mut de = serde_json::Deserializer::from_str(raw);
    seed.deserialize(&mut de).map_err(|e| invalid(format!("{what} is not valid: {e}")))
}

/// A Feature's `properties`: an object (its values kept raw) or null.
struct PropertiesSeed<'a> {
    progress: &'a Progress,
}

impl<'de> DeserializeSeed<'de> for PropertiesSeed<'_> {
    type Value = Properties<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Properties<'de>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for PropertiesSeed<'_> {
    type Value = Properties<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of properties, or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Properties<'de>, E> {
        Ok(Properties::new())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Properties<'de>, E> {
        Ok(Properties::new())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Properties<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties<'de>, A::Error> {
        let mut properties = Properties::new();
        while let Some(key) = map.next_key_seed(StrSeed)? {
            let raw: &'de RawValue = map.next_value()?;
            keep(self.progress, &mut properties, key, raw)?;
        }
        Ok(properties)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::json::top::for_each_item;
    use crate::formats::json::{is_string, value_text};
    use tokio_util::sync::CancellationToken;

    /// An item, as owned values: the properties' guesser texts and whether each is a JSON string.
    #[derive(Debug, PartialEq)]
    struct Read {
        texts: Vec<(String, Option<String>)>,
        strings: Vec<bool>,
        geometry: Option<Geometry<f64>>,
        is_feature: bool,
    }

    /// Every item of `json`, read with an element limit of `max` bytes; the second pass, which trusts what
    /// the first checked, reads the same items.
    fn items(json: &str, max: u64) -> Result<Vec<Read>, ImportError> {
        let checked = read_with(Pass::Checking, json, max)?;
        assert_eq!(read_with(Pass::Trusting, json, max).unwrap(), checked, "{json}");
        Ok(checked)
    }

    fn read_with(pass: Pass, json: &str, max: u64) -> Result<Vec<Read>, ImportError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, json).unwrap();
        let source = as_is(&path);
        let mut out = Vec::new();
        for_each_item(&source, layout_of(&source)?, pass, max, &CancellationToken::new(), &mut |item| {
            // by name, as columns are made; a repeated name keeps its place in the file
            let mut members: Vec<_> = item.properties.iter().collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            out.push(Read {
                texts: members.iter().map(|(k, v)| (k.to_string(), value_text(v).map(|t| t.into_owned()))).collect(),
                strings: members.iter().map(|(_, v)| is_string(v)).collect(),
                geometry: item.geometry,
                is_feature: item.is_feature,
            });
            Ok(())
        })?;
        Ok(out)
    }

    fn as_is(path: &std::path::Path) -> Utf8Input {
        Utf8Input::as_is(crate::source::input::Input::file(path, "f.json"))
    }

    fn texts(item: &Read) -> Vec<(String, Option<String>)> {
        item.texts.clone()
    }

    #[test]
    fn a_stopped_job_reads_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let row = r#"{"a":"row row row row row row row row row row row row row row row row"},"#;
        std::fs::write(&path, format!("[{}{{}}]", row.repeat(100_000))).unwrap();
        let stop = CancellationToken::new();
        let mut seen = 0;
        let result = for_each_item(&as_is(&path), Layout::Array, Pass::Checking, 1 << 20, &stop, &mut |_| {
            seen += 1;
            if seen == 10 {
                stop.cancel();
            }
            Ok(())
        });
        assert_eq!(result.unwrap_err().code, codes::CANCELLED);
        assert!(seen < 10_000, "read {seen} rows after the stop");
    }

    #[test]
    fn properties_become_the_guessers_text() {
        let json = r#"{"type":"Feature","properties":{"s":"a \"quoted\" \u00e9","n":1.50,"big":123456789012345678901234,
            "b":false,"z":null,"nested":{ "k" : [1, "two words"] }},"geometry":null}"#;
        let all = items(json, 1 << 20).unwrap();
        assert_eq!(
            texts(&all[0]),
            [
                ("b", Some("false")),
                ("big", Some("123456789012345678901234")),
                ("n", Some("1.50")),
                ("nested", Some(r#"{"k":[1,"two words"]}"#)),
                ("s", Some("a \"quoted\" é")),
                ("z", None),
            ]
            .map(|(k, v)| (k.to_string(), v.map(String::from)))
        );
        assert_eq!(all[0].strings, [false, false, false, false, true, false]);
    }

    #[test]
    fn geometries_are_read_whatever_the_order_of_members() {
        let json = r#"[
            {"geometry":{"coordinates":[[[0,0],[1,0],[1,1],[0,0]],[]],"type":"Polygon"},"properties":{"a":1},"type":"Feature"},
            {"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[[],[[[0,0,9],[1,0,9],[1,1,9],[0,0,9]]]]}},
            {"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"LineString","coordinates":[]}]},
            {"coordinates":[3,4],"type":"Point"},
            {"type":"restaurant","name":"Sol"}
        ]"#;
        let all = items(json, 1 << 20).unwrap();
        let Some(Geometry::Polygon(p)) = &all[0].geometry else { panic!("{:?}", all[0].geometry) };
        assert_eq!((p.exterior().0.len(), p.interiors().len()), (4, 1));
        assert_eq!(texts(&all[0]), [("a".to_string(), Some("1".to_string()))]);
        let Some(Geometry::MultiPolygon(mp)) = &all[1].geometry else { panic!() };
        assert_eq!((mp.0.len(), mp.0[1].exterior().0[1]), (2, geo_types::Coord { x: 1.0, y: 0.0 }));
        assert!(matches!(&all[2].geometry, Some(Geometry::GeometryCollection(gc)) if gc.0.len() == 2));
        assert!(matches!(all[3].geometry, Some(Geometry::Point(p)) if p.x() == 3.0));
        assert!(!all[4].is_feature);
        assert_eq!(texts(&all[4]).len(), 2, "a row keeps its own `type` column");
    }

    #[test]
    fn repeated_and_late_members_read_the_same_in_both_passes() {
        let json = r#"[
            {"properties":{"b":1,"a":"x","b":"y"},"geometry":{"type":"Point","coordinates":[1,2]},"type":"Feature"},
            {"type":"Feature","properties":null,"geometry":null,"extra":{"k":"}"}},
            {"a":1,"type":"row","a":2,"n\u00e9":[1, {"x" : "\""}]},
            {"geometries":[{"type":"Point","coordinates":[1,2,3]}],"type":"GeometryCollection"},
            {"type":"Feature","properties":{"c":1},"type":"x","properties":{"d":2},"type":"Feature"}
        ]"#;
        let all = items(json, 1 << 20).unwrap();
        assert_eq!(all[0].texts.len(), 3, "a repeated name is seen each time");
        assert!(matches!(all[0].geometry, Some(Geometry::Point(p)) if p.y() == 2.0));
        assert!(all[1].texts.is_empty() && all[1].geometry.is_none() && all[1].is_feature);
        assert!(!all[2].is_feature && all[2].texts.len() == 4);
        assert!(matches!(&all[3].geometry, Some(Geometry::GeometryCollection(gc)) if gc.0.len() == 1));
        assert_eq!(texts(&all[4]), [("c".to_string(), Some("1".to_string()))]);
    }

    #[test]
    fn elements_cut_by_the_window_and_characters_cut_by_a_read_read_the_same_in_both_passes() {
        // Elements of every length, with characters of two to four bytes, cross each 256 KiB read at
        // every offset: the second pass, which reads from the window before knowing where an element ends,
        // must find each whole.
        let features: Vec<String> = (0..6000)
            .map(|i| {
                let name = "é😀ñ€".repeat(i % 97);
                format!(
                    r#"{{"type":"Feature","properties":{{"n":{i},"s":"{name}"}},"geometry":{{"type":"Point","coordinates":[{i},1]}}}}"#
                )
            })
            .collect();
        let collection = format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(",\n"));
        assert!(collection.len() > 4 * (256 << 10));
        let lines = features.join("\n");
        for json in [&collection, &lines] {
            let all = items(json, 1 << 20).unwrap();
            assert_eq!(all.len(), 6000);
            assert_eq!(all[5999].texts[1].1.as_deref(), Some("é😀ñ€".repeat(5999 % 97).as_str()));
        }
    }

    #[test]
    fn a_file_changed_between_the_passes_fails_in_the_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let feature = r#"{"type":"Feature","properties":{"a":"x"},"geometry":null}"#;
        let not_utf8 = [format!("[{feature}, {{\"a\": \"").as_bytes(), b"\xff\"}]"].concat();
        for changed in [format!("[{feature}, {{\"a\": [1}}]").into_bytes(), not_utf8] {
            std::fs::write(&path, &changed).unwrap();
            let result = for_each_item(
                &as_is(&path),
                Layout::Array,
                Pass::Trusting,
                1 << 20,
                &CancellationToken::new(),
                &mut |_| Ok(()),
            );
            assert_eq!(
                result.err().map(|e| e.code),
                Some(codes::INVALID_GEOJSON),
                "{}",
                String::from_utf8_lossy(&changed)
            );
        }
    }

    #[test]
    fn malformed_geometries_are_invalid_geojson() {
        for bad in [
            r#"{"type":"Point","coordinates":[[1,2]]}"#,
            r#"{"type":"Polygon","coordinates":[[1,2],[[3,4]]]}"#,
            r#"{"type":"Circle","coordinates":[1,2]}"#,
            r#"{"type":"Point","coordinates":[1]}"#,
            r#"{"type":"Feature","properties":[1],"geometry":null}"#,
            "[[0,0,0]]",
        ] {
            assert_eq!(items(bad, 1 << 20).err().map(|e| e.code), Some(codes::INVALID_GEOJSON), "{bad}");
        }
    }

    #[test]
    fn an_element_past_the_limit_fails_6666_and_others_around_it_do_not_count() {
        let big = "0,".repeat(1 << 20);
        // one element of 2 MiB, under a limit of 1 MiB
        let e = items(&format!(r#"[{{"a":[{big}0]}}]"#), 1 << 20).err().unwrap();
        assert_eq!(e.code, codes::DATASET_TOO_BIG);
        assert!(e.detail.contains("larger than 1 MiB") && e.detail.contains("GEOIMPORT_MAX_RECORD_BYTES"), "{e}");
        // members of a FeatureCollection, before or after its type is known, are elements too
        for json in [
            format!(r#"{{"pad":[{big}0],"type":"FeatureCollection","features":[]}}"#),
            format!(r#"{{"type":"FeatureCollection","pad":[{big}0],"features":[]}}"#),
            format!("{{\"a\":1}}\n{{\"b\":[{big}0]}}\n"),
        ] {
            assert_eq!(items(&json, 1 << 20).err().map(|e| e.code), Some(codes::DATASET_TOO_BIG));
        }
        // many elements, each under the limit, make any size
        let feature = format!(r#"{{"type":"Feature","properties":{{"a":"{}"}},"geometry":null}}"#, "x".repeat(400_000));
        let many = format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, vec![feature; 20].join(","));
        assert_eq!(items(&many, 1 << 20).unwrap().len(), 20);
        // so does a long property name
        let name = "n".repeat(5000);
        let e = items(&format!(r#"[{{"{name}":1}}]"#), 1 << 20).err().unwrap();
        assert!(e.code == codes::DATASET_TOO_BIG && e.detail.contains("5000 bytes"), "{e}");
        // compact coordinates count by the memory they take
        let line = vec!["[0,0]"; 100_000].join(",");
        let json = format!(r#"{{"type":"LineString","coordinates":[{line}]}}"#);
        assert!(json.len() < 1 << 20);
        assert_eq!(items(&json, 1 << 20).err().map(|e| e.code), Some(codes::DATASET_TOO_BIG));
    }
}
