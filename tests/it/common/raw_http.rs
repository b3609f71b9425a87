//! Talking HTTP by hand, as hostile clients do: raw connections, half-sent requests, chunked bodies that
//! never end, answers read off the socket.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http_client;

pub async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset); how long after `since` that happened, or
/// None if it was still open `limit` after `since`.
pub async fn closed_within(stream: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
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
pub fn unpooled_client() -> reqwest::Client {
    let _ = http_client();
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap()
}

/// Reads one HTTP/1.1 response (with a Content-Length) from `stream`: its status and body.
pub async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    try_read_response(stream).await.expect("the connection closed before a whole response")
}

/// Reads one HTTP/1.1 response (with a Content-Length), or None if the connection ends first.
pub async fn try_read_response(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<(u16, String)> {
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
pub struct Outcome {
    pub answer: Option<(u16, String)>,
    pub sent: u64,
}

/// Sends `head` (a request line and headers announcing a chunked body), then `chunk(0)`, `chunk(1)`...
/// as chunks for as long as they come and the server reads them, while reading the answer. A chunk is
/// sent after its delay.
pub async fn send_chunked(
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
pub fn multipart_head(path: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=X\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
}

/// One multipart text field, with its leading boundary.
pub fn text_part(name: &str, value: &[u8]) -> Vec<u8> {
    [format!("--X\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(), value, b"\r\n"].concat()
}

/// A multipart file field named `file`, with its leading boundary.
pub fn file_part(file_name: &str, content: &[u8]) -> Vec<u8> {
    [
        format!("--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\r\n").as_bytes(),
        content,
        b"\r\n",
    ]
    .concat()
}

pub const MB: u64 = 1 << 20;
