//! Entry points for the fuzz targets in `fuzz/` (run by `scripts/fuzz`): each feeds arbitrary bytes to one
//! parser of untrusted input the way the import pipeline does, and asserts what must hold whatever the
//! bytes: no panic, bounded allocation (libFuzzer's `-rss_limit_mb`), and the parser's own promises (a
//! sanitized name is a valid identifier, an archive writes nothing outside its folder...). Crashes the
//! fuzzers found are replayed by `tests/it/fuzz_regressions.rs`.
//!
//! Files are written under one temporary folder per process, reused from input to input.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connector::postgres::transcode::{Binary, Frame, Geometry as FrameGeometry, Transcoder};
use crate::errors::ImportError;
use crate::formats::{csv, json};
use crate::load::geometry;
use crate::load::names;
use crate::load::tabular::{EncodeStats, GuessOptions, TablePlan, plan};
use crate::source::input::Input;
use crate::unpack::{self, Budget, Limits};

/// The record limit the targets read with: small, so that inputs past it are found quickly.
const MAX_RECORD: u64 = 64 << 10;

fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::Builder::new().prefix("geoimport-fuzz").tempdir().expect("a temporary folder")).path()
}

fn staged(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("the scratch file is written");
    path
}

/// Runs `encode` with a COPY channel drained as it goes; the chunks are dropped.
fn drained(encode: impl FnOnce(mpsc::Sender<Vec<u8>>) -> Result<EncodeStats, ImportError>) {
    let (sender, mut chunks) = mpsc::channel(4);
    let drain = std::thread::spawn(move || while chunks.blocking_recv().is_some() {});
    let _ = encode(sender);
    drain.join().expect("the drain thread ends");
}

fn check_plan(plan: &TablePlan) {
    let names: HashSet<&str> = plan.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), plan.columns.len(), "column names repeat: {:?}", plan.columns);
    for name in names {
        assert_identifier(name);
        assert!(!names::CARTO_COLUMNS.contains(&name), "{name} is ours");
    }
}

/// Both CSV passes over `data`: sniffing, the scan and type guess, then encoding every row as binary COPY.
pub fn csv(data: &[u8]) {
    let stop = CancellationToken::new();
    let path = staged("in.csv", data);
    let path = Input::file(path, "in.csv");
    let Ok((dialect, scan)) = csv::first_pass(&path, "csv", Some(100_000), MAX_RECORD, &stop) else { return };
    for options in [true, false].map(|g| GuessOptions { type_guessing: g, quoted_fields_guessing: g }) {
        let plan = plan(&scan, &dialect.quoted_columns, options, false);
        check_plan(&plan);
        drained(|chunks| csv::encode_rows(&path, &dialect, &plan, MAX_RECORD, &stop, chunks));
    }
}

/// Both JSON passes over `data`: the streaming reader, the type guess, then encoding every element.
pub fn json(data: &[u8]) {
    let stop = CancellationToken::new();
    let path = staged("in.json", data);
    let path = json::Utf8Input::as_is(Input::file(path, "in.json"));
    let Ok(first) = json::first_pass(&path, Some(100_000), MAX_RECORD, &stop) else { return };
    let options = GuessOptions { type_guessing: true, quoted_fields_guessing: true };
    let plan = plan(&first.scan, &first.quoted, options, first.features);
    check_plan(&plan);
    drained(|chunks| json::encode_items(&path, &first, &plan, MAX_RECORD, &stop, chunks));
}

