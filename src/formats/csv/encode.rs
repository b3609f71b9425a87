//! The second pass over a delimited file: every row read again and written as binary COPY, in chunks
//! handed to the loader. Runs on a blocking thread; it stops as soon as the receiving side goes away.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::reader::{Records, field_str};
use super::sniff::Dialect;
use crate::errors::ImportError;
use crate::load::tabular::{EncodeStats, RowEncoder, TablePlan};
use crate::source::input::Input;

pub fn encode_rows(
    input: &Input,
    dialect: &Dialect,
    plan: &TablePlan,
    max_record: u64,
    stop: &CancellationToken,
    chunks: mpsc::Sender<Vec<u8>>,
) -> Result<EncodeStats, ImportError> {
    let mut records = Records::open(input, dialect, max_record, stop)?;
    let mut record = csv::ByteRecord::new();
    records.next(&mut record)?; // the header
    let mut encoder = RowEncoder::new(plan, chunks);
    while records.next(&mut record)? {
        encoder.row(|i| field_str(record.get(i).unwrap_or(b"")), None)?;
    }
    encoder.finish()
}
