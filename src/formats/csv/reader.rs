//! Opening a delimited file for streaming: transcoding to UTF-8 on the fly and refusing records so large
//! that they can only come from an unterminated quote (which would otherwise pull the rest of the file
//! into one field, and into memory).

use std::cell::Cell;
use std::io::{BufReader, Read};
use std::rc::Rc;

use encoding_rs::UTF_8;
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use tokio_util::sync::CancellationToken;

use super::sniff::Dialect;
use crate::errors::{ImportError, codes};
use crate::source::input::Input;

const BUFFER_BYTES: usize = 256 << 10;

/// Counts bytes handed to the CSV parser and fails once a record runs past `max_record` bytes (the
/// record limit: real rows are far smaller, and a record this big is a quote left open), or once the job
/// is stopped.
pub struct GuardedReader<R> {
    inner: R,
    read: u64,
    record_start: Rc<Cell<u64>>,
    max_record: u64,
    stop: CancellationToken,
}

impl<R: Read> GuardedReader<R> {
    /// `inner`, read for records of at most `max_record` bytes until `stop` is cancelled; the caller sets
    /// the returned cell to where each record ends (the CSV reader's byte position).
    pub fn new(inner: R, max_record: u64, stop: &CancellationToken) -> (GuardedReader<R>, Rc<Cell<u64>>) {
        let record_start = Rc::new(Cell::new(0));
        let reader =
            GuardedReader { inner, read: 0, record_start: record_start.clone(), max_record, stop: stop.clone() };
        (reader, record_start)
    }
}

/// Why reading through a [`GuardedReader`] failed, when the guard is why.
pub enum Guarded {
    /// A record was longer than this many bytes.
    TooLarge(u64),
    Stopped,
}

impl Guarded {
    pub fn of(e: &csv::Error) -> Option<Guarded> {
        let inner = match e.kind() {
            csv::ErrorKind::Io(io) => io.get_ref()?,
            _ => return None,
        };
        if inner.is::<Stopped>() {
            return Some(Guarded::Stopped);
        }
        inner.downcast_ref::<RecordTooLarge>().map(|RecordTooLarge(max)| Guarded::TooLarge(*max))
    }
}

impl<R: Read> Read for GuardedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.is_cancelled() {
            return Err(std::io::Error::other(Stopped));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read.saturating_sub(self.record_start.get()) > self.max_record + BUFFER_BYTES as u64 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, RecordTooLarge(self.max_record)));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct RecordTooLarge(u64);

impl std::fmt::Display for RecordTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record larger than {} bytes", self.0)
    }
}

impl std::error::Error for RecordTooLarge {}

#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the import was stopped")
    }
}

impl std::error::Error for Stopped {}

pub type Source = GuardedReader<DecodeReaderBytes<BufReader<Box<dyn Read + Send>>, Vec<u8>>>;

/// A CSV reader over the whole file (header included, as the first record) and the handle that must be
/// told where each record ends.
pub struct Records {
    pub reader: csv::Reader<Source>,
    record_start: Rc<Cell<u64>>,
}

impl Records {
    /// Opens `input` for reading records of at most `max_record` bytes, until `stop` is cancelled.
    pub fn open(
        input: &Input,
        dialect: &Dialect,
        max_record: u64,
        stop: &CancellationToken,
    ) -> Result<Records, ImportError> {
        let file = input.open()?;
        let mut builder = DecodeReaderBytesBuilder::new();
        builder.strip_bom(true);
        if dialect.encoding == UTF_8 {
            // Passed through untouched: the scan validates UTF-8 itself and switches encoding if needed.
            builder.utf8_passthru(true);
        } else {
            builder.encoding(Some(dialect.encoding)).bom_override(true);
        }
        let decoded = builder.build(BufReader::with_capacity(BUFFER_BYTES, file));
        let (guarded, record_start) = GuardedReader::new(decoded, max_record, stop);
        let reader = csv::ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(BUFFER_BYTES)
            .from_reader(guarded);
        Ok(Records { reader, record_start })
    }

    /// Reads the next record into `record`; false at the end of the file.
    pub fn next(&mut self, record: &mut csv::ByteRecord) -> Result<bool, ImportError> {
        let more = self.reader.read_byte_record(record).map_err(read_error)?;
        self.record_start.set(self.reader.position().byte());
        Ok(more)
    }
}

fn read_error(e: csv::Error) -> ImportError {
    match Guarded::of(&e) {
        Some(Guarded::Stopped) => crate::errors::stopped(),
        Some(Guarded::TooLarge(max)) => ImportError::new(
            codes::MALFORMED_CSV,
            format!(
                "a single record is larger than {} MiB (GEOIMPORT_MAX_RECORD_BYTES), which usually means a quote \
                 opened and never closed",
                max >> 20
            ),
        ),
        None => ImportError::new(codes::FILE_IO, format!("cannot read the file: {e}")),
    }
}

/// A field as text. Transcoded input is UTF-8 by construction; passed-through input was validated by the
/// scan, so the lossy path only runs if the file changed under us.
pub fn field_str(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_job_reads_no_further_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "a,b\n1,2\n".repeat(200_000)).unwrap();
        let dialect = Dialect { encoding: UTF_8, delimiter: b',', quoted_columns: Vec::new() };
        let stop = CancellationToken::new();
        let mut records = Records::open(&Input::file(&path, "a.csv"), &dialect, 1 << 20, &stop).unwrap();
        let mut record = csv::ByteRecord::new();
        assert!(records.next(&mut record).unwrap());
        stop.cancel();
        let mut read = 0;
        let e = loop {
            match records.next(&mut record) {
                Ok(_) => read += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(e.code, codes::CANCELLED);
        assert!(read < 100_000, "{read} records read after the stop");
    }
}
