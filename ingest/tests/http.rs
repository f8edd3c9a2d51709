//! `POST /v1/drivers/{driver_id}/locations` with a real HTTP client.

mod common;

use auth::Role;
use common::{TestApp, Walk};
use engine::UserId;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn post(
    app: &TestApp,
    driver_id: &str,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/drivers/{driver_id}/locations",
            app.http_addr
        ))
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn ping(walk: &Walk, k: i64) -> Value {
    serde_json::from_str(&walk.ping(k)).unwrap()
}

#[tokio::test]
async fn a_batch_is_applied_in_ts_order_and_tallied() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let walk = Walk::new();
    let batch = json!([
        ping(&walk, 3),
        ping(&walk, 0),
        "not a ping",
        ping(&walk, 1),
        ping(&walk, 1),
        {"lng": 11.97, "ts": walk.ts(2)},
        ping(&walk, 2),
        {"lat": 57.7, "lng": 11.97, "ts": common::now_ms() + 3_600_000},
    ]);
    let (status, body) = post(
        &app,
        &driver_id.to_string(),
        Some(&token),
        batch.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // In submitted order, ts 0..2 after ts 3 would all have been stale.
    assert_eq!(body["applied"], 4, "{body}");
    assert_eq!(body["stale"], 0, "{body}");
    assert_eq!(body["duplicate"], 1, "{body}");
    let rejected: Vec<(u64, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        [
            (2, "invalid_json"),
            (5, "missing_coordinates"),
            (7, "bad_timestamp")
        ]
    );
    assert!(
        body["rejected"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(app.fix_ts(driver_id), Some(walk.ts(3)));

    // Older than what is applied: stale. An implausible jump: rejected.
    let late = json!([ping(&walk, 2), {"lat": 10.0, "lng": 10.0, "ts": walk.ts(4)}]);
    let (status, body) = post(&app, &driver_id.to_string(), Some(&token), late.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"applied": 0, "stale": 1, "duplicate": 0, "rejected": [
            {"index": 1, "code": "implausible_jump", "message": "the position jumped faster than a vehicle can move"}
        ]})
    );
    assert_eq!(app.fix_ts(driver_id), Some(walk.ts(3)));
    assert_eq!(
        app.counter(
            "hexdash_pings_total",
            &[("path", "http"), ("outcome", "applied")]
        ),
        4
    );
    assert_eq!(app.rejected("http", "implausible_jump"), 1);
}

#[tokio::test]
async fn an_empty_batch_is_fine() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let (status, body) = post(&app, &driver_id.to_string(), Some(&token), "[]").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"applied": 0, "stale": 0, "duplicate": 0, "rejected": []})
    );
}

#[tokio::test]
async fn malformed_requests_get_the_error_body() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let id = driver_id.to_string();
    let check = |status: u16, body: &Value, expected_status: u16, code: &str| {
        assert_eq!(status, expected_status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };
    let (s, b) = post(&app, &id, Some(&token), r#"{"lat":57.7,"lng":11.97}"#).await;
    check(s, &b, 400, "invalid_json");
    let (s, b) = post(&app, &id, Some(&token), "[").await;
    check(s, &b, 400, "invalid_json");
    let (s, b) = post(&app, &id, Some(&token), "").await;
    check(s, &b, 400, "invalid_json");
    let (s, b) = post(&app, "not-a-uuid", Some(&token), "[]").await;
    check(s, &b, 400, "invalid_driver_id");
    let (s, b) = post(&app, &id, None, "[]").await;
    check(s, &b, 401, "missing_token");

    let walk = Walk::new();
    let too_many = Value::Array((0..1001).map(|k| ping(&walk, k)).collect());
    let (s, b) = post(&app, &id, Some(&token), too_many.to_string()).await;
    check(s, &b, 413, "too_many_pings");
    assert_eq!(app.fix_ts(driver_id), None);
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let config = ingest::Config {
        max_batch_body_bytes: 4096,
        ..ingest::Config::default()
    };
    let app = TestApp::start_with(config).await;
    let (driver_id, token) = app.driver();
    let walk = Walk::new();
    let big = Value::Array((0..100).map(|k| ping(&walk, k)).collect()).to_string();
    assert!(big.len() > 4096);
    let (status, body) = post(&app, &driver_id.to_string(), Some(&token), big.clone()).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");

    // Same without a Content-Length (chunked): the limit holds while reading.
    let mut tcp = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
    let head = format!(
        "POST /v1/drivers/{driver_id}/locations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let mut request = head.into_bytes();
    for chunk in big.as_bytes().chunks(512) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything.
    let _ = tcp.write_all(&request).await;
    let mut response = Vec::new();
    let _ = common::within("the HTTP response", tcp.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("payload_too_large"), "{response}");
}

#[tokio::test]
async fn only_the_driver_or_an_admin_may_post() {
    let app = TestApp::start().await;
    let (driver_id, _) = app.driver();
    let (_, other_token) = app.driver();
    let walk = Walk::new();
    let batch = json!([ping(&walk, 0)]).to_string();

    let (status, body) = post(
        &app,
        &driver_id.to_string(),
        Some(&other_token),
        batch.clone(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    let customer = app.token(UserId::from(driver_id.as_uuid()), Role::Customer);
    let (status, _) = post(&app, &driver_id.to_string(), Some(&customer), batch.clone()).await;
    assert_eq!(status, 403);
    assert_eq!(app.fix_ts(driver_id), None);

    let admin = app.token(UserId::new(), Role::Admin);
    let (status, body) = post(&app, &driver_id.to_string(), Some(&admin), batch).await;
    assert_eq!(status, 200);
    assert_eq!(body["applied"], 1);
    assert_eq!(app.fix_ts(driver_id), Some(walk.ts(0)));
}

/// The receive time of a ping without `ts` is the injected clock's now: a
/// manual clock set far from the system clock shows up as the fix time.
#[tokio::test]
async fn a_ping_without_ts_is_stamped_by_the_injected_clock() {
    let clock = clock::ManualClock::new(1_700_000_000_000);
    let app = TestApp::start_with_clock(
        ingest::Config::default(),
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    let (driver_id, token) = app.driver();
    let at = clock.advance(1_234);
    let batch = json!([{"lat": 57.7, "lng": 11.97}]);
    let (status, body) = post(
        &app,
        &driver_id.to_string(),
        Some(&token),
        batch.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], 1, "{body}");
    assert_eq!(app.fix_ts(driver_id), Some(at));
}
