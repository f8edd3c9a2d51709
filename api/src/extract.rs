//! Our versions of axum's `Json`, `Path` and `Query` extractors: the same
//! parsing, but every rejection becomes an [`ApiError`] in our error body
//! (axum's own rejections are plain text, and answer 422 for a body of the
//! wrong shape where the contract says 400).
//!
//! | rejection                                   | status | code                     |
//! |---------------------------------------------|--------|--------------------------|
//! | body not JSON / wrong types / missing field | 400    | `invalid_json`, `invalid_body` |
//! | body not a JSON object                      | 400    | `invalid_body`           |
//! | no `Content-Type: application/json`         | 415    | `unsupported_media_type` |
//! | body over the limit                         | 413    | `payload_too_large`      |
//! | path segment of the wrong type (bad UUID)   | 400    | `invalid_path`           |
//! | query string of the wrong shape             | 400    | `invalid_query`          |
//!
//! Bodies are read by [`strict::from_value`]: structs only from JSON
//! objects, integral floats (`2.0`) as integers, errors in JSON words with
//! the path to the bad value.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub mod strict;

/// A JSON request body.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Any JSON text is a `Value`: this step refuses only what is not
        // JSON at all (or not declared as such, or too large).
        let Json(value) = Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(from_json_rejection)?;
        strict::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
    }
}

fn from_json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::bad_request("invalid_body", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("invalid_json", e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "expected a body with Content-Type: application/json".to_owned(),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// Typed path parameters.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            // Only a route wired to the wrong extractor gets here: our bug.
            Err(PathRejection::MissingPathParams(e)) => {
                Err(ApiError::internal(anyhow::anyhow!("{}", e.body_text())))
            }
            Err(rejection) => Err(ApiError::bad_request("invalid_path", rejection.body_text())),
        }
    }
}

/// A typed query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(from_query_rejection(rejection)),
        }
    }
}

fn from_query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", rejection.body_text())
}

/// The client's address, when the server was started with connect info
/// (the binary does; in-process tests do not). Only the socket peer is
/// used: `X-Forwarded-For` is whatever the client says it is.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// The `Idempotency-Key` request header, if any: 1–255 visible ASCII
/// characters (a UUID is typical), else 400.
#[derive(Debug, Clone, Default)]
pub struct IdempotencyHeader(pub Option<String>);

/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let bad = || {
            ApiError::bad_request(
                "invalid_idempotency_key",
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} visible ASCII characters"
                ),
            )
        };
        let key = value.to_str().map_err(|_| bad())?;
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY_BYTES
            || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(bad());
        }
        Ok(Self(Some(key.to_owned())))
    }
}
