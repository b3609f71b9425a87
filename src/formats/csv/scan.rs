//! The first pass over a delimited file: every row is read once to count rows, find the widest row and
//! observe every value, so that the types chosen afterwards fit the whole file, not just its first lines.

use encoding_rs::UTF_8;
use tokio_util::sync::CancellationToken;

use super::reader::Records;
use super::sniff::Dialect;
use crate::errors::{ImportError, codes};
use crate::load::tabular::{Scan, ScanBuilder};
use crate::source::input::Input;

/// The outcome of a pass over a file thought to be UTF-8.
pub enum ScanResult {
    Done(Scan),
    /// Bytes that are not UTF-8 turned up after the sample: the caller picks another encoding.
    NotUtf8,
}

/// Scans the file, reading records of at most `max_record` bytes. Stops early with 6668 once `max_rows` is
/// passed, and at once when `stop` is cancelled.
pub fn scan(
    input: &Input,
    dialect: &Dialect,
    max_rows: Option<i64>,
    max_record: u64,
    stop: &CancellationToken,
) -> Result<ScanResult, ImportError> {
    let mut records = Records::open(input, dialect, max_record, stop)?;
    let check_utf8 = dialect.encoding == UTF_8;
    let mut record = csv::ByteRecord::new();
    if !records.next(&mut record)? {
        return Err(ImportError::new(codes::EMPTY_FILE, "the file has no header row"));
    }
    let mut headers = Vec::with_capacity(record.len());
    for field in record.iter() {
        match std::str::from_utf8(field) {
            Ok(s) => headers.push(s.trim().to_string()),
            Err(_) if check_utf8 => return Ok(ScanResult::NotUtf8),
            Err(_) => headers.push(String::from_utf8_lossy(field).trim().to_string()),
        }
    }
    // A header of empty names is no header at all (typically a file of blank separators).
    if headers.iter().all(|h| h.is_empty()) {
        return Err(ImportError::new(codes::EMPTY_FILE, "the first row, which must name the columns, is empty"));
    }
    let mut scan = ScanBuilder::new(headers, max_rows, max_record)?;
    while records.next(&mut record)? {
        scan.begin_row()?;
        // Trailing empty fields (a delimiter at the end of the line) do not make a row wider.
        let used = record.iter().rposition(|f| !f.is_empty()).map_or(0, |i| i + 1);
        while scan.columns() < used {
            let n = scan.columns() + 1;
            scan.add_column(format!("field_{n}"))?;
        }
        if record.len() < scan.columns() {
            scan.short_row();
        }
        for (i, field) in record.iter().enumerate().take(used) {
            match std::str::from_utf8(field) {
                Ok(value) => scan.observe(i, value),
                Err(_) if check_utf8 => return Ok(ScanResult::NotUtf8),
                Err(_) => {}
            }
        }
    }
    let scan = scan.finish();
    if scan.rows == 0 {
        return Err(ImportError::new(codes::EMPTY_FILE, "the file has a header and no row of data"));
    }
    Ok(ScanResult::Done(scan))
}
