//! A staged object read where it lies, without a copy on the worker's disk: for the readers that only ever
//! read a file from its start to its end (delimited text and JSON), each pass opening it again.
//!
//! An open object is read in blocks, each one ranged GET read whole before the reader sees it, rather than
//! as the body of one GET. The store client bounds a request, body included, to 30 s and retries for 15 s
//! (see `remote`): one GET held open while a load pass waits on PostgreSQL would outlive that and fail,
//! whereas a block's time depends on the network alone. A task fetches the next block while the reader
//! works through the current one, so memory holds at most three blocks per open object whatever its size.

use std::io::Read;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::area::StagingArea;
use super::transfer::{missing, unreadable};
use crate::errors::{ImportError, codes};

/// Bytes one GET fetches: large enough that a request's latency is small beside its transfer, small
/// enough that a slow store still delivers one well within the client's request timeout.
const BLOCK_BYTES: u64 = 4 << 20;
/// Blocks fetched ahead of the reader (waiting in the channel); one more may be on its way.
const BLOCKS_AHEAD: usize = 1;
/// The longest one block may take, whatever the store client's own timeouts and retries come to: past it
/// the read fails instead of waiting for ever.
const BLOCK_DEADLINE: Duration = Duration::from_secs(120);

/// A staged object to read from the store, as often as needed, from blocking threads.
#[derive(Debug, Clone)]
pub struct StagedObject {
    store: Arc<dyn ObjectStore>,
    location: Path,
    size: u64,
    /// The runtime its GETs run on (the readers that use it run on blocking threads, outside any task).
    runtime: tokio::runtime::Handle,
    /// The job's stop: a GET under way is given up when it is cancelled.
    stop: CancellationToken,
}

impl StagingArea {
    /// Whether staged objects are in a cloud store (S3, GCS, Azure) rather than a directory: then a worker
    /// reads delimited text and JSON from the store itself, and copies only what needs a local file.
    pub fn is_remote(&self) -> bool {
        self.directory.is_none()
    }

    /// The staged object a job row names, of `size` bytes (as `staged_size` found), to read from the store
    /// until `stop` is cancelled. Call from within the runtime.
    pub fn staged_object(
        &self,
        staged: &str,
        size: u64,
        stop: &CancellationToken,
    ) -> Result<StagedObject, ImportError> {
        let location = self.location(staged).ok_or_else(|| missing(format!("'{staged}' names no staged object")))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| ImportError::unknown(format!("reading a staged object outside the runtime: {e}")))?;
        Ok(StagedObject { store: self.store.clone(), location, size, runtime, stop: stop.clone() })
    }
}

impl StagedObject {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first `n` bytes (fewer if the object is shorter): one ranged GET.
    pub async fn prefix(&self, n: u64) -> Result<Bytes, ImportError> {
        self.fetch(0..n.min(self.size)).await
    }

    /// [`Self::prefix`], from a blocking thread.
    pub fn head(&self, n: u64) -> Result<Bytes, ImportError> {
        self.runtime.block_on(self.prefix(n))
    }

    /// The object from its start, as a blocking reader. Dropping it stops its fetches.
    pub fn open(&self) -> ObjectReader {
        let (blocks, arriving) = mpsc::channel(BLOCKS_AHEAD);
        let done = self.stop.child_token();
        self.runtime.spawn(fetch_blocks(self.clone(), blocks, done.clone()));
        ObjectReader {
            arriving,
            current: Bytes::new(),
            left: self.size,
            stop: self.stop.clone(),
            _done: done.drop_guard(),
        }
    }

    /// One ranged GET, read whole, within [`BLOCK_DEADLINE`].
    async fn fetch(&self, range: Range<u64>) -> Result<Bytes, ImportError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let expected = range.end - range.start;
        let block = tokio::time::timeout(BLOCK_DEADLINE, self.store.get_range(&self.location, range))
            .await
            .map_err(|_| {
                tracing::warn!(object = %self.location, "a block of a staged object took too long");
                ImportError::new(
                    codes::FILE_IO,
                    format!(
                        "the staging store did not send the next {} MiB of the file within {} s",
                        BLOCK_BYTES >> 20,
                        BLOCK_DEADLINE.as_secs()
                    ),
                )
            })?
            .map_err(unreadable)?;
        // A store that answers with fewer bytes than asked (the object shrank) must not pass for the end.
        if block.len() as u64 != expected {
            return Err(missing(format!("{} sent {} bytes of {expected}", self.location, block.len())));
        }
        Ok(block)
    }
}

/// Fetches the object's blocks in order into `blocks` until the end, an error (sent, then the end), or
/// `done` (the reader went away or the job stopped).
async fn fetch_blocks(object: StagedObject, blocks: mpsc::Sender<Result<Bytes, ImportError>>, done: CancellationToken) {
    let mut start = 0;
    while start < object.size {
        let end = (start + BLOCK_BYTES).min(object.size);
        let block = tokio::select! {
            _ = done.cancelled() => return,
            block = object.fetch(start..end) => block,
        };
        let failed = block.is_err();
        let sent = tokio::select! {
            _ = done.cancelled() => return,
            sent = blocks.send(block) => sent,
        };
        if sent.is_err() || failed {
            return;
        }
        start = end;
    }
}

