//! The server under attack, as the security review of 2026-11 describes it (findings 3, 6, 8, 15, 18): each
//! test is one hostile client, what it gets back, and what it cost the server. Attacks whose cost is memory
//! run the server as a child process, so that its VmHWM measures the server alone.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `geoimport serve` child process on the app's database, with workers off and `env` on top.
struct ChildServer {
    process: ChildProcess,
    base: String,
    port: u16,
}

impl ChildServer {
    async fn start(app: &TestApp, env: &[(&str, &str)]) -> ChildServer {
        Self::start_with_open_files(app, env, None).await
    }

    /// Like [`start`], with the process started under a soft limit of `soft_open_files` descriptors.
    async fn start_with_open_files(app: &TestApp, env: &[(&str, &str)], soft_open_files: Option<u32>) -> ChildServer {
        let port = free_port();
        let mut vars = app.child_env();
        vars.push(("GEOIMPORT_BIND".into(), format!("127.0.0.1:{port}")));
        vars.push(("GEOIMPORT_WORKERS".into(), "0".into()));
        vars.push(("GEOIMPORT_MIN_FREE_BYTES".into(), "0".into()));
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let process = match soft_open_files {
            None => ChildProcess::spawn(&["serve"], &vars),
            Some(soft) => {
                // The shell lowers its soft limit, then becomes the server (same process id).
                let mut cmd = std::process::Command::new("sh");
                cmd.arg("-c").arg(format!("ulimit -S -n {soft} && exec \"$0\" serve")).arg(geoimport_bin());
                cmd.env_remove("DATABASE_URL").envs(vars.iter().map(|(k, v)| (k, v)));
                cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
                ChildProcess(cmd.spawn().unwrap())
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        let client = unpooled_client();
        loop {
            if let Ok(r) = client.get(format!("{base}/livez")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the child server never answered /livez");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ChildServer { process, base, port }
    }

    /// A line of /proc/<pid>/status in kB (VmRSS, VmHWM).
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Client connections the server has accepted and holds open: its sockets whose local port is the
    /// listening port (the listener itself excluded).
    fn accepted_connections(&self) -> usize {
        let pid = self.process.pid();
        let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
        let port_hex = format!(":{:04X}", self.port);
        let inodes: std::collections::HashSet<String> = tcp
            .lines()
            .skip(1)
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                // local address, state (0A is LISTEN), inode
                (cols[1].ends_with(&port_hex) && cols[3] != "0A").then(|| cols[9].to_string())
            })
            .collect();
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
                    .filter(|inode| inodes.contains(inode))
                    .count()
            })
            .unwrap_or(0)
    }
}

async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset); how long after `since` that happened, or
/// None if it was still open `limit` after `since`.
async fn closed_within(stream: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(since.elapsed()), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// A client that opens a new connection for every request (a pooled connection would skip the queue).
fn unpooled_client() -> reqwest::Client {
    let _ = http_client();
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap()
}

/// Reads one HTTP/1.1 response (with a Content-Length) from `stream`: its status and body.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    try_read_response(stream).await.expect("the connection closed before a whole response")
}

/// Reads one HTTP/1.1 response (with a Content-Length), or None if the connection ends first.
async fn try_read_response(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<(u16, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    }
    Some((status, String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned()))
}

/// What a hostile upload got back, and how much of its body the server let it send.
struct Outcome {
    answer: Option<(u16, String)>,
    sent: u64,
}

/// Sends `head` (a request line and headers announcing a chunked body), then `chunk(0)`, `chunk(1)`...
/// as chunks for as long as they come and the server reads them, while reading the answer. A chunk is
/// sent after its delay.
async fn send_chunked(
    base: &str,
    head: String,
    mut chunk: impl FnMut(usize) -> Option<(Duration, Vec<u8>)> + Send + 'static,
) -> Outcome {
    let (mut reader, mut writer) = connect(base).await.into_split();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let sending = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let mut i = 0;
        while let Some((delay, bytes)) = chunk(i) {
            tokio::time::sleep(delay).await;
            writer.write_all(format!("{:x}\r\n", bytes.len()).as_bytes()).await?;
            writer.write_all(&bytes).await?;
            writer.write_all(b"\r\n").await?;
            counter.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            i += 1;
        }
        writer.write_all(b"0\r\n\r\n").await?;
        // Not closing our side: hyper closes a connection at once when the client half-closes it.
        std::future::pending::<std::io::Result<()>>().await
    });
    let answer = tokio::time::timeout(Duration::from_secs(120), try_read_response(&mut reader)).await.ok().flatten();
    sending.abort();
    Outcome { answer, sent: sent.load(std::sync::atomic::Ordering::Relaxed) }
}

/// The head of a chunked multipart POST to `path` (boundary `X`).
fn multipart_head(path: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=X\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
}

/// One multipart text field, with its leading boundary.
fn text_part(name: &str, value: &[u8]) -> Vec<u8> {
    [format!("--X\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(), value, b"\r\n"].concat()
}

/// A multipart file field named `file`, with its leading boundary.
fn file_part(file_name: &str, content: &[u8]) -> Vec<u8> {
    [
        format!("--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\r\n").as_bytes(),
        content,
        b"\r\n",
    ]
    .concat()
}

const MB: u64 = 1 << 20;

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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.accepted_connections(), 8, "the server holds exactly its cap of connections");

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
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let start = Instant::now();
    assert_eq!(unpooled_client().get(format!("{}/livez", server.base)).send().await.unwrap().status(), 200);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
async fn an_unauthenticated_multipart_flood_is_cut_before_it_costs_memory() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let server = ChildServer::start(&app, &[]).await;
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

#[tokio::test]
async fn an_endless_part_header_is_cut_before_it_costs_memory() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let ana = app.create_user("ana").await;
    let server = ChildServer::start(&app, &[]).await;
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

#[tokio::test]
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

#[tokio::test]
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
    let incoming = app.data_dir.join("staging/.incoming");
    let left = std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the cut upload left a file in {}", incoming.display());
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

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
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

#[tokio::test]
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
    assert_eq!(files_in(&app.data_dir.join("staging")), 2, "only .incoming and the first import's directory");
    assert_eq!(files_in(&app.data_dir.join("staging/.incoming")), 0);
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

#[tokio::test]
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
    assert_eq!(files_in(&app.data_dir.join("staging/.incoming")), 0, "the cut upload left its file");
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

#[tokio::test]
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

#[tokio::test]
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
    assert_eq!(staged, 4, "the refused uploads' files were removed (3 import directories and .incoming)");
}
