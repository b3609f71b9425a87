//! Spreadsheets (XLS, XLSX, XLSM, XLSB, ODS), read with calamine: the first sheet with data, every cell as
//! text, then typed and georeferenced exactly like a CSV (the same two-pass guessing, lat/lon and geometry
//! columns).
//!
//! The reading happens in a reader child ([`crate::formats::ogr::process`], the one GDAL reads in), not
//! here: calamine holds a whole sheet in memory, and the child's address-space limit is what bounds it. The
//! child ([`workbook`]) writes the sheet as CSV; this process reads that CSV twice, as it would a file.

mod cell;
mod ods;
pub mod workbook;
mod xls;

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::errors::stopped;
use crate::errors::{ImportError, codes};
use crate::formats::csv::{Guarded, GuardedReader};
use crate::formats::ogr::process::{GdalReader, Request};
use crate::load::tabular::{RowEncoder, ScanBuilder, load_planned, plan_for};
use crate::load::{LoadContext, LoadedLayer, blocking};
use workbook::SheetSummary;

/// What reading a sheet yields: first the column names, then each row.
enum SheetEvent<'a> {
    Header(Vec<String>),
    /// Cells as text; None for empty cells.
    Row(&'a [Option<String>]),
}

/// How the sheet a reader child writes is read: rows of at most `max_record` bytes, until `stop`.
struct SheetReading {
    max_record: u64,
    stop: CancellationToken,
}

/// Streams the first sheet with data to `visit`, read by a reader child. An empty cell is None.
fn read_sheet(
    reader: &GdalReader,
    path: &Path,
    ext: &str,
    reading: &SheetReading,
    visit: &mut dyn FnMut(SheetEvent<'_>) -> Result<(), ImportError>,
) -> Result<SheetSummary, ImportError> {
    let mut running = reader.spawn(&Request::Sheet { path: path.to_path_buf(), ext: ext.to_string() })?;
    let (guarded, record_start) = GuardedReader::new(&mut running.stdout, reading.max_record, &reading.stop);
    let mut records = csv::ReaderBuilder::new().has_headers(false).from_reader(guarded);
    let mut header_seen = false;
    let mut row: Vec<Option<String>> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match records.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) if !header_seen => {
                header_seen = true;
                visit(SheetEvent::Header(record.iter().map(String::from).collect()))?;
            }
            Ok(true) => {
                row.clear();
                row.extend(record.iter().map(|c| (!c.is_empty()).then(|| c.to_string())));
                visit(SheetEvent::Row(&row))?;
            }
            // The child writes well-formed CSV; if it did not, nothing it says next is worth waiting for.
            Err(e) => {
                let error = match Guarded::of(&e) {
                    Some(Guarded::Stopped) => stopped(),
                    Some(Guarded::TooLarge(max)) => ImportError::new(
                        codes::DATASET_TOO_BIG,
                        format!(
                            "a row of the spreadsheet is larger than {} MiB, the most one may be \
                             (GEOIMPORT_MAX_RECORD_BYTES)",
                            max >> 20
                        ),
                    ),
                    None => ImportError::new(codes::MALFORMED_XLS, format!("the spreadsheet could not be read: {e}")),
                };
                drop(records);
                running.kill();
                return Err(error);
            }
        }
        record_start.set(records.position().byte());
    }
    drop(records);
    let answer = running.finish()?;
    serde_json::from_value(answer).map_err(|e| ImportError::unknown(format!("the spreadsheet reader's answer: {e}")))
}

/// Loads the first sheet with data of the workbook at `path` (read as `ext`) into a staging table.
pub async fn load(
    ctx: &LoadContext<'_>,
    gdal: &GdalReader,
    path: &Path,
    ext: &str,
    table_name: String,
    index: usize,
) -> Result<LoadedLayer, ImportError> {
    let (source, kind): (PathBuf, String) = (path.to_path_buf(), ext.to_string());
    let (max_rows, max_record) = (ctx.user.max_rows_per_table, ctx.max_record_bytes);
    let reading = SheetReading { max_record, stop: ctx.stop.clone() };
    let reader = gdal.clone();
    let (scan, summary) = blocking(move || {
        let mut builder: Option<ScanBuilder> = None;
        let summary = read_sheet(&reader, &source, &kind, &reading, &mut |event| {
            match event {
                SheetEvent::Header(names) => builder = Some(ScanBuilder::new(names, max_rows, max_record)?),
                SheetEvent::Row(row) => {
                    let Some(b) = builder.as_mut() else { return Ok(()) };
                    b.begin_row()?;
                    for (i, cell) in row.iter().enumerate() {
                        if let Some(v) = cell {
                            b.observe(i, v);
                        }
                    }
                }
            }
            Ok(())
        })?;
        let scan = builder.map(ScanBuilder::finish).ok_or_else(no_data)?;
        Ok((scan, summary))
    })
    .await?;
    if scan.headers.is_empty() {
        return Err(no_data());
    }
    let plan = plan_for(ctx, &scan, &[], false);
    let (source, kind) = (path.to_path_buf(), ext.to_string());
    let reader = gdal.clone();
    let reading = SheetReading { max_record: ctx.max_record_bytes, stop: ctx.stop.clone() };
    let mut layer = load_planned(ctx, plan, index, table_name, move |plan, chunks| {
        let mut encoder = RowEncoder::new(plan, chunks);
        read_sheet(&reader, &source, &kind, &reading, &mut |event| match event {
            SheetEvent::Header(_) => Ok(()),
            SheetEvent::Row(row) => encoder.row(|i| row.get(i).and_then(|c| c.as_deref()).unwrap_or("").into(), None),
        })?;
        encoder.finish()
    })
    .await?;
    if summary.error_cells > 0 {
        layer.warnings.insert("error_cells".into(), summary.error_cells.into());
    }
    layer.rejections.extend(summary.rejections);
    Ok(layer)
}

fn no_data() -> ImportError {
    ImportError::new(codes::EMPTY_FILE, "the spreadsheet has no sheet with data")
}