/// A staged object as a `Read`, for blocking threads only (it waits for blocks with `blocking_recv`).
pub struct ObjectReader {
    arriving: mpsc::Receiver<Result<Bytes, ImportError>>,
    current: Bytes,
    /// Bytes of the object not yet handed over: the blocks ending before this is zero is a failure.
    left: u64,
    stop: CancellationToken,
    _done: DropGuard,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // The readers look at the stop themselves; this makes a stopped job's reader useless to them all.
        if self.stop.is_cancelled() {
            return Err(std::io::Error::other("the import was stopped"));
        }
        while self.current.is_empty() {
            if self.left == 0 || buf.is_empty() {
                return Ok(0);
            }
            match self.arriving.blocking_recv() {
                Some(Ok(block)) => self.current = block,
                Some(Err(e)) => return Err(std::io::Error::other(e.detail)),
                None if self.stop.is_cancelled() => return Err(std::io::Error::other("the import was stopped")),
                None => return Err(std::io::Error::other("the staging store stopped sending the file")),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn object_in(store: Arc<InMemory>, bytes: &[u8]) -> (StagedObject, Path) {
        let location = Path::from("job/big.csv");
        let runtime = tokio::runtime::Handle::current();
        let object = StagedObject {
            store,
            location: location.clone(),
            size: bytes.len() as u64,
            runtime,
            stop: CancellationToken::new(),
        };
        (object, location)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_object_reads_whole_twice_and_its_prefix_is_one_range() {
        let store = Arc::new(InMemory::new());
        // Three blocks and a bit, so that blocks and reads are cut in different places.
        let bytes: Vec<u8> = (0..(3 * BLOCK_BYTES + 12_345)).map(|i| (i % 251) as u8).collect();
        store.put(&Path::from("job/big.csv"), bytes.clone().into()).await.unwrap();
        let (object, _) = object_in(store, &bytes);
        assert_eq!(object.prefix(1000).await.unwrap(), bytes[..1000]);
        assert_eq!(object.prefix(u64::MAX).await.unwrap().len(), bytes.len());
        let reader = object.clone();
        let (first, second, head) = tokio::task::spawn_blocking(move || {
            let read = |mut r: ObjectReader| {
                let mut out = Vec::new();
                let mut buf = vec![0u8; 100_003];
                loop {
                    match r.read(&mut buf).unwrap() {
                        0 => return out,
                        n => out.extend_from_slice(&buf[..n]),
                    }
                }
            };
            (read(reader.open()), read(reader.open()), reader.head(10).unwrap())
        })
        .await
        .unwrap();
        assert!(first == bytes && second == bytes, "a pass read other bytes than the object's");
        assert_eq!(head, bytes[..10]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_object_gone_mid_read_fails_the_read_and_never_hangs() {
        let store = Arc::new(InMemory::new());
        // Five blocks: at most three are fetched (read, waiting, being sent) before the object goes.
        let bytes = vec![b'x'; (5 * BLOCK_BYTES) as usize];
        store.put(&Path::from("job/big.csv"), bytes.clone().into()).await.unwrap();
        let (object, location) = object_in(store.clone(), &bytes);
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = object.open();
            let mut buf = vec![0u8; 1 << 20];
            let first = reader.read(&mut buf);
            // The store loses the object (or stops answering) while the reader is at its first block.
            tokio::runtime::Handle::current().block_on(store.delete(&location)).unwrap();
            let mut read = first.unwrap() as u64;
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return Ok(read),
                    Ok(n) => read += n as u64,
                    Err(e) => return Err(e),
                }
            }
        });
        let result = tokio::time::timeout(Duration::from_secs(30), read).await.expect("the read hung").unwrap();
        let e = result.expect_err("a vanished object read to its end");
        assert!(e.to_string().contains("missing from the staging store"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_stopped_job_ends_its_reads() {
        let store = Arc::new(InMemory::new());
        let bytes = vec![b'x'; (3 * BLOCK_BYTES) as usize];
        store.put(&Path::from("job/big.csv"), bytes.clone().into()).await.unwrap();
        let (object, _) = object_in(store, &bytes);
        let stop = object.stop.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = object.open();
            let mut buf = vec![0u8; BLOCK_BYTES as usize];
            assert!(reader.read(&mut buf).unwrap() > 0);
            stop.cancel();
            (0..4).map(|_| reader.read(&mut buf)).find_map(Result::err)
        });
        let e = tokio::time::timeout(Duration::from_secs(30), read).await.expect("the read hung").unwrap();
        assert!(e.is_some(), "a stopped job read its object to the end");
    }
}
