//! GeoJSON and JSON, read natively and streamed: a FeatureCollection feature by feature (a 2 GB file is
//! never in memory, whatever members surround `features`), newline-delimited features, a single Feature or geometry, and JSON arrays of flat
//! objects (typed like CSV, with latitude/longitude detected). Properties go through the same type guessing
//! as CSV values; JSON strings count as quoted values.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use geo_types::Geometry;
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::errors::{ImportError, codes};
use crate::load::table::StagingTable;
use crate::load::tabular::{GuessOptions, RowEncoder, ScanBuilder, plan};
use crate::load::{LoadContext, LoadedLayer, blocking, load_into_staging};
use crate::queue::ImportState;

/// How the file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A top-level array, of flat objects or of features.
    Array,
    /// One or more top-level objects: a FeatureCollection (its `features` streamed), a Feature, a geometry,
    /// or one feature or row per line.
    Objects,
}

/// One element of the file: its properties and, for features, its geometry.
struct Item {
    properties: Map<String, Value>,
    geometry: Option<Geometry<f64>>,
    is_feature: bool,
}

pub async fn load(
    ctx: &LoadContext<'_>,
    path: &Path,
    table_name: String,
    index: usize,
) -> Result<LoadedLayer, ImportError> {
    let source: PathBuf = path.to_path_buf();
    let max_rows = ctx.user.max_rows_per_table;
    let (layout, scan, keys, quoted, features) = blocking(move || {
        let layout = layout_of(&source)?;
        let mut scan = ScanBuilder::new(Vec::new(), max_rows)?;
        let mut keys: HashMap<String, usize> = HashMap::new();
        let mut quoted: Vec<bool> = Vec::new();
        let mut features = false;
        for_each_item(&source, layout, &mut |item| {
            scan.begin_row()?;
            features |= item.is_feature;
            for (key, value) in &item.properties {
                let column = match keys.get(key) {
                    Some(c) => *c,
                    None => {
                        let c = scan.add_column(key.clone())?;
                        keys.insert(key.clone(), c);
                        quoted.push(false);
                        c
                    }
                };
                if let Some(text) = value_text(value) {
                    quoted[column] |= value.is_string();
                    scan.observe(column, &text);
                }
            }
            Ok(())
        })?;
        if scan.columns() == 0 && !features {
            return Err(ImportError::new(codes::EMPTY_FILE, "the JSON holds no features and no rows"));
        }
        Ok((layout, scan.finish(), keys, quoted, features))
    })
    .await?;
    let options = GuessOptions { type_guessing: ctx.type_guessing, quoted_fields_guessing: ctx.quoted_fields_guessing };
    let plan = plan(&scan, &quoted, options, features);

    ctx.state.send_replace(ImportState::Importing);
    let staging = StagingTable::new(ctx.job_id, ctx.attempt, index, plan.columns.clone());
    let source = path.to_path_buf();
    let encode_plan = plan.clone();
    let width = scan.headers.len();
    let loaded = load_into_staging(ctx, &staging, move |chunks| {
        let mut encoder = RowEncoder::new(&encode_plan, chunks);
        let mut values: Vec<Option<String>> = vec![None; width];
        for_each_item(&source, layout, &mut |item| {
            values.iter_mut().for_each(|v| *v = None);
            for (key, value) in &item.properties {
                if let Some(&c) = keys.get(key) {
                    values[c] = value_text(value);
                }
            }
            encoder.row(|i| values[i].as_deref().unwrap_or("").into(), item.geometry.as_ref())
        })?;
        encoder.finish()
    })
    .await?;
    Ok(plan.layer(loaded, staging, table_name))
}

/// A property as text for the guesser: strings as they are, numbers and booleans written out, nested
/// values as JSON; None for null.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        nested => Some(nested.to_string()),
    }
}

fn open(path: &Path) -> Result<BufReader<File>, ImportError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(256 << 10, f))
        .map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot open the file: {e}")))
}

fn layout_of(path: &Path) -> Result<Layout, ImportError> {
    let mut head = Vec::with_capacity(4096);
    open(path)?
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot read the file: {e}")))?;
    let text = String::from_utf8_lossy(&head);
    match text.trim_start_matches('\u{feff}').trim_start().chars().next() {
        None => Err(ImportError::new(codes::EMPTY_FILE, "the file is empty")),
        Some('[') => Ok(Layout::Array),
        Some('{') => Ok(Layout::Objects),
        Some(_) => Err(invalid("the file does not start with a JSON object or array")),
    }
}

