//! The harness: a real store, a real engine and a real matcher (with its
//! loop running) behind `api::router`, driven with `oneshot`.
//!
//! Every test gets a database of its own: SQLite in memory, or a fresh
//! PostgreSQL schema ([`dual_test!`] runs each test on both).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use api::payments::SimulatedGateway;
use api::{AppState, Config, Store};
use auth::{Principal, Role, Tokens};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use engine::{DriverId, LatLng, MenuItemId, OrderId, Ping, RestaurantId, UserId};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret";
pub const ACCESS_TTL_S: u64 = 900;
/// Gothenburg, where every scene happens.
pub const HERE: (f64, f64) = (57.7089, 11.9746);

/// Which database a test runs on; set per test by [`dual_test!`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    pub static BACKEND: Backend;
}

/// Declares one test that runs twice, as `<name>::sqlite` and
/// `<name>::postgres`: the same body, each on its own fresh database
/// (SQLite in memory; a PostgreSQL schema of its own). The PostgreSQL run
/// needs `HEXDASH_TEST_DATABASE_URL=postgres://…` (CI sets it); without it
/// the run says so and passes, with it an unreachable server fails.
macro_rules! dual_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::BACKEND
                    .scope($crate::common::Backend::Sqlite, async $body)
                    .await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::common::postgres_url().is_none() {
                    eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: skipped");
                    return;
                }
                $crate::common::BACKEND
                    .scope($crate::common::Backend::Postgres, async $body)
                    .await
            }
        }
    };
}

/// The PostgreSQL server the tests may use.
pub fn postgres_url() -> Option<String> {
    std::env::var("HEXDASH_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// A fresh, empty, migrated store on the current test's backend (SQLite
/// outside [`dual_test!`]).
pub async fn test_store() -> Arc<dyn Store> {
    match BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite) {
        Backend::Sqlite => api::connect("sqlite::memory:")
            .await
            .expect("in-memory sqlite"),
        Backend::Postgres => {
            let base = postgres_url().expect("dual_test! checked the url");
            postgres_store(&base).await
        }
    }
}

/// [`test_store`] with an event log on its pool (for webhooks); SQLite
/// in memory outside [`dual_test!`].
pub async fn test_store_with_log() -> (Arc<dyn Store>, events::EventLog) {
    match BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite) {
        Backend::Sqlite => api::connect_with_log("sqlite::memory:")
            .await
            .expect("in-memory sqlite"),
        Backend::Postgres => {
            let base = postgres_url().expect("dual_test! checked the url");
            let url = postgres_schema(&base).await;
            api::connect_with_log(&url)
                .await
                .expect("connect the test schema")
        }
    }
}

/// Schemas older than this are left over from earlier runs: dropped.
const STALE_SCHEMA_S: u64 = 3_600;

/// A store in a new schema of its own (`t_<unix s>_<random>`), so tests
/// never see each other's rows. The first call of a run drops schemas of
/// runs more than an hour old.
async fn postgres_store(base: &str) -> Arc<dyn Store> {
    let url = postgres_schema(base).await;
    api::connect(&url).await.expect("connect the test schema")
}

/// A new schema of its own; the url that uses it.
async fn postgres_schema(base: &str) -> String {
    use sqlx::Connection;
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let now_s = (now_ms() / 1000) as u64;
    let mut conn = sqlx::postgres::PgConnection::connect(base)
        .await
        .expect("connect to HEXDASH_TEST_DATABASE_URL");
    SWEPT
        .get_or_init(|| async {
            let rows: Vec<(String,)> =
                sqlx::query_as("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%\\_%'")
                    .fetch_all(&mut conn)
                    .await
                    .expect("list test schemas");
            for (name,) in rows {
                let created = name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok());
                if created.is_some_and(|c| c + STALE_SCHEMA_S < now_s) {
                    let drop = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                        .execute(&mut conn)
                        .await;
                }
            }
        })
        .await;
    let schema = format!("t_{now_s}_{}", uuid::Uuid::new_v4().simple());
    let create = format!("CREATE SCHEMA \"{schema}\"");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// Cheap password hashing: tests create many accounts.
pub fn test_config() -> Config {
    Config {
        password_memory_kib: 1024,
        password_passes: 1,
        // Payment retries without the production backoff.
        payment_backoff_ms: 1,
        refund_retry_backoff_ms: 1,
        refund_retry_rounds: 3,
        // Tests drive one account through many steps in a burst (and on a
        // manual clock the buckets never refill): the request limits are
        // tested on a real server (`tests/hostile_clients.rs`).
        requests_per_account_per_s: 0,
        ..Config::default()
    }
}

