//! URL imports as real servers send files: bodies with a Content-Encoding (gzip, both kinds of deflate,
//! br, zstd), asked for or not; gzip bytes that no header announces; a compression bomb behind the header;
//! and the HEAD pre-flight that refuses a declared size past the limits before the download starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_compression::tokio::bufread::{BrotliEncoder, DeflateEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::AsyncReadExt;

use crate::common::fixture::SAMPLE_CSV;
use crate::common::*;

async fn encoded(kind: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let input = std::io::Cursor::new(bytes.to_vec());
    match kind {
        "gzip" => GzipEncoder::new(input).read_to_end(&mut out).await,
        "zlib" => ZlibEncoder::new(input).read_to_end(&mut out).await,
        "deflate" => DeflateEncoder::new(input).read_to_end(&mut out).await,
        "br" => BrotliEncoder::new(input).read_to_end(&mut out).await,
        "zstd" => ZstdEncoder::new(input).read_to_end(&mut out).await,
        _ => unreachable!(),
    }
    .unwrap();
    out
}

#[derive(Default)]
struct Hits {
    gets: AtomicUsize,
    heads: AtomicUsize,
    asked_encodings: std::sync::Mutex<Vec<String>>,
}

/// `/<kind>/sample.csv` sends the sample CSV encoded as `kind` with its Content-Encoding (`zlib` and `deflate`
/// both as `deflate`); `/bare-gzip/sample.csv` gzip bytes without a header; `/bomb.csv` 200 MB of one
/// byte, gzipped, behind the header; `/declared/<bytes>` a HEAD that declares that many bytes.
async fn serve(
    State(hits): State<Arc<Hits>>,
    Path((kind, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    hits.gets.fetch_add(1, Ordering::Relaxed);
    let asked = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    hits.asked_encodings.lock().unwrap().push(asked);
    let (body, encoding) = match kind.as_str() {
        "bare-gzip" => (encoded("gzip", SAMPLE_CSV.as_bytes()).await, None),
        "bomb" => (encoded("gzip", &vec![b'a'; 200 << 20]).await, Some("gzip")),
        "zlib" | "deflate" => (encoded(&kind, SAMPLE_CSV.as_bytes()).await, Some("deflate")),
        k => (encoded(k, SAMPLE_CSV.as_bytes()).await, Some(k)),
    };
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "text/csv")], body).into_response();
    if let Some(e) = encoding {
        response.headers_mut().insert(header::CONTENT_ENCODING, e.parse().unwrap());
    }
    response
}

async fn declared(State(hits): State<Arc<Hits>>, Path(bytes): Path<u64>, method: axum::http::Method) -> Response {
    if method == axum::http::Method::HEAD {
        hits.heads.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::OK, [(header::CONTENT_LENGTH, bytes.to_string())]).into_response();
    }
    hits.gets.fetch_add(1, Ordering::Relaxed);
    (StatusCode::OK, SAMPLE_CSV).into_response()
}

async fn start() -> (String, Arc<Hits>) {
    let hits = Arc::new(Hits::default());
    let app = Router::new()
        .route("/{kind}/{name}", get(serve))
        .route("/declared/{bytes}", get(declared).head(declared))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

async fn app() -> TestApp {
    TestApp::start_with(|s| s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_content_encoding_is_decoded_and_unannounced_gzip_is_unpacked() {
    let (base, hits) = start().await;
    let app = app().await;
    let u = app.create_user("ana").await;
    for kind in ["gzip", "zlib", "deflate", "br", "zstd", "bare-gzip"] {
        let status = app.import_url(&u, &format!("{base}/{kind}/sample.csv")).await;
        assert_eq!(status["state"], "complete", "{kind}: {status:#}");
        let table = status["table_name"].as_str().unwrap();
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM ana.{table} WHERE GeometryType(the_geom) = 'POINT'")).await,
            3,
            "{kind}"
        );
    }
    // Every request says what it accepts.
    let asked = hits.asked_encodings.lock().unwrap().clone();
    assert!(asked.iter().all(|a| ["gzip", "deflate", "br", "zstd"].iter().all(|e| a.contains(e))), "{asked:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compression_bomb_behind_the_header_fails_6666_on_its_ratio() {
    let (base, _) = start().await;
    let app = app().await;
    let u = app.create_user("ana").await;
    let status = app.import_url(&u, &format!("{base}/bomb/data.csv")).await;
    assert_eq!(status["error_code"], 6666, "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("expands more than 200 times"), "{about}");
    assert!(entries_of(&app.data_dir.join("work")).is_empty(), "the partial download is left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_size_past_the_limits_fails_before_the_download_starts() {
    let (base, hits) = start().await;
    let app = app().await;
    let u = app.create_user("ana").await;
    app.set_limit(&u, "max_file_size", 1_000_000).await;
    let status = app.import_url(&u, &format!("{base}/declared/10000000000")).await;
    assert_eq!(status["error_code"], 6666, "{status:#}");
    // Within the file limit, past what the storage quota has left: 8001.
    app.set_limit(&u, "quota_in_bytes", 500_000).await;
    let status = app.import_url(&u, &format!("{base}/declared/900000")).await;
    assert_eq!(status["error_code"], 8001, "{status:#}");
    assert_eq!((hits.heads.load(Ordering::Relaxed), hits.gets.load(Ordering::Relaxed)), (2, 0), "no GET was sent");
    // A size within both downloads as usual.
    let status = app.import_url(&u, &format!("{base}/declared/100")).await;
    assert_eq!(status["state"], "complete", "{status:#}");
}
