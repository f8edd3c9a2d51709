//! The embedded broker with real MQTT clients (rumqttc): authentication, the
//! topic ACL, bad pings, offers, throughput past rumqttd's Unschedule point,
//! startup errors and shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth::Role;
use common::{TestApp, WAIT, Walk, wait_until, within};
use engine::{DriverId, LatLng, Offer, OfferId, OrderId, UserId};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
};
use tokio::sync::mpsc;

/// A connected MQTT client whose event loop runs in a task; what it
/// receives comes out of `events`, and a connection error ends the stream.
struct Client {
    mqtt: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
}

impl Client {
    /// Connects and waits for the CONNACK; `Err` carries why it failed.
    async fn connect(
        app: &TestApp,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Result<Client, String> {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", app.mqtt_port());
        options.set_credentials(username, password);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(64 * 1024, 64 * 1024);
        let (mqtt, eventloop) = AsyncClient::new(options, 4096);
        let mut client = Client {
            mqtt,
            events: spawn_event_loop(eventloop),
        };
        loop {
            match client.next_event().await {
                Some(Ok(Event::Incoming(Packet::ConnAck(ack))))
                    if ack.code == ConnectReturnCode::Success =>
                {
                    return Ok(client);
                }
                Some(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    return Err(format!("refused: {:?}", ack.code));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Err("event loop ended".into()),
            }
        }
    }

    async fn driver(app: &TestApp, driver_id: DriverId, token: &str) -> Client {
        Client::connect(app, "phone", &driver_id.to_string(), token)
            .await
            .expect("driver connects")
    }

    async fn next_event(&mut self) -> Option<Result<Event, String>> {
        within("an MQTT event", self.events.recv()).await
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.mqtt
            .publish(topic, QoS::AtMostOnce, false, payload)
            .await
            .unwrap();
    }

    async fn subscribe(&mut self, filter: &str) -> Result<(), String> {
        self.mqtt.subscribe(filter, QoS::AtMostOnce).await.unwrap();
        loop {
            match self.next_event().await {
                Some(Ok(Event::Incoming(Packet::SubAck(_)))) => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Err("event loop ended".into()),
            }
        }
    }

    /// The next PUBLISH received within `wait`, if any.
    async fn next_publish(&mut self, wait: Duration) -> Option<rumqttc::Publish> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok(Event::Incoming(Packet::Publish(p))))) => return Some(p),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("connection failed while waiting for a publish: {e}"),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Waits until the connection fails (the broker closed it).
    async fn closed(&mut self) -> String {
        loop {
            match self.next_event().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return e,
                None => return "event loop ended".into(),
            }
        }
    }
}

fn spawn_event_loop(mut eventloop: EventLoop) -> mpsc::UnboundedReceiver<Result<Event, String>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(event) => {
                    if tx.send(Ok(event)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    break;
                }
            }
        }
    });
    rx
}

fn location(driver_id: DriverId) -> String {
    format!("drivers/{driver_id}/location")
}

