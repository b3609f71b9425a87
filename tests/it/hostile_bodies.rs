//! Bodies built to hurt the server before and after authentication, as the security review of 2026-11
//! describes them (findings 3 and 8): endless anonymous fields, endless part headers, too many fields,
//! bodies that trickle, users who queue or stage without end, a disk about to fill. Attacks whose cost is
//! memory run the server as a child process, so that its VmHWM measures the server alone.

use std::time::{Duration, Instant};

use crate::common::child_server::ChildServer;
use crate::common::raw_http::*;
use crate::common::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// The server's memory high-water mark after a few ordinary uploads, so that what an attack adds is
/// measured from a warm process.
async fn warm_baseline_kb(server: &ChildServer, user: &TestUser) -> u64 {
    let client = unpooled_client();
    for _ in 0..3 {
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(vec![b'a'; 256 << 10]).file_name("warm.csv"));
        let resp = client
            .post(format!("{}/api/v1/imports?api_key={}", server.base, user.key))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    server.status_kb("VmHWM")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unauthenticated_multipart_flood_is_cut_before_it_costs_memory() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let server = ChildServer::api_only(&app, &[]).await;
    let baseline = warm_baseline_kb(&server, &ana).await;

    // 300 distinct fields of 1 MB each, and never an api_key.
    let value = vec![b'A'; MB as usize];
    let flood = send_chunked(&server.base, multipart_head("/api/v1/imports"), move |i| {
        (i < 300).then(|| (Duration::ZERO, text_part(&format!("f{i}"), &value)))
    })
    .await;
    let grown_mb = server.status_kb("VmHWM").saturating_sub(baseline) / 1024;
    eprintln!("unauthenticated flood: {} MB sent, the server's peak grew by {grown_mb} MB", flood.sent / MB);
    let (status, body) = flood.answer.expect("the flood got no answer");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("before the file"), "the answer says how to send the key: {body}");
    assert!(flood.sent < 64 * MB, "the server read {} MB of an anonymous body", flood.sent / MB);
    assert!(grown_mb < 64, "the server grew by {grown_mb} MB");
    assert_eq!(unpooled_client().get(format!("{}/livez", server.base)).send().await.unwrap().status(), 200);

    // The key as a field before a file is still the way to upload more than the anonymous allowance.
    let csv = [b"a,b\n".to_vec(), b"1,2\n".repeat(1 << 19)].concat();
    let mut body = text_part("api_key", ana.key.as_bytes());
    body.extend(file_part("keyed.csv", &csv));
    body.extend(b"--X--\r\n");
    let mut chunks = Some(body);
    let keyed = send_chunked(&server.base, multipart_head("/api/v1/imports"), move |_| {
        chunks.take().map(|c| (Duration::ZERO, c))
    })
    .await;
    assert_eq!(keyed.answer.as_ref().map(|a| a.0), Some(200), "{:?}", keyed.answer);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_part_header_is_cut_before_it_costs_memory() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let server = ChildServer::api_only(&app, &[]).await;
    let baseline = warm_baseline_kb(&server, &ana).await;

    // Authenticated, so that only the header cap can stop it: a part header that never ends.
    let pad = vec![b'A'; MB as usize];
    let head = multipart_head(&format!("/api/v1/imports?api_key={}", ana.key));
    let attack = send_chunked(&server.base, head, move |i| {
        let bytes = match i {
            0 => Some(b"--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nX-Pad: ".to_vec()),
            1..=300 => Some(pad.clone()),
            _ => None,
        };
        bytes.map(|b| (Duration::ZERO, b))
    })
    .await;
    let grown_mb = server.status_kb("VmHWM").saturating_sub(baseline) / 1024;
    eprintln!("endless part header: {} MB sent, the server's peak grew by {grown_mb} MB", attack.sent / MB);
    let (status, body) = attack.answer.expect("the attack got no answer");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("part header"), "{body}");
    assert!(grown_mb < 64, "the server grew by {grown_mb} MB");
    assert_eq!(unpooled_client().get(format!("{}/livez", server.base)).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_form_fields_or_too_much_form_text_are_refused() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let path = format!("/api/v1/imports?api_key={}", ana.key);
    let post = |parts: Vec<Vec<u8>>| {
        let mut body = parts.concat();
        body.extend(file_part("after.csv", b"a,b\n1,2\n"));
        body.extend(b"--X--\r\n");
        app.client.post(app.url(&path)).header("Content-Type", "multipart/form-data; boundary=X").body(body).send()
    };
    let many: Vec<Vec<u8>> = (0..100).map(|i| text_part(&format!("f{i}"), b"x")).collect();
    let resp = post(many).await.unwrap();
    assert_eq!(resp.status(), 413);
    // The rest of the body was not read: the connection ends, and the answer says so, or the client's next
    // request would go out on a connection the server is closing (a flake of this test, once).
    assert_eq!(resp.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    assert!(resp.text().await.unwrap().contains("fields"));
    let big_text: Vec<Vec<u8>> = (0..3).map(|i| text_part(&format!("t{i}"), &vec![b'x'; 600 << 10])).collect();
    let resp = post(big_text).await.unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp.text().await.unwrap().contains("text"));
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 0);
    // A form of ordinary size goes through.
    let resp = post(vec![text_part("type_guessing", b"false"), text_part("privacy", b"public")]).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_upload_ends_with_408_at_the_total_deadline() {
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.upload_timeout_secs = 3;
    })
    .await;
    let ana = app.create_user("ana").await;
    let path = format!("/api/v1/imports?api_key={}", ana.key);
    // A byte every 100 ms: never idle long enough for the 120 s idle timeout.
    let started = Instant::now();
    let trickle = send_chunked(&app.base, multipart_head(&path), |i| {
        if i == 0 {
            let head = b"--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.csv\"\r\n\r\na\n";
            return Some((Duration::ZERO, head.to_vec()));
        }
        (i < 600).then(|| (Duration::from_millis(100), b"1".to_vec()))
    })
    .await;
    let took = started.elapsed();
    let (status, body) = trickle.answer.expect("the trickle got no answer");
    assert_eq!(status, 408, "{body}");
    assert!(took >= Duration::from_millis(2500) && took <= Duration::from_secs(10), "cut after {took:?}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 0);
    let staging = app.data_dir.join("staging");
    let left = paths_under(&staging);
    assert!(left.is_empty(), "the cut upload left {left:?}");
    // An upload that arrives in time is accepted under the same deadline.
    let id = app.import(&ana, "quick.csv", "a,b\n1,2\n", "").await;
    assert_eq!(app.count(&format!("SELECT count(*) FROM geoimport.imports WHERE id = '{id}'")).await, 1);
}

