//! Bodies sent with a `Content-Encoding` (gzip, deflate, br, zstd: what S3 objects uploaded compressed,
//! CDNs and portals send, asked for or not) decoded while they stream, with `async-compression` (the
//! decoders reqwest itself uses). The bytes on the wire are counted beside the decoded ones, so that the
//! caller applies the size cap to the file and the archive-bomb ratio to both.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};

use crate::errors::{ImportError, codes};

/// What requests say they accept.
pub const ACCEPTED: &str = "gzip, deflate, br, zstd";

/// A body expanding more than this many times, past [`RATIO_MIN_BYTES`], is a bomb (as archives are).
pub const MAX_RATIO: u64 = 200;
/// Below this size nothing counts as a bomb, whatever its ratio (tiny files compress absurdly well).
pub const RATIO_MIN_BYTES: u64 = 8 << 20;

/// The body as the file it carries, and a count of the bytes that came on the wire.
pub struct Decoded {
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    pub wire_bytes: Arc<AtomicU64>,
    /// The encoding that was undone, if any.
    pub encoding: Option<String>,
}

/// Wraps `body` in the decoder its `Content-Encoding` calls for. Encodings geoimport cannot undo fail with
/// 1002 (the file as sent is no format we read).
pub fn decode(
    content_encoding: Option<&str>,
    body: impl AsyncRead + Send + Unpin + 'static,
) -> Result<Decoded, ImportError> {
    let wire_bytes = Arc::new(AtomicU64::new(0));
    let counted = BufReader::new(Counted { inner: body, count: wire_bytes.clone() });
    let encoding = content_encoding.map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty() && e != "identity");
    let reader: Pin<Box<dyn AsyncRead + Send>> = match encoding.as_deref() {
        None => Box::pin(counted),
        Some("gzip" | "x-gzip") => {
            let mut d = GzipDecoder::new(counted);
            // Files made by concatenating gzip members (as `cat a.gz b.gz` does) are one file.
            d.multiple_members(true);
            Box::pin(d)
        }
        Some("deflate") => Box::pin(Deflate::new(counted)),
        Some("br") => Box::pin(BrotliDecoder::new(counted)),
        Some("zstd") => Box::pin(ZstdDecoder::new(counted)),
        Some(other) => {
            return Err(ImportError::new(
                codes::UNSUPPORTED_FORMAT,
                format!("the server sent the file encoded as '{other}', which geoimport cannot decode"),
            ));
        }
    };
    Ok(Decoded { reader, wire_bytes, encoding })
}

/// HTTP's "deflate" is zlib (RFC 1950), but servers also send raw deflate (RFC 1951): the first two bytes
/// tell which, as browsers do.
enum Deflate<R: AsyncBufRead> {
    Undecided(Option<R>),
    Zlib(ZlibDecoder<R>),
    Raw(DeflateDecoder<R>),
}

impl<R: AsyncBufRead + Unpin> Deflate<R> {
    fn new(inner: R) -> Self {
        Deflate::Undecided(Some(inner))
    }
}

/// A zlib header: compression method 8 and a check over both bytes.
fn is_zlib(head: &[u8]) -> bool {
    matches!(head, [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

impl<R: AsyncBufRead + Unpin> AsyncRead for Deflate<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        loop {
            match &mut *self {
                Deflate::Zlib(d) => return Pin::new(d).poll_read(cx, buf),
                Deflate::Raw(d) => return Pin::new(d).poll_read(cx, buf),
                Deflate::Undecided(inner) => {
                    let reader = inner.as_mut().expect("decided once");
                    let head = std::task::ready!(Pin::new(reader).poll_fill_buf(cx))?;
                    // (A header split across reads of one byte is not worth the care: servers send more.)
                    let zlib = is_zlib(head);
                    let reader = inner.take().expect("decided once");
                    *self = if zlib {
                        Deflate::Zlib(ZlibDecoder::new(reader))
                    } else {
                        Deflate::Raw(DeflateDecoder::new(reader))
                    };
                }
            }
        }
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.count.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        polled
    }
}

/// A decoded body growing past what its wire bytes can honestly hold.
pub fn check_ratio(decoded: u64, wire: u64, encoding: &str) -> Result<(), ImportError> {
    if decoded > RATIO_MIN_BYTES && decoded / wire.max(1) > MAX_RATIO {
        return Err(ImportError::new(
            codes::DATASET_TOO_BIG,
            format!(
                "the {encoding} body expands more than {MAX_RATIO} times ({decoded} bytes from {wire}), which only \
                 compression bombs do"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    async fn read_all(encoding: Option<&str>, body: Vec<u8>) -> Result<(Vec<u8>, u64), std::io::Error> {
        let mut d = decode(encoding, std::io::Cursor::new(body)).unwrap();
        let mut out = Vec::new();
        d.reader.read_to_end(&mut out).await?;
        Ok((out, d.wire_bytes.load(Ordering::Relaxed)))
    }

    fn compressed(kind: &str, text: &[u8]) -> Vec<u8> {
        use flate2::Compression;
        match kind {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
                e.write_all(text).unwrap();
                e.finish().unwrap()
            }
            "zlib" => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
                e.write_all(text).unwrap();
                e.finish().unwrap()
            }
            _ => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
                e.write_all(text).unwrap();
                e.finish().unwrap()
            }
        }
    }

    #[tokio::test]
    async fn gzip_and_both_kinds_of_deflate_decode_and_the_wire_is_counted() {
        let text = b"a,b\n1,2\n".repeat(100);
        for (encoding, kind) in [("gzip", "gzip"), ("deflate", "zlib"), ("deflate", "raw"), ("GZIP", "gzip")] {
            let body = compressed(kind, &text);
            let (out, wire) = read_all(Some(encoding), body.clone()).await.unwrap();
            assert_eq!(out, text, "{encoding} {kind}");
            assert_eq!(wire, body.len() as u64);
        }
        let (out, _) = read_all(Some("identity"), text.clone()).await.unwrap();
        assert_eq!(out, text);
    }

    #[tokio::test]
    async fn a_corrupt_body_is_an_error_and_an_unknown_encoding_is_refused() {
        assert!(read_all(Some("gzip"), b"not gzip at all".to_vec()).await.is_err());
        let refused = decode(Some("compress"), std::io::Cursor::new(Vec::new())).err().unwrap();
        assert_eq!(refused.code, codes::UNSUPPORTED_FORMAT);
    }

    #[test]
    fn the_ratio_counts_only_past_its_floor() {
        assert!(check_ratio(RATIO_MIN_BYTES, 1, "gzip").is_ok());
        assert!(check_ratio(RATIO_MIN_BYTES + 1, 1, "gzip").is_err());
        assert!(check_ratio(100 << 20, 1 << 20, "gzip").is_ok());
    }
}
