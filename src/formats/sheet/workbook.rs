//! The child side: in `geoimport-gdal-read`, calamine opens the workbook, finds its first sheet with data
//! and writes that sheet's used range as CSV on stdout, its first row (the header) first.
//!
//! calamine builds a whole sheet in memory (a cell is 32 bytes, and a sheet's range is as wide and as tall
//! as its farthest cells): that is why it runs here, under the reader's address-space limit, where a sheet
//! too big fails its import with 6666 instead of growing the worker.

use std::io::{Read, Seek, Write};
use std::path::Path;

use calamine::{Data, Range, Reader, SheetType, Sheets, open_workbook, open_workbook_from_rs};

use super::cell::{CellText, cell_text};
use super::{ods, xls};
use crate::errors::{ImportError, codes};
use crate::load::copy::CHUNK_BYTES;

/// What writing a sheet found worth telling.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SheetSummary {
    /// Cells holding a formula's error (`#DIV/0!`, `#N/A`...), imported as no value.
    pub error_cells: u64,
    /// Each of them, by data row and header (the rejections report).
    #[serde(default)]
    pub rejections: crate::queue::Rejections,
}

/// Writes the first sheet with data of the workbook at `path` (read as `ext`) as CSV to `out`.
pub fn write_csv(path: &Path, ext: &str, out: &mut dyn Write) -> Result<SheetSummary, ImportError> {
    // calamine is pure Rust, but a damaged file can still hit one of its panics (an index out of range):
    // that is a damaged file, said as such, not a crashed reader.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| first_sheet_with_data(path, ext)));
    let (name, range) = match read {
        Ok(found) => found?,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            return Err(malformed(format!("the spreadsheet reader failed on it ({why})")));
        }
    };
    let bounds = Bounds::of(&range).ok_or_else(|| malformed(format!("sheet '{name}' has no data")))?;
    write_range(&range, &bounds, out)
}

fn malformed(why: impl std::fmt::Display) -> ImportError {
    ImportError::new(codes::MALFORMED_XLS, format!("the spreadsheet could not be read: {why}"))
}

/// Opens `path` with the reader its (effective) extension names (the file may be called anything), and
/// finds its first sheet with data.
fn first_sheet_with_data(path: &Path, ext: &str) -> Result<(String, Range<Data>), ImportError> {
    use calamine::{Error, Ods, Xls};
    let workbook = match ext {
        "xls" => {
            let file = std::fs::File::open(path).map_err(malformed)?;
            let options = xls::options_for(path).map_err(malformed)?;
            Sheets::Xls(Xls::new_with_options(std::io::BufReader::new(file), options).map_err(malformed)?)
        }
        "xlsb" => Sheets::Xlsb(open_workbook(path).map_err(|e| malformed(Error::Xlsb(e)))?),
        "ods" => match open_workbook::<Ods<_>, _>(path) {
            Ok(workbook) => Sheets::Ods(workbook),
            Err(e) if ods::is_indentation_refused(&e) => {
                let copy = ods::compacted(path).map_err(malformed)?;
                let workbook: Ods<_> = open_workbook_from_rs(copy).map_err(|e| malformed(Error::Ods(e)))?;
                return first_with_data(Sheets::Ods(workbook));
            }
            Err(e) => return Err(malformed(Error::Ods(e))),
        },
        _ => Sheets::Xlsx(open_workbook(path).map_err(|e| malformed(Error::Xlsx(e)))?),
    };
    first_with_data(workbook)
}

/// The name and cells of the first worksheet that holds a value, as the reference takes it: a workbook
/// often starts with an empty or cover sheet. Chart and dialog sheets hold no cells.
fn first_with_data<RS: Read + Seek>(mut workbook: Sheets<RS>) -> Result<(String, Range<Data>), ImportError> {
    let names: Vec<String> =
        workbook.sheets_metadata().iter().filter(|s| s.typ == SheetType::WorkSheet).map(|s| s.name.clone()).collect();
    for name in names {
        let range = workbook.worksheet_range(&name).map_err(|e| malformed(format!("sheet '{name}': {e}")))?;
        if range.used_cells().any(|(_, _, cell)| cell_text(cell) != CellText::Empty) {
            return Ok((name, range));
        }
    }
    Err(ImportError::new(codes::EMPTY_FILE, "the spreadsheet has no sheet with data"))
}