/// Sends only the head of an upload that announces `length` bytes, and reads the answer: an answer that
/// comes at all was given before the body was read.
async fn answer_before_body(base: &str, path: &str, content_type: &str, length: u64) -> (u16, String) {
    let mut conn = connect(base).await;
    let head =
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), read_response(&mut conn)).await.expect("no answer without the body")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_cannot_queue_imports_without_end() {
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        allow_local_connectors(s);
    })
    .await;
    let ana = app.create_user("ana").await;
    let bob = app.create_user("bob").await;
    app.set_limit(&ana, "max_pending_imports", 2).await;
    let first = app.import(&ana, "one.csv", "a\n1\n", "").await;
    app.post_url(&ana, "http://127.0.0.1:1/two.csv").await.error_for_status().unwrap();

    // At the cap, an upload is refused before a byte of its body is read...
    let path = format!("/api/v1/imports?api_key={}", ana.key);
    let (status, body) = answer_before_body(&app.base, &path, "multipart/form-data; boundary=X", 50 << 20).await;
    assert_eq!(status, 429, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["errors"]["imports"].as_str().unwrap().contains("unfinished imports"), "{body}");
    // ... and so are URL imports, connector imports and new synchronizations, which queue imports too.
    let url = app.post_url(&ana, "http://127.0.0.1:1/three.csv").await;
    assert_eq!(url.status(), 429);
    let connector = serde_json::json!({"connector": {"provider": "mysql", "table": "t",
        "connection": {"server": "127.0.0.1", "username": "u", "password": "p", "database": "d"}}});
    let resp = app.post_import_json(&ana, &connector).await;
    assert_eq!(resp.status(), 429, "{}", resp.text().await.unwrap());
    let sync = app
        .client
        .post(app.url(&format!("/api/v1/synchronizations?api_key={}", ana.key)))
        .json(&serde_json::json!({"url": "http://127.0.0.1:1/four.csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 429);
    assert_eq!(app.count(&format!("SELECT count(*) FROM geoimport.imports WHERE user_id = '{}'", ana.id)).await, 2);
    // Another user is not affected.
    app.import(&bob, "bobs.csv", "a\n1\n", "").await;

    // An import that ends makes room.
    let cancel = app.client.post(app.url(&format!("/api/v1/imports/{first}/cancel?api_key={}", ana.key))).send().await;
    assert_eq!(cancel.unwrap().status(), 200);
    app.import(&ana, "three.csv", "a\n1\n", "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_cannot_fill_the_disk_with_uploads_that_wait() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    app.set_limit(&ana, "max_staged_bytes", 1000).await;
    let csv = |rows: usize| format!("a\n{}", "1\n".repeat(rows));
    let first = app.import(&ana, "first.csv", csv(299), "").await; // 600 bytes
    assert_eq!(app.count(&format!("SELECT staged_bytes FROM geoimport.imports WHERE id = '{first}'")).await, 600);

    // 600 more would make 1200 waiting: refused once its size is known, and its file removed.
    let resp = app.upload(&ana, "second.csv", csv(299), "").await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"]["imports"].as_str().unwrap().contains("1200 bytes"), "{body}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 1);
    let staged = paths_under(&app.data_dir.join("staging"));
    assert_eq!(staged.len(), 1, "only the first import's file: {staged:?}");
    assert!(staged[0].starts_with(app.data_dir.join("staging").join(first.to_string())), "{staged:?}");
    // A smaller one still fits.
    app.import(&ana, "small.csv", csv(100), "").await; // 202 bytes

    // At the cap, the next upload is refused before its body is read.
    app.set_limit(&ana, "max_staged_bytes", 802).await;
    let path = format!("/api/v1/imports?api_key={}&filename=x.csv", ana.key);
    let (status, body) = answer_before_body(&app.base, &path, "text/csv", 10 << 20).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("bytes of uploaded files"), "{body}");
    // Imports that bring no file are not held back by the files of others.
    let url = app.post_url(&ana, "https://example.com/remote.csv").await;
    assert_eq!(url.status(), 200, "{}", url.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_refused_with_507_rather_than_filling_the_disk() {
    // The reserve is what is free now less 192 MiB: a small upload fits, a large one crosses it. (The
    // margins leave room for other processes writing to the same disk meanwhile.)
    let probe = tempfile::tempdir().unwrap();
    let stat = nix::sys::statvfs::statvfs(probe.path()).unwrap();
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.min_free_bytes = free - 192 * MB;
    })
    .await;
    let ana = app.create_user("ana").await;
    app.import(&ana, "small.csv", "a\n1\n".repeat(1000), "").await;

    let path = format!("/api/v1/imports?api_key={}", ana.key);
    let block = vec![b'7'; MB as usize];
    let big = send_chunked(&app.base, multipart_head(&path), move |i| {
        let bytes = match i {
            0 => b"--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\na\n".to_vec(),
            1..=1024 => block.clone(),
            _ => return None,
        };
        Some((Duration::ZERO, bytes))
    })
    .await;
    let (status, body) = big.answer.expect("the big upload got no answer");
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("disk space"), "{body}");
    eprintln!("cut at the disk reserve after {} MB", big.sent / MB);
    assert!(big.sent >= 64 * MB && big.sent < 900 * MB, "cut after {} MB", big.sent / MB);
    let staged = paths_under(&app.data_dir.join("staging"));
    assert_eq!(staged.len(), 1, "only the small import's file; the cut upload left its own: {staged:?}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 1);

    // Below the reserve, uploads are refused before their body is read.
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.min_free_bytes = u64::MAX;
    })
    .await;
    let ana = app.create_user("ana").await;
    let path = format!("/api/v1/imports?api_key={}", ana.key);
    let (status, body) = answer_before_body(&app.base, &path, "multipart/form-data; boundary=X", 10 << 20).await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn user_create_gives_the_queue_limits_of_the_server_or_of_its_flags() {
    let app = TestApp::start().await;
    let create = |args: &[&str]| {
        let out = std::process::Command::new(geoimport_bin())
            .args(["user", "create"])
            .args(args)
            .arg("--json")
            .env("DATABASE_URL", &app.db.url)
            .env("GEOIMPORT_LOG_FORMAT", "text")
            .env("GEOIMPORT_MAX_PENDING_IMPORTS", "7")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    create(&["carla"]);
    create(&["dora", "--max-staged-bytes", "12345", "--max-pending-imports", "3"]);
    let limits = app
        .texts(
            "SELECT username || ' ' || max_staged_bytes || ' ' || max_pending_imports FROM geoimport.users ORDER BY 1",
        )
        .await;
    assert_eq!(limits, [Some("carla 4294967296 7".to_string()), Some("dora 12345 3".to_string())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_racing_for_the_last_pending_slots_do_not_overshoot_the_cap() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    app.set_limit(&ana, "max_pending_imports", 3).await;
    let names: Vec<String> = (0..12).map(|i| format!("race{i}.csv")).collect();
    let uploads = names.iter().map(|name| app.upload(&ana, name, "a\n1\n", ""));
    let statuses: Vec<u16> =
        futures_util::future::join_all(uploads).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 9, "{statuses:?}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 3);
    let staged = std::fs::read_dir(app.data_dir.join("staging")).unwrap().count();
    assert_eq!(staged, 3, "the refused uploads' files were removed (3 import directories are left)");
}

#[tokio::test(flavor = "multi_thread")]
async fn many_anonymous_json_bodies_at_once_cost_a_bounded_amount() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let server = ChildServer::api_only(&app, &[]).await;
    let baseline = warm_baseline_kb(&server, &ana).await;
    // 200 bodies of almost 1 MiB each, sent at once and never finished: each could carry the key at its end.
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut stream = connect(&server.base).await;
        let body = vec![b' '; (1 << 20) - 1024];
        let head = format!(
            "POST /api/v1/imports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(&body).await;
        held.push(stream);
    }
    // Every one is answered once its body is past the deadline of bodies read whole (30 s): the peak of
    // the whole episode is then known.
    let answers: Vec<_> = held
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move { tokio::time::timeout(Duration::from_secs(90), read_response(&mut stream)).await })
        })
        .collect();
    for answer in answers {
        let (status, _) = answer.await.unwrap().expect("an unfinished body was never answered");
        assert_eq!(status, 408);
    }
    let grown_mb = server.status_kb("VmHWM").saturating_sub(baseline) / 1024;
    eprintln!("200 anonymous 1 MiB JSON bodies at once: the server's peak grew by {grown_mb} MB");
    assert!(grown_mb < 100, "the server grew by {grown_mb} MB");
    assert!(server.live().await, "the server stopped answering");
}
