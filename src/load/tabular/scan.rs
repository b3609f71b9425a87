//! The first pass of a text source: every value observed, so that the types chosen fit the whole source.

use crate::errors::{ImportError, codes};
use crate::load::guess::{ColumnStats, GEOMETRY_COLUMN_NAMES};
use crate::load::names::sanitize_column_name;

/// PostgreSQL allows 1600 columns; three are ours.
pub const MAX_SOURCE_COLUMNS: usize = 1600 - 3;

/// Memory a position of a geometry takes once read (two f64): a geometry read from a record may have as many
/// positions as the record limit has 16-byte slots, so that it never takes more memory than the record.
pub const POSITION_BYTES: u64 = 16;

/// What the first pass learned.
#[derive(Debug)]
pub struct Scan {
    /// Column names as found, extended with `field_N` for columns only some rows have.
    pub headers: Vec<String>,
    pub stats: Vec<ColumnStats>,
    pub rows: u64,
    /// Rows with fewer fields than the header (the missing ones load as NULL).
    pub short_rows: u64,
    /// Positions a geometry read from a text value may have; more, and it is not read as a geometry.
    pub max_geometry_positions: u64,
}

/// Builds a [`Scan`] while a source is read.
pub struct ScanBuilder {
    scan: Scan,
    geometry_candidate: Vec<bool>,
    max_rows: Option<i64>,
}

impl ScanBuilder {
    /// A scan of rows of at most `max_record` bytes (the record limit), stopping past `max_rows` rows.
    pub fn new(headers: Vec<String>, max_rows: Option<i64>, max_record: u64) -> Result<ScanBuilder, ImportError> {
        check_width(headers.len())?;
        let max_geometry_positions = max_record / POSITION_BYTES;
        let mut builder = ScanBuilder {
            scan: Scan { headers: Vec::new(), stats: Vec::new(), rows: 0, short_rows: 0, max_geometry_positions },
            geometry_candidate: Vec::new(),
            max_rows,
        };
        for h in headers {
            builder.push_column(h);
        }
        Ok(builder)
    }

    fn push_column(&mut self, name: String) -> usize {
        self.geometry_candidate.push(GEOMETRY_COLUMN_NAMES.contains(&sanitize_column_name(&name).as_str()));
        self.scan.headers.push(name);
        self.scan.stats.push(ColumnStats::default());
        self.scan.headers.len() - 1
    }

    /// Adds a column met after the start (a wider row, a new JSON key); returns its index.
    pub fn add_column(&mut self, name: String) -> Result<usize, ImportError> {
        check_width(self.scan.headers.len() + 1)?;
        Ok(self.push_column(name))
    }

    pub fn columns(&self) -> usize {
        self.scan.headers.len()
    }

    /// Counts a row; fails with 6668 once the user's row limit is passed.
    pub fn begin_row(&mut self) -> Result<(), ImportError> {
        self.scan.rows += 1;
        if let Some(max) = self.max_rows.filter(|max| self.scan.rows > *max as u64) {
            return Err(ImportError::new(
                codes::TOO_MANY_ROWS,
                format!("the data has more than {max} rows, the most your account allows in one table"),
            ));
        }
        Ok(())
    }

    pub fn short_row(&mut self) {
        self.scan.short_rows += 1;
    }

    pub fn observe(&mut self, column: usize, value: &str) {
        self.scan.stats[column].observe(value);
        if self.geometry_candidate[column] {
            self.scan.stats[column].observe_geometry(value, self.scan.max_geometry_positions);
        }
    }

    pub fn finish(self) -> Scan {
        self.scan
    }
}

pub fn check_width(columns: usize) -> Result<(), ImportError> {
    if columns > MAX_SOURCE_COLUMNS {
        return Err(ImportError::new(
            codes::TOO_MANY_COLUMNS,
            format!("the data has {columns} columns; a table can hold at most {MAX_SOURCE_COLUMNS} of them"),
        ));
    }
    Ok(())
}
