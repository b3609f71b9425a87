//! The queue is the `geoimport.imports` table: one row is both the import a client polls and the job a
//! worker claims. Each function here is one SQL statement (or one short transaction) with the rules of
//! delivery written next to it:
//!
//! - a job is claimed with `FOR UPDATE SKIP LOCKED`, so two workers never take the same row;
//! - a claim is a lease that the worker renews; every later write checks the lease, so a worker that lost
//!   its job (it stalled past the lease and someone else took it) can no longer change it;
//! - a lapsed lease sends the job back to `pending`, or to `failure` 6671 after the last attempt.

pub mod storage;

pub use storage::*;

/// The channel workers LISTEN on; enqueue and finish NOTIFY it so that idle workers wake at once.
pub const NOTIFY_CHANNEL: &str = "geoimport_jobs";
/// A notification whose payload is this and an import id: the import was cancelled.
pub const CANCEL_PREFIX: &str = "cancel:";

/// States in which a worker holds the job.
pub const RUNNING_STATES: &[&str] = &["uploading", "unpacking", "guessing", "importing"];

/// Import states, as CARTO names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportState {
    Pending,
    Uploading,
    Unpacking,
    Guessing,
    Importing,
    Complete,
    Failure,
}

impl ImportState {
    pub const ALL: [ImportState; 7] = [
        ImportState::Pending,
        ImportState::Uploading,
        ImportState::Unpacking,
        ImportState::Guessing,
        ImportState::Importing,
        ImportState::Complete,
        ImportState::Failure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Pending => "pending",
            ImportState::Uploading => "uploading",
            ImportState::Unpacking => "unpacking",
            ImportState::Guessing => "guessing",
            ImportState::Importing => "importing",
            ImportState::Complete => "complete",
            ImportState::Failure => "failure",
        }
    }

    pub fn parse(state: &str) -> Option<ImportState> {
        ImportState::ALL.into_iter().find(|s| s.as_str() == state)
    }

    pub fn is_final(state: &str) -> bool {
        state == "complete" || state == "failure"
    }
}
