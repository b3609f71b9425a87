//! GeoJSON and JSON, read natively and streamed: a FeatureCollection feature by feature, newline-delimited
//! features, a single Feature or geometry, and JSON arrays of flat objects (typed like CSV, with
//! latitude/longitude detected). Properties go through the same type guessing as CSV values; JSON strings
//! count as quoted values.
//!
//! Memory is bounded by the record limit (`GEOIMPORT_MAX_RECORD_BYTES`), whatever the file: nothing is ever
//! held as a `serde_json::Value` (about 16 times its text). One element at a time is in memory: a feature, a
//! row, an NDJSON line, or a member of the top object other than `features`. A counting reader under the
//! parser fails the import with 6666 once an element runs past the limit, before the parser has buffered
//! more than that; a geometry's positions (two f64 each, further ordinates ignored) count against it too.
//! Properties are kept as their raw JSON text and geometries are parsed straight into `geo_types`. Members
//! of a FeatureCollection other than `features` are skipped without being stored.

mod frame;
mod items;
mod top;
mod utf8;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::errors::{ImportError, codes};
use crate::load::tabular::{EncodeStats, RowEncoder, Scan, ScanBuilder, TablePlan, load_planned, plan_for};
use crate::load::{LoadContext, LoadedLayer, blocking};
pub use items::Layout;
use top::for_each_item;

/// What the first pass learnt: the layout, the values seen, and where each property's column is.
pub struct FirstPass {
    pub layout: Layout,
    pub scan: Scan,
    keys: HashMap<String, usize>,
    /// Per column: whether any value was a JSON string.
    pub quoted: Vec<bool>,
    /// Whether any element was a feature (the table then gets the features' geometry).
    pub features: bool,
}

/// The first pass: every element read once, its properties observed by the type guesser. Runs on a
/// blocking thread.
pub fn first_pass(
    source: &Path,
    max_rows: Option<i64>,
    max_record: u64,
    stop: &CancellationToken,
) -> Result<FirstPass, ImportError> {
    let layout = items::layout_of(source)?;
    let mut scan = ScanBuilder::new(Vec::new(), max_rows, max_record)?;
    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut quoted: Vec<bool> = Vec::new();
    let mut features = false;
    let mut elements = 0u64;
    let mut recent = RecentKeys::default();
    for_each_item(source, layout, max_record, stop, &mut |item| {
        scan.begin_row()?;
        elements += 1;
        features |= item.is_feature;
        for (i, (key, value)) in item.properties.iter().enumerate() {
            let column = match recent.column(i, key, &keys) {
                Some(c) => c,
                None => {
                    let c = scan.add_column(key.to_string())?;
                    keys.insert(key.to_string(), c);
                    quoted.push(false);
                    recent.remember(i, key, c);
                    c
                }
            };
            if let Some(text) = value_text(value) {
                quoted[column] |= is_string(value);
                scan.observe(column, &text);
            }
        }
        Ok(())
    })?;
    if scan.columns() == 0 && !features {
        return Err(ImportError::new(codes::EMPTY_FILE, "the JSON holds no features and no rows"));
    }
    // One object that is no feature or geometry is a document, not data (an array or lines of such objects
    // are rows).
    if layout == Layout::Objects && elements == 1 && !features {
        return Err(ImportError::new(
            codes::INVALID_GEOJSON,
            "the JSON is one object that is neither GeoJSON (a feature, a collection of features, a geometry) \
             nor a list of records",
        ));
    }
    Ok(FirstPass { layout, scan: scan.finish(), keys, quoted, features })
}

/// The second pass: every element read again and written as binary COPY chunks by `plan`.
pub fn encode_items(
    source: &Path,
    first: &FirstPass,
    plan: &TablePlan,
    max_record: u64,
    stop: &CancellationToken,
    chunks: mpsc::Sender<Vec<u8>>,
) -> Result<EncodeStats, ImportError> {
    let mut encoder = RowEncoder::new(plan, chunks);
    let width = first.scan.headers.len();
    let mut recent = RecentKeys::default();
    for_each_item(source, first.layout, max_record, stop, &mut |item| {
        let mut values: Vec<Option<Cow<'_, str>>> = vec![None; width];
        for (i, (key, value)) in item.properties.iter().enumerate() {
            if let Some(c) = recent.column(i, key, &first.keys) {
                values[c] = value_text(value);
            }
        }
        encoder.row(|i| values[i].as_deref().unwrap_or("").into(), item.geometry.as_ref())
    })?;
    encoder.finish()
}

/// The columns of the previous element's properties, by their place in it: elements mostly have the same
/// properties, so a key is compared with the one in the same place before it is hashed.
#[derive(Default)]
struct RecentKeys {
    keys: Vec<(String, usize)>,
}

impl RecentKeys {
    /// The column of the `i`th property, `key`, if it has one.
    fn column(&mut self, i: usize, key: &str, columns: &HashMap<String, usize>) -> Option<usize> {
        if let Some((known, c)) = self.keys.get(i)
            && known == key
        {
            return Some(*c);
        }
        let c = *columns.get(key)?;
        self.remember(i, key, c);
        Some(c)
    }

    fn remember(&mut self, i: usize, key: &str, column: usize) {
        if let Some(slot) = self.keys.get_mut(i) {
            slot.0.clear();
            slot.0.push_str(key);
            slot.1 = column;
        } else if i == self.keys.len() {
            self.keys.push((key.to_string(), column));
        }
    }
}

pub async fn load(
    ctx: &LoadContext<'_>,
    path: &Path,
    table_name: String,
    index: usize,
) -> Result<LoadedLayer, ImportError> {
    let max_rows = ctx.user.max_rows_per_table;
    let (max_record, stop, given) = (ctx.max_record_bytes, ctx.stop.clone(), path.to_path_buf());
    let (source, first) = blocking(move || {
        let source = utf8::utf8_path(&given, false, &stop)?;
        match first_pass(&source, max_rows, max_record, &stop) {
            // UTF-8 at first, not further on: read again in the encoding the whole file has.
            Err(e) if source == given && e.detail.contains("invalid unicode code point") => {
                let source = utf8::utf8_path(&given, true, &stop)?;
                let first = first_pass(&source, max_rows, max_record, &stop)?;
                Ok((source, first))
            }
            other => other.map(|first| (source, first)),
        }
    })
    .await?;
    let plan = plan_for(ctx, &first.scan, &first.quoted, first.features);
    let stop = ctx.stop.clone();
    load_planned(ctx, plan, index, table_name, move |plan, chunks| {
        encode_items(&source, &first, plan, max_record, &stop, chunks)
    })
    .await
}

/// A property as text for the guesser: strings unescaped, numbers and booleans as written, nested values as
/// compact JSON; None for null.
fn value_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'n' => None,
        b'"' if !text.contains('\\') => Some(Cow::Borrowed(&text[1..text.len() - 1])),
        b'"' => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
        b'{' | b'[' => Some(compact(text)),
        _ => Some(Cow::Borrowed(text)),
    }
}

fn is_string(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

/// JSON text without the blanks between its tokens.
fn compact(json: &str) -> Cow<'_, str> {
    let blank = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    if !json.bytes().any(blank) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii() && blank(c as u8) {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}