fn invalid(detail: impl Into<String>) -> ImportError {
    ImportError::new(codes::INVALID_GEOJSON, detail)
}

/// Calls `visit` for every feature or row of the file, streaming.
fn for_each_item(
    path: &Path,
    layout: Layout,
    visit: &mut dyn FnMut(Item) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut de = serde_json::Deserializer::from_reader(open(path)?);
    let mut failure = None;
    let result = match layout {
        Layout::Array => ArrayElements { visit: &mut *visit, failure: &mut failure }.deserialize(&mut de),
        Layout::Objects => TopObject { visit: &mut *visit, failure: &mut failure }.deserialize(&mut de),
    };
    if let Some(e) = failure {
        return Err(e);
    }
    result.map_err(|e| invalid(format!("the JSON is not valid: {e}")))?;
    if layout == Layout::Array {
        return de.end().map_err(|e| invalid(format!("unexpected data after the array: {e}")));
    }
    // Newline-delimited: every further object is a feature or a row of its own.
    for value in de.into_iter::<Value>() {
        let value = value.map_err(|e| invalid(format!("the JSON is not valid: {e}")))?;
        visit(item_of_value(value)?)?;
    }
    Ok(())
}

/// Reads one top-level object. Its `features` member is streamed element by element (so a FeatureCollection
/// is never in memory, whatever comes before or after `features`); other members are kept, and once the
/// object ends it is taken as a Feature, a geometry or a flat row.
struct TopObject<'a> {
    visit: &'a mut dyn FnMut(Item) -> Result<(), ImportError>,
    failure: &'a mut Option<ImportError>,
}

impl<'de> DeserializeSeed<'de> for TopObject<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopObject<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a GeoJSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut members = Map::new();
        let mut streamed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "features" {
                map.next_value_seed(ArrayElements { visit: &mut *self.visit, failure: &mut *self.failure })?;
                streamed = true;
            } else {
                members.insert(key, map.next_value::<Value>()?);
            }
        }
        if streamed {
            return Ok(());
        }
        if let Err(e) = item_of_value(Value::Object(members)).and_then(|item| (self.visit)(item)) {
            let message = e.detail.clone();
            *self.failure = Some(e);
            return Err(A::Error::custom(message));
        }
        Ok(())
    }
}

/// A feature, a bare geometry, or a flat object.
fn item_of_value(value: Value) -> Result<Item, ImportError> {
    let Value::Object(object) = value else {
        return Err(invalid("an element is neither a GeoJSON object nor a flat object"));
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "Feature" {
        let feature: geojson::Feature = serde_json::from_value(Value::Object(object))
            .map_err(|e| invalid(format!("a feature is not valid: {e}")))?;
        return Ok(feature_item(feature));
    }
    if object.contains_key("coordinates") || kind == "GeometryCollection" {
        let geometry: geojson::Geometry = serde_json::from_value(Value::Object(object))
            .map_err(|e| invalid(format!("a geometry is not valid: {e}")))?;
        return Ok(Item { properties: Map::new(), geometry: Geometry::try_from(geometry).ok(), is_feature: true });
    }
    Ok(Item { properties: object, geometry: None, is_feature: false })
}

fn feature_item(feature: geojson::Feature) -> Item {
    let geometry = feature.geometry.and_then(|g| Geometry::try_from(g).ok());
    Item { properties: feature.properties.unwrap_or_default(), geometry, is_feature: true }
}

/// Deserializes a top-level array one element at a time, handing each to `visit`.
struct ArrayElements<'a> {
    visit: &'a mut dyn FnMut(Item) -> Result<(), ImportError>,
    failure: &'a mut Option<ImportError>,
}

impl<'de> DeserializeSeed<'de> for ArrayElements<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArrayElements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            if let Err(e) = item_of_value(value).and_then(|item| (self.visit)(item)) {
                let message = e.detail.clone();
                *self.failure = Some(e);
                return Err(A::Error::custom(message));
            }
        }
        Ok(())
    }
}
