//! From typed rows to a published PostGIS table: names, type guessing, geometry encoding, binary COPY into a
//! staging table, and publishing under the user's schema.

pub mod copy;
pub mod geometry;
pub mod guess;
pub mod names;
pub mod publish;
mod replace;
pub mod table;
pub mod values;

use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::queue::ImportState;
use crate::users::User;

/// What a reader needs to load a layer.
pub struct LoadContext<'a> {
    pub pool: &'a PgPool,
    pub job_id: Uuid,
    /// The job's attempt number: staging tables of different attempts never share a name.
    pub attempt: i32,
    pub user: &'a User,
    pub type_guessing: bool,
    pub quoted_fields_guessing: bool,
    /// Progress for the status endpoint; the worker writes each change to the job row.
    pub state: &'a watch::Sender<ImportState>,
}

/// A layer loaded into its staging table, waiting to be published.
#[derive(Debug)]
pub struct LoadedLayer {
    pub staging: table::StagingTable,
    /// The sanitized name the table should get, before collisions are settled.
    pub proposed_name: String,
    pub rows: i64,
    /// Things the user should know that did not stop the import.
    pub warnings: serde_json::Map<String, serde_json::Value>,
}
