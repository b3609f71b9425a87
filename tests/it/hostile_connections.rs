//! The server under attack at its HTTP edge, as the security review of 2026-11 describes it (findings 6,
//! 15, 18): connections that never finish their request, sit idle or pile up; cross-site requests riding
//! on browser credentials; guessing the metrics token. Each test is one hostile client and what it gets.

use std::time::{Duration, Instant};

use crate::common::child_server::ChildServer;
use crate::common::raw_http::*;
use crate::common::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
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

#[tokio::test(flavor = "multi_thread")]
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

#[tokio::test(flavor = "multi_thread")]
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

#[tokio::test(flavor = "multi_thread")]
async fn a_half_sent_header_or_a_silent_connection_is_closed_within_the_header_timeout() {
    let app = TestApp::start_with(|s| s.runtime.header_timeout_secs = 2).await;
    let opened = Instant::now();
    let mut slow = connect(&app.base).await;
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let mut silent = connect(&app.base).await;
    // A whole request on another connection is answered at once: the server is not stuck.
    let mut prompt = connect(&app.base).await;
    prompt.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut prompt).await.0, 200);

    let slow_closed =
        closed_within(&mut slow, opened, Duration::from_secs(8)).await.expect("a half-sent header kept its connection");
    let silent_closed =
        closed_within(&mut silent, opened, Duration::from_secs(8)).await.expect("a silent connection stayed open");
    for (what, after) in [("half-sent header", slow_closed), ("silent connection", silent_closed)] {
        assert!(
            after >= Duration::from_millis(1500) && after <= Duration::from_secs(5),
            "{what} closed after {after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let app = TestApp::start_with(|s| s.runtime.header_timeout_secs = 2).await;
    let mut conn = connect(&app.base).await;
    conn.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut conn).await.0, 200);
    // In use, the connection is kept alive: a second request a second later is answered on it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    conn.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut conn).await.0, 200);
    // Idle, it is closed once the header timeout has passed (hyper starts that timer when it waits for
    // the next request's headers).
    let answered = Instant::now();
    let after =
        closed_within(&mut conn, answered, Duration::from_secs(8)).await.expect("an idle connection was kept for ever");
    assert!(after >= Duration::from_millis(1500) && after <= Duration::from_secs(5), "closed after {after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn half_open_connections_beyond_the_cap_wait_their_turn_and_livez_still_answers() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let env = [("GEOIMPORT_MAX_CONNECTIONS", "8"), ("GEOIMPORT_HEADER_TIMEOUT_SECS", "1")];
    // Started with a low soft limit of open files, the process raises it to the hard one.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let server = ChildServer::start_with_open_files(&app, &env, Some(256.min(hard as u32))).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.process.pid())).unwrap();
    let files: Vec<&str> =
        limits.lines().find(|l| l.starts_with("Max open files")).unwrap().split_whitespace().collect();
    assert_eq!((files[3], files[4]), (hard.to_string().as_str(), hard.to_string().as_str()), "{limits}");

    // 24 connections that each send half a header and then nothing.
    let mut attackers = Vec::new();
    for _ in 0..24 {
        let mut c = connect(&server.base).await;
        c.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        attackers.push(c);
    }
    // The server takes its cap of them (the peak below shows it never holds more).
    let start = Instant::now();
    while server.accepted_connections() < 8 {
        assert!(start.elapsed() < Duration::from_secs(10), "the server took fewer connections than its cap");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // /livez waits behind them in the kernel's queue, and is answered as the header timeout frees slots.
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let probe = tokio::spawn({
        let client = unpooled_client();
        let url = format!("{}/livez", server.base);
        async move { client.get(url).timeout(Duration::from_secs(20)).send().await.map(|r| r.status().as_u16()) }
    });
    while !probe.is_finished() {
        peak.fetch_max(server.accepted_connections(), std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(probe.await.unwrap().expect("/livez never answered"), 200);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(500), "/livez was answered at once ({waited:?}): no cap held it back");
    assert!(waited <= Duration::from_secs(10), "/livez waited {waited:?}");
    assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 8, "more connections than the cap were open");

    // Once the attackers are gone, the next request is answered at once.
    drop(attackers);
    let start = Instant::now();
    while server.accepted_connections() > 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "the server kept the closed connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    assert_eq!(unpooled_client().get(format!("{}/livez", server.base)).send().await.unwrap().status(), 200);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_an_upload_in_flight_finish_and_accepts_no_new_connection() {
    let mut app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let upload = tokio::spawn(
        app.client
            .post(app.url(&format!("/api/v1/imports?api_key={}", u.key)))
            .header("Content-Type", "multipart/form-data; boundary=X")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    tx.send(Ok(b"--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"late.csv\"\r\n\r\na,b\n".to_vec()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The rest of the body comes after shutdown has begun.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let _ = tx.send(Ok(b"1,2\n\r\n--X--\r\n".to_vec())).await;
    });
    let base = app.base.clone();
    app.stop().await;
    let resp = upload.await.unwrap().expect("the upload in flight was cut by the shutdown");
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports WHERE display_name = 'late.csv'").await, 1);
    assert!(TcpStream::connect(base.trim_start_matches("http://")).await.is_err(), "a stopped server accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_http2_connection_is_closed_after_the_header_timeout() {
    let app = TestApp::start_with(|s| s.runtime.header_timeout_secs = 2).await;
    // HTTP/2 with prior knowledge is served.
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    let resp = h2.get(app.url("/livez")).send().await.unwrap();
    assert_eq!((resp.version(), resp.status().as_u16()), (reqwest::Version::HTTP_2, 200));

    // A client that opens an HTTP/2 connection (preface and SETTINGS) and then asks nothing.
    let opened = Instant::now();
    let mut conn = connect(&app.base).await;
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let after =
        closed_within(&mut conn, opened, Duration::from_secs(10)).await.expect("an idle HTTP/2 connection stayed open");
    assert!(after >= Duration::from_millis(1500) && after <= Duration::from_secs(5), "closed after {after:?}");
}