fn offers(driver_id: DriverId) -> String {
    format!("drivers/{driver_id}/offers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_ping_applies_and_the_connection_is_counted() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let client = Client::driver(&app, driver_id, &token).await;
    let walk = Walk::new();
    client.publish(&location(driver_id), walk.ping(0)).await;
    app.wait_for_fix(driver_id, walk.ts(0)).await;

    let view = app.engine.driver(driver_id).unwrap();
    let fix = view.fix.unwrap();
    assert!((fix.position.lat - 57.70).abs() < 1e-9 && (fix.position.lng - 11.97).abs() < 1e-9);
    assert_eq!(fix.speed_mps, Some(8.3));
    assert_eq!(
        app.counter(
            "hexdash_pings_total",
            &[("path", "mqtt"), ("outcome", "applied")]
        ),
        1
    );
    assert_eq!(
        app.metrics
            .gauge("hexdash_connections", &[("kind", "mqtt")]),
        1.0
    );

    client.mqtt.disconnect().await.unwrap();
    wait_until("the MQTT gauge to drop", || {
        app.metrics
            .gauge("hexdash_connections", &[("kind", "mqtt")])
            == 0.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_ping_is_counted_and_the_next_valid_ping_still_applies() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let (other_id, other_token) = app.driver();
    let client = Client::driver(&app, driver_id, &token).await;
    let other = Client::driver(&app, other_id, &other_token).await;
    let walk = Walk::new();
    other.publish(&location(other_id), walk.ping(0)).await;
    app.wait_for_fix(other_id, walk.ts(0)).await;

    let oversized = format!(r#"{{"lat":57.7,"lng":11.97,"pad":"{}"}}"#, "x".repeat(2000));
    let other_topic = location(other_id);
    let own_topic = location(driver_id);
    let cases: [(&str, &str, String); 7] = [
        ("not json", "invalid_json", "not json".into()),
        (
            "missing lat",
            "missing_coordinates",
            r#"{"lng":11.97}"#.into(),
        ),
        (
            "out of range",
            "out_of_range",
            r#"{"lat":91,"lng":11.97}"#.into(),
        ),
        (
            "overflowing number",
            "invalid_json",
            r#"{"lat":1e999,"lng":11.97}"#.into(),
        ),
        (
            "string coordinate",
            "invalid_json",
            r#"{"lat":"57.7","lng":11.97}"#.into(),
        ),
        ("oversized", "too_large", oversized),
        ("another driver's topic", "wrong_driver", walk.ping(1000)),
    ];
    for (k, (what, reason, payload)) in cases.into_iter().enumerate() {
        let k = k as i64 + 1;
        let before = app.rejected("mqtt", reason);
        let topic = if reason == "wrong_driver" {
            &other_topic
        } else {
            &own_topic
        };
        client.publish(topic, payload).await;
        client.publish(&own_topic, walk.ping(k)).await;
        app.wait_for_fix(driver_id, walk.ts(k)).await;
        assert_eq!(
            app.rejected("mqtt", reason),
            before + 1,
            "{what} counted as {reason}"
        );
    }
    // The foreign publish did not move the other driver.
    assert_eq!(app.fix_ts(other_id), Some(walk.ts(0)));
    assert_eq!(
        app.counter(
            "hexdash_pings_total",
            &[("path", "mqtt"), ("outcome", "rejected")]
        ),
        7
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_qos1_publish_is_acked_and_dropped() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let (other_id, _) = app.driver();
    let mut client = Client::driver(&app, driver_id, &token).await;
    let walk = Walk::new();
    client
        .mqtt
        .publish(location(other_id), QoS::AtLeastOnce, false, walk.ping(0))
        .await
        .unwrap();
    loop {
        match client.next_event().await {
            Some(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
            Some(Ok(_)) => {}
            other => panic!("expected a PUBACK, got {other:?}"),
        }
    }
    client.publish(&location(driver_id), walk.ping(1)).await;
    app.wait_for_fix(driver_id, walk.ts(1)).await;
    assert_eq!(app.fix_ts(other_id), None);
    assert_eq!(app.rejected("mqtt", "wrong_driver"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_foreign_publishes_close_the_connection() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let mut client = Client::driver(&app, driver_id, &token).await;
    for _ in 0..=ingest::mqtt::acl::MAX_WRONG_TOPIC_PUBLISHES {
        client.publish("drivers/x/location", "{}").await;
    }
    client.closed().await;
    assert_eq!(
        app.counter(
            "hexdash_mqtt_refused_total",
            &[("reason", "repeated_wrong_driver")]
        ),
        1
    );
}

/// Connects with rumqttc (MQTT 3.1.1, keep-alive 5 s) and returns the
/// broker's answer: `Ok` for an accepting CONNACK, otherwise the error
/// rumqttc reports (a refusing CONNACK is `ConnectionRefused(code)`, a
/// silent close an I/O error).
async fn connect_answer(
    app: &TestApp,
    credentials: Option<(&str, &str)>,
) -> Result<(), ConnectionError> {
    connect_answer_with(app, credentials, Duration::from_secs(5)).await
}

async fn connect_answer_with(
    app: &TestApp,
    credentials: Option<(&str, &str)>,
    keep_alive: Duration,
) -> Result<(), ConnectionError> {
    let mut options = MqttOptions::new("phone", "127.0.0.1", app.mqtt_port());
    if let Some((username, password)) = credentials {
        options.set_credentials(username, password);
    }
    options.set_keep_alive(keep_alive);
    let (_client, mut eventloop) = AsyncClient::new(options, 10);
    loop {
        match within("the broker's answer to CONNECT", eventloop.poll()).await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connects_get_a_connack_with_the_reason() {
    use ConnectReturnCode::{BadUserNamePassword, NotAuthorized};
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let (other_id, _) = app.driver();
    let (banned_id, banned_token) = app.driver();
    app.tokens.ban(UserId::from(banned_id.as_uuid()));
    let customer = UserId::new();
    let restaurant = UserId::new();
    let admin = UserId::new();
    let issue = |tokens: &auth::Tokens, user_id: UserId, issued_at_s: u64| {
        tokens
            .issue(
                auth::Principal {
                    user_id,
                    role: Role::Driver,
                },
                issued_at_s,
            )
            .token
    };
    let driver_user = UserId::from(driver_id.as_uuid());
    let foreign = issue(
        &auth::Tokens::new(b"another-secret", 3600),
        driver_user,
        common::now_s(),
    );
    // Issued two lifetimes ago: past its expiry and any leeway.
    let expired = issue(&app.tokens, driver_user, common::now_s() - 2 * 3600);
    let d = driver_id.to_string();
    /// What is tried, the credentials, the CONNACK code, the counter's reason.
    type Case = (
        &'static str,
        Option<(String, String)>,
        ConnectReturnCode,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "no credentials",
            None,
            BadUserNamePassword,
            "missing_credentials",
        ),
        (
            "wrong password",
            Some((d.clone(), "not-a-token".into())),
            BadUserNamePassword,
            "invalid_token",
        ),
        (
            "empty password",
            Some((d.clone(), String::new())),
            BadUserNamePassword,
            "invalid_token",
        ),
        (
            "token signed with another key",
            Some((d.clone(), foreign)),
            BadUserNamePassword,
            "invalid_token",
        ),
        (
            "expired token",
            Some((d.clone(), expired)),
            BadUserNamePassword,
            "token_expired",
        ),
        (
            "username is another driver",
            Some((other_id.to_string(), token.clone())),
            BadUserNamePassword,
            "token_of_another_user",
        ),
        (
            "username is not a user id",
            Some(("driver-7".into(), token.clone())),
            BadUserNamePassword,
            "bad_username",
        ),
        (
            "customer token",
            Some((customer.to_string(), app.token(customer, Role::Customer))),
            NotAuthorized,
            "not_a_driver",
        ),
        (
            "restaurant token",
            Some((
                restaurant.to_string(),
                app.token(restaurant, Role::Restaurant),
            )),
            NotAuthorized,
            "not_a_driver",
        ),
        (
            "admin token",
            Some((admin.to_string(), app.token(admin, Role::Admin))),
            NotAuthorized,
            "not_a_driver",
        ),
        (
            "banned driver",
            Some((banned_id.to_string(), banned_token)),
            NotAuthorized,
            "banned",
        ),
    ];
    for (what, credentials, code, _) in &cases {
        let credentials = credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        match connect_answer(&app, credentials).await {
            Err(ConnectionError::ConnectionRefused(got)) => assert_eq!(got, *code, "{what}"),
            other => panic!("{what}: expected CONNACK {code:?}, got {other:?}"),
        }
    }
    let mut expected = std::collections::HashMap::<&str, u64>::new();
    for (_, _, _, reason) in &cases {
        *expected.entry(reason).or_default() += 1;
    }
    for (reason, count) in expected {
        assert_eq!(
            app.counter("hexdash_mqtt_connects_refused_total", &[("reason", reason)]),
            count,
            "{reason}"
        );
    }
    assert_eq!(
        app.metrics
            .gauge("hexdash_connections", &[("kind", "mqtt")]),
        0.0
    );
    // Keep-alive 0 (which rumqttd does not serve) is refused with code 2,
    // as Mosquitto does.
    match connect_answer_with(&app, Some((&d, &token)), Duration::ZERO).await {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, ConnectReturnCode::BadClientId);
        }
        other => panic!("keep-alive 0: expected CONNACK 2, got {other:?}"),
    }
    assert_eq!(
        app.counter(
            "hexdash_mqtt_connects_refused_total",
            &[("reason", "zero_keep_alive")]
        ),
        1
    );
    // The rightful owner still gets in.
    connect_answer(&app, Some((&d, &token)))
        .await
        .expect("the driver connects");
    // A client id of its own: the connection above may still be closing,
    // and a second connection with its client id could be taken for it.
    Client::connect(&app, "phone-again", &d, &token)
        .await
        .expect("the driver connects again");
}

/// Sends one raw CONNECT frame and returns every byte the broker sends
/// before it closes the connection.
async fn raw_connect(app: &TestApp, frame: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.mqtt_port()))
        .await
        .unwrap();
    stream.write_all(frame).await.unwrap();
    let mut answer = Vec::new();
    within(
        "the broker to answer and close",
        stream.read_to_end(&mut answer),
    )
    .await
    .unwrap();
    answer
}

/// A CONNECT frame with the given protocol name and level, clean session,
/// keep-alive 60 s, client id "x", no credentials (MQTT 5 adds an empty
/// property list).
fn connect_frame(name: &[u8], level: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, 0x02, 0, 60]);
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&[0, 1, b'x']);
    let mut frame = vec![0x10, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_protocol_levels_get_a_connack_in_their_own_version() {
    let app = TestApp::start().await;
    // MQTT 5: a v5 CONNACK (flags, reason code 0x84 "unsupported protocol
    // version", then properties), then the close.
    let answer = raw_connect(&app, &connect_frame(b"MQTT", 5)).await;
    assert!(answer.len() >= 5, "no v5 CONNACK: {answer:?}");
    assert_eq!(answer[0], 0x20, "a CONNACK: {answer:?}");
    assert_eq!(
        answer[1] as usize,
        answer.len() - 2,
        "one packet: {answer:?}"
    );
    assert_eq!(&answer[2..4], &[0x00, 0x84], "{answer:?}");
    // Its properties: a length, then one reason string (0x1F) naming the
    // version hexdash speaks.
    assert_eq!(answer[4] as usize, answer.len() - 5, "{answer:?}");
    assert_eq!(answer[5], 0x1F, "{answer:?}");
    let reason = String::from_utf8_lossy(&answer[8..]);
    assert!(reason.contains("3.1.1"), "{reason}");
    // MQTT 3.1 ("MQIsdp", level 3) and unknown levels: a 3.1.1 CONNACK with
    // return code 1, unacceptable protocol version.
    for (name, level) in [(&b"MQIsdp"[..], 3), (b"MQTT", 3), (b"MQTT", 6)] {
        let answer = raw_connect(&app, &connect_frame(name, level)).await;
        assert_eq!(answer, [0x20, 0x02, 0x00, 0x01], "level {level}");
    }
    assert_eq!(
        app.counter(
            "hexdash_mqtt_connects_refused_total",
            &[("reason", "unsupported_protocol")]
        ),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_subscriptions_close_the_connection() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let (other_id, _) = app.driver();
    for filter in [
        offers(other_id),
        "drivers/+/offers".into(),
        location(other_id),
        "drivers/#".into(),
        "#".into(),
    ] {
        let mut client = Client::driver(&app, driver_id, &token).await;
        let result = client.subscribe(&filter).await;
        assert!(result.is_err(), "subscription to {filter} was accepted");
    }
    assert_eq!(
        app.counter(
            "hexdash_mqtt_refused_total",
            &[("reason", "forbidden_subscription")]
        ),
        5
    );
    let mut client = Client::driver(&app, driver_id, &token).await;
    client
        .subscribe(&offers(driver_id))
        .await
        .expect("own offers topic");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_reaches_its_driver_and_no_other() {
    let app = TestApp::start().await;
    let (a, a_token) = app.driver();
    let (b, b_token) = app.driver();
    let mut client_a = Client::driver(&app, a, &a_token).await;
    let mut client_b = Client::driver(&app, b, &b_token).await;
    client_a.subscribe(&offers(a)).await.unwrap();
    client_b.subscribe(&offers(b)).await.unwrap();

    let offer = offer_for(a);
    app.engine.publish_offer(Arc::new(offer.clone()));
    let received = client_a
        .next_publish(WAIT)
        .await
        .expect("driver A receives its offer");
    assert_eq!(received.topic, offers(a));
    let json: serde_json::Value = serde_json::from_slice(&received.payload).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "type": "offer",
            "offer_id": offer.offer_id.to_string(),
            "order_id": offer.order_id.to_string(),
            "pickup": {"lat": 57.70, "lng": 11.97},
            "dropoff": {"lat": 57.71, "lng": 11.98},
            "expires_at": offer.expires_at_ms,
            // No details source here, no fix of driver A: pickup → dropoff
            // only (1,261 m).
            "trip_distance_m": 1_261,
        })
    );
    assert!(
        client_b
            .next_publish(Duration::from_millis(300))
            .await
            .is_none(),
        "driver B saw A's offer"
    );

    // B's own offer reaches B (so the silence above was not a dead link).
    app.engine.publish_offer(Arc::new(offer_for(b)));
    let received = client_b
        .next_publish(WAIT)
        .await
        .expect("driver B receives its offer");
    assert_eq!(received.topic, offers(b));
    assert!(
        client_a
            .next_publish(Duration::from_millis(300))
            .await
            .is_none(),
        "driver A saw B's offer"
    );
    assert!(app.counter("hexdash_offers_delivered_total", &[("path", "mqtt")]) >= 2);
}

/// rumqttd stops forwarding to an in-process link after about 200 messages
/// unless the link answers `Notification::Unschedule`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_pings_flow_through() {
    const DRIVERS: usize = 4;
    const PINGS: i64 = 500;
    let app = TestApp::start().await;
    let walk = Walk::new();
    let mut drivers = Vec::new();
    for _ in 0..DRIVERS {
        let (driver_id, token) = app.driver();
        drivers.push((driver_id, Client::driver(&app, driver_id, &token).await));
    }
    for k in 0..PINGS {
        for (driver_id, client) in &drivers {
            client.publish(&location(*driver_id), walk.ping(k)).await;
        }
    }
    for (driver_id, _) in &drivers {
        app.wait_for_fix(*driver_id, walk.ts(PINGS - 1)).await;
    }
    let applied = app.counter(
        "hexdash_pings_total",
        &[("path", "mqtt"), ("outcome", "applied")],
    );
    assert_eq!(applied, DRIVERS as u64 * PINGS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = ingest::Config {
        mqtt_addr: addr,
        ..ingest::Config::default()
    };
    let ingest = ingest::Ingest::new(
        config,
        engine::Handle::new(engine::Config::default()),
        auth::Tokens::new(b"test-secret", 3600),
        std::sync::Arc::new(clock::SystemClock),
    );
    let err = ingest
        .start_broker(tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ingest::Error::AddrInUse { addr: a } if a == addr),
        "{err:?}"
    );
    assert!(err.to_string().contains("already in use"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_broker_and_closes_connections() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let mut client = Client::driver(&app, driver_id, &token).await;
    app.shutdown.cancel();
    within("the broker to stop", app.broker.stopped()).await;
    assert!(!app.broker.is_up());
    // The open connection is closed at its next packet.
    client
        .publish(&location(driver_id), Walk::new().ping(0))
        .await;
    client.closed().await;
    assert!(
        Client::connect(&app, "phone", &driver_id.to_string(), &token)
            .await
            .is_err()
    );
}
