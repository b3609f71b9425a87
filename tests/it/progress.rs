//! Live progress (issue 13): while an import runs its status carries `progress`, written every second:
//! the phase, bytes while it downloads, rows (and their total once counted) while it loads; once it ends,
//! no `progress`. Extra fields only: the reference's clients ignore them.

use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use crate::common::fixture::{Fixture, STEADY_BYTES, steady_csv};
use crate::common::*;

/// Every distinct `progress` the status shows until the import ends, polled every 100 ms; and the final
/// status.
async fn progress_until_final(app: &TestApp, user: &TestUser, id: Uuid) -> (Vec<Value>, Value) {
    let (mut seen, start) = (Vec::<Value>::new(), Instant::now());
    loop {
        let status = app.get_json(user, &format!("/api/v1/imports/{id}")).await;
        if status["state"] == "complete" || status["state"] == "failure" {
            return (seen, status);
        }
        if let Some(progress) = status.get("progress")
            && seen.last() != Some(progress)
        {
            seen.push(progress.clone());
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the import never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_shows_its_bytes_and_a_load_its_rows_then_the_progress_goes() {
    let fx = Fixture::start().await;
    // The run holds 2.5 s before publishing: the rows are all loaded then, and the status must say so.
    let app = TestApp::start_with(|s| {
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        s.runtime.hooks.hold_before_publish_ms = 2500;
    })
    .await;
    let ana = app.create_user("ana").await;
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports?api_key={}", ana.key)))
        .json(&serde_json::json!({ "url": fx.url("/steady.csv") }))
        .send()
        .await
        .unwrap();
    let id: Uuid = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let (seen, status) = progress_until_final(&app, &ana, id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert!(status.get("progress").is_none(), "an ended import has no progress: {status:#}");
    let (_, rows) = steady_csv();

    // The download (the reference calls it uploading) arrives over 4 s: its bytes climb to the length.
    let downloading: Vec<&Value> = seen.iter().filter(|p| p["phase"] == "uploading").collect();
    assert!(downloading.len() >= 2, "{seen:#?}");
    let bytes: Vec<u64> = downloading.iter().map(|p| p["bytes_done"].as_u64().unwrap()).collect();
    assert!(bytes.windows(2).all(|w| w[0] <= w[1]), "{bytes:?}");
    assert!(bytes.iter().any(|b| *b > 0 && *b < STEADY_BYTES as u64), "{bytes:?}");
    // Its length is known once the answer's headers are in (the first reading may come before them).
    let under_way: Vec<&&Value> = downloading.iter().filter(|p| p["bytes_done"].as_u64() > Some(0)).collect();
    assert!(!under_way.is_empty() && under_way.iter().all(|p| p["bytes_total"] == STEADY_BYTES), "{downloading:#?}");
    assert!(downloading.iter().all(|p| p.get("rows_done").is_none()));

    // Loaded and held: every row counted, against the total the first pass found.
    let last = seen.last().unwrap();
    assert_eq!(last["phase"], "importing", "{seen:#?}");
    assert_eq!((last["rows_done"].as_i64(), last["rows_total"].as_i64()), (Some(rows), Some(rows)), "{last:#}");
    assert!(last.get("bytes_done").is_none(), "{last:#}");
    assert!(last["updated_at"].as_str().unwrap().ends_with('Z'));
    let loaded: Vec<i64> = seen.iter().filter_map(|p| p["rows_done"].as_i64()).collect();
    assert!(loaded.windows(2).all(|w| w[0] <= w[1]), "{loaded:?}");
    assert_eq!(app.count("SELECT count(*) FROM ana.steady").await, rows);
}
