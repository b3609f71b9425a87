//! The tus 1.0 protocol's own rules, apart from what the handlers do: the version every request but
//! OPTIONS must name (412 otherwise) and every answer names, the headers the routes read and write, and
//! `Upload-Metadata`.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::http::error::ApiError;

pub const VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str = "creation,termination,expiration";
/// The type of a PATCH body.
pub const OFFSET_STREAM: &str = "application/offset+octet-stream";
/// The longest `Upload-Metadata` kept (it is stored, and given back on every HEAD).
pub const METADATA_LIMIT: usize = 4096;

pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
pub const TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
pub const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
pub const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
pub const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
pub const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
pub const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");

/// Around every route of `/api/v1/uploads`: a request of another protocol version (or of none, but
/// OPTIONS, which is how a client asks for the versions) is refused with 412 and the version we speak, and
/// every answer, errors included, says `Tus-Resumable: 1.0.0`.
pub async fn protocol(request: Request, next: Next) -> Response {
    let speaks_ours = request.method() == Method::OPTIONS
        || request.headers().get(&TUS_RESUMABLE).is_some_and(|v| v.as_bytes() == VERSION.as_bytes());
    let mut response = if speaks_ours {
        next.run(request).await
    } else {
        let mut refused = ApiError::TusVersion.into_response();
        refused.headers_mut().insert(TUS_VERSION, HeaderValue::from_static(VERSION));
        refused
    };
    response.headers_mut().insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    response
}

/// A header that must be a non-negative decimal number: None when absent, 400 when it is something else.
pub fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    // u64's parser takes a leading '+', which the protocol's 1*DIGIT does not.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("{name} must be a non-negative whole number of bytes")));
    }
    text.parse().map(Some).map_err(|_| bad(format!("{name} is too large")))
}

/// Whether the request's body is a tus byte stream (a PATCH's only type).
pub fn is_offset_stream(headers: &HeaderMap) -> bool {
    let value = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    value.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(OFFSET_STREAM)
}

/// `Upload-Metadata`: comma-separated pairs of a key and its base64 value (the value may be absent). 400
/// when a pair is malformed or the header is longer than [`METADATA_LIMIT`].
pub fn metadata(raw: &str) -> Result<HashMap<String, Vec<u8>>, ApiError> {
    if raw.len() > METADATA_LIMIT {
        return Err(bad(format!("Upload-Metadata may hold {METADATA_LIMIT} bytes")));
    }
    let mut pairs = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = value.trim();
        if key.is_empty() || value.contains(' ') {
            return Err(bad(format!("Upload-Metadata: '{pair}' is not a key and a base64 value")));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| bad(format!("Upload-Metadata: the value of '{key}' is not base64")))?;
        pairs.insert(key.to_string(), decoded);
    }
    Ok(pairs)
}

/// The client's name for the file, from the metadata keys clients use for it (tus-js-client's examples
/// and Uppy send `filename`, some `name`).
pub fn file_name(metadata: &HashMap<String, Vec<u8>>) -> Option<String> {
    ["filename", "name"]
        .iter()
        .find_map(|key| metadata.get(*key))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .filter(|n| !n.trim().is_empty())
}

/// An instant as HTTP writes dates (`Upload-Expires`).
pub fn http_date(at: time::OffsetDateTime) -> String {
    httpdate::fmt_http_date(SystemTime::from(at))
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest("uploads", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_are_keys_and_base64_values() {
        let parsed = metadata("filename cGxhY2VzLmNzdg==, is_confidential,type dGV4dC9jc3Y=").unwrap();
        assert_eq!(parsed["filename"], b"places.csv");
        assert_eq!(parsed["is_confidential"], b"");
        assert_eq!(file_name(&parsed).as_deref(), Some("places.csv"));
        assert!(metadata("").unwrap().is_empty(), "tuspy sends an empty header");
        assert!(metadata("filename not*base64").is_err());
        assert!(metadata("a b c").is_err());
        assert!(metadata(&"k dg==,".repeat(1000)).is_err());
        let named = metadata("name YS5jc3Y=").unwrap();
        assert_eq!(file_name(&named).as_deref(), Some("a.csv"));
    }

    #[test]
    fn numbers_are_plain_digits() {
        let mut h = HeaderMap::new();
        assert_eq!(number(&h, &UPLOAD_OFFSET).unwrap(), None);
        h.insert(UPLOAD_OFFSET, HeaderValue::from_static("1024"));
        assert_eq!(number(&h, &UPLOAD_OFFSET).unwrap(), Some(1024));
        for bad in ["+5", "-1", "1e3", "", "99999999999999999999999"] {
            h.insert(UPLOAD_OFFSET, HeaderValue::from_str(bad).unwrap());
            assert!(number(&h, &UPLOAD_OFFSET).is_err(), "{bad:?}");
        }
    }
}
