//! An import's states, as CARTO names them, and the names the queue signals with.

/// The channel workers LISTEN on; enqueue and finish NOTIFY it so that idle workers wake at once.
pub const NOTIFY_CHANNEL: &str = "geoimport_jobs";
/// A notification whose payload is this and an import id: the import was cancelled.
pub const CANCEL_PREFIX: &str = "cancel:";

/// States in which a worker holds the job.
pub const RUNNING_STATES: &[&str] = &["uploading", "unpacking", "guessing", "importing"];

/// Import states, as CARTO names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
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

    /// Whether the import has ended (no worker will change it again).
    pub fn is_final(self) -> bool {
        matches!(self, ImportState::Complete | ImportState::Failure)
    }
}

/// A synchronization's state, as the reference names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum SyncState {
    /// Made, its first run not yet queued.
    Created,
    /// A run is queued.
    Queued,
    /// A run is importing.
    Syncing,
    /// The last run succeeded (or found its source unchanged).
    Success,
    /// The last run failed; it is tried again an interval later.
    Failure,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Created => "created",
            SyncState::Queued => "queued",
            SyncState::Syncing => "syncing",
            SyncState::Success => "success",
            SyncState::Failure => "failure",
        }
    }
}

/// Where an import's data comes from, as the reference's `data_type` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum DataType {
    /// An uploaded file.
    File,
    /// A URL to download.
    Url,
    /// A database connector.
    Datasource,
}

impl DataType {
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::File => "file",
            DataType::Url => "url",
            DataType::Datasource => "datasource",
        }
    }
}

/// What to do when the table's name is taken (`collision_strategy`); absent, the new table is renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum CollisionStrategy {
    /// Import nothing for that table.
    Skip,
    /// Replace the existing table.
    Overwrite,
}

impl CollisionStrategy {
    pub fn parse(s: &str) -> Option<CollisionStrategy> {
        match s {
            "skip" => Some(CollisionStrategy::Skip),
            "overwrite" => Some(CollisionStrategy::Overwrite),
            _ => None,
        }
    }
}
