//! Threat: every attack at once. However the hostile inputs are combined, the server process (API and
//! workers, default settings) stays within its documented memory budget of 512 MB and keeps answering.
//! Each attack's own cost is asserted in its own test file; this one adds them up.

use std::time::{Duration, Instant};

use crate::common::attacks::*;
use crate::common::child_server::ChildServer;
use crate::common::raw_http::*;
use crate::common::*;
use tokio::io::AsyncWriteExt;

/// The budget README.md's Security section promises with default settings.
const BUDGET_MIB: u64 = 512;

#[tokio::test(flavor = "multi_thread")]
async fn every_attack_at_once_stays_within_the_memory_budget() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    app.set_limit(&u, "max_concurrent_imports", 4).await;
    // Default settings: 4 workers, the default record limit, connection cap and timeouts.
    let server = ChildServer::with_workers(&app, &[]).await;
    let base = server.base.clone();
    let upload = |name: &'static str, bytes: Vec<u8>| {
        let (client, base, key) = (unpooled_client(), base.clone(), u.key.clone());
        tokio::spawn(async move {
            let form =
                reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name(name));
            client.post(format!("{base}/api/v1/imports?api_key={key}")).multipart(form).send().await.map(|r| r.status())
        })
    };
    let under = (32 << 20) - (1 << 20);
    let mut uploads = vec![
        upload("text.csv", padded_text("a,b\n1,", "xxxxxxxxxxxxxxxx", under, "\n")),
        upload("wkt.csv", padded_text("id,wkt\n1,\"LINESTRING(", "0 0,", under, "0 0)\"\n")),
        upload(
            "string.geojson",
            padded_text(r#"{"type":"Feature","geometry":null,"properties":{"s":""#, "xxxxxxxx", under, r#""}}"#),
        ),
        upload("bomb.tar.gz", long_name_bomb()),
        upload("huge.geojson", geojson_of_one_huge_feature(150)),
    ];
    // Anonymous clients meanwhile: a multipart flood, endless JSON bodies, half-open connections.
    let value = vec![b'A'; 1 << 20];
    let flood_base = base.clone();
    let flood = tokio::spawn(async move {
        send_chunked(&flood_base, multipart_head("/api/v1/imports"), move |i| {
            (i < 300).then(|| (Duration::ZERO, text_part(&format!("f{i}"), &value)))
        })
        .await
    });
    let mut held = Vec::new();
    for i in 0..600 {
        let mut stream = connect(&base).await;
        if i % 3 == 0 {
            let head = "POST /api/v1/imports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\n\r\nffc00\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&vec![b' '; 0xffc00 - 1]).await;
        } else {
            let _ = stream.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n").await;
        }
        held.push(stream);
    }
    let started = Instant::now();
    let mut worst_livez = Duration::ZERO;
    for u in uploads.drain(..) {
        let status = u.await.unwrap().expect("an upload was refused");
        assert_eq!(status, 200);
    }
    // The server answers throughout, and every import ends.
    while app.count("SELECT count(*) FROM geoimport.imports WHERE state NOT IN ('complete', 'failure')").await > 0 {
        let asked = Instant::now();
        assert!(server.live().await, "the server stopped answering");
        worst_livez = worst_livez.max(asked.elapsed());
        assert!(started.elapsed() < Duration::from_secs(300), "imports did not end");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let flood = flood.await.unwrap();
    assert_eq!(flood.answer.map(|a| a.0), Some(401));
    drop(held);
    let codes: Vec<(String, Option<i32>)> =
        sqlx::query_as("SELECT display_name, error_code FROM geoimport.imports ORDER BY display_name")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let code = |name: &str| codes.iter().find(|(n, _)| n == name).and_then(|(_, c)| *c);
    assert_eq!(code("bomb.tar.gz"), Some(6666), "{codes:?}");
    assert_eq!(code("huge.geojson"), Some(6666), "{codes:?}");
    for fine in ["text.csv", "wkt.csv", "string.geojson"] {
        assert_eq!(code(fine), None, "{fine}: {codes:?}");
    }
    // Each limit crossed failed its import once: none was taken again.
    let retried = app.count("SELECT count(*) FROM geoimport.imports WHERE attempts > 1").await;
    assert_eq!(retried, 0, "an import was retried: {codes:?}");
    let peak = server.peak_rss_mib();
    eprintln!("every attack at once: the server peaked at {peak} MiB; /livez took at most {worst_livez:?}");
    assert!(peak < BUDGET_MIB, "the server peaked at {peak} MiB, over its budget of {BUDGET_MIB} MiB");
    // A loaded machine is allowed its hiccups; a server that stops answering is not.
    assert!(worst_livez < Duration::from_secs(1), "/livez took {worst_livez:?}");
    assert!(server.live().await);
}
