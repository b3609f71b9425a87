//! `POST /api/v1/imports/{id}/cancel`: an unfinished import fails with 6672 at once, its worker stops and
//! publishes nothing; an ended import is 409, another user's 404.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;
use uuid::Uuid;

async fn cancel(app: &TestApp, user: &TestUser, id: Uuid) -> reqwest::Response {
    app.client.post(app.url(&format!("/api/v1/imports/{id}/cancel?api_key={}", user.key))).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_import_cancelled_before_publishing_leaves_nothing() {
    // A long lease: the worker must learn of the cancel from its notification, not at a renewal 10 s on.
    let app = TestApp::start_with(|s| {
        s.runtime.lease_secs = 30;
        s.runtime.workers = 1;
        s.runtime.hooks.hold_before_publish_ms = 4000;
    })
    .await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "doomed.csv", "a,b\n1,2\n3,4\n", "").await;
    // Loaded and waiting to publish: the staging table exists.
    let start = Instant::now();
    while app.staging_tables().await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the import never reached its staging table");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = cancel(&app, &u, id).await;
    assert_eq!(resp.status(), 200);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["state"], "failure");
    assert_eq!(status["error_code"], 6672);
    assert_eq!(status["get_error_text"]["title"], "Import cancelled");
    // The worker stops at once and drops what it loaded.
    let start = Instant::now();
    while !app.staging_tables().await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(2), "the cancelled import's staging table stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The one worker goes on with the next import: the cancelled job's task has ended, so nothing of it
    // can publish any more; nothing did, and the cancellation stands.
    assert_eq!(app.import_ok(&u, "next.csv", "a\n1\n", "").await["state"], "complete");
    assert_eq!(app.tables_of("ana").await, ["next"]);
    let (_, status) = app.status(&u, id).await;
    assert_eq!(status["error_code"], 6672);
    assert_eq!(cancel(&app, &u, id).await.status(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_import_is_cancelled_and_ended_or_foreign_ones_are_refused() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let bob = app.create_user("bob").await;
    let id = app.import(&ana, "waiting.csv", "a\n1\n", "").await;
    assert_eq!(cancel(&app, &bob, id).await.status(), 404);
    assert_eq!(cancel(&app, &ana, Uuid::new_v4()).await.status(), 404);
    let resp = cancel(&app, &ana, id).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["error_code"], 6672);
    let resp = cancel(&app, &ana, id).await;
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"].as_str().unwrap().contains("already ended"), "{body}");
    // A worker that starts later never takes it: it takes a later import, and the cancelled one, older, was
    // never claimed.
    let later = app.import(&ana, "later.csv", "a\n1\n", "").await;
    let workers = app.spawn_workers(|_| {});
    assert_eq!(app.wait_final(&ana, later).await["state"], "complete");
    assert_eq!(app.status(&ana, id).await.1["error_code"], 6672);
    assert_eq!(app.job_row(id).await, ("failure".to_string(), 0, None));
    assert_eq!(app.tables_of("ana").await, ["later"]);
    workers.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scratch_files_of_ended_jobs_are_swept() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "waiting.csv", "a\n1\n", "").await;
    assert_eq!(cancel(&app, &u, id).await.status(), 200);
    // What a download or an unpack of the cancelled job would have left, and something that is no job's.
    let scratch = app.data_dir.join("work").join(id.to_string());
    std::fs::create_dir_all(scratch.join("unpacked")).unwrap();
    std::fs::write(scratch.join("download.zip"), b"PK").unwrap();
    let other = app.data_dir.join("work").join("not-a-job");
    std::fs::create_dir_all(&other).unwrap();
    let workers = app.spawn_workers(|_| {});
    let start = Instant::now();
    while scratch.exists() {
        assert!(start.elapsed() < Duration::from_secs(5), "the cancelled job's scratch directory stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(other.exists());
    workers.stop().await;
}
