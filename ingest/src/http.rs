//! HTTP batch ingest: `POST /v1/drivers/{driver_id}/locations` with a JSON
//! array of pings, typically buffered by the app during a connectivity gap.
//!
//! The caller must be that driver or an admin. Pings are validated one by
//! one, applied in `ts` order under one engine lock, and answered with
//! `{"applied","stale","duplicate","rejected":[{"index","code","message"}]}`.
//! A body that is not a JSON array is a 400; too many pings or bytes a 413.
//! Every error uses the shared `{"error":{"code","message"}}` body, never
//! axum's plain-text rejections.

use auth::reply::error_response;
use auth::{Authenticated, Principal, Role};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contract::{BatchResult, RejectedPing};
use engine::{Applied, DriverId, Ping, PingRejection};
use futures_util::StreamExt;

use crate::metrics::Path;
use crate::{AppState, Shared, wire};

pub(crate) async fn post_locations(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    path: Result<axum::extract::Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let shared = &state.0;
    let driver_id = match path.ok().and_then(|p| p.0.parse::<DriverId>().ok()) {
        Some(id) => id,
        None => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_driver_id",
                "driver_id must be a UUID",
            );
        }
    };
    if !may_post_for(principal, driver_id) {
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the driver itself or an admin may post its pings",
        );
    }
    let bytes = match read_body(&headers, body, shared.config.max_batch_body_bytes).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let items = match parse_batch(&shared.config, &bytes) {
        Ok(items) => items,
        Err(response) => return *response,
    };
    Json(apply_batch(shared, driver_id, &items)).into_response()
}

/// The body's pings, not yet decoded one by one: a body that is not a JSON
/// array is a 400, one of more than `max_batch_pings` a 413 (boxed: the
/// refusal is the rare path).
pub(crate) fn parse_batch(
    config: &crate::Config,
    bytes: &[u8],
) -> Result<Vec<serde_json::Value>, Box<Response>> {
    let items: Vec<serde_json::Value> = serde_json::from_slice(bytes).map_err(|_| {
        Box::new(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the body must be a JSON array of pings",
        ))
    })?;
    if items.len() > config.max_batch_pings {
        let message = format!("at most {} pings per batch", config.max_batch_pings);
        return Err(Box::new(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_pings",
            &message,
        )));
    }
    Ok(items)
}

fn may_post_for(principal: Principal, driver_id: DriverId) -> bool {
    match principal.role {
        Role::Admin => true,
        Role::Driver => principal.user_id.as_uuid() == driver_id.as_uuid(),
        Role::Customer | Role::Restaurant => false,
    }
}

/// Reads the body up to `limit` bytes; over it is a 413 in our error shape
/// (axum's own limit would answer in plain text).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Response> {
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the body exceeds {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| {
            error_response(
                StatusCode::BAD_REQUEST,
                "body_read_error",
                "the request body could not be read",
            )
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Validates every ping, applies the valid ones in `ts` order (stable, so
/// equal times keep their submitted order) and tallies the outcomes.
pub(crate) fn apply_batch(
    shared: &Shared,
    driver_id: DriverId,
    items: &[serde_json::Value],
) -> BatchResult {
    let now = shared.now_ms();
    let metrics = shared.metrics.path(Path::Http);
    let mut result = BatchResult::default();
    let mut valid: Vec<(usize, Ping)> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match wire::decode_ping_value(item).and_then(|raw| raw.validate(driver_id, now)) {
            Ok(ping) => valid.push((index, ping)),
            Err(reason) => {
                metrics.rejected(reason);
                result.rejected.push(rejected(index, reason));
            }
        }
    }
    valid.sort_by_key(|(_, p)| p.recorded_at_ms);
    let pings: Vec<Ping> = valid.iter().map(|(_, p)| *p).collect();
    let outcomes = shared.engine.apply_pings(&pings, now);
    for ((index, _), outcome) in valid.iter().zip(outcomes) {
        metrics.outcome(outcome);
        match outcome {
            Applied::Moved => result.applied += 1,
            Applied::Stale => result.stale += 1,
            Applied::Duplicate => result.duplicate += 1,
            Applied::ImplausibleJump => result
                .rejected
                .push(rejected(*index, PingRejection::ImplausibleJump)),
            Applied::RateLimited => result
                .rejected
                .push(rejected(*index, PingRejection::RateLimited)),
        }
    }
    result.rejected.sort_by_key(|r| r.index);
    if !result.rejected.is_empty() {
        tracing::debug!(%driver_id, rejected = result.rejected.len(), "HTTP batch had rejected pings");
    }
    result
}

fn rejected(index: usize, reason: PingRejection) -> RejectedPing {
    RejectedPing {
        index: index as u64,
        code: reason.code().to_owned(),
        message: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::UserId;

    #[test]
    fn who_may_post() {
        let driver = DriverId::new();
        let p = |user_id: UserId, role| Principal { user_id, role };
        assert!(may_post_for(
            p(UserId::from(driver.as_uuid()), Role::Driver),
            driver
        ));
        assert!(may_post_for(p(UserId::new(), Role::Admin), driver));
        assert!(!may_post_for(p(UserId::new(), Role::Driver), driver));
        assert!(!may_post_for(
            p(UserId::from(driver.as_uuid()), Role::Customer),
            driver
        ));
        assert!(!may_post_for(p(UserId::new(), Role::Restaurant), driver));
    }
}
