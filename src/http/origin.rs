//! Refusing cross-site requests that change state (review #15). Browsers attach remembered credentials to
//! requests that another site's page makes, and a plain HTML form can POST a multipart body to any
//! address. A browser says where such a request comes from (`Origin`, `Sec-Fetch-Site`), so a request
//! that changes state and says it comes from another site is refused with 403. Clients that are not
//! browsers (curl, the SDKs) send neither header and are not affected; reads (GET, HEAD, OPTIONS) are
//! let through, since the browser keeps their answer from the other site's page.

use axum::extract::Request;
use axum::http::header::{HOST, ORIGIN};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Middleware: 403 for a state-changing request that a browser made from another site's page.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if let Some(reason) = cross_site(request.method(), request.uri(), request.headers()) {
        return ApiError::Forbidden(format!(
            "This request was refused because it comes from a page of another site ({reason}). \
             Call the API from your own code or from this server's own pages."
        ))
        .into_response();
    }
    next.run(request).await
}

/// Why the request counts as cross-site, or None when it does not (or only reads).
fn cross_site(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return Some("Sec-Fetch-Site: cross-site".into());
    }
    let origin = headers.get(ORIGIN)?;
    let own = headers.get(HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(Authority::as_str));
    let origin_text = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    match own {
        Some(own) if same_origin(&origin_text, own) => None,
        _ => Some(format!("Origin: {origin_text}")),
    }
}

/// Whether `origin` (`scheme://host[:port]`, or `null`) names the host and port the request was sent to.
/// The scheme is not compared: behind a proxy that ends TLS the server cannot know the one the browser
/// used.
fn same_origin(origin: &str, own_authority: &str) -> bool {
    let Ok(origin) = url::Url::parse(origin) else { return false };
    let Ok(own) = own_authority.parse::<Authority>() else { return false };
    let Some(origin_host) = origin.host_str() else { return false };
    // A Host without a port was reached on the default port of the scheme the browser used, which is
    // when `Url::port` is None.
    let same_port = match own.port_u16() {
        Some(port) => origin.port_or_known_default() == Some(port),
        None => origin.port().is_none(),
    };
    origin_host.eq_ignore_ascii_case(own.host()) && same_port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_by_host_and_port() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("https://Geo.Example", "geo.example"));
        assert!(same_origin("https://geo.example", "geo.example:443"));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));
        assert!(!same_origin("https://geo.example:8443", "geo.example"));
        assert!(!same_origin("http://127.0.0.1:1", "127.0.0.1:8080"));
        assert!(!same_origin("https://evil.example", "geo.example"));
        assert!(!same_origin("https://geo.example.evil.example", "geo.example"));
        assert!(!same_origin("null", "geo.example"));
    }

    #[test]
    fn only_state_changes_from_other_sites_are_refused() {
        let uri: Uri = "/api/v1/imports".parse().unwrap();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let evil = headers(&[("host", "geo.example"), ("origin", "https://evil.example")]);
        assert!(cross_site(&Method::POST, &uri, &evil).is_some());
        assert!(cross_site(&Method::DELETE, &uri, &evil).is_some());
        assert!(cross_site(&Method::GET, &uri, &evil).is_none());
        assert!(cross_site(&Method::POST, &uri, &headers(&[("host", "geo.example")])).is_none());
        let fetch = headers(&[("host", "geo.example"), ("sec-fetch-site", "cross-site")]);
        assert!(cross_site(&Method::PUT, &uri, &fetch).is_some());
        let same_site = headers(&[("host", "geo.example"), ("sec-fetch-site", "same-site")]);
        assert!(cross_site(&Method::PUT, &uri, &same_site).is_none());
    }
}
