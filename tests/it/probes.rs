//! Probes and metrics as operators rely on them: liveness never touches the database, readiness fails
//! while the database is out of reach or the server drains, and one metrics reading serves the scrapes of
//! a few seconds.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::common::switch::Switch;
use crate::common::*;
use serde_json::{Value, json};

async fn probe(app_base: &str, path: &str) -> (u16, Value) {
    let resp = http_client().get(format!("{app_base}{path}")).timeout(Duration::from_secs(10)).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_fails_while_the_database_is_out_of_reach_and_liveness_does_not() {
    // The server reaches its database through a switch the test cuts.
    let mut db = TestDb::create_for_app().await;
    let switch = Switch::start(5432).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    assert_eq!(url.port(), Some(5432), "the test database is on the local cluster");
    url.set_port(Some(switch.port)).unwrap();
    db.url = url.to_string();
    let app = TestApp::start_on(db, |s| s.runtime.workers = 0).await;
    assert_eq!(probe(&app.base, "/readyz").await, (200, json!({"status": "ok"})));
    switch.cut().await;
    assert_eq!(probe(&app.base, "/readyz").await, (503, json!({"status": "database unavailable"})));
    let asked = Instant::now();
    assert_eq!(probe(&app.base, "/livez").await, (200, json!({"status": "ok"})));
    assert!(asked.elapsed() < Duration::from_millis(500), "/livez waited for the database");
    switch.restore();
    let start = Instant::now();
    while probe(&app.base, "/readyz").await.0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "/readyz never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_fails_while_the_server_drains() {
    // The API of a server whose shutdown has begun (the flag the server sets before it stops accepting).
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let services = geoimport::services::Services::build(&app.settings, &app.pool).await.unwrap();
    let state = geoimport::http::AppState {
        pool: app.pool.clone(),
        settings: app.settings.clone(),
        services,
        draining: Arc::new(AtomicBool::new(true)),
        metrics_cache: Default::default(),
        small_bodies: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, geoimport::http::app(state)).await });
    assert_eq!(probe(&base, "/readyz").await, (503, json!({"status": "draining"})));
    assert_eq!(probe(&base, "/healthz").await, (503, json!({"status": "draining"})));
    assert_eq!(probe(&base, "/livez").await, (200, json!({"status": "ok"})));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_metrics_reading_serves_the_scrapes_of_five_seconds() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("mia").await;
    let scrape = || async { app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    let pending =
        |text: &str| text.lines().find(|l| l.starts_with("geoimport_imports{state=\"pending\"}")).unwrap().to_string();
    let first_read = Instant::now();
    let first = scrape().await;
    // The reading is at most this old: it was made before the answer came.
    let first_answered = Instant::now();
    assert_eq!(pending(&first), "geoimport_imports{state=\"pending\"} 0");
    app.import(&u, "waiting.csv", "a\n1\n", "").await;
    let second = scrape().await;
    assert!(first_read.elapsed() < Duration::from_secs(5), "too slow to see the cache");
    assert_eq!(second, first, "a scrape within 5 s was read again");
    // Once the reading is 5 s old, the next scrape reads again; the waiting import and its age show.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(first_answered.elapsed()) + Duration::from_millis(100))
        .await;
    let third = scrape().await;
    assert_eq!(pending(&third), "geoimport_imports{state=\"pending\"} 1");
    let age = third.lines().find(|l| l.starts_with("geoimport_oldest_pending_import_age_seconds ")).unwrap();
    let age: f64 = age.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(age > 0.0, "the oldest pending import has an age: {age}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_and_name_the_request() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("lea").await;
    let server = crate::common::child_server::ChildServer::api_only(&app, &[("GEOIMPORT_LOG_FORMAT", "json")]).await;
    let resp = http_client()
        .post(format!("{}/api/v1/imports?api_key={}&filename=logged.csv", server.base, u.key))
        .header("x-request-id", "req-7f3a-logged")
        .body("a\n1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req-7f3a-logged");
    server.log.wait_for(&["req-7f3a-logged"], Duration::from_secs(10)).await;
    let lines = server.log.lines();
    for line in &lines {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok_and(|v| v.is_object()), "not a JSON object: {line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_secret_key_is_logged_as_one_every_machine_must_share() {
    logs::capture();
    let app = TestApp::start_with(|s| s.runtime.secret_key = None).await;
    let key_file = app.data_dir.join("secret.key").display().to_string();
    // The server starts in a task of its own: the key is made, then logged, soon after start returns.
    let start = Instant::now();
    let line = loop {
        if let Some(line) = logs::text().lines().find(|l| l.contains(&key_file)) {
            break line.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the generated key was never logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(line.contains("several machines must set the same"), "{line}");
    assert!(app.data_dir.join("secret.key").is_file());
}
