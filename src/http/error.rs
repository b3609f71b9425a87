//! The API's one error type. Bodies keep the reference's shape, `{"errors": ...}`, because existing clients
//! parse it; database errors become 500s here and nowhere else.

use axum::Json;
use axum::http::header::{CONNECTION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    /// An admin route without the admin token; 401.
    #[error("admin token required")]
    AdminToken,
    /// The key is right, but an operator disabled the account (named); 401.
    #[error("the account {0} is disabled")]
    AccountDisabled(String),
    /// An upload went past what may be sent before the key is known (the key came late, or never).
    #[error("authentication required before {0} bytes of body")]
    KeyFirst(u64),
    #[error("not found")]
    NotFound(&'static str),
    /// Refused whoever the caller is (a cross-site request); the body is `{"errors": "<message>"}`.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A request parameter is wrong; the reference answers `{"errors": {"imports": "<message>"}}`.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// A 400 whose body is `{"errors": "<message>"}` (the Sync Tables API's shape).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("the request body arrived too slowly")]
    RequestTimeout,
    /// An upload's body did not arrive within the upload deadline (in seconds).
    #[error("the upload did not arrive within {0} seconds")]
    UploadDeadline(u64),
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// The user has as much waiting as allowed (unfinished imports, staged bytes); 429.
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    /// The server's disk is below its reserve; 507.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// The request conflicts with the resource's state (cancelling an import that has ended).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The staging store could not take an upload (down, or refusing): 503, to try again later.
    #[error("the staging store failed: {0}")]
    StoreUnavailable(String),
    /// The resource was there and is no more (a resumable upload that expired or became an import); 410.
    #[error("gone: {0}")]
    Gone(String),
    /// A tus request of another protocol version than 1.0.0 (or of none); 412.
    #[error("unsupported Tus-Resumable version")]
    TusVersion,
    /// The body is not of the one type the route takes; 415.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_import(message: impl Into<String>) -> Self {
        ApiError::BadRequest("imports", message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::KeyFirst(_) | ApiError::AccountDisabled(_) | ApiError::AdminToken => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(..) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout | ApiError::UploadDeadline(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::TusVersion => StatusCode::PRECONDITION_FAILED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Database(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self {
            ApiError::Unauthorized => json!({
                "errors": "A valid API key is required: pass it as the api_key parameter or with HTTP Basic authentication."
            }),
            ApiError::AdminToken => json!({
                "errors": "The admin token is required: send it as Authorization: Bearer <GEOIMPORT_ADMIN_TOKEN>."
            }),
            ApiError::AccountDisabled(name) => json!({
                "errors": format!("The account {name} is disabled: its keys are refused until an operator enables it again.")
            }),
            ApiError::KeyFirst(allowance) => json!({
                "errors": format!(
                    "A valid API key is required before more than {allowance} bytes of body: send it as the api_key \
                     query parameter, with HTTP Basic authentication, or as a form field before the file."
                )
            }),
            ApiError::NotFound(what) => json!({ "errors": format!("{what} not found") }),
            ApiError::BadRequest(field, message) => json!({ "errors": { *field: message } }),
            ApiError::Invalid(message) => json!({ "errors": message }),
            ApiError::PayloadTooLarge(message)
            | ApiError::TooManyRequests(message)
            | ApiError::InsufficientStorage(message) => json!({ "errors": { "imports": message } }),
            ApiError::RequestTimeout => {
                json!({ "errors": "The request body arrived too slowly and was cut off." })
            }
            ApiError::UploadDeadline(secs) => json!({
                "errors": format!("The upload was cut off: the server allows {secs} seconds for a whole upload.")
            }),
            ApiError::Unprocessable(message)
            | ApiError::Conflict(message)
            | ApiError::Forbidden(message)
            | ApiError::Gone(message)
            | ApiError::UnsupportedMediaType(message) => json!({ "errors": message }),
            ApiError::TusVersion => json!({
                "errors": "This server speaks tus 1.0.0 only: send Tus-Resumable: 1.0.0 with every request but OPTIONS."
            }),
            ApiError::StoreUnavailable(e) => {
                tracing::error!(error = %e, "the staging store failed while taking an upload");
                json!({ "errors": { "imports": "The server cannot store uploads right now (its staging store is not \
                    answering); nothing was queued. Please try again in a minute." } })
            }
            ApiError::Database(e) => {
                tracing::error!(error = %e, "database error while serving a request");
                json!({ "errors": "Internal error; please try again." })
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error while serving a request");
                json!({ "errors": "Internal error; please try again." })
            }
        };
        // No `WWW-Authenticate: Basic` on a 401: that challenge makes browsers prompt for credentials and
        // then send them with every request, other sites' forms included (review #15). Basic is still
        // accepted from clients that send it unasked.
        let mut response = (self.status(), Json(body)).into_response();
        // These answer a body before it was read to its end: the rest of it may still be on the connection,
        // which the server then closes. Saying so keeps clients from sending their next request on it.
        if matches!(
            self,
            ApiError::KeyFirst(_)
                | ApiError::PayloadTooLarge(_)
                | ApiError::RequestTimeout
                | ApiError::UploadDeadline(_)
                | ApiError::StoreUnavailable(_)
        ) {
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if let ApiError::StoreUnavailable(_) = self {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("60"));
        }
        response
    }
}
