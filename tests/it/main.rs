//! The integration tests, as one crate (one link instead of one per file): each module checks a promise of
//! the server from the outside, over HTTP or as a child process, against real services (PostgreSQL with
//! PostGIS, MariaDB, a second PostgreSQL cluster with TLS, MariaDB servers of the tests' own in other time
//! zones), each test with databases of its own. No test changes a setting of a shared server.

mod common;

mod accounts;
mod admin_api;
mod api;
mod archives;
mod cancel;
mod carto_sdk;
mod cli;
mod configuration;
mod connectors_mysql;
mod connectors_mysql_edges;
mod connectors_postgres;
mod corpus;
mod csv;
mod embedded;
mod fidelity;
mod formats;
mod ftp;
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
mod multi_node;
mod mysql_servers;
mod object_staging;
mod probes;
mod progress;
mod promises;
mod publishing;
mod queue;
mod rasters;
mod rejections;
mod scripts;
mod setup;
mod spreadsheets;
mod sync;
mod tables;
mod tus;
mod url;
mod url_encodings;
mod users_cli;
mod web;
mod webhooks;
