//! The integration tests, as one crate (one link instead of one per file): each module checks a promise of
//! the server from the outside, over HTTP or as a child process, against real services (PostgreSQL with
//! PostGIS, MariaDB, a second PostgreSQL cluster), each test with databases of its own. `tests/connectors_timezone.rs` stays a
//! binary of its own: it changes the MariaDB server's global time zone.

mod common;

mod api;
mod archives;
mod cancel;
mod connectors_mysql;
mod connectors_postgres;
mod csv;
mod embedded;
mod formats;
mod fuzz_regressions;
mod gdal_isolation;
mod hostile_bodies;
mod hostile_budget;
mod hostile_connections;
mod hostile_connectors;
mod hostile_disk;
mod hostile_files;
mod hostile_gdal;
mod hostile_local;
mod hostile_queue;
mod hostile_tables;
mod idempotency;
mod layers;
mod publishing;
mod queue;
mod setup;
mod sync;
mod url;
