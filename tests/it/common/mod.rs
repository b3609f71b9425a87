//! Test harness: every test gets its own PostgreSQL database (dropped when the test ends), its own data
//! directory, and a real server on a free port, talked to over HTTP.
//!
//! The admin connection comes from TEST_DATABASE_URL (default: the local cluster as `postgres`).

pub mod app;
pub mod archive;
pub mod attacks;
pub mod child_server;
pub mod db;
pub mod files;
pub mod fixture;
pub mod logs;
pub mod mysql;
pub mod nodes;
pub mod pg_proxy;
pub mod private_mariadb;
pub mod process;
pub mod raw_http;
pub mod s3;
pub mod settings;
pub mod source_pg;
pub mod switch;
pub mod tus;

pub use app::*;
pub use archive::*;
pub use db::*;
pub use files::*;
pub use process::*;
pub use settings::*;

/// A reqwest client (with the TLS provider reqwest needs installed first).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}
