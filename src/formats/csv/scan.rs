//! The first pass: every row is read once to count rows, find the widest row and observe every value, so
//! that the types chosen afterwards fit the whole file, not just its first lines.

use std::path::Path;

use encoding_rs::UTF_8;

use super::reader::Records;
use super::sniff::Dialect;
use crate::errors::{ImportError, codes};
use crate::load::guess::{ColumnStats, GEOMETRY_COLUMN_NAMES};
use crate::load::names::sanitize_column_name;

/// PostgreSQL allows 1600 columns; three are ours.
pub const MAX_SOURCE_COLUMNS: usize = 1600 - 3;

/// What the first pass learned.
#[derive(Debug)]
pub struct Scan {
    /// Header names as written, extended with `field_N` for columns only some rows have.
    pub headers: Vec<String>,
    pub stats: Vec<ColumnStats>,
    pub rows: u64,
    /// Rows with fewer fields than the header (the missing ones load as NULL).
    pub short_rows: u64,
}

/// The outcome of a pass over a file thought to be UTF-8.
pub enum ScanResult {
    Done(Scan),
    /// Bytes that are not UTF-8 turned up after the sample: the caller picks another encoding.
    NotUtf8,
}

/// Scans the file. Stops early with 6668 once `max_rows` is passed.
pub fn scan(path: &Path, dialect: &Dialect, max_rows: Option<i64>) -> Result<ScanResult, ImportError> {
    let mut records = Records::open(path, dialect)?;
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
    check_width(headers.len())?;
    let mut geometry_candidate: Vec<bool> =
        headers.iter().map(|h| GEOMETRY_COLUMN_NAMES.contains(&sanitize_column_name(h).as_str())).collect();
    let mut stats = vec![ColumnStats::default(); headers.len()];
    let (mut rows, mut short_rows) = (0u64, 0u64);
    while records.next(&mut record)? {
        rows += 1;
        if let Some(max) = max_rows
            && rows > max as u64
        {
            return Err(ImportError::new(
                codes::TOO_MANY_ROWS,
                format!("the file has more than {max} rows, the most your account allows in one table"),
            ));
        }
        // Trailing empty fields (a delimiter at the end of the line) do not make a row wider.
        let used = record.iter().rposition(|f| !f.is_empty()).map_or(0, |i| i + 1);
        if used > headers.len() {
            check_width(used)?;
            for i in headers.len()..used {
                headers.push(format!("field_{}", i + 1));
                stats.push(ColumnStats::default());
                geometry_candidate.push(false);
            }
        }
        if record.len() < headers.len() {
            short_rows += 1;
        }
        for (i, field) in record.iter().enumerate().take(used) {
            let value = match std::str::from_utf8(field) {
                Ok(s) => s,
                Err(_) if check_utf8 => return Ok(ScanResult::NotUtf8),
                Err(_) => continue,
            };
            stats[i].observe(value);
            if geometry_candidate[i] {
                stats[i].observe_geometry(value);
            }
        }
    }
    Ok(ScanResult::Done(Scan { headers, stats, rows, short_rows }))
}

fn check_width(columns: usize) -> Result<(), ImportError> {
    if columns > MAX_SOURCE_COLUMNS {
        return Err(ImportError::new(
            codes::TOO_MANY_COLUMNS,
            format!("the file has {columns} columns; a table can hold at most {MAX_SOURCE_COLUMNS} of them"),
        ));
    }
    Ok(())
}

/// Picks a legacy encoding from the whole file, for files whose first megabyte looked like UTF-8 but whose
/// later bytes are not.
pub fn detect_encoding_of_whole_file(path: &Path) -> Result<&'static encoding_rs::Encoding, ImportError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)
        .map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot open the staged file: {e}")))?;
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot read: {e}")))?;
        if n == 0 {
            detector.feed(&[], true);
            break;
        }
        detector.feed(&buf[..n], false);
    }
    Ok(detector.guess(None, chardetng::Utf8Detection::Deny))
}
