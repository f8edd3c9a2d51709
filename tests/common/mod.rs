//! Starting a real hexdash and talking to it with real clients.

#![allow(dead_code)]

pub mod beside;
pub mod process;
pub mod prometheus_text;
pub mod proxy;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hexdash::{App, Config};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Overall limit for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(15);

pub const ADMIN_EMAIL: &str = "admin@hexdash.test";
pub const ADMIN_PASSWORD: &str = "admin-password";

pub struct TestApp {
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
    pub engine: engine::Handle,
    /// The REST client (`app.post(…)` and the rest, through `Deref`).
    pub api: Api,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The database's folder, removed with the app; `None` when the caller
    /// owns it ([`spawn_app_in`], for restarts).
    _db_dir: Option<TempDir>,
}

/// A folder removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago (the embedded broker binds its own
/// listener and cannot report a port chosen by the OS).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn test_config(db_dir: &std::path::Path) -> Config {
    Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        // Port 0: the app reserves a free port itself and says which
        // (`App::mqtt_addr`); a port picked here and released could be
        // taken by another test's socket before the app binds it.
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: format!("sqlite://{}/hexdash.db", db_dir.display()),
        jwt_secret: Some("end-to-end-secret".into()),
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        shutdown_grace_ms: 5_000,
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = TempDir::create();
    let mut app = spawn_app_in(&dir.0, adjust).await;
    app._db_dir = Some(dir);
    app
}

