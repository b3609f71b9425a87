//! Webhooks (issue 13): an import or a sync with `callback_url` has its final status POSTed there, signed
//! with HMAC-SHA256 under the user's secret, retried with backoff until the receiver takes it, under the
//! address policy of URL imports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::common::fixture::Fixture;
use crate::common::*;

/// Each POST received: its signature header and its body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A receiver on 127.0.0.1 that answers 500 to its first `refuse` POSTs and 200 after, and keeps each
/// POST's signature header and body.
struct Receiver {
    url: String,
    got: Received,
}

async fn receiver(refuse: usize) -> Receiver {
    let got: Received = Default::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let (kept, count) = (got.clone(), seen.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (kept, count) = (kept.clone(), count.clone());
            async move {
                let signature = headers.get("x-geoimport-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                kept.lock().unwrap().push((signature.to_string(), body.to_vec()));
                match count.fetch_add(1, Ordering::SeqCst) < refuse {
                    true => StatusCode::INTERNAL_SERVER_ERROR,
                    false => StatusCode::OK,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got }
}

impl Receiver {
    /// The POSTs received once there are `n`.
    async fn wait_for(&self, n: usize) -> Vec<(String, Vec<u8>)> {
        let start = Instant::now();
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{} of {n} deliveries arrived", got.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_final_status_is_posted_signed_and_retried_until_the_receiver_takes_it() {
    let fx = Fixture::start().await;
    let app = TestApp::start_with(|s| {
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        s.runtime.hooks.webhook_backoff_ms = 200;
    })
    .await;
    let ana = app.create_user("ana").await;
    let secret = app.get_json(&ana, "/api/v1/webhooks/secret").await;
    let secret = secret["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    assert_eq!(app.get_json(&ana, "/api/v1/webhooks/secret").await["secret"], secret, "the secret stays");

    // Refused twice, taken the third time.
    let hook = receiver(2).await;
    let query = format!("callback_url={}", hook.url);
    let status = app.import_ok(&ana, "prism_tour.csv", prism_tour_csv(), &query).await;
    let got = hook.wait_for(3).await;
    for (signature, body) in &got {
        assert_eq!(signature, &hmac_hex(&secret, body), "signed with the user's secret");
    }
    let sent: Value = serde_json::from_slice(&got[2].1).unwrap();
    assert_eq!((sent["id"].clone(), sent["state"].clone()), (status["id"].clone(), "complete".into()));
    assert_eq!(sent["table_name"], "prism_tour");
    assert_eq!(sent["rows_imported"], 4);
    let rows = app
        .texts(&format!(
            "SELECT attempts::text || ' ' || (delivered_at IS NOT NULL)::text FROM geoimport.webhook_deliveries \
             WHERE import_id = '{}'",
            status["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rows, [Some("3 true".to_string())]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hook.got.lock().unwrap().len(), 3, "a delivery taken is not sent again");

    // A failure is told the same way, with its code; a sync's runs too.
    let failing = receiver(0).await;
    let broken = r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "#;
    let query = format!("callback_url={}", failing.url);
    let failed = app.import_and_wait(&ana, "broken.geojson", broken, &query).await;
    let sent: Value = serde_json::from_slice(&failing.wait_for(1).await[0].1).unwrap();
    assert_eq!((sent["state"].as_str(), sent["error_code"].clone()), (Some("failure"), failed["error_code"].clone()));
    let synced = receiver(0).await;
    let created: Value = app
        .client
        .post(app.url(&format!("/api/v1/synchronizations?api_key={}", ana.key)))
        .json(&serde_json::json!({ "url": fx.url("/sync.csv"), "interval": 3600, "callback_url": synced.url }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent: Value = serde_json::from_slice(&synced.wait_for(1).await[0].1).unwrap();
    assert_eq!(sent["synchronization_id"], created["id"], "{sent:#}");
    assert_eq!(sent["state"], "complete");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_url_the_address_policy_refuses_is_a_400() {
    let app = TestApp::start().await;
    let ana = app.create_user("ana").await;
    for bad in ["http://10.0.0.1/hook", "http://127.0.0.1:9/hook", "ftp://example.org/hook", "not a url"] {
        let resp = app
            .client
            .post(app.url(&format!("/api/v1/imports?api_key={}", ana.key)))
            .json(&serde_json::json!({ "url": "https://example.org/data.csv", "callback_url": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 0);
}
