//! A real `SIGKILL` of a spawned `hexdash serve`, twice: once between the
//! commit of business transactions and the publication of their events,
//! once while consumers are in the middle of a batch. After the last
//! restart every committed event reaches every consumer, none out of order
//! per order, and a consumer that deduplicates by event id (the webhook
//! receiver here, as the README tells integrators to) sees each once. On
//! SQLite and on PostgreSQL (a schema of its own on
//! `HEXDASH_TEST_DATABASE_URL`).
//!
//! "Between commit and publish" is made certain, not left to timing. On
//! PostgreSQL a trigger the test puts on the `events` table refuses the
//! relay's numbering (`UPDATE … SET seq`) while appends go on, so the
//! orders placed meanwhile are committed with their events unnumbered when
//! the process is killed; the trigger is dropped before the restart. On
//! SQLite an append numbers its event itself and the relay only reads
//! (nothing it does is durable, so a kill before its read leaves the same
//! database as a kill after it); there the receiver refuses every delivery
//! of that phase, so the events are certainly committed and not consumed
//! when the process is killed.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::process::ServerProcess as Server;
use common::{Api, TempDir, WAIT};
use serde_json::{Value, json};
use sqlx::AnyPool;
use sqlx::any::AnyConnectOptions;

/// Orders placed in each phase.
const ORDERS_PER_PHASE: usize = 12;

/// The order event types the receiver subscribes to.
const ORDER_TYPES: [&str; 4] = [
    "order.placed",
    "order.paid",
    "order.accepted",
    "order.preparing",
];

/// One delivery the receiver got: (event id, order id, version).
type Delivery = (i64, String, i64);

/// What the receiver got, in arrival order, and how slowly it answers.
#[derive(Default)]
struct Received {
    deliveries: Vec<Delivery>,
    /// Milliseconds each request is held before the answer.
    delay_ms: u64,
    /// Answer 503 and record nothing (deliveries held back).
    refuse: bool,
}

type Shared = Arc<Mutex<Received>>;

async fn receive(State(seen): State<Shared>, body: String) -> StatusCode {
    let event: Value = serde_json::from_str(&body).unwrap();
    let delay = {
        let mut seen = seen.lock().unwrap();
        if seen.refuse {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        seen.deliveries.push((
            event["id"].as_i64().unwrap(),
            event["aggregate"]["id"].as_str().unwrap().to_owned(),
            event["version"].as_i64().unwrap(),
        ));
        seen.delay_ms
    };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (String, Shared) {
    let seen = Shared::default();
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// The database under test and the statements that hold the relay.
enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    /// Refuse the relay's numbering while appends go on (PostgreSQL; on
    /// SQLite appends number their events and the relay writes nothing).
    fn hold_statements(&self) -> &'static [&'static str] {
        match self {
            Db::Sqlite => &[],
            Db::Postgres => &[
                "CREATE FUNCTION hold_relay() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'held by the crash test'; END $$",
                "CREATE TRIGGER hold_relay BEFORE UPDATE OF seq ON events \
                 FOR EACH ROW EXECUTE FUNCTION hold_relay()",
            ],
        }
    }

    fn release_statements(&self) -> &'static [&'static str] {
        match self {
            Db::Sqlite => &[],
            Db::Postgres => &[
                "DROP TRIGGER hold_relay ON events",
                "DROP FUNCTION hold_relay()",
            ],
        }
    }
}

async fn run_all(pool: &AnyPool, statements: &[&str]) {
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(pool)
            .await
            .unwrap();
    }
}

/// An owner's restaurant with one item, and a customer: what orders need.
struct Shop {
    owner: String,
    customer: String,
    restaurant_id: String,
    item_id: String,
}

