//! `GET /v1/drivers/stream` with a real WebSocket client (tokio-tungstenite).

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth::Role;
use common::{TestApp, Walk, within};
use engine::{DriverId, LatLng, Offer, OfferEnd, OfferId, OrderId, UserId};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn url(app: &TestApp) -> String {
    format!("ws://{}/v1/drivers/stream", app.http_addr)
}

/// Opens the stream with the token in the Authorization header.
async fn open(app: &TestApp, token: &str) -> Result<Socket, tungstenite::Error> {
    let mut request = url(app).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    connect_async(request).await.map(|(socket, _)| socket)
}

/// The status and JSON error body of a refused upgrade.
fn refusal(result: Result<Socket, tungstenite::Error>) -> (u16, serde_json::Value) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                serde_json::from_slice(&body).unwrap_or_default(),
            )
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("upgrade accepted"),
    }
}

/// The next text message as JSON (skipping control frames).
async fn next_json(socket: &mut Socket) -> serde_json::Value {
    loop {
        match within("a WebSocket message", socket.next()).await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Whether a text message arrives within `wait`.
async fn silent_for(socket: &mut Socket, wait: Duration) -> bool {
    tokio::time::timeout(wait, socket.next()).await.is_err()
}

#[tokio::test]
async fn the_stream_requires_a_driver_token() {
    let app = TestApp::start().await;
    let (status, body) = refusal(connect_async(url(&app)).await.map(|(s, _)| s));
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "missing_token");

    let (status, body) = refusal(open(&app, "garbage").await);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_token");

    let customer = app.token(UserId::new(), Role::Customer);
    let (status, body) = refusal(open(&app, &customer).await);
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");

    // A plain GET (no upgrade) gets the JSON error shape too.
    let (_, token) = app.driver();
    let response = reqwest::Client::new()
        .get(format!("http://{}/v1/drivers/stream", app.http_addr))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "websocket_upgrade_required");
}

#[tokio::test]
async fn pings_apply_and_the_connection_is_counted() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let walk = Walk::new();
    let mut socket = open(&app, &token).await.unwrap();
    socket.send(Message::text(walk.ping(0))).await.unwrap();
    app.wait_for_fix(driver_id, walk.ts(0)).await;
    assert_eq!(
        app.metrics
            .gauge("hexdash_connections", &[("kind", "driver_ws")]),
        1.0
    );
    // Good pings are not acknowledged.
    assert!(silent_for(&mut socket, Duration::from_millis(200)).await);

    // The token may also come in the query (browsers cannot set headers).
    let (other_id, other_token) = app.driver();
    let (mut query_socket, _) = connect_async(format!("{}?token={other_token}", url(&app)))
        .await
        .unwrap();
    query_socket
        .send(Message::text(walk.ping(0)))
        .await
        .unwrap();
    app.wait_for_fix(other_id, walk.ts(0)).await;

    socket.close(None).await.unwrap();
    query_socket.close(None).await.unwrap();
    common::wait_until("the stream gauge to drop", || {
        app.metrics
            .gauge("hexdash_connections", &[("kind", "driver_ws")])
            == 0.0
    })
    .await;
    assert_eq!(
        app.counter(
            "hexdash_pings_total",
            &[("path", "ws"), ("outcome", "applied")]
        ),
        2
    );
}

