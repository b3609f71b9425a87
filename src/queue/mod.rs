//! The queue is the `geoimport.imports` table: one row is both the import a client polls and the job a
//! worker claims. Each function here is one SQL statement (or one short transaction) with the rules of
//! delivery written next to it:
//!
//! - a job is claimed with `FOR UPDATE SKIP LOCKED`, so two workers never take the same row;
//! - a claim is a lease that the worker renews; every later write checks the lease, so a worker that lost
//!   its job (it stalled past the lease and someone else took it) can no longer change it;
//! - a lapsed lease sends the job back to `pending`, or to `failure` 6671 after the last attempt.
//!
//! The other tables of the queue live here too: synchronizations (`syncs`) and the outcome of their runs
//! (`sync_runs`), idempotency keys, and resumable uploads (`uploads`).

mod accounts;
mod idempotency;
mod jobs;
pub mod rejections;
mod state;
pub mod storage;
mod sync_runs;
mod syncs;
mod uploads;
pub mod webhooks;

pub use accounts::{fail_unfinished_of_user, imports_since, jobs_of_user, unfinished_of_user};
pub use idempotency::{claim_idempotency_key, find_idempotency_key, forget_expired_idempotency_keys};
pub use jobs::{
    Standing, attach_connector, backlog_and_rows, connector_of, counts_by_state, ended_among, has_ended, lock_if_held,
    record_staged_download, write_progress,
};
pub use rejections::{
    Rejection, Rejections, StoredRejection, count_stored_rejections, list_rejections, store_rejections,
};
pub use state::{CANCEL_PREFIX, CollisionStrategy, DataType, ImportState, NOTIFY_CHANNEL, RUNNING_STATES, SyncState};
pub use storage::*;
pub use sync_runs::{Validators, mark_syncing, record_failure, record_success};
pub use syncs::{
    SyncPatch, SyncRow, Synchronization, claim_due_syncs, delete_sync, find_any_sync, find_sync, insert_sync,
    list_syncs, lock_sync, mark_queued, reread_sync, sync_counts_by_state, sync_validators, update_sync,
};
pub use uploads::{
    NewUpload, Segment, Upload, delete_expired_uploads, delete_upload, find_upload, insert_upload,
    missing_uploads_among, record_segment, take_upload, unfinished_uploads, upload_segments, uploads_of_user,
};
