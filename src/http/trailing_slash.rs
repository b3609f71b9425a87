//! Every route answers with or without a trailing slash, as the reference's clients write them (CARTO's
//! SDK always adds one): the slash is dropped before the request is routed. The documentation keeps its
//! own, which Swagger UI's redirect needs.

use axum::extract::Request;
use axum::http::Uri;

/// The request with its path's trailing slashes removed (the root and `/docs/...` are left alone).
pub fn dropped(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() <= 1 || !path.ends_with('/') || path.starts_with("/docs") {
        return request;
    }
    let trimmed = path.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_string(),
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(uri: &str) -> String {
        dropped(Request::get(uri).body(axum::body::Body::empty()).unwrap()).uri().to_string()
    }

    #[test]
    fn trailing_slashes_go_and_the_rest_stays() {
        assert_eq!(path_of("/api/v1/synchronizations/?api_key=k"), "/api/v1/synchronizations?api_key=k");
        assert_eq!(path_of("/user/ana/api/v1/imports/abc/"), "/user/ana/api/v1/imports/abc");
        assert_eq!(path_of("/api/v1/imports//"), "/api/v1/imports");
        assert_eq!(path_of("/"), "/");
        assert_eq!(path_of("/docs/"), "/docs/");
        assert_eq!(path_of("/api/v1/imports"), "/api/v1/imports");
    }
}
