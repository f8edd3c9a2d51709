//! hexdash as a client of an external MQTT broker (`[ingest.broker] mode =
//! "external"`), against a Mosquitto of the test's own on a free port,
//! configured as docs/EXTERNAL_BROKER.md says: no anonymous clients, a
//! password file, and an ACL file with per-driver `pattern` rules. Drivers
//! are real MQTT clients (rumqttc) of that broker; hexdash subscribes with
//! a shared subscription and publishes offers back through it.
//!
//! Needs `mosquitto` and `mosquitto_passwd` on the PATH (Debian's
//! `mosquitto` package); the tests fail without them.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// hexdash's own account at the broker.
const HEXDASH_USER: &str = "hexdash";
const HEXDASH_PASSWORD: &str = "hexdash-broker-secret";

/// The ACL of docs/EXTERNAL_BROKER.md: hexdash reads every driver's pings
/// and writes every driver's offers; a driver writes only its own location
/// and reads only its own offers.
const ACL: &str = "\
user hexdash
topic read drivers/+/location
topic write drivers/+/offers

pattern write drivers/%u/location
pattern read drivers/%u/offers
";

/// A Mosquitto of the test's own: its folder (config, password file, ACL),
/// its port, killed when dropped.
struct PrivateMosquitto {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl PrivateMosquitto {
    async fn start() -> PrivateMosquitto {
        let dir = TempDir::create();
        let port = free_port();
        let conf = format!(
            "listener {port} 127.0.0.1\n\
             allow_anonymous false\n\
             password_file {pw}\n\
             acl_file {acl}\n\
             persistence false\n\
             max_packet_size 16384\n\
             log_dest stderr\n\
             log_type error\n",
            pw = dir.0.join("passwd").display(),
            acl = dir.0.join("acl").display(),
        );
        std::fs::write(dir.0.join("mosquitto.conf"), conf).unwrap();
        std::fs::write(dir.0.join("acl"), ACL).unwrap();
        let mut broker = PrivateMosquitto {
            child: None,
            port,
            dir,
        };
        broker.add_user(HEXDASH_USER, HEXDASH_PASSWORD);
        broker.spawn().await;
        broker
    }

