//! PostgreSQL's binary COPY format, written by hand (the format is small and stable) and streamed to the
//! server in chunks through sqlx's raw COPY, so that a load never holds more than a few chunks in memory.

use sqlx::PgConnection;
use tokio::sync::mpsc;

/// Size at which a chunk is handed to the sender: large enough to keep the socket busy, small enough that
/// the few chunks in flight cost nothing.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Chunks in flight between the encoder thread and the COPY; the encoder blocks when the database lags.
pub const CHUNKS_IN_FLIGHT: usize = 4;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A growing chunk of binary COPY data.
pub struct CopyBuffer {
    buf: Vec<u8>,
}

impl Default for CopyBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyBuffer {
    /// A buffer that starts with the COPY header.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBuffer { buf }
    }

    pub fn begin_row(&mut self, fields: usize) {
        self.buf.extend_from_slice(&(fields as i16).to_be_bytes());
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// A field already in its binary form (`bytea`, and the types only connectors write: `numeric`,
    /// `jsonb`, `interval`, `smallint`, `real`, values passed through from another PostgreSQL).
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.field(bytes);
    }

    fn field(&mut self, bytes: &[u8]) {
        self.field_header(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// The length of a field whose `len` bytes follow through [`Self::raw`], possibly in several pieces.
    pub fn field_header(&mut self, len: usize) {
        self.buf.extend_from_slice(&(len as i32).to_be_bytes());
    }

    /// Part of a field announced by [`Self::field_header`].
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn bool(&mut self, v: bool) {
        self.field(&[u8::from(v)]);
    }

    pub fn i32(&mut self, v: i32) {
        self.field(&v.to_be_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.field(&v.to_be_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.field(&v.to_be_bytes());
    }

    /// A `date`: days since 2000-01-01.
    pub fn date(&mut self, days: i32) {
        self.i32(days);
    }

    /// A `timestamp` or `timestamptz`: microseconds since 2000-01-01.
    pub fn timestamp(&mut self, micros: i64) {
        self.i64(micros);
    }

    /// Text must be UTF-8 (the readers guarantee it); NUL characters, which PostgreSQL text cannot hold,
    /// are dropped.
    pub fn text(&mut self, v: &str) {
        if v.as_bytes().contains(&0) {
            let cleaned: String = v.chars().filter(|c| *c != '\0').collect();
            self.field(cleaned.as_bytes());
        } else {
            self.field(v.as_bytes());
        }
    }

    /// A `geometry` as EWKB (PostGIS's binary input accepts it directly).
    pub fn ewkb(&mut self, v: &[u8]) {
        self.field(v);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the bytes written so far, leaving the buffer empty for the next chunk.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4))
    }

    /// Adds the trailer and returns the last chunk.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

/// Why a streamed COPY ended without loading.
#[derive(Debug)]
pub enum CopyFailure<E> {
    /// The producer of the rows gave up (bad input); the COPY was aborted.
    Producer(E),
    /// The database refused the data or the connection broke.
    Database(sqlx::Error),
}

/// Runs `statement` (a `COPY ... FROM STDIN (FORMAT binary)`) with the chunks the producer sends, then
/// waits for the producer's verdict: the COPY is committed to only if the producer succeeded.
pub async fn stream_copy<T, E>(
    conn: &mut PgConnection,
    statement: &str,
    mut chunks: mpsc::Receiver<Vec<u8>>,
    producer: tokio::task::JoinHandle<Result<T, E>>,
    panic_to_error: impl FnOnce(tokio::task::JoinError) -> E,
) -> Result<(T, u64), CopyFailure<E>> {
    let mut copy = conn.copy_in_raw(statement).await.map_err(CopyFailure::Database)?;
    let mut send_error = None;
    while let Some(chunk) = chunks.recv().await {
        if let Err(e) = copy.send(chunk).await {
            send_error = Some(e);
            break;
        }
    }
    // Dropping the receiver makes a producer still sending stop at its next chunk.
    drop(chunks);
    let verdict = producer.await.unwrap_or_else(|e| Err(panic_to_error(e)));
    if let Some(e) = send_error {
        let _ = copy.abort("load aborted").await;
        return Err(CopyFailure::Database(e));
    }
    match verdict {
        Ok(value) => {
            let rows = copy.finish().await.map_err(CopyFailure::Database)?;
            Ok((value, rows))
        }
        Err(e) => {
            let _ = copy.abort("the input could not be read").await;
            Err(CopyFailure::Producer(e))
        }
    }
}
/// What a producer of COPY rows reports back.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct EncodeStats {
    pub rows: u64,
    pub rows_with_geometry: u64,
    /// Whether any geometry other than a point was written (only those can be invalid).
    pub non_points: bool,
    /// Geometries the source had that could not be kept (their row has none): counted, never silent.
    #[serde(default)]
    pub unreadable_geometries: u64,
    /// What could not be kept as the source had it, row by row (the rejections report).
    #[serde(default)]
    pub rejections: crate::queue::Rejections,
    /// Errors the reader reported and read past (GDAL's drivers skip what they cannot read), and the last
    /// one's message.
    #[serde(default)]
    pub reader_errors: u64,
    #[serde(default)]
    pub last_reader_error: Option<String>,
}
