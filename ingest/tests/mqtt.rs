//! The embedded broker with real MQTT clients (rumqttc): authentication, the
//! topic ACL, bad pings, offers, throughput past rumqttd's Unschedule point,
//! startup errors and shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth::Role;
use common::{TestApp, WAIT, Walk, wait_until, within};
use engine::{DriverId, LatLng, Offer, OfferId, OrderId, UserId};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_refused() {
    let app = TestApp::start().await;
    let (driver_id, token) = app.driver();
    let (other_id, other_token) = app.driver();
    let customer = UserId::new();
    let customer_token = app.token(customer, Role::Customer);
    let admin = UserId::new();
    let admin_token = app.token(admin, Role::Admin);
    let foreign = auth::Tokens::new(b"another-secret", 3600)
        .issue(
            auth::Principal {
                user_id: UserId::from(driver_id.as_uuid()),
                role: Role::Driver,
            },
            common::now_s(),
        )
        .token;
    let cases = [
        (
            "wrong password",
            driver_id.to_string(),
            "not-a-token".to_owned(),
        ),
        (
            "token signed with another key",
            driver_id.to_string(),
            foreign,
        ),
        (
            "username is another driver",
            other_id.to_string(),
            token.clone(),
        ),
        (
            "username is not a user id",
            "driver-7".to_owned(),
            token.clone(),
        ),
        ("customer token", customer.to_string(), customer_token),
        ("admin token", admin.to_string(), admin_token),
        ("empty password", driver_id.to_string(), String::new()),
    ];
    for (what, username, password) in &cases {
        let result = Client::connect(&app, "phone", username, password).await;
        assert!(result.is_err(), "{what}: connection accepted");
    }
    assert_eq!(
        app.counter("hexdash_mqtt_refused_total", &[("reason", "credentials")]),
        cases.len() as u64
    );

    // A banned driver's valid token stops working too.
    app.tokens.ban(UserId::from(other_id.as_uuid()));
    assert!(
        Client::connect(&app, "phone", &other_id.to_string(), &other_token)
            .await
            .is_err()
    );
    // And the rightful owner still gets in.
    Client::driver(&app, driver_id, &token).await;
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
