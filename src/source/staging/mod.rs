//! The staging store: an upload waits there, durably, from the moment it is acknowledged until its job
//! ends, and a downloaded URL import waits there between attempts. It is an object store
//! (`GEOIMPORT_STAGING_URL`: a directory, S3 or a compatible store, GCS, Azure), so that the API node that
//! received a file and the worker that imports it need not share a disk.
//!
//! - [`area`]: the store, where a job's objects live, removing them and finding orphans.
//! - [`upload`]: one file streamed into the store in parts, complete before its job row is written.
//! - [`transfer`]: a staged object as a local file for the readers, and a local file into the store.
//! - [`stream`]: a staged object read from the store as it goes, for readers that need no local file.
//! - [`segments`]: the pieces of a resumable upload (tus), and the one file they become for its import.
//! - [`name`]: the name a staged file gets.
//! - [`remote`]: a cloud store, with retries bounded in time.

mod area;
mod name;
mod remote;
mod segments;
mod stream;
mod transfer;
mod upload;

pub use area::{StagingArea, StagingError};
pub use name::safe_file_name;
pub use stream::{ObjectReader, StagedObject};
pub use upload::StagedUpload;
