//! Shared harness: the real router on 127.0.0.1:0 with a real engine, and a
//! tokio-tungstenite client that waits on messages with a deadline.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::{Principal, Role, Tokens};
use engine::{DriverId, LatLng, OrderId, OrderStatus, OrderTrack, Ping, RestaurantId, UserId};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use ws_gateway::{Config, Gateway};

/// How long any single expected message may take.
pub const WAIT: Duration = Duration::from_secs(5);
/// A fixed "now" for the engine (Unix ms): tests pass time explicitly.
pub const T0: i64 = 1_763_700_000_000;

pub struct TestApp {
    pub addr: SocketAddr,
    pub engine: engine::Handle,
    pub tokens: Tokens,
    pub gateway: Gateway,
    pub shutdown: CancellationToken,
    /// The fan-out loop, once started.
    pub fanout: Option<JoinHandle<()>>,
}

/// Starts the router and the fan-out.
pub async fn spawn_app(config: Config) -> TestApp {
    let mut app = spawn_app_with(config, engine::Config::default()).await;
    app.start_fanout();
    app
}

/// Starts the router only; the caller starts the fan-out when it wants.
pub async fn spawn_app_with(config: Config, engine_config: engine::Config) -> TestApp {
    let engine = engine::Handle::new(engine_config);
    // The gateway reads no wall clock of its own; token expiry does.
    let tokens =
        Tokens::new(b"ws-gateway-test-secret", 3600).with_clock(Arc::new(clock::SystemClock));
    let gateway = Gateway::new(config, engine.clone(), tokens.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = gateway.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    TestApp {
        addr,
        engine,
        tokens,
        gateway,
        shutdown: CancellationToken::new(),
        fanout: None,
    }
}

impl TestApp {
    pub fn start_fanout(&mut self) {
        let gateway = self.gateway.clone();
        let shutdown = self.shutdown.clone();
        self.fanout = Some(tokio::spawn(gateway.run(shutdown)));
    }

    pub fn url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    pub fn token(&self, user_id: UserId, role: Role) -> String {
        let now_s = self.tokens.now_s();
        self.tokens.issue(Principal { user_id, role }, now_s).token
    }

    /// Connects with the token in the `Authorization` header.
    pub async fn connect(&self, user_id: UserId, role: Role) -> Client {
        let mut request = self.url().into_client_request().unwrap();
        let bearer = format!("Bearer {}", self.token(user_id, role));
        request
            .headers_mut()
            .insert("authorization", bearer.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connects");
        Client { ws }
    }

    /// Returns once the fan-out has handled every engine event so far: a
    /// sentinel order (in Sydney, far from every test box) gets a move and a
    /// status change, and both streams are handled in order.
    pub async fn settle(&self) {
        let customer = UserId::new();
        let driver = DriverId::new();
        let order = self.order(customer, (-33.86, 151.20), (-33.87, 151.21));
        self.ping(driver, -33.870, 151.210, T0);
        self.engine.assign(order.order_id, driver, T0).unwrap();
        let mut c = self.connect(customer, Role::Customer).await;
        c.subscribe_order(order.order_id).await;
        c.expect("subscribed").await;
        c.expect("status").await;
        c.expect("location").await;
        self.ping(driver, -33.871, 151.210, T0 + 1_000);
        self.engine
            .set_order_status(order.order_id, OrderStatus::Preparing, T0 + 1_000)
            .unwrap();
        let (mut moved, mut changed) = (false, false);
        while !(moved && changed) {
            let v = c.next().await;
            moved |= v["type"] == "location" && v["ts"] == T0 + 1_000;
            changed |= v["type"] == "status" && v["status"] == "preparing";
        }
    }

    /// A driver at `(lat, lng)` with a fix at `ts`.
    pub fn ping(&self, driver_id: DriverId, lat: f64, lng: f64, ts: i64) {
        let applied = self.engine.apply_ping(&ping(driver_id, lat, lng, ts), ts);
        assert_eq!(
            applied,
            engine::Applied::Moved,
            "ping {driver_id:?} {lat},{lng} @ {ts}"
        );
    }

    /// An order of `customer` on the live board, placed at `T0`.
    pub fn order(&self, customer: UserId, pickup: (f64, f64), dropoff: (f64, f64)) -> OrderTrack {
        let track = OrderTrack {
            order_id: OrderId::new(),
            customer_id: customer,
            restaurant_id: RestaurantId::new(),
            restaurant_owner_id: UserId::new(),
            status: OrderStatus::Accepted,
            driver_id: None,
            pickup: LatLng::new(pickup.0, pickup.1).unwrap(),
            dropoff: LatLng::new(dropoff.0, dropoff.1).unwrap(),
            updated_at_ms: T0,
            version: 0,
        };
        self.engine.track_order(track.clone());
        track
    }
}

pub fn ping(driver_id: DriverId, lat: f64, lng: f64, ts: i64) -> Ping {
    Ping {
        driver_id,
        position: LatLng::new(lat, lng).unwrap(),
        recorded_at_ms: ts,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn subscribe_order(&mut self, order_id: OrderId) {
        self.send(serde_json::json!({"op": "subscribe", "channel": format!("order:{order_id}")}))
            .await;
    }

    pub async fn subscribe_area(&mut self, bbox: [f64; 4]) {
        self.send(serde_json::json!({"op": "subscribe", "channel": "area", "bbox": bbox}))
            .await;
    }

    /// The next text message, as JSON (pings and pongs skipped).
    pub async fn next(&mut self) -> Value {
        match self.next_frame().await {
            Frame::Json(v) => v,
            Frame::Closed(close) => panic!("socket closed while a message was expected: {close:?}"),
        }
    }

    /// The next text message or the Close frame.
    pub async fn next_frame(&mut self) -> Frame {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a message within the deadline");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Frame::Json(serde_json::from_str(&t).unwrap());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(frame))) => return Frame::Closed(frame),
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(e)) => panic!("socket error: {e}"),
                None => return Frame::Closed(None),
            }
        }
    }

    /// The next message, which must have `type` = `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let v = self.next().await;
        if v["type"] != kind {
            let mut shown = v.to_string();
            shown.truncate(400);
            panic!("expected a {kind} message, got {shown}");
        }
        v
    }

    /// The next `error` message's code.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.expect("error").await;
        assert_eq!(v["code"], code, "{v}");
        v
    }

    /// Skips messages until one satisfies `pred`.
    pub async fn until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let v = self.next().await;
            if pred(&v) {
                return v;
            }
        }
    }
}

#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(Option<CloseFrame>),
}

/// Polls `cond` until it holds or `WAIT` passes.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `fut` with the standard deadline.
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .expect("finished within the deadline")
}

/// The `tungstenite` error of a refused handshake, as (status, body JSON).
pub fn refused(err: tungstenite::Error) -> (u16, Value) {
    match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).unwrap())
                .unwrap_or(Value::Null);
            (status, body)
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// Coordinates survive the JSON round trip to within float parsing error.
pub fn assert_close(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - expected).abs() < 1e-9, "{got} != {expected}");
}
