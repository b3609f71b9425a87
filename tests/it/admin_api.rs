//! `/api/v1/admin/users…`: absent without GEOIMPORT_ADMIN_TOKEN, opened only by that bearer token (never by
//! a user's key, never under `/user/<name>/`), and every operation of `geoimport user` over HTTP.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "an-admin-token-of-the-tests";

async fn call(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let resp = request.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_is_absent_without_its_token_and_opened_only_by_it() {
    let closed = TestApp::start_with(|s| s.runtime.workers = 0).await;
    assert_eq!(call(&closed, Method::GET, "/api/v1/admin/users", Some(TOKEN), None).await.0, 404);

    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.admin_token = Some(TOKEN.into());
    })
    .await;
    let u = app.create_user("ana").await;
    for (token, expected) in [(None, 401), (Some("wrong"), 401), (Some(u.key.as_str()), 401), (Some(TOKEN), 200)] {
        assert_eq!(call(&app, Method::GET, "/api/v1/admin/users", token, None).await.0, expected, "{token:?}");
    }
    // A user's key in the query opens nothing, and the routes do not exist under the per-user prefixes.
    let path = format!("/api/v1/admin/users?api_key={}", u.key);
    assert_eq!(call(&app, Method::GET, &path, None, None).await.0, 401);
    assert_eq!(call(&app, Method::GET, "/user/ana/api/v1/admin/users", Some(TOKEN), None).await.0, 404);
    let doc = app.get_json(&u, "/api/v1/openapi.json").await;
    for path in ["/api/v1/admin/users", "/api/v1/admin/users/{name}", "/api/v1/admin/users/{name}/rotate-key"] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_account_operation_works_over_http() {
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.admin_token = Some(TOKEN.into());
    })
    .await;
    let admin = |method: Method, path: &str, body: Option<Value>| {
        let path = path.to_string();
        let app = &app;
        async move { call(app, method, &path, Some(TOKEN), body).await }
    };
    let (status, created) =
        admin(Method::POST, "/api/v1/admin/users", Some(json!({"username": "bea", "table_quota": 5}))).await;
    assert_eq!(status, 200, "{created}");
    let key = created["api_key"].as_str().unwrap().to_string();
    assert_eq!(admin(Method::POST, "/api/v1/admin/users", Some(json!({"username": "bea"}))).await.0, 409);
    assert_eq!(admin(Method::POST, "/api/v1/admin/users", Some(json!({"username": "Not Valid"}))).await.0, 400);
    let bea = TestUser { id: created["id"].as_str().unwrap().parse().unwrap(), name: "bea".into(), key };
    app.import(&bea, "queued.csv", "a,b\n1,2\n", "").await;

    let (status, shown) = admin(Method::GET, "/api/v1/admin/users/bea", None).await;
    assert_eq!(
        (status, shown["limits"]["table_quota"].as_i64(), shown["unfinished_imports"].as_i64()),
        (200, Some(5), Some(1))
    );
    assert_eq!(admin(Method::GET, "/api/v1/admin/users/nobody", None).await.0, 404);
    // PATCH: absent fields stay, null lifts a limit.
    let (status, patched) =
        admin(Method::PATCH, "/api/v1/admin/users/bea", Some(json!({"max_file_size": 1234, "table_quota": null})))
            .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["limits"]["max_file_size"].as_i64(), patched["limits"]["table_quota"].is_null()),
        (Some(1234), true)
    );

    let (_, rotated) = admin(Method::POST, "/api/v1/admin/users/bea/rotate-key", None).await;
    let new_key = rotated["api_key"].as_str().unwrap();
    let works = |key: String| {
        let app = &app;
        async move {
            app.client.get(app.url(&format!("/api/v1/imports?api_key={key}"))).send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!((works(bea.key.clone()).await, works(new_key.into()).await), (401, 200));
    let (status, issued) = admin(Method::POST, "/api/v1/admin/users/bea/keys", Some(json!({"label": "ci"}))).await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(works(issued["api_key"].as_str().unwrap().into()).await, 200);
    assert_eq!(admin(Method::DELETE, "/api/v1/admin/users/bea/keys/ci", None).await.0, 200);
    assert_eq!(works(issued["api_key"].as_str().unwrap().into()).await, 401);
    assert_eq!(admin(Method::DELETE, "/api/v1/admin/users/bea/keys/ci", None).await.0, 404);

    let (_, disabled) = admin(Method::POST, "/api/v1/admin/users/bea/disable", None).await;
    assert!(disabled["disabled_at"].is_string() && disabled["unfinished_imports"] == 0, "{disabled:#}");
    assert_eq!(works(new_key.into()).await, 401);
    admin(Method::POST, "/api/v1/admin/users/bea/enable", None).await;
    assert_eq!(works(new_key.into()).await, 200);

    // Deleting waits for running imports unless forced.
    let renewed = TestUser { id: bea.id, name: "bea".into(), key: new_key.into() };
    app.import(&renewed, "queued.csv", "a,b\n1,2\n", "").await;
    assert_eq!(admin(Method::DELETE, "/api/v1/admin/users/bea", None).await.0, 409);
    let (status, deleted) = admin(Method::DELETE, "/api/v1/admin/users/bea?force=true&drop_tables=true", None).await;
    assert_eq!((status, deleted["imports_stopped"].as_u64()), (200, Some(1)), "{deleted}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.users WHERE username = 'bea'").await, 0);
    let (_, listed) = admin(Method::GET, "/api/v1/admin/users", None).await;
    assert_eq!(listed, json!([]));
}
