//! The server under attack, as the security review of 2026-11 describes it (findings 3, 6, 8, 15, 18): each
//! test is one hostile client, what it gets back, and what it cost the server. Attacks whose cost is memory
//! run the server as a child process, so that its VmHWM measures the server alone.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn a_metrics_token_is_compared_exactly_not_after_trimming() {
    let app = TestApp::start_with(|s| s.runtime.metrics_token = Some("s3cret".into())).await;
    let scrape = |authorization: &str| {
        app.client.get(app.url("/metrics")).header("Authorization", authorization.to_string()).send()
    };
    assert_eq!(scrape("Bearer s3cret").await.unwrap().status(), 200, "the right token opens the metrics");
    for wrong in ["Bearer  s3cret", "Bearer \ts3cret", "Bearer s3cre", "Bearer s3cretX", "Bearer ", "s3cret"] {
        let resp = scrape(wrong).await.unwrap();
        assert_eq!(resp.status(), 401, "{wrong:?} must not open the metrics");
    }
}

#[tokio::test]
async fn a_401_does_not_invite_a_browser_to_ask_for_basic_credentials() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    let resp = app.client.get(app.url("/api/v1/imports")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_none(), "a Basic challenge makes browsers cache credentials");
    assert!(resp.json::<Value>().await.unwrap()["errors"].is_string());
    // Basic itself is still accepted, for clients that send it unasked.
    let resp = app.client.get(app.url("/api/v1/imports")).basic_auth("alice", Some(&alice.key)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_cross_site_form_post_riding_on_browser_credentials_is_refused() {
    let app = TestApp::start().await;
    let alice = app.create_user("alice").await;
    let own_origin = app.base.clone();
    let form = || {
        reqwest::multipart::Form::new()
            .text("collision_strategy", "overwrite")
            .part("file", reqwest::multipart::Part::bytes(b"a,b\n1,2\n".to_vec()).file_name("victim.csv"))
    };
    let post = |path: &str, headers: &[(&str, &str)]| {
        let mut request = app.client.post(app.url(path)).basic_auth("alice", Some(&alice.key)).multipart(form());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };

    // What a browser sends for an attacker's auto-submitted form, at every prefix the API answers under.
    let attacks: [(&str, &[(&str, &str)]); 6] = [
        ("/api/v1/imports", &[("Origin", "https://evil.example")]),
        ("/user/alice/api/v1/imports", &[("Origin", "https://evil.example")]),
        ("/u/alice/api/v1/imports/", &[("Origin", "null")]),
        ("/api/v1/imports", &[("Sec-Fetch-Site", "cross-site")]),
        ("/api/v1/synchronizations", &[("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site")]),
        // the same host name on another port is another origin
        ("/api/v1/imports", &[("Origin", "http://127.0.0.1:1")]),
    ];
    for (path, headers) in attacks {
        let resp = post(path, headers).await.unwrap();
        assert_eq!(resp.status(), 403, "{path} {headers:?}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["errors"].as_str().is_some_and(|e| e.contains("another site")), "{body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 0, "a refused request queued an import");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.synchronizations").await, 0);

    // The API's own pages, and clients that send neither header (curl, SDKs), go through.
    let same_site =
        post("/api/v1/imports", &[("Origin", &own_origin), ("Sec-Fetch-Site", "same-origin")]).await.unwrap();
    assert_eq!(same_site.status(), 200, "{}", same_site.text().await.unwrap());
    let curl = post("/api/v1/imports", &[]).await.unwrap();
    assert_eq!(curl.status(), 200);
    // Reading is not a state change: a cross-site GET is answered (the browser keeps the answer from the page).
    let read = app
        .client
        .get(app.url("/api/v1/imports"))
        .basic_auth("alice", Some(&alice.key))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 2);
}
