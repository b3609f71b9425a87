//! Delimited text (`.csv`, `.tsv`, `.txt`): sniff the dialect, scan every row to guess types, then stream
//! the rows again as binary COPY into a staging table. Memory stays flat whatever the file's size: both
//! passes read record by record, and at most a few COPY chunks are in flight. Each pass opens its
//! [`Input`] again from the start, so a file in a cloud staging store is read from there, never copied.

mod encode;
mod reader;
mod scan;
mod sniff;

pub use encode::encode_rows;
pub use reader::{Guarded, GuardedReader};
pub use sniff::Dialect;

use tokio_util::sync::CancellationToken;

use crate::errors::{ImportError, codes};
use crate::load::tabular::{Scan, load_planned, plan_for};
use crate::load::{LoadContext, LoadedLayer, Stage, blocking};
use crate::source::input::Input;

/// Extensions read as delimited text.
pub const EXTENSIONS: &[&str] = &["csv", "tsv", "txt"];

/// The first pass: the dialect sniffed, then every row scanned (twice when bytes that are not UTF-8 turn up
/// past the sample, in the encoding the whole file then suggests). Runs on a blocking thread.
pub fn first_pass(
    source: &Input,
    extension: &str,
    max_rows: Option<i64>,
    max_record: u64,
    stop: &CancellationToken,
) -> Result<(Dialect, Scan), ImportError> {
    let mut dialect = sniff::sniff(source, extension)?;
    if let scan::ScanResult::Done(s) = scan::scan(source, &dialect, max_rows, max_record, stop)? {
        return Ok((dialect, s));
    }
    dialect.encoding = crate::detect::text::detect_encoding_of_whole_file(source.open()?, stop)?;
    tracing::info!(encoding = dialect.encoding.name(), "not UTF-8 after all; scanning again");
    match scan::scan(source, &dialect, max_rows, max_record, stop)? {
        scan::ScanResult::Done(s) => Ok((dialect, s)),
        scan::ScanResult::NotUtf8 => Err(ImportError::new(codes::ENCODING_DETECTION, "the text is not UTF-8")),
    }
}

/// Loads the delimited file `input` into the staging table numbered `index`, to be named `table_name`.
pub async fn load(
    ctx: &LoadContext<'_>,
    input: &Input,
    table_name: String,
    index: usize,
) -> Result<LoadedLayer, ImportError> {
    let extension = input.extension();
    let (max_rows, max_record) = (ctx.user.max_rows_per_table, ctx.max_record_bytes);
    let source = input.clone();
    let stop = ctx.stop.clone();
    let (dialect, scan) = blocking(move || first_pass(&source, &extension, max_rows, max_record, &stop)).await?;
    tracing::info!(
        encoding = dialect.encoding.name(),
        delimiter = %(dialect.delimiter as char).escape_default(),
        rows = scan.rows,
        columns = scan.headers.len(),
        "scanned"
    );
    (ctx.report)(Stage::Counted(scan.rows));
    let plan = plan_for(ctx, &scan, &dialect.quoted_columns, false);
    let (source, stop) = (input.clone(), ctx.stop.clone());
    let mut layer = load_planned(ctx, plan, index, table_name, move |plan, chunks| {
        encode_rows(&source, &dialect, plan, max_record, &stop, chunks)
    })
    .await?;
    tracing::info!(rows = layer.rows, "loaded");
    if scan.short_rows > 0 {
        layer.warnings.insert("short_rows".into(), scan.short_rows.into());
    }
    Ok(layer)
}
