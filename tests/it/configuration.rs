//! The configuration as the binary reads it: every variable of README's Configuration table, set in the
//! environment of `geoimport config`, reaches its setting, and with none set each has the default the
//! README gives. A variable added to the README without a check here fails the test.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::geoimport_bin;

/// Each variable with a value to set and what `geoimport config --json` must then show.
fn values_to_set() -> BTreeMap<&'static str, (&'static str, Value)> {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // base64 of 32 bytes
    BTreeMap::from([
        ("DATABASE_URL", ("postgres://gi:s3cret@db.example:5433/gi", json!("postgres://gi:***@db.example:5433/gi"))),
        ("GEOIMPORT_DATA_DIR", ("/srv/geoimport", json!("/srv/geoimport"))),
        ("GEOIMPORT_STAGING_URL", ("s3://geo-bucket/staging", json!("s3://geo-bucket/staging"))),
        ("GEOIMPORT_BIND", ("0.0.0.0:9999", json!("0.0.0.0:9999"))),
        ("GEOIMPORT_WORKERS", ("7", json!(7))),
        ("GEOIMPORT_MAX_FILE_SIZE", ("1234567", json!(1234567))),
        ("GEOIMPORT_MAX_CONCURRENT_IMPORTS", ("5", json!(5))),
        ("GEOIMPORT_MAX_PENDING_IMPORTS", ("17", json!(17))),
        ("GEOIMPORT_MAX_STAGED_BYTES", ("7654321", json!(7654321))),
        ("GEOIMPORT_LEASE_SECS", ("41", json!(41))),
        ("GEOIMPORT_MAX_ATTEMPTS", ("6", json!(6))),
        ("GEOIMPORT_JOB_TIMEOUT_SECS", ("1801", json!(1801))),
        ("GEOIMPORT_SHUTDOWN_GRACE_SECS", ("12", json!(12))),
        ("GEOIMPORT_POLL_MS", ("333", json!(333))),
        ("GEOIMPORT_LOG_FORMAT", ("text", json!("text"))),
        ("GEOIMPORT_URL_ALLOW", ("10.0.0.0/8, 192.168.1.0/24", json!("10.0.0.0/8,192.168.1.0/24"))),
        ("GEOIMPORT_CONNECT_TIMEOUT_SECS", ("9", json!(9))),
        ("GEOIMPORT_DOWNLOAD_TIMEOUT_SECS", ("99", json!(99))),
        ("GEOIMPORT_URL_CA_FILE", ("/etc/geoimport/ca.pem", json!("/etc/geoimport/ca.pem"))),
        ("GEOIMPORT_MAX_TABLES_PER_IMPORT", ("8", json!(8))),
        ("GEOIMPORT_MAX_UNPACKED_BYTES", ("1048576", json!(1048576))),
        ("GEOIMPORT_METRICS_TOKEN", ("t0ken", json!("(set)"))),
        ("GEOIMPORT_ADMIN_TOKEN", ("adm1n", json!("(set)"))),
        ("GEOIMPORT_GDAL_MEMORY_MB", ("512", json!(512))),
        ("GEOIMPORT_EMBEDDED_PG_USER", ("pgrunner", json!("pgrunner"))),
        ("GEOIMPORT_CONNECTOR_ALLOW", ("127.0.0.1/32:3306,10.1.2.3", json!("127.0.0.1/32:3306,10.1.2.3/32"))),
        ("GEOIMPORT_SECRET_KEY", (key, json!("(set)"))),
        ("GEOIMPORT_SECRET_KEY_FILE", ("/etc/geoimport/key", json!("/etc/geoimport/key"))),
        ("GEOIMPORT_ALLOW_SUPERUSER", ("true", json!(true))),
        ("GEOIMPORT_MAX_RECORD_BYTES", ("65536", json!(65536))),
        ("GEOIMPORT_HEADER_TIMEOUT_SECS", ("4", json!(4))),
        ("GEOIMPORT_MIN_FREE_BYTES", ("0", json!(0))),
        ("GEOIMPORT_UPLOAD_TIMEOUT_SECS", ("77", json!(77))),
        ("GEOIMPORT_MAX_CONNECTIONS", ("64", json!(64))),
        ("GEOIMPORT_UPLOAD_EXPIRY_SECS", ("3600", json!(3600))),
        ("GEOIMPORT_MAX_UNFINISHED_UPLOADS", ("3", json!(3))),
    ])
}

/// The rows of README's Configuration table: (variable, default as written).
fn readme_table() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("\n## Configuration\n").nth(1).expect("README has a Configuration section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].trim_matches('`').to_string())
        })
        .collect();
    assert!(rows.len() > 20, "the Configuration table was not found: {rows:?}");
    rows
}

/// `geoimport config --json` with exactly `vars` in an environment otherwise free of settings.
fn config_with(vars: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    let mut cmd = std::process::Command::new(geoimport_bin());
    cmd.args(["config", "--json"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("GEOIMPORT_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "geoimport config: {}", String::from_utf8_lossy(&out.stderr));
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn every_variable_of_the_readme_reaches_its_setting() {
    let table = values_to_set();
    let readme = readme_table();
    for (variable, _) in &readme {
        assert!(table.contains_key(variable.as_str()), "README's {variable} has no check in configuration.rs");
    }
    let vars: Vec<(&str, &str)> = table.iter().map(|(k, (v, _))| (*k, *v)).collect();
    let shown = config_with(&vars);
    for (variable, (_, expected)) in &table {
        assert_eq!(shown.get(*variable), Some(expected), "{variable}");
    }
    // Nothing the binary reads is missing from the README.
    for variable in shown.keys() {
        assert!(readme.iter().any(|(v, _)| v == variable), "{variable} is not in README's Configuration table");
    }
}

#[test]
fn with_nothing_set_every_setting_has_the_readmes_default() {
    let shown = config_with(&[]);
    for (variable, default) in readme_table() {
        let value = shown.get(&variable).unwrap_or_else(|| panic!("{variable} is not shown"));
        let plain = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        // "none", "generated" and "<data dir>/..." are decided later, or not at all: nothing is set.
        let unset = default == "none" || default == "generated" || default.starts_with('<');
        if unset {
            assert_eq!(plain, "", "{variable}: README says {default}, the binary has {value}");
        } else {
            assert_eq!(plain, default, "{variable}");
        }
    }
}

#[test]
fn a_flag_wins_over_its_variable() {
    let mut cmd = std::process::Command::new(geoimport_bin());
    cmd.args(["config", "--json", "--workers", "9", "--bind", "127.0.0.1:9191"]);
    cmd.env("GEOIMPORT_WORKERS", "7").env("GEOIMPORT_BIND", "0.0.0.0:7000");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&shown["GEOIMPORT_WORKERS"], &shown["GEOIMPORT_BIND"]), (&json!(9), &json!("127.0.0.1:9191")));
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_log_filters_the_log() {
    let app = crate::common::TestApp::start_with(|s| s.runtime.workers = 0).await;
    // By the time it serves, the process has logged its start; at debug level that includes debug lines.
    let quiet = crate::common::child_server::ChildServer::api_only(&app, &[("RUST_LOG", "info")]).await;
    let chatty = crate::common::child_server::ChildServer::api_only(&app, &[("RUST_LOG", "debug")]).await;
    let debug_lines = |lines: Vec<String>| lines.iter().filter(|l| l.contains("DEBUG")).count();
    assert!(debug_lines(chatty.log.lines()) > 0, "RUST_LOG=debug logged no debug line: {:?}", chatty.log.lines());
    assert_eq!(debug_lines(quiet.log.lines()), 0, "{:?}", quiet.log.lines());
}