/// Where a sheet's values are, relative to its range: a range can begin with blank but formatted cells,
/// and the header is the first row with a value, which need not be in column A.
#[derive(Debug, PartialEq)]
struct Bounds {
    first_row: usize,
    first_column: usize,
    last_column: usize,
}

impl Bounds {
    fn of(range: &Range<Data>) -> Option<Bounds> {
        let mut bounds: Option<Bounds> = None;
        for (row, column, _) in range.used_cells().filter(|(_, _, cell)| cell_text(cell) != CellText::Empty) {
            let b = bounds.get_or_insert(Bounds { first_row: row, first_column: column, last_column: column });
            b.first_row = b.first_row.min(row);
            b.first_column = b.first_column.min(column);
            b.last_column = b.last_column.max(column);
        }
        bounds
    }
}

fn write_range(range: &Range<Data>, bounds: &Bounds, out: &mut dyn Write) -> Result<SheetSummary, ImportError> {
    let mut csv = csv::WriterBuilder::new().buffer_capacity(CHUNK_BYTES).from_writer(out);
    let failed = |e: csv::Error| ImportError::unknown(format!("writing the sheet as CSV: {e}"));
    let mut summary = SheetSummary::default();
    let mut record: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut errors: Vec<(usize, String)> = Vec::new();
    // Data rows written so far: the row numbers of the rejections report, as of a CSV of the sheet.
    let mut written = 0u64;
    for (i, row) in range.rows().skip(bounds.first_row).enumerate() {
        let header = i == 0;
        let cells = row.get(bounds.first_column..=bounds.last_column).unwrap_or_default();
        record.clear();
        errors.clear();
        for (column, cell) in cells.iter().enumerate() {
            record.push(match cell_text(cell) {
                CellText::Value(v) => v,
                CellText::Empty => String::new(),
                CellText::Error(shown) => {
                    errors.push((column, shown));
                    String::new()
                }
            });
        }
        if header {
            names = record.clone();
        } else if record.iter().all(String::is_empty) && errors.is_empty() {
            // A row left blank between rows of data is layout, not a record (as a blank line in a CSV).
            continue;
        } else {
            written += 1;
            for (column, shown) in errors.drain(..) {
                summary.error_cells += 1;
                let name = names.get(column).map_or("", String::as_str);
                summary.rejections.add(written, name, || {
                    (Some(shown), "the cell holds a formula's error: imported as no value".into())
                });
            }
        }
        csv.write_record(&record).map_err(failed)?;
    }
    csv.flush().map_err(|e| ImportError::unknown(format!("writing the sheet as CSV: {e}")))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(cells: Vec<((u32, u32), Data)>) -> Range<Data> {
        Range::from_sparse(cells.into_iter().map(|(pos, v)| calamine::Cell::new(pos, v)).collect())
    }

    fn csv_of(range: &Range<Data>) -> (String, SheetSummary) {
        let mut out = Vec::new();
        let summary = write_range(range, &Bounds::of(range).unwrap(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn the_header_is_the_first_row_with_a_value_wherever_it_starts() {
        let range = sheet(vec![
            ((0, 0), Data::Empty),
            ((2, 1), Data::String("name".into())),
            ((2, 2), Data::String("n".into())),
            ((3, 1), Data::String("a".into())),
            ((3, 2), Data::Float(3.0)),
            ((5, 1), Data::String("b".into())),
            ((5, 2), Data::Error(calamine::CellErrorType::Div0)),
        ]);
        assert_eq!(Bounds::of(&range), Some(Bounds { first_row: 2, first_column: 1, last_column: 2 }));
        let (csv, summary) = csv_of(&range);
        assert_eq!(csv, "name,n\na,3\nb,\n");
        assert_eq!(summary.error_cells, 1);
    }

    #[test]
    fn a_sheet_of_blank_cells_has_no_bounds() {
        assert_eq!(Bounds::of(&sheet(vec![((1, 1), Data::Empty), ((4, 2), Data::String(String::new()))])), None);
    }
}
