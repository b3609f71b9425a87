//! A file sent to the server for an import. Small files go in one multipart request; a file larger than
//! the resumable threshold goes as a resumable upload (tus 1.0, `/api/v1/uploads`) in pieces, each retried
//! from where the server says it stands after a broken link, then imported with `upload_id`. Either way
//! the bytes stream from disk (memory stays flat) through the progress bar.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use indicatif::ProgressBar;
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::ClientError;
use super::api::{Api, queue_id};

/// The size of each piece of a resumable upload.
const PIECE_BYTES: u64 = 8 << 20;
/// Attempts at one piece before giving up (the link may drop that often in a row).
const ATTEMPTS: u32 = 5;

/// Sends the file at `path` for an import with `params`; the import's id.
pub async fn send_file(
    api: &Api,
    path: &Path,
    params: &[(String, String)],
    resumable_above: u64,
    bar: &ProgressBar,
) -> Result<String, ClientError> {
    let local = |e: std::io::Error| ClientError::Local(format!("{}: {e}", path.display()));
    let file = tokio::fs::File::open(path).await.map_err(local)?;
    let len = file.metadata().await.map_err(local)?.len();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("upload").to_string();
    bar.set_length(len);
    if len > resumable_above {
        let upload = resumable(api, file, len, &name, bar).await?;
        let mut body = serde_json::Map::new();
        body.insert("upload_id".into(), upload.into());
        body.extend(params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))));
        return queue_id(&api.json(api.request(Method::POST, "/api/v1/imports").json(&body)).await?);
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(bar.wrap_async_read(file), 64 << 10);
    let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len).file_name(name);
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let request = api
        .request(Method::POST, &format!("/api/v1/imports?{query}"))
        .multipart(reqwest::multipart::Form::new().part("file", part));
    queue_id(&api.json(request).await?)
}

/// Sends `file` as a resumable upload; its id.
async fn resumable(
    api: &Api,
    mut file: tokio::fs::File,
    len: u64,
    name: &str,
    bar: &ProgressBar,
) -> Result<String, ClientError> {
    let metadata = format!("filename {}", base64::engine::general_purpose::STANDARD.encode(name));
    let created = api
        .send(
            api.request(Method::POST, "/api/v1/uploads")
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Length", len)
                .header("Upload-Metadata", metadata),
        )
        .await?;
    let location = created
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| ClientError::Local("the server made an upload without saying where (no Location)".into()))?;
    let path = match location.find("/api/") {
        Some(at) => location[at..].to_string(),
        None => location.to_string(),
    };
    let id = path.rsplit('/').next().unwrap_or_default().to_string();
    let mut offset = 0;
    let mut failures = 0;
    while offset < len {
        let piece = PIECE_BYTES.min(len - offset);
        let mut bytes = vec![0; piece as usize];
        let local = |e: std::io::Error| ClientError::Local(format!("reading {name}: {e}"));
        file.seek(std::io::SeekFrom::Start(offset)).await.map_err(local)?;
        file.read_exact(&mut bytes).await.map_err(local)?;
        let sent = api
            .send(
                api.request(Method::PATCH, &path)
                    .header("Tus-Resumable", "1.0.0")
                    .header("Upload-Offset", offset)
                    .header(reqwest::header::CONTENT_TYPE, "application/offset+octet-stream")
                    .body(bytes),
            )
            .await;
        match sent {
            Ok(answer) => {
                offset = number(&answer, "Upload-Offset").unwrap_or(offset + piece);
                failures = 0;
            }
            // A conflict or a broken link: ask where the server stands and go on from there.
            Err(e @ (ClientError::Unreachable { .. } | ClientError::Refused { status: 409 | 500.., .. })) => {
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(500 << failures)).await;
                let head = api.send(api.request(Method::HEAD, &path).header("Tus-Resumable", "1.0.0")).await?;
                offset = number(&head, "Upload-Offset").unwrap_or(offset);
            }
            Err(e) => return Err(e),
        }
        bar.set_position(offset);
    }
    Ok(id)
}

fn number(response: &reqwest::Response, header: &str) -> Option<u64> {
    response.headers().get(header)?.to_str().ok()?.parse().ok()
}
