//! Errors of reading a request body, by their cause: the one place that knows both the API's answers and
//! the upload guard's breaches.

use super::error::ApiError;
use super::imports::guard::GuardError;

/// Errors of reading a request body, mapped by their cause: a length limit is 413, a body timeout 408,
/// and an upload guard's breach what [`GuardError::api_error`] says.
pub fn body_error(e: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(answer) = c.downcast_ref::<GuardError>().and_then(|g| g.api_error()) {
            return answer;
        }
        if c.downcast_ref::<tower_http::timeout::TimeoutError>().is_some() {
            return ApiError::RequestTimeout;
        }
        if c.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            return ApiError::PayloadTooLarge("The request body is larger than allowed.".into());
        }
        cause = c.source();
    }
    ApiError::bad_import(format!("the request body could not be read: {e}"))
}
