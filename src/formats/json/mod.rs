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
//! of a FeatureCollection other than `features` are skipped without being stored. The second pass reads
//! what the first found valid without checking it again (`trusted`), so that it costs little more than
//! cutting the text into members.

mod frame;
mod items;
mod marks;
mod properties;
mod top;
mod trusted;
mod utf8;

use std::borrow::Cow;
use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::errors::{ImportError, codes};
use crate::load::tabular::{EncodeStats, RowEncoder, Scan, ScanBuilder, TablePlan, load_planned, plan_for};
use crate::load::{LoadContext, LoadedLayer, Stage, blocking};
use crate::source::input::Input;
pub use items::{Layout, Pass};
use top::for_each_item;
pub use utf8::Utf8Input;

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
    source: &Utf8Input,
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
    // Per property of the element, its column; per column, the last element that had it (twice the
    // element's number, plus one once observed), to find repeated names without a map per element.
    let mut columns_of: Vec<usize> = Vec::new();
    let mut last_seen: Vec<u64> = Vec::new();
    for_each_item(source, layout, Pass::Checking, max_record, stop, &mut |item| {
        scan.begin_row()?;
        elements += 1;
        features |= item.is_feature;
        columns_of.clear();
        let mut unknown = false;
        for (i, (key, _)) in item.properties.iter().enumerate() {
            let column = recent.column(i, key, &keys);
            unknown |= column.is_none();
            columns_of.push(column.unwrap_or(usize::MAX));
        }
        if unknown {
            // New columns by name, as a map of the element's properties would have listed them.
            let mut fresh: Vec<&str> = item
                .properties
                .iter()
                .zip(&columns_of)
                .filter(|(_, c)| **c == usize::MAX)
                .map(|((k, _), _)| k.as_ref())
                .collect();
            fresh.sort_unstable();
            fresh.dedup();
            for key in fresh {
                let c = scan.add_column(key.to_string())?;
                keys.insert(key.to_string(), c);
                quoted.push(false);
                last_seen.push(0);
            }
            for (i, ((key, _), c)) in item.properties.iter().zip(columns_of.iter_mut()).enumerate() {
                if *c == usize::MAX {
                    *c = keys[key.as_ref()];
                    recent.remember(i, key, *c);
                }
            }
        }
        let (seen, observed) = (2 * elements, 2 * elements + 1);
        let mut repeated = false;
        for &c in &columns_of {
            repeated |= last_seen[c] == seen;
            last_seen[c] = seen;
        }
        let mut observe = |column: usize, value: &str| {
            if let Some(text) = value_text(value) {
                quoted[column] |= is_string(value);
                scan.observe(column, &text);
            }
        };
        if !repeated {
            for ((_, value), &c) in item.properties.iter().zip(&columns_of) {
                observe(c, value);
            }
        } else {
            // A repeated name: only its last value counts. (Observing is counting, so order does not matter.)
            let members: Vec<_> = item.properties.iter().collect();
            for ((_, value), &c) in members.into_iter().zip(&columns_of).rev() {
                if last_seen[c] != observed {
                    last_seen[c] = observed;
                    observe(c, value);
                }
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
    source: &Utf8Input,
    first: &FirstPass,
    plan: &TablePlan,
    max_record: u64,
    stop: &CancellationToken,
    chunks: mpsc::Sender<Vec<u8>>,
) -> Result<EncodeStats, ImportError> {
    let mut encoder = RowEncoder::new(plan, chunks);
    let width = first.scan.headers.len();
    let mut recent = RecentKeys::default();
    // Per column, the property of the element that fills it: the last one of its name.
    let mut member_of: Vec<usize> = vec![usize::MAX; width];
    for_each_item(source, first.layout, Pass::Trusting, max_record, stop, &mut |item| {
        member_of.fill(usize::MAX);
        for (i, (key, _)) in item.properties.iter().enumerate() {
            if let Some(c) = recent.column(i, key, &first.keys) {
                member_of[c] = i;
            }
        }
        let properties = &item.properties;
        let field = |c: usize| properties.value(member_of[c]).and_then(value_text).unwrap_or(Cow::Borrowed(""));
        encoder.row(field, item.geometry.as_ref())
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
    input: &Input,
    table_name: String,
    index: usize,
) -> Result<LoadedLayer, ImportError> {
    let max_rows = ctx.user.max_rows_per_table;
    let (max_record, stop, given) = (ctx.max_record_bytes, ctx.stop.clone(), input.clone());
    let (source, first) = blocking(move || {
        let source = utf8::utf8_input(&given, false, &stop)?;
        match first_pass(&source, max_rows, max_record, &stop) {
            // UTF-8 at first, not further on: read again in the encoding the whole file has.
            Err(e) if !source.is_decoded() && e.detail.contains("invalid unicode code point") => {
                let source = utf8::utf8_input(&given, true, &stop)?;
                let first = first_pass(&source, max_rows, max_record, &stop)?;
                Ok((source, first))
            }
            other => other.map(|first| (source, first)),
        }
    })
    .await?;
    (ctx.report)(Stage::Counted(first.scan.rows));
    let plan = plan_for(ctx, &first.scan, &first.quoted, first.features);
    let stop = ctx.stop.clone();
    load_planned(ctx, plan, index, table_name, move |plan, chunks| {
        encode_items(&source, &first, plan, max_record, &stop, chunks)
    })
    .await
}

/// A property as text for the guesser: strings unescaped, numbers and booleans as written, nested values as
/// compact JSON; None for null.
fn value_text(text: &str) -> Option<Cow<'_, str>> {
    match text.as_bytes().first()? {
        b'n' => None,
        b'"' if !text.contains('\\') => Some(Cow::Borrowed(&text[1..text.len() - 1])),
        b'"' => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
        b'{' | b'[' => Some(compact(text)),
        _ => Some(Cow::Borrowed(text)),
    }
}

fn is_string(raw: &str) -> bool {
    raw.starts_with('"')
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::guess::ValueKind;

    #[test]
    fn a_repeated_property_counts_only_its_last_value_and_new_columns_come_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, r#"[{"z":1,"a":"x","a":1},{"a":2,"z":2},{"a":3,"b":"2024-01-01","z":3}]"#).unwrap();
        let source = Utf8Input::as_is(Input::file(&path, "f.json"));
        let first = first_pass(&source, None, 1 << 20, &CancellationToken::new()).unwrap();
        assert_eq!(first.scan.headers, ["a", "z", "b"]);
        let a = first.scan.stats[0].guess(true);
        assert_eq!((a.kind, a.misfits), (ValueKind::Integer, 0));
        assert_eq!(first.scan.stats[0].non_null, 3);
        assert_eq!(first.quoted, [false, false, true]);
    }
}
