//! The settings a process would run with, keyed by the environment variable that sets each, as
//! `geoimport config` prints them: an operator checks what the flags and environment add up to, and the
//! tests check that every variable of the README reaches its setting. Secrets are told as set or not.

use std::net::SocketAddr;

use serde_json::{Map, Value, json};

use super::{RuntimeArgs, StoreArgs, UserDefaults};

/// Every setting, keyed by its variable (`GEOIMPORT_BIND`, `DATABASE_URL`...).
pub fn by_variable(
    log_format: &str,
    bind: SocketAddr,
    store: &StoreArgs,
    runtime: &RuntimeArgs,
    defaults: &UserDefaults,
) -> Map<String, Value> {
    let secret = |set: bool| if set { json!("(set)") } else { Value::Null };
    let list = |items: Vec<String>| json!(items.join(","));
    let shown = json!({
        "DATABASE_URL": store.database_url.as_deref().map(without_password),
        "GEOIMPORT_DATA_DIR": store.data_dir,
        "GEOIMPORT_STAGING_URL": store.staging_url.as_deref().map(without_password),
        "GEOIMPORT_ALLOW_SUPERUSER": store.allow_superuser,
        "GEOIMPORT_EMBEDDED_PG_USER": store.embedded_pg_user,
        "GEOIMPORT_BIND": bind.to_string(),
        "GEOIMPORT_LOG_FORMAT": log_format,
        "GEOIMPORT_WORKERS": runtime.workers,
        "GEOIMPORT_LEASE_SECS": runtime.lease_secs,
        "GEOIMPORT_POLL_MS": runtime.poll_ms,
        "GEOIMPORT_MAX_ATTEMPTS": runtime.max_attempts,
        "GEOIMPORT_JOB_TIMEOUT_SECS": runtime.job_timeout_secs,
        "GEOIMPORT_SHUTDOWN_GRACE_SECS": runtime.shutdown_grace_secs,
        "GEOIMPORT_URL_ALLOW": list(runtime.url_allow.iter().map(|n| n.to_string()).collect()),
        "GEOIMPORT_CONNECTOR_ALLOW": list(runtime.connector_allow.iter().map(|e| match e.port {
            Some(port) => format!("{}:{port}", e.net),
            None => e.net.to_string(),
        }).collect()),
        "GEOIMPORT_SECRET_KEY": secret(runtime.secret_key.is_some()),
        "GEOIMPORT_SECRET_KEY_FILE": runtime.secret_key_file,
        "GEOIMPORT_CONNECT_TIMEOUT_SECS": runtime.connect_timeout_secs,
        "GEOIMPORT_DOWNLOAD_TIMEOUT_SECS": runtime.download_timeout_secs,
        "GEOIMPORT_URL_CA_FILE": runtime.url_ca_file.as_ref().map(|p| p.display().to_string()),
        "GEOIMPORT_MAX_TABLES_PER_IMPORT": runtime.max_tables_per_import,
        "GEOIMPORT_MAX_UNPACKED_BYTES": runtime.max_unpacked_bytes,
        "GEOIMPORT_METRICS_TOKEN": secret(runtime.metrics_token.is_some()),
        "GEOIMPORT_ADMIN_TOKEN": secret(runtime.admin_token.is_some()),
        "GEOIMPORT_GDAL_MEMORY_MB": runtime.gdal_memory_mb,
        "GEOIMPORT_MAX_RECORD_BYTES": runtime.max_record_bytes,
        "GEOIMPORT_HEADER_TIMEOUT_SECS": runtime.header_timeout_secs,
        "GEOIMPORT_MAX_CONNECTIONS": runtime.max_connections,
        "GEOIMPORT_UPLOAD_TIMEOUT_SECS": runtime.upload_timeout_secs,
        "GEOIMPORT_MIN_FREE_BYTES": runtime.min_free_bytes,
        "GEOIMPORT_UPLOAD_EXPIRY_SECS": runtime.upload_expiry_secs,
        "GEOIMPORT_MAX_UNFINISHED_UPLOADS": runtime.max_unfinished_uploads,
        "GEOIMPORT_MAX_FILE_SIZE": defaults.max_file_size,
        "GEOIMPORT_MAX_CONCURRENT_IMPORTS": defaults.max_concurrent_imports,
        "GEOIMPORT_MAX_STAGED_BYTES": defaults.max_staged_bytes,
        "GEOIMPORT_MAX_PENDING_IMPORTS": defaults.max_pending_imports,
    });
    match shown {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A database URL with its password replaced, so that the output can be pasted anywhere.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(not a URL)".into(),
    }
}
