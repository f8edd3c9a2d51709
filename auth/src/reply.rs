//! The JSON error body every HTTP path answers with:
//! `{"error": {"code": "snake_case_code", "message": "human readable"}}`,
//! the contract's [`ErrorBody`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use contract::{ErrorBody, ErrorDetail};

/// A response with `status` and the standard error body.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}
