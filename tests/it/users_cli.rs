//! `geoimport user ...` as an operator runs it: the binary, on the database the server uses.

use crate::common::*;
use serde_json::Value;

/// Runs `geoimport <args>` on the app's database; returns its standard output.
fn geoimport(app: &TestApp, args: &[&str]) -> String {
    let out = std::process::Command::new(geoimport_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .envs(app.child_env())
        .output()
        .unwrap();
    assert!(out.status.success(), "geoimport {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_create_stores_the_limits_it_is_given() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let printed = geoimport(
        &app,
        &[
            "user",
            "create",
            "lim",
            "--json",
            "--max-rows",
            "10",
            "--table-quota",
            "2",
            "--quota-bytes",
            "1000",
            "--max-file-size",
            "555",
            "--max-concurrent-imports",
            "4",
            "--max-pending-imports",
            "6",
            "--max-staged-bytes",
            "777",
        ],
    );
    let created: Value = serde_json::from_str(printed.trim()).unwrap();
    assert_eq!(created["username"], "lim");
    assert!(created["api_key"].as_str().is_some_and(|k| k.len() >= 32));
    let limits: (i64, i32, i32, i64, Option<i64>, Option<i32>, Option<i64>) = sqlx::query_as(
        "SELECT max_file_size, max_concurrent_imports, max_pending_imports, max_staged_bytes, max_rows_per_table, \
         table_quota, quota_in_bytes FROM geoimport.users WHERE username = 'lim'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(limits, (555, 4, 6, 777, Some(10), Some(2), Some(1000)));
    // Without them: the server's defaults, and no limit where the README says so.
    geoimport(&app, &["user", "create", "plain", "--json"]);
    let limits: (i64, i32, Option<i64>, Option<i32>, Option<i64>) = sqlx::query_as(
        "SELECT max_file_size, max_concurrent_imports, max_rows_per_table, table_quota, quota_in_bytes \
         FROM geoimport.users WHERE username = 'plain'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(limits, (1 << 30, 3, None, None, None));
}

/// Runs `geoimport <args>` with exactly `env` (no inherited setting); returns (success, stdout + stderr).
fn geoimport_with(args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(geoimport_bin());
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GEOIMPORT_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.env("GEOIMPORT_LOG_FORMAT", "text").envs(env.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_superuser_database_url_is_refused_unless_allowed() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    // The tests' admin URL for the app's database: a superuser.
    let as_superuser = ("DATABASE_URL", url_for(&app.db.name));
    let (ok, said) = geoimport_with(&["user", "create", "root_made"], std::slice::from_ref(&as_superuser));
    assert!(!ok, "a superuser was accepted: {said}");
    assert!(said.contains("superuser"), "{said}");
    let (ok, said) =
        geoimport_with(&["user", "create", "root_made"], &[as_superuser, ("GEOIMPORT_ALLOW_SUPERUSER", "true".into())]);
    assert!(ok, "{said}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.users WHERE username = 'root_made'").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn as_root_the_embedded_cluster_runs_as_the_user_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = ("GEOIMPORT_DATA_DIR", dir.path().join("data").display().to_string());
    let nobody = ("GEOIMPORT_EMBEDDED_PG_USER", "gi-no-such-user".to_string());
    let (ok, said) = geoimport_with(&["user", "create", "emb"], &[data, nobody]);
    if nix::unistd::geteuid().is_root() {
        assert!(!ok, "{said}");
        assert!(said.contains("no system user 'gi-no-such-user'"), "{said}");
    } else {
        // Only root needs another user to run PostgreSQL: the setting is not used, and the cluster starts.
        assert!(ok, "{said}");
    }
}
