//! How far a running import has come, as counters its stages bump and the worker's reporter reads every
//! second into the job's `progress`: the bytes of the step under way (a download, a copy from the staging
//! store) and their total when known, the rows the source holds once a reader has counted them, and the
//! rows of the tables whose COPY ended (a COPY under way is counted by PostgreSQL itself,
//! `pg_stat_progress_copy`).

use std::sync::atomic::{AtomicU64, Ordering};

/// A job's counters; 0 in a total means "not known".
#[derive(Debug, Default)]
pub struct Meter {
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    rows_total: AtomicU64,
    rows_loaded: AtomicU64,
    raster: std::sync::atomic::AtomicBool,
}

/// What the counters say at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub rows_total: Option<u64>,
    /// Rows of the tables whose COPY ended.
    pub rows_loaded: u64,
}

impl Meter {
    /// A new step of bytes begins (`total` of them, if known).
    pub fn start_bytes(&self, total: Option<u64>) {
        self.bytes_done.store(0, Ordering::Relaxed);
        self.bytes_total.store(total.unwrap_or(0), Ordering::Relaxed);
    }

    /// `done` bytes of the step are through.
    pub fn bytes(&self, done: u64) {
        self.bytes_done.store(done, Ordering::Relaxed);
    }

    /// The source holds `rows` rows (features, elements), as a reader counted them before loading.
    pub fn rows_total(&self, rows: u64) {
        self.rows_total.store(rows, Ordering::Relaxed);
    }

    /// A table's COPY ended with `rows` rows.
    pub fn rows_loaded(&self, rows: u64) {
        self.rows_loaded.fetch_add(rows, Ordering::Relaxed);
    }

    /// The source holds a raster: the status must say so however the import ends.
    pub fn found_raster(&self) {
        self.raster.store(true, Ordering::Relaxed);
    }

    pub fn raster(&self) -> bool {
        self.raster.load(Ordering::Relaxed)
    }

    pub fn read(&self) -> Reading {
        let known = |v: u64| (v > 0).then_some(v);
        Reading {
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: known(self.bytes_total.load(Ordering::Relaxed)),
            rows_total: known(self.rows_total.load(Ordering::Relaxed)),
            rows_loaded: self.rows_loaded.load(Ordering::Relaxed),
        }
    }
}
