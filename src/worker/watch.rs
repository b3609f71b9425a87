//! A running job's `progress`, written into its row every second while it changes: the bytes its
//! download or copy has brought (from the job's [`Meter`]), the rows its source holds once a reader
//! counted them, and the rows loaded: those of the tables whose COPY ended, plus those of the COPYs under
//! way as PostgreSQL counts them (`pg_stat_progress_copy`), so that no reader has to count rows as it
//! sends them.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::load::table;
use crate::queue::{self, Standing};
use crate::source::meter::Meter;

/// How often the row is written (at most: only a change is written).
pub const EVERY: Duration = Duration::from_secs(1);

/// Writes job `id`'s progress until the task is aborted (when the run ends) or the job is no longer ours.
pub async fn watch(pool: PgPool, id: Uuid, owner: String, meter: Arc<Meter>) {
    let mut tick = tokio::time::interval(EVERY);
    let mut written = None;
    loop {
        tick.tick().await;
        // The COPYs under way; a COPY that ended leaves the view, and its rows are in the meter.
        let running: u64 = match table::copy_progress(&pool, id).await {
            Ok(running) => running.iter().map(|(_, rows)| (*rows).max(0) as u64).sum(),
            Err(e) => {
                tracing::debug!(error = %e, "could not read the COPY's progress");
                0
            }
        };
        let reading = meter.read();
        let rows_done = reading.rows_loaded + running;
        let standing = Standing {
            bytes_done: reading.bytes_done,
            bytes_total: reading.bytes_total,
            rows_done: (rows_done > 0 || reading.rows_total.is_some()).then_some(rows_done),
            rows_total: reading.rows_total,
        };
        if written == Some(standing) {
            continue;
        }
        match queue::write_progress(&pool, id, &owner, &standing).await {
            Ok(true) => written = Some(standing),
            Ok(false) => return,
            Err(e) => tracing::debug!(error = %e, "could not write the job's progress"),
        }
    }
}