    /// Starts the process on the folder's config and waits for the port.
    async fn spawn(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.0.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mosquitto starts (is it installed?)");
        self.child = Some(child);
        let port = self.port;
        eventually(async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(drop)
        })
        .await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Adds an account to the password file; a running broker reloads it
    /// on SIGHUP (the caller's connection retries cover the moment).
    fn add_user(&self, user: &str, password: &str) {
        let file = self.dir.0.join("passwd");
        let mut command = Command::new("mosquitto_passwd");
        if !file.exists() {
            command.arg("-c");
        }
        let status = command
            .arg("-b")
            .arg(&file)
            .args([user, password])
            .status()
            .expect("mosquitto_passwd runs (is it installed?)");
        assert!(status.success(), "mosquitto_passwd {user}");
        if let Some(child) = &self.child {
            let hup = Command::new("kill")
                .args(["-HUP", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(hup.success());
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// hexdash's settings for `broker`, in external mode.
fn external(c: &mut hexdash::Config, broker: &PrivateMosquitto) {
    c.ingest.broker = ingest::BrokerConfig {
        mode: ingest::BrokerMode::External,
        urls: vec![broker.url()],
        username: Some(HEXDASH_USER.into()),
        password: Some(HEXDASH_PASSWORD.into()),
        reconnect_initial_ms: 50,
        reconnect_max_ms: 500,
        ..ingest::BrokerConfig::default()
    };
}

/// Waits until `/readyz` says the broker is `up` (or down).
async fn broker_ready(api: &Api, up: bool) {
    eventually(async || {
        let (status, body) = api.get("/readyz", None).await;
        let expected = if up { 200 } else { 503 };
        (status == expected && body["checks"]["mqtt_broker"] == up).then_some(())
    })
    .await;
}

/// A driver's app on the broker: publishes pings, collects what arrives on
/// its offers topic.
struct BrokerDriver {
    client: AsyncClient,
    inbox: mpsc::Receiver<Value>,
    id: String,
}

impl BrokerDriver {
    /// Connects as `user` (its broker account `user.id` / `password`) and
    /// subscribes to its offers, retrying while the broker reloads its
    /// password file or restarts.
    async fn connect(broker: &PrivateMosquitto, id: &str, password: &str) -> BrokerDriver {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(driver) = Self::try_connect(broker.port, id, password).await {
                    return driver;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the driver connects to the broker in time")
    }

    async fn try_connect(port: u16, id: &str, password: &str) -> Option<BrokerDriver> {
        let client_id = format!("app-{}", uuid::Uuid::new_v4().simple());
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
        opts.set_credentials(id, password);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        client
            .subscribe(format!("drivers/{id}/offers"), QoS::AtMostOnce)
            .await
            .ok()?;
        // Connected and subscribed, or refused.
        loop {
            match tokio::time::timeout(WAIT, eventloop.poll()).await.ok()? {
                Ok(Event::Incoming(Packet::SubAck(_))) => break,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        let (tx, inbox) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(v) = serde_json::from_slice(&p.payload) {
                            let _ = tx.send(v).await;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        Some(BrokerDriver {
            client,
            inbox,
            id: id.to_owned(),
        })
    }

    async fn publish_to(&self, topic: String, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload.into())
            .await
            .unwrap();
    }

    async fn ping(&self, lat: f64, lng: f64, ts: i64) {
        let payload = json!({"lat": lat, "lng": lng, "ts": ts}).to_string();
        self.publish_to(format!("drivers/{}/location", self.id), payload)
            .await;
    }

    async fn next_message(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .expect("a message arrives in time")
            .expect("the driver's connection is open")
    }
}

/// A driver account in hexdash with a broker account of the same id.
async fn driver_with_account(
    app: &TestApp,
    broker: &PrivateMosquitto,
    name: &str,
) -> (User, BrokerDriver) {
    let user = app.signup(name, "driver").await;
    let password = format!("pw-{}", user.id);
    broker.add_user(&user.id, &password);
    let driver = BrokerDriver::connect(broker, &user.id, &password).await;
    (user, driver)
}

/// `GET /v1/drivers/{id}` as the admin, once it shows a position at `lat`
/// (the pings of one test are farther apart than the tolerance).
async fn wait_for_position(app: &TestApp, admin: &str, driver: &str, lat: f64) -> Value {
    eventually(async || {
        let (status, body) = app.get(&format!("/v1/drivers/{driver}"), Some(admin)).await;
        assert_eq!(status, 200, "{body}");
        // Within a micro-degree: a computed latitude need not survive the
        // JSON round trips bit for bit.
        body["lat"]
            .as_f64()
            .is_some_and(|seen| (seen - lat).abs() < 1e-6)
            .then_some(body)
    })
    .await
}

/// The value of the sample of `family` with (at least) these labels, in
/// whatever order the exporter writes them; 0 when absent.
async fn metric(api: &Api, family: &str, labels: &[(&str, &str)]) -> f64 {
    let text = api
        .client
        .get(api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (name, rest) = series.split_once('{').unwrap_or((series, ""));
            name == family
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

/// (a) and (c): a driver's pings through the broker reach hexdash; a
/// publish on another driver's topic is dropped by the broker's ACL, so
/// hexdash never hears of that driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_through_the_broker_reach_hexdash_and_the_acl_confines_drivers() {
    let broker = PrivateMosquitto::start().await;
    let app = spawn_app_with(|c| external(c, &broker)).await;
    broker_ready(&app, true).await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    let admin = app.admin_token().await;

    let (alice, alice_app) = driver_with_account(&app, &broker, "alice").await;
    let victim = app.signup("victim", "driver").await;
    alice_app.ping(57.7001, 11.9701, now_ms()).await;
    let seen = wait_for_position(&app, &admin, &alice.id, 57.7001).await;
    assert_eq!(seen["lng"], 11.9701);
    assert_eq!(seen["status"], "available");

    // Alice writes on the victim's topic: the broker's ACL drops it (QoS 0
    // publishes are dropped silently, the connection stays). Her next ping
    // comes after it on the same connection, so once hexdash has it, the
    // spoofed one would have arrived before.
    alice_app
        .publish_to(
            format!("drivers/{}/location", victim.id),
            json!({"lat": 57.71, "lng": 11.98}).to_string(),
        )
        .await;
    alice_app.ping(57.7002, 11.9702, now_ms()).await;
    wait_for_position(&app, &admin, &alice.id, 57.7002).await;
    let victim_id: engine::DriverId = victim.id.parse().unwrap();
    assert!(
        app.engine.driver(victim_id).is_none(),
        "hexdash applied a ping published on another driver's topic"
    );
    let (_, body) = app
        .get(&format!("/v1/drivers/{}", victim.id), Some(&admin))
        .await;
    assert_eq!(body["lat"], Value::Null, "{body}");
    app.stop().await;
}

/// (b) Two ingest nodes (separate processes) in one share group: the
/// broker hands each ping to one of them; together they applied every
/// ping exactly once, and each got a share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_in_one_share_group_split_the_pings() {
    let broker = PrivateMosquitto::start().await;
    let url = broker.url();
    let env = |node: &'static str| {
        [
            ("HEXDASH_INGEST__BROKER__MODE", "external".to_owned()),
            ("HEXDASH_INGEST__BROKER__URLS", url.clone()),
            ("HEXDASH_INGEST__BROKER__USERNAME", HEXDASH_USER.to_owned()),
            (
                "HEXDASH_INGEST__BROKER__PASSWORD",
                HEXDASH_PASSWORD.to_owned(),
            ),
            ("HEXDASH_CLUSTER__NODE_ID", node.to_owned()),
            ("HEXDASH_ROLES", "ingest,gateway".to_owned()),
        ]
    };
    let start = async |node: &'static str| {
        let dir = TempDir::create();
        let db = format!("sqlite://{}/hexdash.db", dir.0.display());
        let env = env(node);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Returns once `/readyz` is 200: connected and subscribed.
        let server = process::ServerProcess::start(&dir, &db, &env).await;
        (server, dir)
    };
    let (a, _a_dir) = start("node-a").await;
    let (b, _b_dir) = start("node-b").await;

    // The broker trusts its accounts: these drivers need no hexdash
    // account for their pings to be applied.
    const DRIVERS: usize = 4;
    const PINGS: usize = 50;
    let mut drivers = Vec::new();
    for _ in 0..DRIVERS {
        let id = uuid::Uuid::new_v4().to_string();
        broker.add_user(&id, "pw");
        drivers.push(BrokerDriver::connect(&broker, &id, "pw").await);
    }
    // Increasing timestamps, small steps: every ping is a move wherever it
    // lands (none stale, none a jump).
    let start_ms = now_ms() - 60_000;
    for i in 0..PINGS {
        for (d, driver) in drivers.iter().enumerate() {
            let lat = 57.70 + d as f64 * 0.001 + i as f64 * 0.00001;
            driver.ping(lat, 11.97, start_ms + i as i64 * 1_000).await;
        }
    }
    let pings = "hexdash_pings_total";
    let applied = [("path", "mqtt"), ("outcome", "applied")];
    let sent = (DRIVERS * PINGS) as f64;
    let (on_a, on_b) = eventually(async || {
        let (on_a, on_b) = (
            metric(&a.api, pings, &applied).await,
            metric(&b.api, pings, &applied).await,
        );
        (on_a + on_b >= sent).then_some((on_a, on_b))
    })
    .await;
    assert_eq!(on_a + on_b, sent, "a: {on_a}, b: {on_b}");
    assert!(on_a > 0.0 && on_b > 0.0, "a: {on_a}, b: {on_b}");
    // Nothing else: no ping was handed to both.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = "hexdash_mqtt_external_received_total";
    assert_eq!(
        metric(&a.api, received, &[]).await + metric(&b.api, received, &[]).await,
        sent
    );
    for outcome in ["stale", "duplicate", "rejected"] {
        let labels = [("path", "mqtt"), ("outcome", outcome)];
        assert_eq!(
            metric(&a.api, pings, &labels).await + metric(&b.api, pings, &labels).await,
            0.0,
            "{outcome}"
        );
    }
}

/// (d) An offer made for a driver reaches it through the broker, from a
/// single node running every role in external mode; the driver accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_reaches_the_driver_through_the_broker() {
    let broker = PrivateMosquitto::start().await;
    let app = spawn_app_with(|c| external(c, &broker)).await;
    broker_ready(&app, true).await;
    let admin = app.admin_token().await;
    let customer = app.signup("customer", "customer").await;
    let (owner, restaurant, dish) = app
        .open_soup_kitchen("Mäklarkrogen", (57.7000, 11.9700))
        .await;
    let (courier, mut courier_app) = driver_with_account(&app, &broker, "courier").await;
    courier_app.ping(57.7010, 11.9710, now_ms()).await;
    wait_for_position(&app, &admin, &courier.id, 57.7010).await;

    let (status, order) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant,
                   "items": [{"menu_item_id": dish, "quantity": 1}],
                   "delivery": {"lat": 57.6950, "lng": 11.9850, "address": "Dörren 4"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    app.step(&owner, &order_id, "accepted").await;

    let offer = loop {
        let message = courier_app.next_message().await;
        if message["type"] == "offer" {
            break message;
        }
    };
    assert_eq!(offer["order_id"], order_id.as_str(), "{offer}");
    let (status, body) = app
        .post(
            &format!("/v1/offers/{}/accept", offer["offer_id"].as_str().unwrap()),
            Some(&courier.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&customer.token))
        .await;
    assert_eq!(body["driver_id"], courier.id.as_str(), "{body}");

    // A notice goes the same way: the dispatcher cancels the order the
    // courier carries.
    let (status, body) = app
        .post(
            &format!("/v1/orders/{order_id}/cancel"),
            Some(&admin),
            json!({"reason": "restaurant closed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let cancelled = loop {
        let message = courier_app.next_message().await;
        if message["type"] == "notification" {
            break message;
        }
    };
    assert_eq!(cancelled["event_type"], "order.cancelled", "{cancelled}");
    assert_eq!(cancelled["order_id"], order_id.as_str());
    app.stop().await;
}

/// A node without the ingest role connects too (to publish what it makes
/// for drivers) and reports the connection, but takes no share of the
/// pings: with an ingest node in the same group, every ping goes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_ingest_connects_to_publish_only() {
    let broker = PrivateMosquitto::start().await;
    let publisher = spawn_app_with(|c| {
        external(c, &broker);
        c.roles = "api,matcher,relay".parse().unwrap();
    })
    .await;
    let ingest_node = spawn_app_with(|c| external(c, &broker)).await;
    broker_ready(&publisher, true).await;
    broker_ready(&ingest_node, true).await;
    let (_, body) = publisher.get("/readyz", None).await;
    assert_eq!(body["node"]["roles"], json!(["api", "matcher", "relay"]));

    let admin = ingest_node.admin_token().await;
    let (user, driver) = driver_with_account(&ingest_node, &broker, "shared").await;
    let start_ms = now_ms() - 20_000;
    for i in 0..10 {
        let lat = 57.70 + f64::from(i) * 0.0001;
        driver
            .ping(lat, 11.97, start_ms + i64::from(i) * 1_000)
            .await;
    }
    wait_for_position(&ingest_node, &admin, &user.id, 57.70 + 9.0 * 0.0001).await;
    let id: engine::DriverId = user.id.parse().unwrap();
    assert!(
        publisher.engine.driver(id).is_none(),
        "a node without the ingest role took pings"
    );
    publisher.stop().await;
    ingest_node.stop().await;
}

/// (e) The broker restarts: `/readyz` shows the outage while it lasts,
/// hexdash reconnects and subscribes again by itself (counted), and pings
/// flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hexdash_reconnects_after_a_broker_restart() {
    let mut broker = PrivateMosquitto::start().await;
    let app = spawn_app_with(|c| external(c, &broker)).await;
    broker_ready(&app, true).await;
    let admin = app.admin_token().await;
    let user = app.signup("restart", "driver").await;
    broker.add_user(&user.id, "pw");
    let driver = BrokerDriver::connect(&broker, &user.id, "pw").await;
    driver.ping(57.7003, 11.9703, now_ms()).await;
    wait_for_position(&app, &admin, &user.id, 57.7003).await;
    let reconnects = "hexdash_mqtt_external_reconnects_total";
    let before = metric(&app, reconnects, &[]).await;

    broker.kill();
    broker_ready(&app, false).await;
    broker.restart().await;
    broker_ready(&app, true).await;
    // Counted (the tests of this file share one metrics recorder: only
    // this one restarts its broker).
    assert!(metric(&app, reconnects, &[]).await > before);

    // The app reconnects too (its old connection died with the broker).
    let driver = BrokerDriver::connect(&broker, &user.id, "pw").await;
    driver.ping(57.7004, 11.9704, now_ms()).await;
    wait_for_position(&app, &admin, &user.id, 57.7004).await;
    app.stop().await;
}

/// (f) Bad payloads through the broker are counted as on the embedded
/// path (by reason) and disturb neither the sender's next valid ping nor
/// another driver; a topic whose id is not a driver's is counted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_through_the_broker_are_counted_and_harmless() {
    let broker = PrivateMosquitto::start().await;
    let app = spawn_app_with(|c| external(c, &broker)).await;
    broker_ready(&app, true).await;
    let admin = app.admin_token().await;
    let (bad, bad_app) = driver_with_account(&app, &broker, "sloppy").await;
    let (good, good_app) = driver_with_account(&app, &broker, "careful").await;
    // An account whose name is no driver id: the ACL lets it write
    // `drivers/not-a-driver/location`, hexdash's topic check refuses it.
    broker.add_user("not-a-driver", "pw");
    let odd = BrokerDriver::connect(&broker, "not-a-driver", "pw").await;

    let rejected = async |r: &str| {
        metric(
            &app,
            "hexdash_pings_rejected_total",
            &[("path", "mqtt"), ("reason", r)],
        )
        .await
    };
    let reasons = [
        "invalid_json",
        "out_of_range",
        "missing_coordinates",
        "too_large",
        "wrong_driver",
    ];
    let mut before = Vec::new();
    for r in reasons {
        before.push(rejected(r).await);
    }

    let topic = format!("drivers/{}/location", bad.id);
    bad_app.publish_to(topic.clone(), "not json").await;
    bad_app
        .publish_to(topic.clone(), json!({"lat": 91.0, "lng": 0.0}).to_string())
        .await;
    bad_app
        .publish_to(topic.clone(), json!({"lng": 11.97}).to_string())
        .await;
    // Over `max_ping_bytes` (1 KiB), under the broker's packet limit.
    let padding = "x".repeat(2_000);
    bad_app
        .publish_to(
            topic.clone(),
            json!({"lat": 57.7, "lng": 11.97, "pad": padding}).to_string(),
        )
        .await;
    odd.publish_to(
        "drivers/not-a-driver/location".to_owned(),
        json!({"lat": 57.7, "lng": 11.97}).to_string(),
    )
    .await;
    good_app.ping(57.7005, 11.9705, now_ms()).await;
    bad_app.ping(57.7006, 11.9706, now_ms()).await;

    // The valid pings, sent after the bad ones, are applied.
    wait_for_position(&app, &admin, &good.id, 57.7005).await;
    wait_for_position(&app, &admin, &bad.id, 57.7006).await;
    for (r, was) in reasons.iter().zip(before) {
        let now = eventually(async || {
            let now = rejected(r).await;
            (now > was).then_some(now)
        })
        .await;
        assert_eq!(now, was + 1.0, "{r}");
    }
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}