/// Unpacks `data[1..]` as the archive kind `data[0]` picks, under small limits; whatever it holds, the
/// unpacked tree stays inside its folder (no links, no paths that climb out) and within the limits.
pub fn unpack(data: &[u8]) {
    let Some((&kind, archive)) = data.split_first() else { return };
    let kinds = [
        ("zip", "zip"),
        ("tar", "tar"),
        ("tgz", "tgz"),
        ("gz", "gz"),
        ("bz2", "bz2"),
        ("tar.gz", "gz"),
        ("tar.bz2", "bz2"),
    ];
    let (name, ext) = kinds[usize::from(kind) % kinds.len()];
    let path = staged(&format!("in.{name}"), archive);
    let dest = scratch().join("out");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir(&dest).expect("the output folder is made");
    let limits = Limits { max_total_bytes: 4 << 20, max_entries: 64, max_ratio: 200, max_depth: 3 };
    let _ = unpack::extract(&path, ext, &dest, &mut Budget::new(limits, CancellationToken::new()));
    let (mut files, mut bytes) = (0usize, 0u64);
    let mut pending = vec![dest.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("the output folder is readable") {
            let entry = entry.expect("an entry");
            let meta = std::fs::symlink_metadata(entry.path()).expect("its metadata");
            assert!(!meta.file_type().is_symlink(), "a link was unpacked: {:?}", entry.path());
            assert!(entry.path().starts_with(&dest));
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    assert!(files <= 64 && bytes <= 4 << 20, "{files} files, {bytes} bytes unpacked");
    std::fs::remove_dir_all(&dest).expect("the output folder is removed");
}

/// A name PostgreSQL takes as written: lower-case ASCII letters, digits and underscores, starting with a
/// letter or underscore, at most 63 bytes.
fn assert_identifier(name: &str) {
    assert!(!name.is_empty() && name.len() <= 63, "bad length: {name:?}");
    assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "bad byte: {name:?}");
    assert!(!name.starts_with(|c: char| c.is_ascii_digit()), "starts with a digit: {name:?}");
}

/// Table and column names made from arbitrary text: always valid identifiers, never reserved, and a header
/// of names always unique.
pub fn names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let table = names::table_name_for_file(&text);
    assert_identifier(&table);
    assert!(!names::is_reserved_table_name(&table), "{table:?} is reserved");
    assert_eq!(names::sanitize_table_name(&table), table, "a table name sanitizes to itself");
    let column = names::sanitize_column_name(&text);
    if !column.is_empty() {
        assert_identifier(&column);
        assert_eq!(names::sanitize_column_name(&column), column, "a column name sanitizes to itself");
    }
    let header: Vec<String> = text.split(['\n', ',']).map(String::from).collect();
    let taken = names::CARTO_COLUMNS;
    let unique = names::unique_column_names(&header, taken);
    let seen: HashSet<&str> = unique.iter().map(String::as_str).chain(taken.iter().copied()).collect();
    assert_eq!(seen.len(), unique.len() + taken.len(), "names repeat: {unique:?}");
    unique.iter().for_each(|n| assert_identifier(n));
}

/// (E)WKB as databases send it, and geometry text as files hold it: read, then written as the two EWKB
/// columns; anything read must be written.
pub fn wkb(data: &[u8]) {
    let srid = [0, 4326, 3857, 4258, 27700][data.first().map_or(0, |b| usize::from(*b) % 5)];
    for bytes in [data, data.get(1..).unwrap_or_default()] {
        if let Some(g) = geometry::parse_wkb(bytes, srid) {
            let _ = geometry::encode_pair(&g);
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(g) = geometry::parse_geometry_text_within(text, MAX_RECORD / 16)
    {
        let _ = geometry::encode_pair(&g);
    }
}

/// A PostgreSQL binary COPY stream re-framed into our rows: `data[0]` picks the frame, `data[1]` how the
/// stream is cut into pieces.
pub fn copy(data: &[u8]) {
    let [shape, cut, stream @ ..] = data else { return };
    let kinds = [Binary::Int4, Binary::Int8, Binary::Float8, Binary::Numeric, Binary::Text, Binary::Bytea];
    let geometry = match shape % 4 {
        0 => FrameGeometry::None,
        1 => FrameGeometry::Field(Binary::Geometry),
        2 => FrameGeometry::Field(Binary::Bytea),
        _ => FrameGeometry::LatLon { lat: (0, kinds[usize::from(shape >> 4) % 6]), lon: (1, Binary::Float8) },
    };
    let frame = Frame {
        id: (shape & 4 != 0).then_some(Binary::Int8),
        geometry,
        data_fields: usize::from(shape >> 5) + 2,
        companion: shape & 8 != 0,
        max_rows: 1000,
    };
    let mut transcoder = Transcoder::new(frame);
    for piece in stream.chunks(usize::from(*cut).max(1)) {
        if transcoder.feed(piece).is_err() {
            return;
        }
    }
    let _ = transcoder.finish();
}