async fn open_shop(api: &Api) -> Shop {
    let owner = api.signup("owner", "restaurant").await.token;
    let customer = api.signup("customer", "customer").await.token;
    let (status, restaurant) = api
        .post(
            "/v1/restaurants",
            Some(&owner),
            json!({"name": "Crash Café", "location": {"lat": 57.7089, "lng": 11.9746}, "address": "Kungsgatan 1"}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    let restaurant_id = restaurant["restaurant_id"].as_str().unwrap().to_owned();
    let (status, menu) = api
        .post(
            &format!("/v1/restaurants/{restaurant_id}/menu"),
            Some(&owner),
            json!({"items": [{"name": "Soup", "price_cents": 9_000, "category": "Mains"}]}),
        )
        .await;
    assert_eq!(status, 201, "{menu}");
    let item_id = menu["items"][0]["menu_item_id"]
        .as_str()
        .unwrap()
        .to_owned();
    Shop {
        owner,
        customer,
        restaurant_id,
        item_id,
    }
}

/// Places `n` orders at once, then has the restaurant accept each and
/// start preparing it: four events per order.
async fn order_burst(api: &Api, shop: &Shop, n: usize) {
    let placed = futures_util::future::join_all((0..n).map(|_| async {
        let (status, order) = api
            .post(
                "/v1/orders",
                Some(&shop.customer),
                json!({"restaurant_id": shop.restaurant_id,
                       "items": [{"menu_item_id": shop.item_id, "quantity": 1}],
                       "delivery": {"lat": 57.70, "lng": 11.96, "address": "Avenyn 10"},
                       "payment": {"method": "card", "token": "tok_ok"}}),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        assert_eq!(order["status"], "paid", "{order}");
        order["order_id"].as_str().unwrap().to_owned()
    }))
    .await;
    futures_util::future::join_all(placed.iter().map(|id| async move {
        for step in ["accepted", "preparing"] {
            let (status, body) = api
                .post(
                    &format!("/v1/orders/{id}/status"),
                    Some(&shop.owner),
                    json!({"status": step}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }))
    .await;
}

/// The database beside the server, for the test's own statements.
async fn open_pool(database_url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    let pool = sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .connect_with(AnyConnectOptions::from_str(database_url).unwrap())
        .await
        .unwrap();
    if database_url.starts_with("sqlite:") {
        // The server holds SQLite's write lock during its transactions.
        sqlx::query("PRAGMA busy_timeout = 10000")
            .execute(&pool)
            .await
            .unwrap();
    }
    pool
}

async fn scalar(pool: &AnyPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn killed_twice(db: Db, database_url: String) {
    let dir = TempDir::create();
    let (hook_url, received) = start_receiver().await;
    let server = Server::start(&dir, &database_url, &[]).await;
    let pool = open_pool(&database_url).await;
    let admin = server.api.admin_token().await;
    let (status, endpoint) = server
        .api
        .post(
            "/v1/admin/webhooks",
            Some(&admin),
            json!({"url": hook_url, "event_types": ORDER_TYPES}),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let shop = open_shop(&server.api).await;

    // 1. Between commit and publish: the relay (PostgreSQL) and the
    // receiver are held, orders commit.
    received.lock().unwrap().refuse = true;
    run_all(&pool, db.hold_statements()).await;
    order_burst(&server.api, &shop, ORDERS_PER_PHASE).await;
    let waiting = match db {
        Db::Postgres => scalar(&pool, "SELECT COUNT(*) FROM events WHERE seq IS NULL").await,
        Db::Sqlite => {
            let head = scalar(&pool, "SELECT last_seq FROM event_relay WHERE id = 1").await;
            let consumed = scalar(
                &pool,
                "SELECT COALESCE(MAX(position), 0) FROM event_consumers WHERE name LIKE 'webhook:%'",
            )
            .await;
            head - consumed
        }
    };
    assert!(
        waiting >= 4 * ORDERS_PER_PHASE as i64,
        "{waiting} committed events wait to be published or consumed"
    );
    assert!(received.lock().unwrap().deliveries.is_empty());
    server.kill();
    run_all(&pool, db.release_statements()).await;
    received.lock().unwrap().refuse = false;

    // 2. Mid-batch: a slow receiver, a restart that publishes the backlog
    // while more orders come, and a kill once more than a checkpoint's
    // worth (so a recorded position is resumed from) but not all arrived.
    let past_a_checkpoint = events::Config::default().checkpoint_every as usize + 6;
    received.lock().unwrap().delay_ms = 25;
    let server = Server::start(&dir, &database_url, &[]).await;
    let burst = order_burst(&server.api, &shop, ORDERS_PER_PHASE);
    let first_deliveries = async {
        common::eventually(async || {
            (received.lock().unwrap().deliveries.len() >= past_a_checkpoint).then_some(())
        })
        .await;
    };
    tokio::join!(burst, first_deliveries);
    let delivered_before_kill = received.lock().unwrap().deliveries.len();
    let total = scalar(
        &pool,
        "SELECT COUNT(*) FROM events WHERE aggregate_kind = 'order' \
         AND event_type IN ('order.placed', 'order.paid', 'order.accepted', 'order.preparing')",
    )
    .await;
    assert_eq!(
        total,
        8 * ORDERS_PER_PHASE as i64,
        "every order made four events"
    );
    assert!(
        (delivered_before_kill as i64) < total,
        "killed mid-batch: {delivered_before_kill} of {total} delivered"
    );
    server.kill();

    // 3. The last restart: everything arrives.
    received.lock().unwrap().delay_ms = 0;
    let server = Server::start(&dir, &database_url, &[]).await;
    let head = common::eventually(async || {
        let head = scalar(&pool, "SELECT last_seq FROM event_relay WHERE id = 1").await;
        let unsequenced = scalar(&pool, "SELECT COUNT(*) FROM events WHERE seq IS NULL").await;
        let behind = scalar(
            &pool,
            &format!("SELECT COUNT(*) FROM event_consumers WHERE position < {head}"),
        )
        .await;
        (unsequenced == 0 && behind == 0 && received_ids(&received).len() as i64 == total)
            .then_some(head)
    })
    .await;

    // Every committed order event reached the webhook consumer...
    let committed: HashSet<i64> = sqlx::query_scalar(
        "SELECT seq FROM events WHERE event_type IN \
         ('order.placed', 'order.paid', 'order.accepted', 'order.preparing')",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(received_ids(&received), committed);
    // ... in order per order: first arrivals by version 1, 2, 3, 4 ...
    let deliveries = received.lock().unwrap().deliveries.clone();
    let mut first_seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut seen_ids = HashSet::new();
    for (id, order, version) in &deliveries {
        if seen_ids.insert(*id) {
            first_seen.entry(order.clone()).or_default().push(*version);
        }
    }
    for (order, versions) in &first_seen {
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "order {order} out of order: {versions:?}"
        );
    }
    // ... and again only what was handled but not yet recorded at a kill
    // (at most a checkpoint's worth, plus the one in flight, per kill).
    let again = deliveries.len() - seen_ids.len();
    let checkpoint = events::Config::default().checkpoint_every as usize;
    assert!(again <= 2 * (checkpoint + 1), "{again} redeliveries");
    // Every in-process consumer caught up with the head; none gave up.
    let consumers: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT name, position FROM event_consumers")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for name in ["live_board", "matcher_trigger", "search_catalog"] {
        assert_eq!(consumers.get(name), Some(&head), "{name}: {consumers:?}");
    }
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM event_dead_letters").await,
        0
    );
    // The orders themselves survived as committed, and the order list
    // shows each once.
    let (status, orders) = server
        .api
        .get("/v1/orders?limit=100", Some(&shop.customer))
        .await;
    assert_eq!(status, 200, "{orders}");
    assert_eq!(
        orders["orders"].as_array().map(Vec::len),
        Some(2 * ORDERS_PER_PHASE),
        "{orders}"
    );
    drop(server);
}

fn received_ids(received: &Shared) -> HashSet<i64> {
    received
        .lock()
        .unwrap()
        .deliveries
        .iter()
        .map(|(id, _, _)| *id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_event_on_sqlite() {
    let dir = TempDir::create();
    let url = format!("sqlite://{}/crash.db", dir.0.display());
    tokio::time::timeout(WAIT * 8, killed_twice(Db::Sqlite, url))
        .await
        .expect("the crash test finishes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_event_on_postgres() {
    let Some(url) = common::postgres_schema_url().await else {
        eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: skipped");
        return;
    };
    tokio::time::timeout(WAIT * 8, killed_twice(Db::Postgres, url))
        .await
        .expect("the crash test finishes");
}
