//! Threat: one user fills the queue to starve everyone else, or the queue's own races (a worker that lost
//! its job, a cancel at the wrong moment) damage another import; a stopped job keeps the database busy.

use std::time::{Duration, Instant};

use crate::common::*;
use uuid::Uuid;

/// When the worker took the import, as seconds after it was queued.
async fn wait_to_start(app: &TestApp, id: Uuid) -> f64 {
    let start = Instant::now();
    loop {
        let waited: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM started_at - created_at)::float8 FROM geoimport.imports WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if let Some(w) = waited {
            return w;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "import {id} never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_users_small_import_starts_at_once_behind_dozens_of_anothers() {
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 4;
        // Every import holds its worker for a long while, as big ones do.
        s.runtime.hooks.hold_before_publish_ms = 20_000;
    })
    .await;
    let greedy = app.create_user("greedy").await;
    // An operator gave this user more than the workers a process has.
    app.set_limit(&greedy, "max_concurrent_imports", 50).await;
    let mut queued = Vec::new();
    for i in 0..24 {
        queued.push(app.import(&greedy, &format!("big_{i}.csv"), "a\n1\n", "").await);
    }
    let greedy_started = || {
        app.count(
            "SELECT count(*) FROM geoimport.imports WHERE user_id = (SELECT id FROM geoimport.users \
             WHERE username = 'greedy') AND started_at IS NOT NULL",
        )
    };
    let start = Instant::now();
    while greedy_started().await < 3 {
        assert!(start.elapsed() < Duration::from_secs(30), "the greedy user's imports did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let other = app.create_user("other").await;
    let small = app.import(&other, "small.csv", "name\nx\n", "").await;
    let waited = wait_to_start(&app, small).await;
    assert!(waited < 2.0, "the second user's import waited {waited:.1} s for a worker");
    assert_eq!(greedy_started().await, 3, "the greedy user holds all the slots but one");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_one_worker_users_take_turns() {
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 1;
        s.runtime.hooks.hold_before_publish_ms = 700;
    })
    .await;
    let a = app.create_user("ana").await;
    let b = app.create_user("bob").await;
    let mut ana = Vec::new();
    for i in 0..6 {
        ana.push(app.import(&a, &format!("a_{i}.csv"), "x\n1\n", "").await);
    }
    wait_for_state(&app.pool, ana[0], &["importing"], Duration::from_secs(30)).await;
    let bob = app.import(&b, "b.csv", "x\n1\n", "").await;
    let status = app.wait_final(&b, bob).await;
    assert_eq!(status["state"], "complete");
    // Bob's import ran right after the one running when it came, not after all of Ana's.
    let done_before_bob = app
        .count(&format!(
            "SELECT count(*) FROM geoimport.imports WHERE user_id = '{}' AND state = 'complete' AND finished_at < \
             (SELECT finished_at FROM geoimport.imports WHERE id = '{bob}')",
            a.id
        ))
        .await;
    assert!(done_before_bob <= 2, "{done_before_bob} of Ana's imports went first");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_attempt_that_fails_leaves_the_new_attempts_tables_alone() {
    logs::capture();
    let app = TestApp::start_with(|s| {
        s.runtime.lease_secs = 60;
        s.runtime.hooks.hold_before_publish_ms = 2_500;
        s.runtime.hooks.fail_after_hold = true;
    })
    .await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "taken.csv", "a\n1\n", "").await;
    wait_for_state(&app.pool, id, &["importing"], Duration::from_secs(30)).await;
    while app.staging_tables().await.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Meanwhile the job was reclaimed and another worker's attempt 2 is loading.
    sqlx::query("UPDATE geoimport.imports SET attempts = 2, lease_owner = 'other-worker/claim' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let theirs = format!("j_{}_2_0", id.simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE geoimport_staging.\"{theirs}\" (x int)")))
        .execute(&app.pool)
        .await
        .unwrap();
    // The stale attempt fails after its hold, and says it was no longer its job once it has cleaned up;
    // the new attempt's table and the job row are untouched.
    let ended = format!("id={id}");
    let start = Instant::now();
    while !logs::text().lines().any(|l| l.contains(&ended) && l.contains("no longer ours")) {
        assert!(start.elapsed() < Duration::from_secs(30), "the stale attempt never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.staging_tables().await, [theirs]);
    let (state, attempts, owner) = app.job_row(id).await;
    assert_eq!((state.as_str(), attempts, owner.as_deref()), ("importing", 2, Some("other-worker/claim")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_run_cancelled_before_it_starts_is_not_left_syncing() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let sync_id = Uuid::now_v7();
    let job = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO geoimport.synchronizations (id, user_id, interval_secs, url, state) \
         VALUES ($1, $2, 3600, 'http://example.com/a.csv', 'queued')",
    )
    .bind(sync_id)
    .bind(u.id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO geoimport.imports (id, user_id, data_type, synchronization_id, state, lease_owner) \
         VALUES ($1, $2, 'url', $3, 'uploading', 'w/claim')",
    )
    .bind(job)
    .bind(u.id)
    .bind(sync_id)
    .execute(&app.pool)
    .await
    .unwrap();
    // The owner cancels between the claim and the run's start...
    let resp = app.client.post(app.url(&format!("/api/v1/imports/{job}/cancel?api_key={}", u.key))).send().await;
    assert_eq!(resp.unwrap().status(), 200);
    // ...then the worker starts the run.
    geoimport::queue::mark_syncing(&app.pool, sync_id, job, "w/claim").await.unwrap();
    let state = app.texts(&format!("SELECT state FROM geoimport.synchronizations WHERE id = '{sync_id}'")).await;
    assert_eq!(state, [Some("failure".to_string())]);
}

/// A CSV of self-intersecting polygons: repairing them keeps the database busy for seconds.
fn bowties(n: usize) -> String {
    let mut csv = String::from("id,wkt\n");
    for i in 0..n {
        let x = (i % 300) as f64 * 0.01;
        let y = (i / 300) as f64 * 0.01;
        csv.push_str(&format!(
            "{i},\"POLYGON(({x} {y},{x1} {y1},{x1} {y},{x} {y1},{x} {y}))\"\n",
            x1 = x + 0.005,
            y1 = y + 0.005
        ));
    }
    csv
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_import_stops_its_statements_in_the_database() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "bowties.csv", bowties(300_000), "").await;
    // The prefix is spelled in pieces: a cancel ends every session whose statement names the job's tables,
    // and this query, on the same pool, would otherwise be one of them.
    let busy = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'UPDATE%' \
         AND strpos(query, 'j_' || '{}' || '_') > 0",
        id.simple()
    );
    let start = Instant::now();
    while app.count(&busy).await == 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "the repair never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = app.client.post(app.url(&format!("/api/v1/imports/{id}/cancel?api_key={}", u.key))).send().await;
    assert_eq!(resp.unwrap().status(), 200);
    let cancelled = Instant::now();
    while app.count(&busy).await > 0 {
        assert!(cancelled.elapsed() < Duration::from_secs(2), "the repair still runs after the cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    while !app.staging_tables().await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the staging table stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
