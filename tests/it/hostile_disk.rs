//! Threat: filling the disk that PostgreSQL shares with the data directory, through what workers write:
//! downloads and unpacked archives stop before they eat into the free-space reserve.

use crate::common::fixture::Fixture;
use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn downloads_and_unpacking_stop_at_the_disk_reserve_and_say_why() {
    let fx = Fixture::start().await;
    // The API has no reserve (so the requests are accepted); the workers keep more than the disk has.
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let u = app.create_user("ana").await;
    let url = app.post_url(&u, &fx.url("/data/big.csv")).await;
    assert_eq!(url.status(), 200);
    let url: uuid::Uuid =
        url.json::<serde_json::Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let zip = app.import(&u, "bundle.zip", zip_of(&[("a.csv", b"a,b\n1,2\n".to_vec())]), "").await;
    let workers = app.spawn_workers(|s| s.runtime.min_free_bytes = u64::MAX / 2);
    for id in [url, zip] {
        let status = app.wait_final(&u, id).await;
        assert_eq!(status["error_code"], 1000, "{status:#}");
        let about = status["get_error_text"]["what_about"].as_str().unwrap();
        assert!(about.contains("short of disk space"), "{about}");
    }
    workers.stop().await;
    assert!(entries_of(&app.data_dir.join("work")).is_empty(), "files left behind");
    // With room on the disk, the same imports complete.
    let workers = app.spawn_workers(|s| s.runtime.min_free_bytes = 1);
    let status = app.import_url(&u, &fx.url("/data/big.csv")).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    workers.stop().await;
}
