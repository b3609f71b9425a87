//! The command-line client in the same binary (`geoimport import`, `geoimport imports ...`,
//! `geoimport sync create`): it speaks the HTTP API of a geoimport server, as any client would, and shows
//! an upload's bytes and then the import's phase and rows with progress bars.
//!
//! - [`api`]: the server's routes, as calls.
//! - [`send`]: a file sent to the server, in one request or, when large, as a resumable upload (tus).
//! - [`follow`]: an import polled until it ends, its progress drawn.
//! - [`cli`]: the commands, their arguments and exit statuses.

mod api;
pub mod cli;
mod follow;
mod send;

/// Why a command could not do what it was asked; it exits with status 1 and says this on stderr.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {server}: {source}")]
    Unreachable { server: String, source: reqwest::Error },
    #[error("the server answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("{0}")]
    Local(String),
}
