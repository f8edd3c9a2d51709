//! [`ApiError`]: every way a request can fail, one HTTP status per variant,
//! rendered as the contract's error body
//! `{"error": {"code": "snake_case", "message": "..."}}` (the body
//! `auth::reply` uses), sometimes with one more field inside `error`
//! (`current_status` on an illegal transition, `offer_state` on a stale
//! offer).
//!
//! Client errors carry messages written for clients. Failures of ours
//! ([`ApiError::Internal`]) are logged once here, with their source, and
//! answered with a generic 500 that reveals nothing.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::OrderStatus;
use serde::Serialize;

use crate::store::StoreError;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a value is invalid.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: credentials or tokens are missing, wrong or expired.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// 403: the caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing, or the caller may not know it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state. `detail` adds one
    /// field to the error body (name, value).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        detail: Option<(&'static str, String)>,
    },
    /// 409 `illegal_transition`: the order cannot take this step from where
    /// it is; the body carries `current_status`.
    #[error("cannot move an order from {current:?} to {target:?}")]
    IllegalTransition {
        current: OrderStatus,
        target: OrderStatus,
        reason: Option<&'static str>,
    },
    /// 422: well-formed, but cannot be done as asked (an item out of
    /// stock, an `Idempotency-Key` reused for another request). `detail`
    /// adds one field to the error body.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        detail: Option<(&'static str, String)>,
    },
    /// 429: too many attempts; try again after `retry_after_s`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// 413: the body is larger than the limit.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// 415: the body is not declared as JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: something the request needs is down for now; try again after
    /// `retry_after_s` (also the `Retry-After` header).
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        retry_after_s: u64,
    },
    /// 500: our failure. The source is logged, never sent.
    #[error("internal error: {0:#}")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            detail: None,
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
            detail: None,
        }
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self::Internal(source.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } | Self::IllegalTransition { .. } => StatusCode::CONFLICT,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::IllegalTransition { .. } => "illegal_transition",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            // Logged: the operator wants to know, the client only to wait.
            tracing::warn!(error = %error_chain(&e), "database unavailable; answered 503");
            Self::Unavailable {
                code: "database_unavailable",
                message: "the database cannot be reached right now and the request may not \
                          have been done: retry it (with the same Idempotency-Key where \
                          the route takes one)"
                    .to_owned(),
                retry_after_s: DATABASE_RETRY_AFTER_S,
            }
        } else {
            Self::internal(e)
        }
    }
}

/// `Retry-After` of a 503 `database_unavailable`: a restart of the
/// database takes seconds.
const DATABASE_RETRY_AFTER_S: u64 = 2;

/// The one place a use-case's refusal becomes HTTP: not found 404,
/// credentials that open no session 401, forbidden 403, a conflict or an
/// illegal step 409, a request that cannot be done as asked 422, a store
/// failure a logged 500.
impl From<commerce::Error> for ApiError {
    fn from(e: commerce::Error) -> Self {
        use commerce::Error as E;
        match e {
            E::NotFound(what) => Self::NotFound(what),
            E::Unauthorized { code, reason } => Self::Unauthorized {
                code,
                message: reason,
            },
            E::Forbidden(reason) => Self::Forbidden(reason),
            E::Conflict {
                code,
                reason,
                detail,
            } => Self::Conflict {
                code,
                message: reason,
                detail,
            },
            E::IllegalTransition {
                current,
                target,
                reason,
            } => Self::IllegalTransition {
                current,
                target,
                reason,
            },
            E::Invalid {
                code,
                reason,
                detail,
            } => Self::Unprocessable {
                code,
                message: reason,
                detail,
            },
            E::Unavailable {
                code,
                reason,
                retry_after_s,
            } => Self::Unavailable {
                code,
                message: reason,
                retry_after_s,
            },
            E::Store(e) => Self::from(e),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    /// Extra fields beside `code` and `message`, usually none.
    #[serde(flatten)]
    extra: BTreeMap<&'static str, String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(source) => {
                tracing::error!(
                    error = %error_chain(source.as_ref()),
                    "request failed with an internal error"
                );
                "internal error".to_owned()
            }
            Self::IllegalTransition {
                current,
                target,
                reason,
            } => match reason {
                Some(reason) => format!(
                    "cannot move the order from {} to {}: {reason}",
                    current.as_str(),
                    target.as_str()
                ),
                None => format!(
                    "cannot move the order from {} to {}",
                    current.as_str(),
                    target.as_str()
                ),
            },
            other => other.to_string(),
        };
        let mut extra = BTreeMap::new();
        match &self {
            Self::IllegalTransition { current, .. } => {
                extra.insert("current_status", current.as_str().to_owned());
            }
            Self::Conflict {
                detail: Some((name, value)),
                ..
            }
            | Self::Unprocessable {
                detail: Some((name, value)),
                ..
            } => {
                extra.insert(*name, value.clone());
            }
            Self::TooManyRequests { retry_after_s, .. }
            | Self::Unavailable { retry_after_s, .. } => {
                extra.insert("retry_after_s", retry_after_s.to_string());
            }
            _ => {}
        }
        let body = Body {
            error: Detail {
                code: self.code(),
                message: &message,
                extra,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyRequests { retry_after_s, .. }
        | Self::Unavailable { retry_after_s, .. } = &self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_s),
            );
        }
        response
    }
}

