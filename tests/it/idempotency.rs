//! `Idempotency-Key` on `POST /api/v1/imports`: a retried request gets the import its first try made, a
//! key reused for another request is 422, and keys belong to one user for one day.

use crate::common::mysql::{TestMysql, server};
use crate::common::*;
use serde_json::{Value, json};
use uuid::Uuid;

async fn post_file(
    app: &TestApp,
    user: &TestUser,
    key: &str,
    name: &str,
    bytes: &[u8],
    query: &str,
) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string());
    app.client
        .post(app.url(&format!("/api/v1/imports/?api_key={}{query}", user.key)))
        .header("Idempotency-Key", key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

async fn id_of(resp: reqwest::Response) -> Uuid {
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["item_queue_id"].as_str().unwrap().parse().unwrap()
}

async fn imports_of(app: &TestApp, user: &TestUser) -> i64 {
    app.count(&format!("SELECT count(*) FROM geoimport.imports WHERE user_id = '{}'", user.id)).await
}

/// Job directories left in the staging area (uploads not yet taken, or not cleaned).
fn staged_job_dirs(app: &TestApp) -> Vec<String> {
    entries_of(&app.data_dir.join("staging"))
        .iter()
        .map(|e| e.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != ".incoming")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_upload_gets_its_first_import_and_makes_one_table() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let csv = b"a,b\n1,2\n";
    let first = id_of(post_file(&app, &u, "\"upload-1\"", "retried.csv", csv, "").await).await;
    let second = id_of(post_file(&app, &u, "\"upload-1\"", "retried.csv", csv, "").await).await;
    assert_eq!(first, second);
    assert_eq!(app.wait_final(&u, first).await["state"], "complete");
    assert_eq!(imports_of(&app, &u).await, 1);
    assert_eq!(app.tables_of("ana").await, ["retried"]);
    // The retry's own copy of the file was thrown away, and the first one once imported.
    assert_eq!(staged_job_dirs(&app), Vec::<String>::new());
    // A retry after completion still answers with the same import.
    assert_eq!(id_of(post_file(&app, &u, "upload-1", "retried.csv", csv, "").await).await, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_reused_for_another_request_is_422_and_keys_are_per_user() {
    let app = TestApp::start().await;
    let ana = app.create_user("ana").await;
    let bob = app.create_user("bob").await;
    let first = id_of(post_file(&app, &ana, "k", "a.csv", b"a\n1\n", "").await).await;
    for (bytes, query) in [(&b"a\n2\n"[..], ""), (&b"a\n1\n"[..], "&type_guessing=false")] {
        let resp = post_file(&app, &ana, "k", "a.csv", bytes, query).await;
        assert_eq!(resp.status(), 422);
        let body: Value = resp.json().await.unwrap();
        assert!(body["errors"].as_str().unwrap().contains("Idempotency-Key"), "{body}");
    }
    // Another file name is another request too.
    assert_eq!(post_file(&app, &ana, "k", "b.csv", b"a\n1\n", "").await.status(), 422);
    assert_eq!(imports_of(&app, &ana).await, 1);
    // Bob's "k" is not Ana's.
    let bobs = id_of(post_file(&app, &bob, "k", "a.csv", b"a\n2\n", "").await).await;
    assert_ne!(bobs, first);
    app.wait_final(&ana, first).await;
    app.wait_final(&bob, bobs).await;
    assert_eq!(staged_job_dirs(&app), Vec::<String>::new());
    // A malformed key is refused before anything is stored.
    assert_eq!(post_file(&app, &ana, "\"\"", "a.csv", b"a\n1\n", "").await.status(), 400);
    assert_eq!(imports_of(&app, &ana).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_requests_with_one_key_make_one_import() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let posts = (0..6).map(|_| post_file(&app, &u, "race", "raced.csv", b"a\n1\n", ""));
    let ids: Vec<Uuid> = futures_util::future::join_all(posts.map(|p| async { id_of(p.await).await })).await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(imports_of(&app, &u).await, 1);
    assert_eq!(app.wait_final(&u, ids[0]).await["state"], "complete");
    assert_eq!(app.tables_of("ana").await, ["raced"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_requests_replay_too_and_keys_expire_after_a_day() {
    let app = TestApp::start_with(|s| s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let u = app.create_user("ana").await;
    let post = |body: Value| {
        app.client
            .post(app.url(&format!("/api/v1/imports/?api_key={}", u.key)))
            .header("Idempotency-Key", "json-1")
            .json(&body)
            .send()
    };
    let body = json!({"url": "http://127.0.0.1:9/nothing.csv"});
    let first = id_of(post(body.clone()).await.unwrap()).await;
    assert_eq!(id_of(post(body.clone()).await.unwrap()).await, first);
    assert_eq!(post(json!({"url": "http://127.0.0.1:9/other.csv"})).await.unwrap().status(), 422);
    sqlx::query("UPDATE geoimport.idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let later = id_of(post(body).await.unwrap()).await;
    assert_ne!(later, first);
    assert_eq!(imports_of(&app, &u).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_upload_over_the_size_limit_answers_with_its_first_failure() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.set_limit(&u, "max_file_size", 10).await;
    let big = b"a,b\n1,2\n3,4\n5,6\n";
    let first = id_of(post_file(&app, &u, "too-big", "big.csv", big, "").await).await;
    assert_eq!(app.wait_final(&u, first).await["error_code"], 6666);
    assert_eq!(id_of(post_file(&app, &u, "too-big", "big.csv", big, "").await).await, first);
    assert_eq!(imports_of(&app, &u).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_connector_import_reads_the_source_once() {
    let db = TestMysql::create("CREATE TABLE t (id INT); INSERT INTO t VALUES (1), (2);").await;
    let app = TestApp::start_with(allow_local_connectors).await;
    let u = app.create_user("ana").await;
    let (host, port, username, password) = server();
    let body = json!({"connector": {"provider": "mysql", "table": "t",
        "connection": {"server": host, "port": port, "database": db.name, "username": username, "password": password}}});
    let post = || {
        app.client
            .post(app.url(&format!("/api/v1/imports/?api_key={}", u.key)))
            .header("Idempotency-Key", "connector-1")
            .json(&body)
            .send()
    };
    let first = id_of(post().await.unwrap()).await;
    assert_eq!(id_of(post().await.unwrap()).await, first);
    assert_eq!(app.wait_final(&u, first).await["state"], "complete");
    assert_eq!(imports_of(&app, &u).await, 1);
    assert_eq!(app.tables_of("ana").await.len(), 1);
}
