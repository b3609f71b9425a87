//! geoimport: a self-hosted server compatible with the CARTO Import API. Clients send files; a queue in
//! PostgreSQL hands them to workers, which turn each into a PostGIS table in the client's own schema.
//!
//! Layout, from the ground up (each module uses only those above it in this list; `tests/it/layers.rs`
//! checks it, and docs/ARCHITECTURE.md explains it):
//! - [`errors`]: the CARTO error catalogue and the pipeline's error; [`config`]: settings, plain data.
//! - [`db`]: connecting, the embedded cluster, migrations; [`users`]: accounts and keys.
//! - [`queue`]: the imports table as a job queue (claim with SKIP LOCKED, leases, reclaiming), and every
//!   statement on the queue's tables (synchronizations, sync runs, idempotency keys).
//! - [`detect`]: formats from names and first bytes; [`source`]: where bytes come from (staged uploads, URL
//!   downloads under an address policy); [`unpack`]: archives, unpacked safely.
//! - [`load`]: names, type guessing, geometry, binary COPY into staging tables.
//! - [`formats`]: readers (CSV, GeoJSON/JSON, GDAL's vector formats, spreadsheets); [`connector`]:
//!   database connectors (MySQL/MariaDB, PostgreSQL). Both fill staging tables through `load`.
//! - [`publish`]: staging tables moved into the user's schema in the transaction that completes the job.
//! - [`catalog`]: the user's published tables as PostGIS holds them: list, columns, first rows, tiles.
//! - [`sync`]: sync tables, re-imported on a schedule: when a run is due, and what it queues.
//! - [`services`]: what is built from the settings once, at start.
//! - [`worker`]: the pool that claims jobs and runs each in isolation, with graceful shutdown.
//! - [`http`]: the API (routes, authentication, the one error type) and the connections it is served on.
//! - [`server`]: the API and the workers run together and stopped in order; [`fuzzing`]: entry points for
//!   the fuzz targets.
//! - [`client`]: the command-line client (`geoimport import`...), which speaks only the HTTP API.

pub mod admin;
pub mod catalog;
pub mod client;
pub mod config;
pub mod connector;
pub mod db;
pub mod detect;
pub mod errors;
pub mod formats;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod load;
pub mod publish;
pub mod queue;
pub mod server;
pub mod services;
pub mod source;
pub mod sync;
pub mod unpack;
pub mod users;
pub mod worker;
