//! The command-line client (issue 13): `geoimport import FILE|URL` against a running server, with
//! `--wait` and `--json`, a large file sent as a resumable upload, `imports list|show|cancel` and
//! `sync create`; exit status 0 when complete, 1 on failure (code and explanation on stderr), 2 on usage
//! errors. The client is the real binary, run as a user would run it.

use std::process::Output;

use serde_json::Value;

use crate::common::fixture::Fixture;
use crate::common::*;
use crate::formats::write;

/// Runs `geoimport <args>` against `app` as `user` (key and server from the environment, as documented).
async fn cli(app: &TestApp, user: &TestUser, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(geoimport_bin());
    command.args(args).env("GEOIMPORT_URL", &app.base).env("GEOIMPORT_API_KEY", &user.key).env_remove("DATABASE_URL");
    command.output().await.unwrap()
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn import_waits_and_exits_0_when_complete_1_with_the_explanation_on_failure_2_on_usage() {
    let fx = Fixture::start().await;
    let app = TestApp::start_with(|s| s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let ana = app.create_user("ana").await;
    let dir = tempfile::tempdir().unwrap();
    let tour = write(dir.path(), "prism_tour.csv", prism_tour_csv());

    let out = cli(&app, &ana, &["import", &tour, "--wait", "--json", "-p", "type_guessing=false"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let status = stdout_json(&out);
    assert_eq!((status["state"].as_str(), status["table_name"].as_str()), (Some("complete"), Some("prism_tour")));
    // The parameter reached the import: without type guessing every column stays text.
    assert_eq!(app.column_type("ana", "prism_tour", "visitors").await, "text");
    assert_eq!(app.count("SELECT count(*) FROM ana.prism_tour").await, 4);

    // Plain output: one line saying what was made.
    let out = cli(&app, &ana, &["import", &fx.url("/data/sample.csv"), "--wait"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("complete: sample (1 table, 3 rows)"), "{said}");

    // Without --wait: the import's id, at once; it completes on the server.
    let out = cli(&app, &ana, &["import", &tour]).await;
    assert_eq!(out.status.code(), Some(0));
    let id: uuid::Uuid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(app.wait_final(&ana, id).await["state"], "complete");

    let broken =
        write(dir.path(), "broken.geojson", r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "#);
    let out = cli(&app, &ana, &["import", &broken, "--wait"]).await;
    assert_eq!(out.status.code(), Some(1));
    let told = String::from_utf8_lossy(&out.stderr).into_owned();
    // Told as the status tells it: the code, the title, the explanation.
    let id: uuid::Uuid = told.split("import ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    let status = app.get_json(&ana, &format!("/api/v1/imports/{id}")).await;
    let text = &status["get_error_text"];
    let expected = format!(
        "failed with {}: {}: {}",
        status["error_code"],
        text["title"].as_str().unwrap(),
        text["what_about"].as_str().unwrap()
    );
    assert!(told.contains(&expected), "{told}\nexpected: {expected}");

    let out = cli(&app, &ana, &["import", "/no/such/file.csv"]).await;
    assert_eq!(out.status.code(), Some(2), "a missing file is a usage error");
    let out = cli(&app, &ana, &["import"]).await;
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let stranger = TestUser { id: ana.id, name: ana.name.clone(), key: "wrong".into() };
    let out = cli(&app, &stranger, &["import", &tour, "--wait"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_file_goes_as_a_resumable_upload_and_imports_list_show_cancel_and_sync_work() {
    let fx = Fixture::start().await;
    let app = TestApp::start_with(|s| {
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        s.runtime.hooks.hold_before_publish_ms = 3000;
    })
    .await;
    let ana = app.create_user("ana").await;
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,lat,lon\n");
    for i in 0..400_000 {
        csv.push_str(&format!("{i},{:.4},-3.5\n", 40.0 + (i % 1000) as f64 * 0.0001));
    }
    let big = write(dir.path(), "big.csv", &csv);
    // Past the threshold: a tus upload in 8 MiB pieces, then an import of it.
    let out = cli(&app, &ana, &["import", &big, "--resumable-above", "1000000", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let id = stdout_json(&out)["item_queue_id"].as_str().unwrap().to_string();
    let kind = app.texts(&format!("SELECT count(*)::text FROM geoimport.uploads WHERE import_id = '{id}'")).await;
    assert_eq!(kind, [Some("1".to_string())], "the file went as a resumable upload");

    // Held before publishing: listed, shown, then cancelled.
    let out = cli(&app, &ana, &["imports", "list"]).await;
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&id) && listed.contains("big.csv"), "{listed}");
    let out = cli(&app, &ana, &["imports", "show", &id]).await;
    assert_eq!(stdout_json(&out)["item_queue_id"].as_str().or(stdout_json(&out)["id"].as_str()), Some(id.as_str()));
    let out = cli(&app, &ana, &["imports", "cancel", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["error_code"], 6672);
    let out = cli(&app, &ana, &["imports", "cancel", &id]).await;
    assert_eq!(out.status.code(), Some(1), "an ended import cannot be cancelled");

    let out = cli(&app, &ana, &["sync", "create", &fx.url("/sync.csv"), "--interval", "3600", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let sync = stdout_json(&out);
    let first: uuid::Uuid = sync["data_import"]["item_queue_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.wait_final(&ana, first).await["state"], "complete");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.synchronizations").await, 1);
}