impl TempDir {
    /// A new, empty folder under the system's temporary folder.
    pub fn create() -> TempDir {
        let dir = std::env::temp_dir().join(format!("hexdash-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

/// Starts an app on the database in `dir`, which the caller keeps: stop it
/// and start another on the same folder to test a restart.
pub async fn spawn_app_in(dir: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> TestApp {
    // End-to-end pings carry real timestamps: the system clock.
    spawn_app_in_with_clock(dir, adjust, std::sync::Arc::new(clock::SystemClock)).await
}

/// [`spawn_app_with`] on an injected clock (a test's `ManualClock`).
pub async fn spawn_app_with_clock(
    adjust: impl FnOnce(&mut Config),
    clock: std::sync::Arc<dyn clock::Clock>,
) -> TestApp {
    let dir = TempDir::create();
    let mut app = spawn_app_in_with_clock(&dir.0, adjust, clock).await;
    app._db_dir = Some(dir);
    app
}

/// [`spawn_app_in`] on an injected clock.
pub async fn spawn_app_in_with_clock(
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut Config),
    clock: std::sync::Arc<dyn clock::Clock>,
) -> TestApp {
    let mut config = test_config(dir);
    adjust(&mut config);
    let app = App::build(config, clock).await.expect("app builds");
    let (http, mqtt, engine) = (app.http_addr(), app.mqtt_addr(), app.engine().clone());
    let shutdown = app.shutdown_token();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        http,
        mqtt,
        engine,
        api: Api::new(http),
        shutdown,
        task: Some(task),
        _db_dir: None,
    }
}

pub struct User {
    pub id: String,
    pub token: String,
}

/// A REST client for one hexdash (in this process or a spawned one).
pub struct Api {
    pub http: SocketAddr,
    pub client: reqwest::Client,
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Api {
    pub fn new(http: SocketAddr) -> Api {
        Api {
            http,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.http, path)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .put(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn signup(&self, name: &str, role: &str) -> User {
        let email = format!("{name}-{}@hexdash.test", uuid::Uuid::new_v4().simple());
        let password = "a-long-password";
        let (status, body) = self
            .post(
                "/v1/auth/signup",
                None,
                json!({"email": email, "password": password, "name": name, "role": role}),
            )
            .await;
        assert_eq!(status, 201, "signup {name}: {body}");
        let id = body["user_id"].as_str().unwrap().to_owned();
        User {
            id,
            token: self.login(&email, password).await,
        }
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Signs up an owner and opens their restaurant `name` at `at` with one
    /// dish (a soup at 90.00); the owner, the restaurant's id and the
    /// dish's.
    pub async fn open_soup_kitchen(&self, name: &str, at: (f64, f64)) -> (User, String, String) {
        let owner = self.signup("owner", "restaurant").await;
        let (status, r) = self
            .post(
                "/v1/restaurants",
                Some(&owner.token),
                json!({"name": name, "location": {"lat": at.0, "lng": at.1}, "address": "Kungsgatan 1"}),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        let id = r["restaurant_id"].as_str().unwrap().to_owned();
        let (status, menu) = self
            .post(
                &format!("/v1/restaurants/{id}/menu"),
                Some(&owner.token),
                json!({"items": [{"name": "Soup", "price_cents": 9_000, "category": "Soup"}]}),
            )
            .await;
        assert_eq!(status, 201, "{menu}");
        let item = menu["items"][0]["menu_item_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (owner, id, item)
    }

    /// Steps `order` to `status` as `who`, which must be taken (200).
    pub async fn step(&self, who: &User, order: &str, status: &str) {
        let (code, body) = self
            .post(
                &format!("/v1/orders/{order}/status"),
                Some(&who.token),
                json!({"status": status}),
            )
            .await;
        assert_eq!(code, 200, "{status}: {body}");
    }
}

impl TestApp {
    /// Stops the app as SIGTERM would and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("stops in time")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A driver's MQTT connection: publishes pings, collects its offers.
pub struct MqttDriver {
    pub client: AsyncClient,
    pub offers: mpsc::Receiver<Value>,
    pub id: String,
}

impl MqttDriver {
    pub async fn connect(app: &TestApp, user: &User) -> MqttDriver {
        MqttDriver::connect_at(app.mqtt, user).await
    }

    /// Connects to the broker at `mqtt` (a node started as a process).
    pub async fn connect_at(mqtt: SocketAddr, user: &User) -> MqttDriver {
        let mut opts = MqttOptions::new(
            format!("app-{}", &user.id[..8]),
            mqtt.ip().to_string(),
            mqtt.port(),
        );
        opts.set_credentials(user.id.clone(), user.token.clone());
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, eventloop) = AsyncClient::new(opts, 64);
        let (tx, offers) = mpsc::channel(16);
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        tokio::spawn(pump(eventloop, tx, connected_tx));
        tokio::time::timeout(WAIT, connected)
            .await
            .expect("MQTT connects in time")
            .expect("MQTT connected");
        let topic = format!("drivers/{}/offers", user.id);
        client.subscribe(&topic, QoS::AtMostOnce).await.unwrap();
        MqttDriver {
            client,
            offers,
            id: user.id.clone(),
        }
    }

    pub async fn ping(&self, lat: f64, lng: f64, ts: i64) {
        let payload = json!({"lat": lat, "lng": lng, "ts": ts, "speed": 6.0}).to_string();
        self.client
            .publish(
                format!("drivers/{}/location", self.id),
                QoS::AtMostOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }

    pub async fn next_offer(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.offers.recv())
            .await
            .expect("an offer arrives in time")
            .expect("offer")
    }
}

async fn pump(
    mut eventloop: EventLoop,
    offers: mpsc::Sender<Value>,
    connected: tokio::sync::oneshot::Sender<()>,
) {
    let mut connected = Some(connected);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Some(c) = connected.take() {
                    let _ = c.send(());
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Ok(v) = serde_json::from_slice(&p.payload) {
                    let _ = offers.send(v).await;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// A WebSocket watcher of `/v1/ws`.
pub struct Watcher {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Watcher {
    pub async fn connect(app: &TestApp, token: &str) -> Watcher {
        Watcher::connect_to(&app.api, token).await
    }

    /// Connects to the tracking socket of `api`'s server.
    pub async fn connect_to(api: &Api, token: &str) -> Watcher {
        let (ws, _) =
            tokio_tungstenite::connect_async(api.ws_url(&format!("/v1/ws?token={token}")))
                .await
                .unwrap();
        Watcher { ws }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next JSON message, skipping pings.
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// The next message whose `type` is `kind`.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next().await;
            if v["type"] == kind {
                return v;
            }
        }
    }
}

/// Polls `check` until it returns `Some`, up to `WAIT`.
pub async fn eventually<T>(mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With `HEXDASH_TEST_DATABASE_URL` set to a `postgres://` url, a url on
/// a new schema of its own there (`t_<unix s>_<random>`, which the api
/// tests sweep after an hour), so a test
/// sees only its own rows; `None` without one. A set url whose server is
/// unreachable fails the test.
pub async fn postgres_schema_url() -> Option<String> {
    use sqlx::Connection;
    let base = std::env::var("HEXDASH_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))?;
    let mut conn = sqlx::postgres::PgConnection::connect(&base)
        .await
        .expect("connect to HEXDASH_TEST_DATABASE_URL");
    let schema = format!("t_{}_{}", now_ms() / 1000, uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&mut conn)
        .await
        .expect("create a test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A database an app runs on, kept across restarts: SQLite in a folder
/// of its own, or a PostgreSQL schema of its own.
pub struct Db {
    dir: TempDir,
    url: Option<String>,
}

/// The databases to run on: SQLite, and PostgreSQL when
/// `HEXDASH_TEST_DATABASE_URL` names one.
pub async fn databases() -> Vec<Db> {
    let mut dbs = vec![Db {
        dir: TempDir::create(),
        url: None,
    }];
    if let Some(url) = postgres_schema_url().await {
        dbs.push(Db {
            dir: TempDir::create(),
            url: Some(url),
        });
    }
    dbs
}

/// Starts an app on `db` (again, for a restart).
pub async fn spawn_app_on(db: &Db, adjust: impl FnOnce(&mut hexdash::Config)) -> TestApp {
    spawn_app_on_with_clock(db, adjust, std::sync::Arc::new(clock::SystemClock)).await
}

/// [`spawn_app_on`] on an injected clock (a test's `ManualClock`).
pub async fn spawn_app_on_with_clock(
    db: &Db,
    adjust: impl FnOnce(&mut hexdash::Config),
    clock: std::sync::Arc<dyn clock::Clock>,
) -> TestApp {
    spawn_app_in_with_clock(
        &db.dir.0,
        |c| {
            if let Some(url) = &db.url {
                c.database_url = url.clone();
            }
            adjust(c);
        },
        clock,
    )
    .await
}