/// The system clock, which the app reads unless a test hands it a
/// `clock::ManualClock` ([`TestApp::with_clock`]).
pub fn system_clock() -> Arc<dyn clock::Clock> {
    Arc::new(clock::SystemClock)
}

/// Now on the system clock, Unix ms (fixtures of apps on the system clock).
pub fn now_ms() -> i64 {
    system_clock().now_ms()
}

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    /// Per restaurant made by [`TestApp::restaurant_at`]: its owner's
    /// token and its one menu item.
    restaurants: Mutex<HashMap<RestaurantId, (String, MenuItemId)>>,
    /// The payment gateway behind the app, to count what it charged.
    pub gateway: Arc<SimulatedGateway>,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An account with a live access token.
#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub password: String,
    pub token: String,
    pub refresh_token: String,
}

impl User {
    pub fn driver_id(&self) -> DriverId {
        self.id.into()
    }
    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

/// A response: status and JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// Asserts the status and the contract's error body with `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_error_body(&self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
    }

    #[track_caller]
    pub fn assert_ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        &self.body
    }
}

/// `{"error": {"code": "…", "message": "…"}}`.
#[track_caller]
pub fn assert_error_body(body: &Value) {
    assert!(body["error"]["code"].is_string(), "no error code in {body}");
    assert!(
        body["error"]["message"].is_string(),
        "no error message in {body}"
    );
}

impl TestApp {
    /// An app on a fresh store, with webhooks over a running event stream.
    pub async fn new() -> Self {
        let (store, log) = test_store_with_log().await;
        let mut app = Self::with_store(store).await;
        let consumers = events::Consumers::new();
        let config = events::Config::default();
        let webhooks = api::hooks::Webhooks::new(
            log.clone(),
            consumers.clone(),
            &api::hooks::Config::default(),
            &config,
            Arc::new(now_ms),
        )
        .expect("webhooks");
        let rebuild = api::consumers::reports::Rebuild::new(
            app.state.store.clone(),
            log.clone(),
            consumers.clone(),
        );
        tokio::spawn(events::run_with(
            log,
            consumers,
            config,
            app.shutdown.clone(),
        ));
        app.state = app
            .state
            .clone()
            .with_webhooks(webhooks)
            .with_reports(rebuild);
        app.router = api::router(app.state.clone()).fallback(api::not_found_fallback);
        app
    }

    /// An app on a fresh store whose event stream runs the notification
    /// consumer, which pushes through `push`.
    pub async fn with_notifications(push: Arc<dyn api::consumers::notify::Push>) -> Self {
        let (store, log) = test_store_with_log().await;
        let mut app = Self::with_store(store).await;
        app.state = app.state.clone().with_push(push);
        let consumers: Vec<Arc<dyn events::Consumer>> = vec![Arc::new(
            api::consumers::notify::Notifications::new(&app.state),
        )];
        tokio::spawn(events::run(
            log,
            consumers,
            events::Config::default(),
            app.shutdown.clone(),
        ));
        app.router = api::router(app.state.clone()).fallback(api::not_found_fallback);
        app
    }

    /// An app on a fresh store whose event stream publishes events to no
    /// consumer, and its log: a test hands events to a consumer itself.
    pub async fn with_relay_only() -> (Self, events::EventLog) {
        let (store, log) = test_store_with_log().await;
        let app = Self::with_store(store).await;
        tokio::spawn(events::run_with(
            log.clone(),
            events::Consumers::new(),
            events::Config::default(),
            app.shutdown.clone(),
        ));
        (app, log)
    }

    pub async fn with_store(store: Arc<dyn Store>) -> Self {
        Self::with_store_and_config(store, test_config()).await
    }

    pub async fn with_store_and_config(store: Arc<dyn Store>, config: Config) -> Self {
        Self::build(store, config, matcher::Config::default(), system_clock()).await
    }

    /// An app whose matcher has `config` (on a fresh store).
    pub async fn with_matcher(config: matcher::Config) -> Self {
        Self::build(test_store().await, test_config(), config, system_clock()).await
    }

    /// An app (on a fresh store) whose whole clock is `clock`: time moves
    /// only when the test advances it.
    pub async fn with_clock(clock: clock::ManualClock) -> Self {
        let config = matcher::Config::default();
        Self::build(test_store().await, test_config(), config, Arc::new(clock)).await
    }

    /// An app (on a fresh store) on `clock` with the api settings `config`.
    pub async fn with_clock_and_config(clock: clock::ManualClock, config: Config) -> Self {
        let matcher = matcher::Config::default();
        Self::build(test_store().await, config, matcher, Arc::new(clock)).await
    }

