//! The server under attack, as the security review of 2026-11 describes it (findings 3, 6, 8, 15, 18): each
//! test is one hostile client, what it gets back, and what it cost the server. Attacks whose cost is memory
//! run the server as a child process, so that its VmHWM measures the server alone.

mod common;

use common::*;

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
