//! An import's states, as CARTO names them, and the names the queue signals with.

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
