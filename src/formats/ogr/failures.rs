//! The failures GDAL reports in a reader child. A driver that fails on one feature reports it and goes on
//! (a shapefile record cut short has no geometry), so the reader asks after each feature whether there
//! were more; the child's error handler records them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

static FAILURES: AtomicU64 = AtomicU64::new(0);
static LAST_FAILURE: Mutex<String> = Mutex::new(String::new());

/// Counts a failure GDAL reported, keeping its message.
pub fn record(message: &str) {
    if let Ok(mut last) = LAST_FAILURE.lock() {
        *last = message.to_string();
    }
    FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// How many failures GDAL has reported in this process (asked after every feature: one atomic load).
pub fn count() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

/// The last failure's message.
pub fn last() -> String {
    LAST_FAILURE.lock().map(|m| m.clone()).unwrap_or_default()
}
