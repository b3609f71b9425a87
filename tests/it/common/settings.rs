//! The settings a test server runs with: the defaults, fast timers, and the hooks tests use.

use geoimport::config::{RuntimeArgs, Settings, UserDefaults};

use super::*;

/// Spelled out rather than parsed with clap's defaults: clap would also read `GEOIMPORT_*` from the
/// environment of whoever runs the tests, and a test's server must not depend on it.
pub fn runtime_args() -> RuntimeArgs {
    RuntimeArgs {
        workers: 2,
        lease_secs: 30,
        poll_ms: 200,
        max_attempts: 3,
        job_timeout_secs: 600,
        shutdown_grace_secs: 5,
        // The server under test runs in this test process: GDAL children are the real reader binary.
        gdal_reader: Some(reader_bin()),
        gdal_memory_mb: 4096,
        hooks: Default::default(),
        metrics_token: None,
        admin_token: None,
        url_allow: vec![],
        connector_allow: vec![],
        secret_key: None,
        secret_key_file: None,
        connect_timeout_secs: 5,
        max_tables_per_import: 50,
        max_unpacked_bytes: 16 << 30,
        download_timeout_secs: 60,
        url_ca_file: None,
        max_record_bytes: 32 << 20,
        header_timeout_secs: 10,
        max_connections: 1024,
        upload_timeout_secs: 3600,
        // Tests share one disk: no reserve unless a test asks for one.
        min_free_bytes: 0,
        upload_expiry_secs: 86400,
        max_unfinished_uploads: 20,
    }
}

/// Lets connectors reach this machine's databases (private addresses are refused by default).
pub fn allow_local_connectors(settings: &mut Settings) {
    settings.runtime.connector_allow = vec!["127.0.0.1/32".parse().unwrap()];
}

pub fn user_defaults() -> UserDefaults {
    UserDefaults {
        max_file_size: 1 << 30,
        max_concurrent_imports: 3,
        max_staged_bytes: 4 << 30,
        max_pending_imports: 100,
    }
}
