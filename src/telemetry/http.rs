//! One middleware on the whole HTTP router: every request is counted and
//! timed by method, route template and status, and logged as one line at
//! DEBUG under the target [`LOG_TARGET`].
//!
//! Labels are bounded: the route is the matched template
//! (`/v1/orders/{order_id}`, never the raw path), a path no route matches is
//! `unmatched`, and a method outside the standard ones is `other`, so a
//! client cannot grow the label set.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The tracing target of the request log, so an operator can turn it on
/// alone: `HEXDASH_LOG=info,hexdash::http=debug`.
pub const LOG_TARGET: &str = "hexdash::http";
/// Requests answered, by `method`, `route` and `status`.
pub const REQUESTS: &str = "hexdash_http_requests_total";
/// Time to the response head, by `method`, `route` and `status`.
pub const DURATION: &str = "hexdash_http_request_duration_seconds";
/// The `route` label of a path no route matches.
const UNMATCHED: &str = "unmatched";

/// Histogram buckets of [`DURATION`], seconds: from a cached read (~1 ms)
/// to a password hash (~100 ms) and slow database work (seconds).
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The middleware (`axum::middleware::from_fn(track)`). A WebSocket
/// upgrade counts when its 101 is answered; the session that follows is
/// the gateway's to measure.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    // The path without its query: query strings carry tokens (`/v1/ws?token=`).
    let path = request.uri().path().to_owned();
    let span = tracing::debug_span!(target: LOG_TARGET, "request", method, route = %route);
    let response = next.run(request).instrument(span).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let labels = [
        ("method", method.to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(DURATION, &labels).record(elapsed.as_secs_f64());
    tracing::debug!(
        target: LOG_TARGET,
        method,
        route = %route,
        path = %path,
        status,
        duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

/// The standard methods by name, anything else (extension methods a client
/// may invent) as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        let check = |method: &str, expected: &str| {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(method_label(&method), expected, "{method}");
        };
        check("GET", "GET");
        check("DELETE", "DELETE");
        check("BREW", "other");
        check("X-ANYTHING-1234", "other");
    }
}
