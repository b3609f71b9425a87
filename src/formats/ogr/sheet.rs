//! Spreadsheets (XLSX, XLS, ODS), read with GDAL: the first sheet, every cell as text, then typed and
//! georeferenced exactly like a CSV (the same two-pass guessing, lat/lon and geometry columns). A GDAL
//! child ([`super::process`]) turns the sheet into CSV; this process reads that CSV twice, as it would a file.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use gdal::vector::LayerAccess;
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use tokio_util::sync::CancellationToken;

use super::process::{GdalReader, Request};
use crate::errors::stopped;
use crate::errors::{ImportError, codes};
use crate::formats::csv::{Guarded, GuardedReader};
use crate::load::copy::CHUNK_BYTES;
use crate::load::tabular::{RowEncoder, ScanBuilder, load_planned, plan_for};
use crate::load::{LoadContext, LoadedLayer, blocking};

fn open(path: &Path, ext: &str) -> Result<Dataset, ImportError> {
    // Every cell as text, header row included: the first row names the columns, as in a CSV, and the
    // guesser, not the driver, decides types.
    let options: &[&str] = match ext {
        "xlsx" | "ods" => &["FIELD_TYPES=STRING", "HEADERS=DISABLE"],
        _ => &[],
    };
    // Older drivers read these as configuration options rather than open options.
    let prefix = format!("OGR_{}", ext.to_ascii_uppercase());
    let _ = gdal::config::set_thread_local_config_option(&format!("{prefix}_HEADERS"), "DISABLE");
    let _ = gdal::config::set_thread_local_config_option(&format!("{prefix}_FIELD_TYPES"), "STRING");
    let drivers = super::confine::drivers_for(ext).unwrap_or(&["XLS"]);
    super::confine::keep_only(drivers);
    Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
            allowed_drivers: Some(drivers),
            open_options: (!options.is_empty()).then_some(options),
            ..Default::default()
        },
    )
    .map_err(|e| ImportError::new(codes::MALFORMED_XLS, format!("the spreadsheet could not be opened: {e}")))
}

/// What reading a sheet yields: first the column names, then each row.
enum SheetEvent<'a> {
    Header(Vec<String>),
    /// Cells as text; None for empty cells.
    Row(&'a [Option<String>]),
}

/// In the GDAL child: writes the first sheet as CSV to `out`, its header first.
pub fn write_csv(path: &Path, ext: &str, out: &mut dyn std::io::Write) -> Result<(), ImportError> {
    let mut csv = csv::WriterBuilder::new().buffer_capacity(CHUNK_BYTES).from_writer(out);
    let failed = |e: csv::Error| ImportError::unknown(format!("writing the sheet as CSV: {e}"));
    gdal_sheet(path, ext, &mut |event| {
        match event {
            SheetEvent::Header(names) => csv.write_record(&names),
            SheetEvent::Row(row) => csv.write_record(row.iter().map(|c| c.as_deref().unwrap_or(""))),
        }
        .map_err(failed)
    })?;
    csv.flush().map_err(|e| ImportError::unknown(format!("writing the sheet as CSV: {e}")))
}

/// How the sheet a GDAL child writes is read: rows of at most `max_record` bytes, until `stop`.
struct SheetReading {
    max_record: u64,
    stop: CancellationToken,
}

/// Streams the first sheet to `visit`, read by a GDAL child. An empty cell is None.
fn read_sheet(
    reader: &GdalReader,
    path: &Path,
    ext: &str,
    reading: &SheetReading,
    visit: &mut dyn FnMut(SheetEvent<'_>) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
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
    running.finish().map(|_| ())
}

/// Streams the first sheet to `visit`, with GDAL (in the child).
fn gdal_sheet(
    path: &Path,
    ext: &str,
    visit: &mut dyn FnMut(SheetEvent<'_>) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let dataset = open(path, ext)?;
    let mut layer =
        dataset.layer(0).map_err(|_| ImportError::new(codes::EMPTY_FILE, "the spreadsheet has no sheet with data"))?;
    let names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let width = names.len();
    let mut row = vec![None; width];
    // If the driver took the first row as header after all, its field names are that header.
    let generic = |n: &String| n.strip_prefix("Field").is_some_and(|d| d.parse::<u32>().is_ok());
    let mut header_seen = !names.iter().all(generic);
    if header_seen {
        visit(SheetEvent::Header(names))?;
    }
    for feature in layer.features() {
        // SAFETY: the handle lives for this iteration and `i` is below its field count.
        let handle = unsafe { feature.c_feature() };
        for (i, cell) in row.iter_mut().enumerate() {
            *cell = unsafe {
                if gdal_sys::OGR_F_IsFieldSetAndNotNull(handle, i as i32) == 0 {
                    None
                } else {
                    let raw = gdal_sys::OGR_F_GetFieldAsString(handle, i as i32);
                    (!raw.is_null()).then(|| CStr::from_ptr(raw).to_string_lossy().into_owned())
                }
            };
        }
        if header_seen {
            visit(SheetEvent::Row(&row))?;
        } else {
            header_seen = true;
            let names = row.iter().map(|c| c.clone().unwrap_or_default().trim().to_string()).collect();
            visit(SheetEvent::Header(names))?;
        }
    }
    Ok(())
}

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
    let scan = blocking(move || {
        let mut builder: Option<ScanBuilder> = None;
        read_sheet(&reader, &source, &kind, &reading, &mut |event| {
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
        builder.map(ScanBuilder::finish).ok_or_else(|| ImportError::new(codes::EMPTY_FILE, "the spreadsheet is empty"))
    })
    .await?;
    if scan.headers.is_empty() {
        return Err(ImportError::new(codes::EMPTY_FILE, "the spreadsheet's first sheet is empty"));
    }
    let plan = plan_for(ctx, &scan, &[], false);
    let (source, kind) = (path.to_path_buf(), ext.to_string());
    let reader = gdal.clone();
    let reading = SheetReading { max_record: ctx.max_record_bytes, stop: ctx.stop.clone() };
    load_planned(ctx, plan, index, table_name, move |plan, chunks| {
        let mut encoder = RowEncoder::new(plan, chunks);
        read_sheet(&reader, &source, &kind, &reading, &mut |event| match event {
            SheetEvent::Header(_) => Ok(()),
            SheetEvent::Row(row) => encoder.row(|i| row.get(i).and_then(|c| c.as_deref()).unwrap_or("").into(), None),
        })?;
        encoder.finish()
    })
    .await
}
