//! geoimport: a self-hosted server compatible with the CARTO Import API. Clients send files; a queue in
//! PostgreSQL hands them to workers, which turn each into a PostGIS table in the client's own schema.
//!
//! Layout:
//! - [`http`]: the API (routes, authentication, the one error type) and the connections it is served on
//!   (caps and timeouts). It only validates, stages the bytes durably (within each user's limits) and
//!   enqueues.
//! - [`queue`]: the imports table as a job queue: claim with SKIP LOCKED, leases, reclaiming.
//! - [`worker`]: the pool that claims jobs and runs each in isolation, with graceful shutdown.
//! - [`source`]: where bytes come from: staged uploads, URL downloads under an address policy.
//! - [`sync`]: sync tables, re-imported on a schedule.
//! - [`connector`]: database connectors (MySQL/MariaDB, PostgreSQL) that import tables and queries.
//! - [`formats`]: readers (CSV, GeoJSON/JSON, GDAL's vector formats, spreadsheets) and the choice among
//!   them; [`unpack`]: archives, unpacked safely.
//! - [`load`]: names, type guessing, geometry, binary COPY, and publishing tables.
//! - [`errors`]: the CARTO error catalogue.
//! - [`db`], [`config`], [`users`], [`server`]: plumbing.

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
pub mod queue;
pub mod server;
pub mod services;
pub mod source;
pub mod sync;
pub mod unpack;
pub mod users;
pub mod worker;
