//! Operators' tools: `geoimport user list|show|rotate-key|set|disable|enable|delete|add-key|revoke-key` on
//! the server's database, and the same over `/api/v1/admin/users…` with GEOIMPORT_ADMIN_TOKEN.

use crate::common::*;
use serde_json::{Value, json};

/// Runs `geoimport user <args> --json` on the app's database: (success, stdout as JSON or stderr).
fn user_cli(app: &TestApp, args: &[&str]) -> (bool, Value) {
    let out = std::process::Command::new(geoimport_bin())
        .arg("user")
        .args(args)
        .arg("--json")
        .env_remove("DATABASE_URL")
        .envs(app.child_env())
        .output()
        .unwrap();
    if out.status.success() {
        let text = String::from_utf8(out.stdout).unwrap();
        (true, serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}")))
    } else {
        (false, Value::String(String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}

fn ok(app: &TestApp, args: &[&str]) -> Value {
    let (success, value) = user_cli(app, args);
    assert!(success, "geoimport user {args:?}: {value}");
    value
}

/// Queues an upload; its id.
async fn queued(app: &TestApp, u: &TestUser) -> uuid::Uuid {
    app.import(u, "queued.csv", "a,b\n1,2\n", "").await
}

/// The status of a GET of the import list with `key`, and its body.
async fn with_key(app: &TestApp, key: &str) -> (u16, Value) {
    let resp = app.client.get(app.url(&format!("/api/v1/imports?api_key={key}"))).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_and_roll_and_limits_change_from_the_command_line() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    queued(&app, &u).await;
    let listed = ok(&app, &["list"]);
    let ana = listed.as_array().unwrap().iter().find(|a| a["username"] == "ana").expect("ana is listed").clone();
    assert_eq!((ana["imports_24h"].as_i64(), ana["unfinished_imports"].as_i64()), (Some(1), Some(1)), "{ana:#}");
    assert!(ana["limits"]["max_file_size"].as_i64().is_some() && ana["disabled_at"].is_null(), "{ana:#}");

    // Rotation: the new key works at once, the old one no more.
    let rotated = ok(&app, &["rotate-key", "ana"]);
    let new_key = rotated["api_key"].as_str().unwrap();
    assert_eq!(with_key(&app, &u.key).await.0, 401);
    assert_eq!(with_key(&app, new_key).await.0, 200);

    // A labelled key works like the master key, until revoked; an expired one never does.
    let laptop = ok(&app, &["add-key", "ana", "laptop"]);
    assert_eq!(with_key(&app, laptop["api_key"].as_str().unwrap()).await.0, 200);
    let old = ok(&app, &["add-key", "ana", "old", "--expires-at", "2020-01-01T00:00:00Z"]);
    assert_eq!(with_key(&app, old["api_key"].as_str().unwrap()).await.0, 401);
    let shown = ok(&app, &["show", "ana"]);
    let labels: Vec<&str> = shown["keys"].as_array().unwrap().iter().map(|k| k["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["laptop", "old"]);
    assert!(!shown.to_string().contains(laptop["api_key"].as_str().unwrap()), "a key is shown again");
    ok(&app, &["revoke-key", "ana", "laptop"]);
    assert_eq!(with_key(&app, laptop["api_key"].as_str().unwrap()).await.0, 401);
    assert!(!user_cli(&app, &["add-key", "ana", "master"]).0, "'master' is the master key's");

    // Limits: set, and lifted with `unlimited`.
    let set = ok(&app, &["set", "ana", "--max-file-size", "1000", "--table-quota", "3", "--max-rows", "50"]);
    assert_eq!(set["limits"]["max_file_size"], 1000);
    assert_eq!(
        (set["limits"]["table_quota"].as_i64(), set["limits"]["max_rows_per_table"].as_i64()),
        (Some(3), Some(50))
    );
    let set = ok(&app, &["set", "ana", "--table-quota", "unlimited"]);
    assert!(set["limits"]["table_quota"].is_null() && set["limits"]["max_rows_per_table"] == 50, "{set:#}");
    let renewed = TestUser { id: u.id, name: u.name.clone(), key: new_key.to_string() };
    let resp = app.upload(&renewed, "big.csv", vec![b'a'; 1 << 20], "").await;
    assert_eq!(resp.status(), 413, "the new file limit applies at once");
    assert!(!user_cli(&app, &["show", "nobody"]).0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_user_is_refused_its_imports_fail_and_its_syncs_wait() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let id = queued(&app, &u).await;
    let body = json!({"url": "https://example.com/a.csv", "interval": 3600});
    let sync: Value = crate::sync::create_sync(&app, &u, body).await.json().await.unwrap();
    let sync_id: uuid::Uuid = sync["id"].as_str().unwrap().parse().unwrap();
    let disabled = ok(&app, &["disable", "ana"]);
    assert!(disabled["disabled_at"].is_string(), "{disabled:#}");
    let (code, body) = with_key(&app, &u.key).await;
    assert_eq!(code, 401);
    assert!(body["errors"].as_str().unwrap().contains("disabled"), "{body}");
    let (state, code): (String, Option<i32>) =
        sqlx::query_as("SELECT state, error_code FROM geoimport.imports WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), code), ("failure", Some(6673)));
    // The sync is due, and the scheduler leaves it.
    sqlx::query("UPDATE geoimport.synchronizations SET run_at = now(), state = 'success' WHERE id = $1")
        .bind(sync_id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(geoimport::sync::queue_due(&app.pool, 10).await.unwrap(), 0, "a disabled user's sync ran");
    ok(&app, &["enable", "ana"]);
    assert_eq!(with_key(&app, &u.key).await.0, 200);
    assert_eq!(geoimport::sync::queue_due(&app.pool, 10).await.unwrap(), 1, "the sync runs again once enabled");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_user_with_drop_tables_leaves_nothing_of_theirs() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "towns.csv", "name,lat,lon\nSoria,41.76,-2.46\n", "").await;
    // No worker may take ana's next import: it waits, staged on disk.
    sqlx::query("UPDATE geoimport.users SET max_concurrent_imports = 0").execute(&app.pool).await.unwrap();
    let queued = queued(&app, &u).await;
    assert!(app.data_dir.join("staging").join(queued.to_string()).exists(), "the upload is staged");
    let (refused, why) = user_cli(&app, &["delete", "ana", "--drop-tables"]);
    assert!(!refused && why.as_str().unwrap().contains("1 imports still running or waiting"), "{why}");
    let deleted = ok(&app, &["delete", "ana", "--drop-tables", "--force"]);
    assert_eq!((deleted["imports_stopped"].as_u64(), deleted["tables_dropped"].as_bool()), (Some(1), Some(true)));
    for sql in [
        "SELECT count(*) FROM geoimport.users WHERE username = 'ana'",
        "SELECT count(*) FROM geoimport.imports",
        "SELECT count(*) FROM geoimport.tables",
        "SELECT count(*) FROM geoimport.synchronizations",
        "SELECT count(*) FROM geoimport.api_keys",
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'ana'",
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'ana'",
    ] {
        assert_eq!(app.count(sql).await, 0, "{sql}");
    }
    assert!(
        paths_under(&app.data_dir.join("staging")).iter().all(|p| !p.to_string_lossy().contains(&queued.to_string()))
    );
    assert_eq!(with_key(&app, &u.key).await.0, 401);
}