    /// An app on `clock` whose event stream runs the consumers `consumers`
    /// makes from its state.
    pub async fn with_clock_and_consumers(
        clock: clock::ManualClock,
        consumers: impl FnOnce(&AppState) -> Vec<Arc<dyn events::Consumer>>,
    ) -> Self {
        let (store, log) = test_store_with_log().await;
        let config = matcher::Config::default();
        let app = Self::build(store, test_config(), config, Arc::new(clock)).await;
        tokio::spawn(events::run(
            log,
            consumers(&app.state),
            events::Config::default(),
            app.shutdown.clone(),
        ));
        app
    }

    async fn build(
        store: Arc<dyn Store>,
        config: Config,
        matcher_config: matcher::Config,
        clock: Arc<dyn clock::Clock>,
    ) -> Self {
        let engine = engine::Handle::new(engine::Config::default());
        let matcher =
            matcher::Matcher::new(engine.clone(), matcher_config).with_clock(clock.clone());
        let shutdown = CancellationToken::new();
        tokio::spawn(matcher.clone().run(shutdown.clone()));
        let tokens = Tokens::new(SECRET, ACCESS_TTL_S).with_clock(clock.clone());
        let hasher = config.hasher().unwrap();
        // A new gateway over the store's ledger: what a restart builds.
        let gateway = Arc::new(SimulatedGateway::new(store.clone(), clock.clone()));
        let state = AppState::new(store, engine, matcher, tokens, hasher, config, clock)
            .with_gateway(gateway.clone())
            .with_shutdown(shutdown.clone());
        let router = api::router(state.clone()).fallback(api::not_found_fallback);
        Self {
            state,
            router,
            restaurants: Mutex::new(HashMap::new()),
            gateway,
            shutdown,
        }
    }