/// The answer for paths no route matches, in our error body. The binary
/// installs it as the fallback of the merged router (a router can have only
/// one fallback, so `router()` leaves it unset).
pub async fn not_found_fallback() -> ApiError {
    ApiError::NotFound("route")
}

/// The answer for a known path with an unsupported method.
pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::MethodNotAllowed
}

/// An error and its causes on one line (`a: b: c`), leaving out each cause
/// whose text its parent already shows. sqlx (and our `StoreError` around
/// it) print their source inside their own message *and* return it as the
/// source, so `{:#}` would state a database error two or three times.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut parent = line.clone();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !parent.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        parent = text;
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database failure as the stores return it: our `StoreError` around
    /// sqlx's error around the I/O error, each repeating its source.
    fn database_failure() -> anyhow::Error {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk is full");
        anyhow::Error::new(StoreError::Database(sqlx::Error::Io(io))).context("saving the order")
    }

    #[test]
    fn error_chain_states_each_cause_once() {
        let check = |error: &anyhow::Error, expected: &str| {
            assert_eq!(error_chain(error.as_ref()), expected);
        };
        check(
            &database_failure(),
            "saving the order: database error: error communicating with database: disk is full",
        );
        check(
            &anyhow::anyhow!("root").context("middle").context("top"),
            "top: middle: root",
        );
        check(&anyhow::anyhow!("alone"), "alone");
    }

    /// Captures what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_internal_error_is_logged_once_with_its_root_cause_once() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let _ = ApiError::internal(database_failure()).into_response();
        });
        let log = String::from_utf8(captured.0.lock().clone()).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert_eq!(log.matches("disk is full").count(), 1, "{log}");
        assert!(log.contains("saving the order"), "{log}");
    }

    async fn body_of(e: ApiError) -> (StatusCode, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn bodies() {
        let (s, b) = body_of(ApiError::bad_request("invalid_email", "bad email")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            b,
            serde_json::json!({"error": {"code": "invalid_email", "message": "bad email"}})
        );

        let (s, b) = body_of(ApiError::IllegalTransition {
            current: OrderStatus::Delivered,
            target: OrderStatus::Accepted,
            reason: None,
        })
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(b["error"]["code"], "illegal_transition");
        assert_eq!(b["error"]["current_status"], "delivered");

        let (s, b) = body_of(ApiError::Conflict {
            code: "offer_not_pending",
            message: "gone".into(),
            detail: Some(("offer_state", "expired".into())),
        })
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(b["error"]["offer_state"], "expired");

        let (s, b) = body_of(ApiError::internal(anyhow::anyhow!("disk on fire"))).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            b,
            serde_json::json!({"error": {"code": "internal", "message": "internal error"}})
        );
    }
}
