//! Sync tables: a URL re-imported on schedule, its table replaced in place (name, grants and added indexes
//! kept, readers never disturbed), nothing imported when the source is unchanged, failures counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::fixture::{Fixture, SAMPLE_CSV};
use crate::common::*;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

async fn app() -> TestApp {
    TestApp::start_with(|s| s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()]).await
}

pub(crate) async fn create_sync(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/synchronizations?api_key={}", user.key)))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn get_sync(app: &TestApp, user: &TestUser, id: &str) -> (u16, Value) {
    let resp =
        app.client.get(app.url(&format!("/api/v1/synchronizations/{id}?api_key={}", user.key))).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// `PUT .../sync_now` (as the reference's clients send it, with an empty body); its answer.
async fn sync_now(app: &TestApp, user: &TestUser, id: &str) -> Value {
    app.client
        .put(app.url(&format!("/api/v1/synchronizations/{id}/sync_now?api_key={}", user.key)))
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Creates a synchronization of /sync.csv and waits for its first run; returns (sync id, first import id).
async fn synced(app: &TestApp, user: &TestUser, fx: &Fixture) -> (String, String) {
    let created: Value = create_sync(app, user, json!({"url": fx.url("/sync.csv")})).await.json().await.unwrap();
    let first = created["data_import"]["item_queue_id"].as_str().unwrap().to_string();
    app.wait_final(user, first.parse().unwrap()).await;
    (created["id"].as_str().unwrap().to_string(), first)
}

/// Makes the synchronization due now and waits until a run newer than `after` has finished.
pub(crate) async fn run_again(app: &TestApp, user: &TestUser, sync_id: &str, after: &str) -> Value {
    sqlx::query("UPDATE geoimport.synchronizations SET run_at = now() WHERE id = $1")
        .bind(Uuid::parse_str(sync_id).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    run_finished(app, user, sync_id, after).await
}

/// Waits until a run newer than `after` has finished; returns its import's status.
async fn run_finished(app: &TestApp, user: &TestUser, sync_id: &str, after: &str) -> Value {
    let start = Instant::now();
    loop {
        let (_, sync) = get_sync(app, user, sync_id).await;
        let log = sync["log_id"].as_str().unwrap_or("").to_string();
        if log != after && matches!(sync["state"].as_str(), Some("success" | "failure")) {
            return app.wait_final(user, log.parse().unwrap()).await;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the synchronization never ran again: {sync}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_imports_now_then_again_when_the_file_changes() {
    let fx = Fixture::start().await;
    let app = app().await;
    let u = app.create_user("ana").await;
    let resp = create_sync(&app, &u, json!({"url": fx.url("/sync.csv"), "interval": 3600})).await;
    assert_eq!(resp.status(), 200);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["data_import"]["endpoint"], "/api/v1/imports");
    assert_eq!(created["interval"], 3600);
    assert_eq!(created["state"], "queued");
    assert_eq!(created["url"], fx.url("/sync.csv"));
    for field in [
        "id",
        "name",
        "created_at",
        "updated_at",
        "run_at",
        "retried_times",
        "log_id",
        "error_code",
        "error_message",
        "ran_at",
        "modified_at",
        "etag",
        "checksum",
        "user_id",
        "service_name",
        "service_item_id",
        "type_guessing",
        "quoted_fields_guessing",
        "content_guessing",
        "visualization_id",
        "from_external_source",
    ] {
        assert!(created.get(field).is_some(), "missing {field}: {created}");
    }
    let sync_id = created["id"].as_str().unwrap().to_string();
    let first: Uuid = created["data_import"]["item_queue_id"].as_str().unwrap().parse().unwrap();
    let status = app.wait_final(&u, first).await;
    assert_eq!(status["state"], "complete", "{status}");
    assert_eq!(status["synchronization_id"], sync_id);
    assert_eq!(status["table_name"], "sync");
    let (_, sync) = get_sync(&app, &u, &sync_id).await;
    assert_eq!(sync["state"], "success");
    assert_eq!(sync["etag"], "\"v1\"");
    assert_eq!(sync["table_names"], json!(["sync"]));

    // What users attach to the table must survive the swap, and so must an owner an operator gave it.
    sqlx::query("GRANT SELECT ON ana.sync TO PUBLIC").execute(&app.pool).await.unwrap();
    sqlx::query("CREATE INDEX sync_name_idx ON ana.sync (name)").execute(&app.pool).await.unwrap();
    let owner = format!("gi_owner_{}", Uuid::new_v4().simple());
    let app_role: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE schemaname = 'ana' AND tablename = 'sync'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    // Roles are the cluster's: made and dropped by the tests' admin.
    let mut admin = sqlx::PgConnection::connect(&url_for(&app.db.name)).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {owner}; GRANT {owner} TO {app_role}; GRANT USAGE, CREATE ON SCHEMA ana TO {owner}; \
         ALTER TABLE ana.sync OWNER TO {owner}"
    )))
    .execute(&mut admin)
    .await
    .unwrap();

    fx.set_sync("\"v2\"", "name,lat,lon\nFour,1,1\nFive,2,2\nSix,3,3\nSeven,4,4\n");
    let status = run_again(&app, &u, &sync_id, &first.to_string()).await;
    assert_eq!(status["state"], "complete", "{status}");
    assert_eq!(status["table_name"], "sync");
    assert_eq!(app.tables_of("ana").await, ["sync"]);
    assert_eq!(app.count("SELECT count(*) FROM ana.sync").await, 4);
    let public = app.count("SELECT count(*) FROM information_schema.role_table_grants WHERE table_schema = 'ana' AND table_name = 'sync' AND grantee = 'PUBLIC' AND privilege_type = 'SELECT'").await;
    assert_eq!(public, 1, "the grant was lost");
    assert_eq!(
        app.count("SELECT count(*) FROM pg_indexes WHERE schemaname = 'ana' AND indexname = 'sync_name_idx'").await,
        1
    );
    let kept_owner: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE schemaname = 'ana' AND tablename = 'sync'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    // Give the table back and drop the role before asserting, so that a failure leaves nothing behind.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE ana.sync OWNER TO {app_role}; REVOKE ALL ON SCHEMA ana FROM {owner}; DROP ROLE {owner}"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    assert_eq!(kept_owner, owner, "the owner was lost");
    let (_, sync) = get_sync(&app, &u, &sync_id).await;
    assert_eq!(sync["etag"], "\"v2\"");
    assert_eq!(sync["retried_times"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_source_imports_nothing_and_the_sync_stays_a_success() {
    let fx = Fixture::start().await;
    let app = app().await;
    let u = app.create_user("ana").await;
    let (sync_id, first) = synced(&app, &u, &fx).await;
    // a row only the old table has: if the table were replaced it would vanish
    sqlx::query("INSERT INTO ana.sync (name) VALUES ('marker')").execute(&app.pool).await.unwrap();
    let status = run_again(&app, &u, &sync_id, &first).await;
    assert_eq!(status["state"], "complete", "{status}");
    assert_eq!(status["warnings"]["source_unchanged"], true);
    assert_eq!(status["tables_created_count"], 0);
    assert_eq!(app.count("SELECT count(*) FROM ana.sync WHERE name = 'marker'").await, 1);
    let (hits, conditional) = fx.sync_hits();
    assert_eq!((hits, conditional), (2, 1), "the second download must be conditional");
    let (_, sync) = get_sync(&app, &u, &sync_id).await;
    assert_eq!(sync["state"], "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_with_only_a_date_is_asked_if_modified_since() {
    let fx = Fixture::start().await;
    fx.set_sync_dated("Tue, 01 Oct 2024 10:00:00 GMT", SAMPLE_CSV);
    let app = app().await;
    let u = app.create_user("ana").await;
    let (sync_id, first) = synced(&app, &u, &fx).await;
    let (_, sync) = get_sync(&app, &u, &sync_id).await;
    assert!(sync["modified_at"].as_str().is_some_and(|d| d.starts_with("2024-10-01")), "{sync}");
    let status = run_again(&app, &u, &sync_id, &first).await;
    assert_eq!(status["warnings"]["source_unchanged"], true, "{status:#}");
    assert_eq!(fx.sync_hits(), (2, 1), "the second download must be conditional");
    // A newer date is a new file.
    fx.set_sync_dated("Wed, 02 Oct 2024 10:00:00 GMT", &format!("{SAMPLE_CSV}Four,40.4,-3.4\n"));
    let status = run_again(&app, &u, &sync_id, status["id"].as_str().unwrap()).await;
    assert_eq!((status["state"].as_str(), status["rows_imported"].as_i64()), (Some("complete"), Some(4)), "{status:#}");
    assert_eq!(app.count("SELECT count(*) FROM ana.sync").await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_never_see_the_table_missing_while_it_is_replaced() {
    let fx = Fixture::start().await;
    let app = app().await;
    let u = app.create_user("ana").await;
    let (sync_id, first) = synced(&app, &u, &fx).await;

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (pool, stop, reads) = (app.pool.clone(), stop.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            // The last read starts after the stop: after the run completed.
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ana.sync")
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                seen.push(n);
                reads.fetch_add(1, Ordering::Relaxed);
                if stopping {
                    break;
                }
            }
            Ok::<Vec<i64>, String>(seen)
        }));
    }
    let mut body = String::from("name,lat,lon\n");
    for i in 0..20_000 {
        body.push_str(&format!("p{i},{},{}\n", i % 80, i % 170));
    }
    fx.set_sync("\"big\"", &body);
    let status = run_again(&app, &u, &sync_id, &first).await;
    assert_eq!(status["state"], "complete");
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let seen = r.await.unwrap().expect("a reader failed during the swap");
        assert!(seen.iter().all(|n| *n == 3 || *n == 20_000), "a reader saw a half-loaded table: {seen:?}");
        assert_eq!(*seen.last().unwrap(), 20_000);
    }
    assert!(reads.load(Ordering::Relaxed) > 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_runs_are_counted_and_a_success_clears_the_error() {
    let fx = Fixture::start().await;
    let app = app().await;
    let u = app.create_user("ana").await;
    let (sync_id, mut last) = synced(&app, &u, &fx).await;
    fx.fail_sync(404);
    for attempt in 1..=2 {
        let status = run_again(&app, &u, &sync_id, &last).await;
        last = status["id"].as_str().unwrap().to_string();
        assert_eq!(status["error_code"], 1100);
        let (_, sync) = get_sync(&app, &u, &sync_id).await;
        assert_eq!(sync["state"], "failure");
        assert_eq!(sync["error_code"], 1100);
        assert_eq!(sync["retried_times"], attempt);
        assert!(sync["error_message"].as_str().unwrap().starts_with("Download file not found"));
    }
    assert_eq!(app.tables_of("ana").await, ["sync"], "a failed run leaves the table as it was");
    fx.set_sync("\"v3\"", SAMPLE_CSV);
    let last = run_again(&app, &u, &sync_id, &last).await["id"].as_str().unwrap().to_string();
    let (_, sync) = get_sync(&app, &u, &sync_id).await;
    assert_eq!(sync["state"], "success");
    assert!(sync["error_code"].is_null() && sync["error_message"].is_null());
    assert_eq!(sync["retried_times"], 0);

    // After ten failures in a row the scheduler gives up: asked directly, it finds nothing due.
    let sync_uuid = Uuid::parse_str(&sync_id).unwrap();
    fx.fail_sync(404);
    let failed = run_again(&app, &u, &sync_id, &last).await;
    assert_eq!(failed["error_code"], 1100, "{failed:#}");
    let last_failed = failed["id"].as_str().unwrap().to_string();
    sqlx::query(
        "UPDATE geoimport.synchronizations SET retried_times = 10, run_at = now(), \
         ran_at = now() - interval '1 hour' WHERE id = $1",
    )
    .bind(sync_uuid)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(geoimport::sync::queue_due(&app.pool, 100).await.unwrap(), 0, "a sync past its retries was due");
    // Nor did the workers' scheduler queue it: FOR UPDATE waits for a claim in flight to commit.
    let log: Option<Uuid> =
        sqlx::query_scalar("SELECT log_id FROM geoimport.synchronizations WHERE id = $1 FOR UPDATE")
            .bind(sync_uuid)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(log.map(|l| l.to_string()), Some(last_failed.clone()), "a sync past its retries ran again");
    // A manual run still goes, and its success starts the count again.
    fx.set_sync("\"v4\"", SAMPLE_CSV);
    let answer = sync_now(&app, &u, &sync_id).await;
    assert_eq!(answer["enqueued"], true, "{answer}");
    let status = run_finished(&app, &u, &sync_id, &last_failed).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    let (_, sync) = get_sync(&app, &u, &sync_id).await;
    assert_eq!((sync["state"].as_str(), sync["retried_times"].as_i64()), (Some("success"), Some(0)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sync_tables_api_lists_updates_runs_and_deletes() {
    let fx = Fixture::start().await;
    let app = app().await;
    let u = app.create_user("ana").await;
    let other = app.create_user("bob").await;
    let resp = create_sync(&app, &u, json!({"url": fx.url("/sync.csv"), "interval": 600})).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["errors"].as_str().unwrap().contains("interval"));
    let resp = create_sync(&app, &other, json!({"url": "http://10.1.1.1/x.csv"})).await;
    assert_eq!(resp.status(), 400);

    let created: Value = create_sync(&app, &u, json!({"url": fx.url("/sync.csv"), "table_name": "My Places"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["interval"], 3600);
    assert_eq!(created["name"], "My Places");
    let status = app.wait_final(&u, created["data_import"]["item_queue_id"].as_str().unwrap().parse().unwrap()).await;
    assert_eq!(status["table_name"], "my_places");

    let list = app.get_json(&u, "/api/v1/synchronizations").await;
    assert_eq!(list["total_entries"], 1);
    assert_eq!(list["synchronizations"][0]["id"], id);
    assert_eq!(get_sync(&app, &other, &id).await.0, 404, "another user's synchronization is not found");

    let put = |body: Value| {
        app.client.put(app.url(&format!("/api/v1/synchronizations/{id}?api_key={}", u.key))).json(&body).send()
    };
    let updated: Value = put(json!({"interval": 7200})).await.unwrap().json().await.unwrap();
    assert_eq!(updated["interval"], 7200);
    // The next run moved: an interval after the last one.
    let gap: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM run_at - coalesce(ran_at, created_at))::float8 FROM geoimport.synchronizations \
         WHERE id = $1",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(gap, 7200.0);
    assert_eq!(put(json!({"interval": 60})).await.unwrap().status(), 400);
    let updated: Value =
        put(json!({"type_guessing": false, "quoted_fields_guessing": false, "content_guessing": true}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        (&updated["type_guessing"], &updated["quoted_fields_guessing"], &updated["content_guessing"]),
        (&json!(false), &json!(false), &json!(true)),
        "{updated}"
    );
    assert_eq!(updated["interval"], 7200, "a change of other fields keeps the interval");

    // a manual run: refused within 15 minutes of the last one, accepted after
    let answer = sync_now(&app, &u, &id).await;
    assert_eq!(answer, json!({"enqueued": false, "synchronization_id": id}));
    sqlx::query("UPDATE geoimport.synchronizations SET ran_at = now() - interval '1 hour' WHERE id = $1")
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let answer = sync_now(&app, &u, &id).await;
    assert_eq!(answer["enqueued"], true);
    let state = app.get_json(&u, &format!("/api/v1/synchronizations/{id}/sync_now")).await;
    assert!(matches!(state["state"].as_str(), Some("queued" | "syncing" | "success")), "{state}");
    // let the manual run finish before deleting, so it cannot publish after the synchronization is gone
    let run = get_sync(&app, &u, &id).await.1["log_id"].as_str().unwrap().parse().unwrap();
    app.wait_final(&u, run).await;

    let deleted =
        app.client.delete(app.url(&format!("/api/v1/synchronizations/{id}?api_key={}", u.key))).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(get_sync(&app, &u, &id).await.0, 404);
    assert_eq!(app.tables_of("ana").await, ["my_places"], "deleting a synchronization keeps its table");
}

#[tokio::test(flavor = "multi_thread")]
async fn many_schedulers_queue_each_due_run_once() {
    let fx = Fixture::start().await;
    let app = app().await;
    let second = app.spawn_workers(|_| {});
    let u = app.create_user("ana").await;
    app.set_limit(&u, "max_concurrent_imports", 50).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let created: Value =
            create_sync(&app, &u, json!({"url": fx.url(&format!("/sync.csv?n={i}"))})).await.json().await.unwrap();
        app.wait_final(&u, created["data_import"]["item_queue_id"].as_str().unwrap().parse().unwrap()).await;
        ids.push(Uuid::parse_str(created["id"].as_str().unwrap()).unwrap());
    }
    sqlx::query("UPDATE geoimport.synchronizations SET run_at = now()").execute(&app.pool).await.unwrap();
    let start = Instant::now();
    while app.count("SELECT count(*) FROM geoimport.imports WHERE state NOT IN ('complete', 'failure')").await > 0
        || app.count("SELECT count(*) FROM geoimport.imports").await < 10
    {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing is due any more (each claim moved its run an interval on), and no claim is still in flight:
    // FOR UPDATE waits for one to commit.
    assert_eq!(geoimport::sync::queue_due(&app.pool, 100).await.unwrap(), 0);
    sqlx::query("SELECT id FROM geoimport.synchronizations FOR UPDATE").fetch_all(&app.pool).await.unwrap();
    for id in ids {
        let runs =
            app.count(&format!("SELECT count(*) FROM geoimport.imports WHERE synchronization_id = '{id}'")).await;
        assert_eq!(runs, 2, "synchronization {id} ran {runs} times");
    }
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_may_come_in_the_body_and_a_waiting_run_is_never_doubled() {
    let fx = Fixture::start().await;
    // no workers: the first run stays queued
    let app = TestApp::start_with(|s| {
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        s.runtime.workers = 0;
    })
    .await;
    let u = app.create_user("ana").await;
    let resp = app
        .client
        .post(app.url("/api/v1/synchronizations"))
        .json(&json!({"url": fx.url("/sync.csv"), "api_key": u.key}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    // queued for over 15 minutes, and its last run long ago, but that run has not finished
    sqlx::query(
        "UPDATE geoimport.synchronizations SET updated_at = now() - interval '1 hour', ran_at = now() - interval '2 hours' \
         WHERE id = $1",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    let answer = sync_now(&app, &u, &id).await;
    assert_eq!(answer["enqueued"], false);
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_first_run_shows_failure_and_another_users_sync_is_not_found() {
    let fx = Fixture::start().await;
    fx.fail_sync(404);
    let app = app().await;
    let u = app.create_user("ana").await;
    let bob = app.create_user("bob").await;
    let created: Value = create_sync(&app, &u, json!({"url": fx.url("/sync.csv")})).await.json().await.unwrap();
    let sync_id = created["id"].as_str().unwrap().to_string();
    let first: Uuid = created["data_import"]["item_queue_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.wait_final(&u, first).await["error_code"], 1100);
    let (_, sync) = get_sync(&app, &u, &sync_id).await;
    assert_eq!((sync["state"].as_str(), sync["error_code"].as_i64()), (Some("failure"), Some(1100)), "{sync}");
    assert_eq!(sync["retried_times"], 1);
    assert!(app.tables_of("ana").await.is_empty());
    // Bob can neither read, change, run nor delete it, and learns nothing of it: 404 every time.
    let path = format!("/api/v1/synchronizations/{sync_id}");
    let asks = [
        app.client.get(app.url(&format!("{path}?api_key={}", bob.key))),
        app.client.put(app.url(&format!("{path}?api_key={}", bob.key))).json(&json!({"interval": 7200})),
        app.client.put(app.url(&format!("{path}/sync_now?api_key={}", bob.key))),
        app.client.delete(app.url(&format!("{path}?api_key={}", bob.key))),
    ];
    for ask in asks {
        assert_eq!(ask.send().await.unwrap().status(), 404);
    }
    let (code, sync) = get_sync(&app, &u, &sync_id).await;
    assert_eq!((code, sync["interval"].as_i64()), (200, Some(3600)), "bob's change was applied: {sync}");
    // The routes answer under the user's prefix too.
    let listed =
        app.client.get(app.url(&format!("/user/ana/api/v1/synchronizations/?api_key={}", u.key))).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["synchronizations"][0]["id"], sync_id.as_str(), "{listed}");
    // And with a trailing slash everywhere, as CARTO's SDK writes them.
    let one = app.client.get(app.url(&format!("/user/ana/api/v1/synchronizations/{sync_id}/?api_key={}", u.key)));
    assert_eq!(one.send().await.unwrap().status(), 200);
    let created = app
        .client
        .post(app.url("/user/ana/api/v1/synchronizations/"))
        .json(&json!({"url": fx.url("/sync.csv"), "interval": 3600, "api_key": u.key}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
}