    /// Sends every request at once, each on its own task so they race
    /// through the multi-threaded runtime; the replies in request order.
    pub async fn concurrently(&self, requests: Vec<Request<Body>>) -> Vec<Reply> {
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|req| {
                let router = self.router.clone();
                tokio::spawn(async move { reply(router.oneshot(req).await.unwrap()).await })
            })
            .collect();
        let mut replies = Vec::with_capacity(tasks.len());
        for task in tasks {
            replies.push(task.await.unwrap());
        }
        replies
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        reply(resp).await
    }

    /// A JSON request (body `None` sends no body and no content type).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send(request(method, uri, token, body)).await
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, uri, token, None).await
    }

    pub async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, uri, token, Some(body)).await
    }

    /// Signs up and logs in a new account with `role`.
    pub async fn user(&self, role: Role) -> User {
        let email = format!(
            "{}-{}@example.com",
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        let password = "correct horse battery".to_owned();
        let r = self
            .post(
                "/v1/auth/signup",
                None,
                json!({"email": email, "password": password, "name": "Test Person", "role": role.as_str()}),
            )
            .await;
        let id: UserId = r.assert_ok(201)["user_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        self.login_as(id, &email, &password).await
    }

    /// A bootstrapped admin, logged in.
    pub async fn admin(&self) -> User {
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "admin password".to_owned();
        let id = match api::bootstrap_admin(&self.state, &email, &password)
            .await
            .unwrap()
        {
            api::AdminBootstrap::Created(id) => id,
            other => panic!("{other:?}"),
        };
        self.login_as(id, &email, &password).await
    }

    async fn login_as(&self, id: UserId, email: &str, password: &str) -> User {
        let r = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        let body = r.assert_ok(200);
        User {
            id,
            email: email.to_owned(),
            password: password.to_owned(),
            token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A token for `principal` issued `age_s` seconds ago.
    pub fn token_issued_ago(&self, principal: Principal, age_s: u64) -> String {
        let now_s = self.state.tokens.now_s();
        self.state.tokens.issue(principal, now_s - age_s).token
    }

    /// A restaurant at (lat, lng), always open, delivering within 10 km,
    /// with one menu item (uncounted stock, 125.00).
    pub async fn restaurant_at(&self, owner: &User, lat: f64, lng: f64) -> RestaurantId {
        let r = self
            .post(
                "/v1/restaurants",
                owner.token(),
                json!({
                    "name": "Fiskekrogen",
                    "location": {"lat": lat, "lng": lng},
                    "address": "Lilla Torget 1",
                    "cuisines": ["seafood"],
                    "delivery_radius_m": 10_000
                }),
            )
            .await;
        let id: RestaurantId = r.assert_ok(201)["restaurant_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let item = self
            .menu_item(
                owner,
                id,
                json!({"name": "Fish soup", "price_cents": 12_500}),
            )
            .await;
        self.restaurants
            .lock()
            .unwrap()
            .insert(id, (owner.token.clone(), item));
        id
    }

    pub async fn restaurant(&self, owner: &User) -> RestaurantId {
        self.restaurant_at(owner, HERE.0, HERE.1).await
    }

    /// Adds one item to a restaurant's menu; its id.
    pub async fn menu_item(
        &self,
        owner: &User,
        restaurant: RestaurantId,
        item: Value,
    ) -> MenuItemId {
        let r = self
            .post(
                &format!("/v1/restaurants/{restaurant}/menu"),
                owner.token(),
                json!({"items": [item]}),
            )
            .await;
        r.assert_ok(201)["items"][0]["menu_item_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The menu item [`TestApp::restaurant_at`] created.
    pub fn item_of(&self, restaurant: RestaurantId) -> MenuItemId {
        self.restaurants.lock().unwrap()[&restaurant].1
    }

    /// A valid order body: one of the restaurant's item, paid with `token`,
    /// delivered 1.3 km away.
    pub fn order_body(&self, restaurant: RestaurantId, payment_token: &str) -> Value {
        json!({
            "restaurant_id": restaurant,
            "items": [{"menu_item_id": self.item_of(restaurant), "quantity": 1}],
            "delivery": {"lat": HERE.0 + 0.01, "lng": HERE.1 + 0.01, "address": "Vasagatan 2"},
            "payment": {"method": "card", "token": payment_token}
        })
    }

    /// Places and pays an order (status `paid`).
    pub async fn place_paid_order(&self, customer: &User, restaurant: RestaurantId) -> OrderId {
        let r = self
            .post(
                "/v1/orders",
                customer.token(),
                self.order_body(restaurant, "tok_ok"),
            )
            .await;
        let body = r.assert_ok(201);
        assert_eq!(body["status"], "paid", "{body}");
        body["order_id"].as_str().unwrap().parse().unwrap()
    }

    /// Places and pays an order, and has the restaurant accept it: the
    /// order is `accepted` and waits for a driver (the matcher has it).
    pub async fn place_order(&self, customer: &User, restaurant: RestaurantId) -> OrderId {
        let order = self.place_paid_order(customer, restaurant).await;
        let owner_token = self.restaurants.lock().unwrap()[&restaurant].0.clone();
        self.post(
            &format!("/v1/orders/{order}/status"),
            Some(&owner_token),
            json!({"status": "accepted"}),
        )
        .await
        .assert_ok(200);
        order
    }

    /// Applies a ping for `driver` at (lat, lng), now.
    pub fn ping(&self, driver: DriverId, lat: f64, lng: f64) {
        let now = self.state.clock.now_ms();
        let ping = Ping {
            driver_id: driver,
            position: LatLng::new(lat, lng).unwrap(),
            recorded_at_ms: now,
            heading_deg: Some(90.0),
            speed_mps: Some(5.0),
            accuracy_m: Some(5.0),
        };
        assert_eq!(
            self.state.engine.apply_ping(&ping, now),
            engine::Applied::Moved
        );
    }

    /// The pending offer of an order (made synchronously by dispatch).
    pub fn offer_of(&self, order: OrderId) -> engine::Offer {
        let offer = self
            .state
            .matcher
            .pending_offer(order)
            .unwrap_or_else(|| panic!("no pending offer for {order}"));
        (*offer).clone()
    }

    /// The pending offer of an order, once the matcher's loop has made it
    /// (after supply news, which it handles in the background).
    pub async fn offer_of_eventually(&self, order: OrderId) -> engine::Offer {
        eventually(|| async { self.state.matcher.pending_offer(order).is_some() }).await;
        self.offer_of(order)
    }

    /// The token of the owner of a restaurant made by [`TestApp::restaurant_at`].
    pub fn owner_token(&self, restaurant: RestaurantId) -> String {
        self.restaurants.lock().unwrap()[&restaurant].0.clone()
    }

    pub async fn accept(&self, driver: &User, offer: &engine::Offer) -> Reply {
        self.call(
            Method::POST,
            &format!("/v1/offers/{}/accept", offer.offer_id),
            driver.token(),
            None,
        )
        .await
    }

    pub async fn order_status(&self, order: OrderId) -> engine::OrderStatus {
        self.state.store.order(order).await.unwrap().unwrap().status
    }
}

pub fn request(
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

pub async fn reply(resp: axum::response::Response) -> Reply {
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: body is not JSON: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Reply { status, body }
}

/// Waits (up to 5 s) until `check` holds: for effects that happen in a
/// background task (refunds after a cancel), where no event is exposed to
/// await.
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
