//! A web server inside the tests, on 127.0.0.1, serving files with the headers and failures URL imports
//! must handle. Tests reach it by allowing 127.0.0.1/32 in GEOIMPORT_URL_ALLOW.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures_util::StreamExt;

pub const SAMPLE_CSV: &str = "name,lat,lon\nOne,40.1,-3.1\nTwo,40.2,-3.2\nThree,40.3,-3.3\n";

/// What /sync.csv serves, changeable by the test.
pub struct SyncSource {
    /// Empty: no ETag is sent.
    pub etag: String,
    /// Sent as Last-Modified when set.
    pub last_modified: Option<String>,
    pub body: String,
    /// When set, the file answers with this status instead.
    pub status: Option<u16>,
}

pub struct FixtureState {
    pub port: u16,
    pub sync: Mutex<SyncSource>,
    /// Requests to /sync.csv, and how many of them were conditional.
    pub sync_hits: AtomicUsize,
    pub conditional_hits: AtomicUsize,
}

pub struct Fixture {
    pub base: String,
    pub port: u16,
    pub state: Arc<FixtureState>,
    /// A server that announces 1000 bytes and sends fewer.
    pub short_base: String,
}

impl Fixture {
    pub async fn start() -> Fixture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(FixtureState {
            port,
            sync: Mutex::new(SyncSource {
                etag: "\"v1\"".into(),
                last_modified: None,
                body: SAMPLE_CSV.into(),
                status: None,
            }),
            sync_hits: AtomicUsize::new(0),
            conditional_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/data/sample.csv", get(|| async { csv(SAMPLE_CSV) }))
            .route("/data/big.csv", get(|| async { csv(&"a,b\n".repeat(50_000)) }))
            .route("/status/{code}", get(|Path(code): Path<u16>| async move { StatusCode::from_u16(code).unwrap() }))
            .route(
                "/slow.csv",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    csv(SAMPLE_CSV)
                }),
            )
            .route(
                "/redirect/{n}",
                get(|Path(n): Path<u32>| async move {
                    if n == 0 {
                        csv(SAMPLE_CSV)
                    } else {
                        Redirect::temporary(&format!("/redirect/{}", n - 1)).into_response()
                    }
                }),
            )
            .route(
                "/download",
                get(|| async {
                    let mut r = with_type(SAMPLE_CSV, "application/octet-stream");
                    r.headers_mut().insert(
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_static("attachment; filename=\"report 2024.csv\""),
                    );
                    r
                }),
            )
            .route("/noext", get(|| async { with_type(SAMPLE_CSV, "application/octet-stream") }))
            .route("/excel.csv", get(|| async { with_type(SAMPLE_CSV, "application/vnd.ms-excel") }))
            .route(
                "/to-private",
                get(|State(s): State<Arc<FixtureState>>| async move {
                    Redirect::temporary(&format!("http://127.0.0.2:{}/data/sample.csv", s.port))
                }),
            )
            .route("/sync.csv", get(sync_file))
            .route("/steady.csv", get(steady_body))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let short = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let short_base = format!("http://127.0.0.1:{}", short.local_addr().unwrap().port());
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = short.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\na,b\n1,2\n")
                    .await;
                let _ = socket.shutdown().await;
            }
        });
        Fixture { base: format!("http://127.0.0.1:{port}"), port, state, short_base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Changes what /sync.csv serves.
    pub fn set_sync(&self, etag: &str, body: &str) {
        let mut s = self.state.sync.lock().unwrap();
        s.etag = etag.into();
        s.body = body.into();
        s.status = None;
    }

    /// Makes /sync.csv serve `body` with a Last-Modified date and no ETag.
    pub fn set_sync_dated(&self, last_modified: &str, body: &str) {
        let mut s = self.state.sync.lock().unwrap();
        s.etag = String::new();
        s.last_modified = Some(last_modified.into());
        s.body = body.into();
        s.status = None;
    }

    pub fn fail_sync(&self, status: u16) {
        self.state.sync.lock().unwrap().status = Some(status);
    }

    pub fn sync_hits(&self) -> (usize, usize) {
        (self.state.sync_hits.load(Ordering::SeqCst), self.state.conditional_hits.load(Ordering::SeqCst))
    }
}

/// The CSV /steady.csv serves: points, [`STEADY_BYTES`] bytes exactly, and its rows.
pub fn steady_csv() -> (String, i64) {
    let mut body = String::from("id,lat,lon\n");
    let mut rows = 0;
    while body.len() + 60 < STEADY_BYTES {
        body.push_str(&format!("{rows},{:.5},{:.5}\n", 40.0 + (rows % 997) as f64 * 0.001, -3.0));
        rows += 1;
    }
    // The last row's id, zero-padded, makes the length exact.
    let tail = ",40.00000,-3.00000\n";
    let width = STEADY_BYTES - body.len() - tail.len();
    body.push_str(&format!("{rows:0>width$}{tail}"));
    rows += 1;
    (body, rows)
}

/// The size of /steady.csv, which arrives in 40 pieces over 4 seconds, with its Content-Length.
pub const STEADY_BYTES: usize = 1_000_000;

async fn steady_body() -> Response {
    let (body, _) = steady_csv();
    let bytes = axum::body::Bytes::from(body.into_bytes());
    let length = bytes.len();
    let pieces: Vec<axum::body::Bytes> = (0..40).map(|i| bytes.slice(i * length / 40..(i + 1) * length / 40)).collect();
    let stream = futures_util::stream::iter(pieces).then(|piece| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(piece)
    });
    let headers = [(header::CONTENT_TYPE, "text/csv".to_string()), (header::CONTENT_LENGTH, length.to_string())];
    (headers, axum::body::Body::from_stream(stream)).into_response()
}

fn csv(body: &str) -> Response {
    with_type(body, "text/csv")
}

fn with_type(body: &str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.to_string()).into_response()
}

async fn sync_file(State(state): State<Arc<FixtureState>>, method: axum::http::Method, headers: HeaderMap) -> Response {
    // Downloads are counted; the HEAD of the pre-flight is not one.
    if method != axum::http::Method::HEAD {
        state.sync_hits.fetch_add(1, Ordering::SeqCst);
    }
    let asked = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    let (etag, date) = (asked(header::IF_NONE_MATCH), asked(header::IF_MODIFIED_SINCE));
    if etag.is_some() || date.is_some() {
        state.conditional_hits.fetch_add(1, Ordering::SeqCst);
    }
    let source = state.sync.lock().unwrap();
    if let Some(code) = source.status {
        return StatusCode::from_u16(code).unwrap().into_response();
    }
    let same_etag = !source.etag.is_empty() && etag.as_deref() == Some(source.etag.as_str());
    let same_date = source.last_modified.is_some() && date == source.last_modified;
    if same_etag || same_date {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut r = csv(&source.body);
    if !source.etag.is_empty() {
        r.headers_mut().insert(header::ETAG, HeaderValue::from_str(&source.etag).unwrap());
    }
    if let Some(date) = &source.last_modified {
        r.headers_mut().insert(header::LAST_MODIFIED, HeaderValue::from_str(date).unwrap());
    }
    r
}