#[tokio::test]
async fn a_bad_ping_gets_an_error_and_the_next_valid_ping_applies() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let walk = Walk::new();
    let mut socket = open(&app, &token).await.unwrap();
    let cases: Vec<(&str, Message)> = vec![
        ("invalid_json", Message::text("not json")),
        (
            "invalid_json",
            Message::text(r#"{"lat":"57.7","lng":11.97}"#),
        ),
        ("missing_coordinates", Message::text(r#"{"lng":11.97}"#)),
        ("out_of_range", Message::text(r#"{"lat":57.7,"lng":181}"#)),
        (
            "bad_motion",
            Message::text(r#"{"lat":57.7,"lng":11.97,"speed":-1}"#),
        ),
        (
            "bad_timestamp",
            Message::text(format!(
                r#"{{"lat":57.7,"lng":11.97,"ts":{}}}"#,
                common::now_ms() + 3_600_000
            )),
        ),
        (
            "too_large",
            Message::text(format!(
                r#"{{"lat":57.7,"lng":11.97,"pad":"{}"}}"#,
                "x".repeat(4000)
            )),
        ),
        ("invalid_json", Message::binary(walk.ping(0).into_bytes())),
    ];
    let count = cases.len();
    for (k, (code, message)) in cases.into_iter().enumerate() {
        let k = k as i64;
        socket.send(message).await.unwrap();
        let reply = next_json(&mut socket).await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], code, "{reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
        socket.send(Message::text(walk.ping(k))).await.unwrap();
        app.wait_for_fix(driver_id, walk.ts(k)).await;
    }
    assert_eq!(
        app.counter(
            "hexdash_pings_total",
            &[("path", "ws"), ("outcome", "rejected")]
        ),
        count as u64
    );
    assert_eq!(app.rejected("ws", "invalid_json"), 3);

    // An implausible jump is refused with its own code.
    socket
        .send(Message::text(format!(
            r#"{{"lat":10.0,"lng":10.0,"ts":{}}}"#,
            walk.ts(count as i64)
        )))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["code"], "implausible_jump");
}

fn offer_for(driver_id: DriverId) -> Offer {
    Offer {
        offer_id: OfferId::new(),
        order_id: OrderId::new(),
        driver_id,
        pickup: LatLng::new(57.70, 11.97).unwrap(),
        dropoff: LatLng::new(57.71, 11.98).unwrap(),
        expires_at_ms: common::now_ms() + 30_000,
        relayed: false,
        stacked_with: None,
    }
}

#[tokio::test]
async fn offers_are_delivered_over_the_driver_stream_only() {
    let app = TestApp::start().await;
    let (a, a_token) = app.driver();
    let (b, b_token) = app.driver();
    let mut socket_a = open(&app, &a_token).await.unwrap();
    let mut socket_b = open(&app, &b_token).await.unwrap();
    // The stream registers right after the upgrade; a ping round trip makes
    // sure both are registered before the offer goes out.
    let walk = Walk::new();
    socket_a.send(Message::text(walk.ping(0))).await.unwrap();
    socket_b.send(Message::text(walk.ping(0))).await.unwrap();
    app.wait_for_fix(a, walk.ts(0)).await;
    app.wait_for_fix(b, walk.ts(0)).await;

    let offer = offer_for(a);
    app.engine.publish_offer(Arc::new(offer.clone()));
    let json = next_json(&mut socket_a).await;
    assert_eq!(
        json,
        serde_json::json!({
            "type": "offer",
            "offer_id": offer.offer_id.to_string(),
            "order_id": offer.order_id.to_string(),
            "pickup": {"lat": 57.70, "lng": 11.97},
            "dropoff": {"lat": 57.71, "lng": 11.98},
            "expires_at": offer.expires_at_ms,
            // The driver pinged at the pickup; pickup → dropoff is 1,261 m.
            "pickup_distance_m": 0,
            "trip_distance_m": 1_261,
        })
    );
    assert!(
        silent_for(&mut socket_b, Duration::from_millis(300)).await,
        "driver B saw A's offer"
    );

    app.engine
        .publish_offer_end(offer.offer_id, a, OfferEnd::Withdrawn);
    let json = next_json(&mut socket_a).await;
    assert_eq!(json["type"], "offer_ended");
    assert_eq!(json["offer_id"], offer.offer_id.to_string());
    assert_eq!(json["reason"], "withdrawn");
    assert_eq!(
        app.counter("hexdash_offers_delivered_total", &[("path", "ws")]),
        2
    );
}

#[tokio::test]
async fn shutdown_closes_the_streams() {
    let app = TestApp::start().await;
    let (_, token) = app.driver();
    let mut socket = open(&app, &token).await.unwrap();
    // Make sure the stream is registered before shutting down.
    socket.send(Message::text("x")).await.unwrap();
    next_json(&mut socket).await;
    app.shutdown.cancel();
    loop {
        match within("a Close frame", socket.next()).await {
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1001));
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("expected a Close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_driver_beyond_its_stream_limit_replaces_the_oldest() {
    let app = TestApp::start().await;
    let (_, token) = app.driver();
    let mut sockets = Vec::new();
    for _ in 0..=ingest::ws::MAX_STREAMS_PER_DRIVER {
        let mut socket = open(&app, &token).await.unwrap();
        // An error round trip proves the stream is registered before the next opens.
        socket.send(Message::text("x")).await.unwrap();
        next_json(&mut socket).await;
        sockets.push(socket);
    }
    match within("the oldest stream to close", sockets[0].next()).await {
        Some(Ok(Message::Close(frame))) => assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008)),
        other => panic!("expected a Close frame, got {other:?}"),
    }
    assert!(silent_for(&mut sockets[1], Duration::from_millis(100)).await);
}
