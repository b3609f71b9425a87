//! URL imports: a file downloaded by the workers becomes a table like an upload, every download failure
//! has the reference's code, and private addresses stay out of reach unless allowed.

use crate::common::fixture::Fixture;
use crate::common::*;
use std::time::{Duration, Instant};

async fn app_allowing_localhost() -> TestApp {
    TestApp::start_with(|s| {
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        s.runtime.download_timeout_secs = 3;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_becomes_a_table_named_after_the_file() {
    let fx = Fixture::start().await;
    let app = app_allowing_localhost().await;
    let u = app.create_user("ana").await;
    let url = fx.url("/data/sample.csv");
    let status = app.import_url(&u, &url).await;
    assert_eq!(status["state"], "complete", "{status}");
    assert_eq!(status["table_name"], "sample");
    assert_eq!(status["data_type"], "url");
    assert_eq!(status["original_url"], url);
    assert_eq!(status["display_name"], "sample.csv");
    assert_eq!(app.count("SELECT count(*) FROM ana.sample WHERE GeometryType(the_geom) = 'POINT'").await, 3);

    // as a form field too
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports?api_key={}", u.key)))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("url={}", percent_encoding::utf8_percent_encode(&url, percent_encoding::NON_ALPHANUMERIC)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<serde_json::Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.wait_final(&u, id).await["table_name"], "sample_1");
    assert!(entries_of(&app.data_dir.join("work")).is_empty(), "work area left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_download_failure_has_its_code() {
    let fx = Fixture::start().await;
    let app = app_allowing_localhost().await;
    let u = app.create_user("ana").await;
    let closed = closed_port();
    let cases = [
        (fx.url("/status/404"), 1100, Some(404)),
        (fx.url("/status/401"), 1101, Some(401)),
        (fx.url("/status/403"), 1101, Some(403)),
        (fx.url("/status/500"), 1001, Some(500)),
        (fx.url("/status/410"), 1001, Some(410)),
        (fx.url("/status/304"), 1001, Some(304)),
        (format!("{}/short.csv", fx.short_base), 1103, None),
        (fx.url("/slow.csv"), 1020, None),
        (format!("http://127.0.0.1:{}/gone.csv", closed.port), 1102, None),
        ("http://no-such-host.invalid/data.csv".to_string(), 1102, None),
    ];
    for (url, code, http) in cases {
        let status = app.import_url(&u, &url).await;
        assert_eq!(status["state"], "failure", "{url}: {status}");
        assert_eq!(status["error_code"], code, "{url}: {status}");
        match http {
            Some(h) => {
                assert_eq!(status["http_response_code"], h, "{url}");
                assert!(status["http_response_code_message"].as_str().unwrap().len() > 10);
            }
            None => assert!(status.get("http_response_code").is_none(), "{url}: {status}"),
        }
    }
    assert!(app.tables_of("ana").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_over_the_size_limit_fails_with_6666() {
    let fx = Fixture::start().await;
    let app = app_allowing_localhost().await;
    let u = app.create_user("ana").await;
    app.set_limit(&u, "max_file_size", 10000).await;
    let status = app.import_url(&u, &fx.url("/data/big.csv")).await;
    assert_eq!(status["error_code"], 6666, "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_redirects_are_followed_and_a_sixth_is_refused() {
    let fx = Fixture::start().await;
    let app = app_allowing_localhost().await;
    let u = app.create_user("ana").await;
    let status = app.import_url(&u, &fx.url("/redirect/5")).await;
    assert_eq!(status["state"], "complete", "{status}");
    let status = app.import_url(&u, &fx.url("/redirect/6")).await;
    assert_eq!(status["state"], "failure");
    assert_eq!(status["error_code"], 1001);
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("redirect"));
}

#[tokio::test(flavor = "multi_thread")]
async fn names_come_from_content_disposition_and_content_when_the_url_has_none() {
    let fx = Fixture::start().await;
    let app = app_allowing_localhost().await;
    let u = app.create_user("ana").await;
    assert_eq!(app.import_url(&u, &fx.url("/download?id=7")).await["table_name"], "report_2024");
    // no extension and a generic type: the content is sniffed
    assert_eq!(app.import_url(&u, &fx.url("/noext")).await["table_name"], "noext");
    // a CSV served as an Excel file stays a CSV
    let status = app.import_url(&u, &fx.url("/excel.csv")).await;
    assert_eq!(status["state"], "complete", "{status}");
    assert_eq!(status["table_name"], "excel");
}

#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_are_refused_unless_allowed() {
    let fx = Fixture::start().await;
    let strict = TestApp::start().await;
    let u = strict.create_user("ana").await;
    for url in [
        fx.url("/data/sample.csv"),
        format!("http://localhost:{}/data/sample.csv", fx.port),
        "http://[::1]/x.csv".into(),
        "file:///etc/passwd".into(),
        "gopher://example.com/a.csv".into(),
        "not a url".into(),
    ] {
        let resp = strict.post_url(&u, &url).await;
        assert_eq!(resp.status(), 400, "{url}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["errors"]["imports"].as_str().unwrap().len() > 10, "{url}: {body}");
    }
    let open = app_allowing_localhost().await;
    let u = open.create_user("ana").await;
    assert_eq!(open.import_url(&u, &fx.url("/data/sample.csv")).await["state"], "complete");
    // an allowed host that redirects to a refused one
    let status = open.import_url(&u, &fx.url("/to-private")).await;
    assert_eq!(status["state"], "failure");
    assert_eq!(status["error_code"], 1102, "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_accepts_the_connection_fails_1020_after_the_connect_timeout() {
    let silent = silent_port().await;
    let app = TestApp::start_with(|s| {
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        s.runtime.connect_timeout_secs = 2;
        s.runtime.download_timeout_secs = 60;
    })
    .await;
    let u = app.create_user("ana").await;
    let started = Instant::now();
    let status = app.import_url(&u, &format!("http://127.0.0.1:{}/data.csv", silent.port)).await;
    assert_eq!(status["error_code"], 1020, "{status:#}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "the connect timeout did not apply: {took:?}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_ignore_the_proxy_of_the_environment() {
    let fx = Fixture::start().await;
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    // A proxy that refuses every connection: a download sent through it would fail.
    let dead = closed_port();
    let proxy = format!("http://127.0.0.1:{}", dead.port);
    let server = crate::common::child_server::ChildServer::with_workers(
        &app,
        &[
            ("GEOIMPORT_URL_ALLOW", "127.0.0.1/32"),
            ("HTTP_PROXY", &proxy),
            ("http_proxy", &proxy),
            ("HTTPS_PROXY", &proxy),
            ("ALL_PROXY", &proxy),
        ],
    )
    .await;
    let resp = app
        .client
        .post(format!("{}/api/v1/imports?api_key={}", server.base, u.key))
        .json(&serde_json::json!({"url": fx.url("/data/sample.csv")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id: uuid::Uuid =
        resp.json::<serde_json::Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
}
