//! One matcher per region at a time, with real `hexdash serve` processes
//! on one PostgreSQL and one Redis (`HEXDASH_TEST_DATABASE_URL` and
//! `HEXDASH_TEST_REDIS_URL`; skipped when either is unset, failing when
//! set and unreachable):
//!
//! - the leader of the region killed with `SIGKILL` in the middle of
//!   1,000 orders: the other node takes the region over, and in the
//!   database no order was assigned twice and no driver held two orders
//!   at once;
//! - a leader paused (`SIGSTOP`) past its lease while another node takes
//!   over, then resumed (`SIGCONT`): its old fencing token is refused by
//!   the database, and it lets the region go.
//!
//! Every simulated driver keeps a driver stream open to every node (pings
//! and offers), so each node's matcher knows the whole fleet without
//! waiting for positions to travel through Redis.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Where everything happens (Gothenburg): one region at the default
/// resolution.
const KITCHEN: (f64, f64) = (57.7089, 11.9746);

/// Short leases, so takeovers are quick; offers held until the food is
/// ready would only slow the run; a hundred couriers sign up from one
/// address.
const LEASE_ENV: [(&str, &str); 6] = [
    ("HEXDASH_CLUSTER__LEASE_MS", "2000"),
    ("HEXDASH_CLUSTER__LEASE_RENEW_MS", "400"),
    ("HEXDASH_MATCHER__PREP_AWARE", "false"),
    ("HEXDASH_API__SIGNUP_ATTEMPTS_PER_ADDRESS", "100000"),
    ("HEXDASH_API__LOGIN_ATTEMPTS_PER_ADDRESS", "100000"),
    // One owner steps a thousand orders as fast as the test can: a load,
    // not a client the account limit is for.
    ("HEXDASH_API__REQUESTS_PER_ACCOUNT_PER_S", "0"),
];

/// A `hexdash serve` process of the cluster, killed when dropped.
struct Node {
    server: common::process::ServerProcess,
    _dir: TempDir,
}

impl Node {
    async fn start(database_url: &str, redis_url: &str, prefix: &str, node_id: &str) -> Node {
        let dir = TempDir::create();
        let mut env = vec![
            ("HEXDASH_REDIS_URL", redis_url),
            ("HEXDASH_CLUSTER__KEY_PREFIX", prefix),
            ("HEXDASH_CLUSTER__NODE_ID", node_id),
        ];
        env.extend_from_slice(&LEASE_ENV);
        let server = common::process::ServerProcess::start(&dir, database_url, &env).await;
        Node { server, _dir: dir }
    }

    fn api(&self) -> &Api {
        &self.server.api
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.server.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }

    /// The region leases this node holds now, with their tokens.
    async fn regions(&self) -> Vec<(String, i64)> {
        let (_, body) = self.api().get("/readyz", None).await;
        body["leases"]
            .as_array()
            .map(|leases| {
                leases
                    .iter()
                    .filter_map(|l| {
                        let name = l["name"].as_str()?;
                        name.starts_with("region:")
                            .then(|| (name.to_owned(), l["token"].as_i64().unwrap_or(0)))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The value of the Prometheus series `name{labels}` (0 when absent).
    async fn metric(&self, series: &str) -> f64 {
        let text = self
            .api()
            .client
            .get(self.api().url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// The cluster's database and Redis prefix, or `None` (skipped).
async fn cluster_env() -> Option<(String, String, String)> {
    let (Some(database_url), Ok(redis_url)) = (
        postgres_schema_url().await,
        std::env::var("HEXDASH_TEST_REDIS_URL"),
    ) else {
        eprintln!("HEXDASH_TEST_DATABASE_URL or HEXDASH_TEST_REDIS_URL unset: skipped");
        return None;
    };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    Some((database_url, redis_url, prefix))
}

/// A driver's stream to one node: pings every few seconds (so the node's
/// engine knows where it is), passes every offer on to `offers`, ends when
/// the node goes away or at `stop`.
async fn driver_stream(
    api_ws: String,
    at: (f64, f64),
    offers: mpsc::Sender<(Value, usize)>,
    node: usize,
    stop: CancellationToken,
) {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(api_ws).await else {
        return;
    };
    let mut pings = tokio::time::interval(Duration::from_secs(3));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = pings.tick() => {
                let ping = json!({"lat": at.0, "lng": at.1, "ts": now_ms()}).to_string();
                if ws.send(Message::Text(ping.into())).await.is_err() {
                    return;
                }
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&text)
                        && v["type"] == "offer"
                    {
                        let _ = offers.send((v, node)).await;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

/// Steps `order` to `status` as `token`, trying again while the order is
/// not there yet (a driver may accept before the kitchen said it is
/// ready); whether it took.
async fn step_until(api: &Api, token: &str, order: &str, status: &str) -> bool {
    for _ in 0..200 {
        let (code, _) = api
            .post(
                &format!("/v1/orders/{order}/status"),
                Some(token),
                json!({"status": status}),
            )
            .await;
        if code == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Whether `order` is `driver`'s (its `driver_id`), as read through `api`.
async fn holds(api: &Api, driver: &User, order: &str) -> bool {
    let (code, body) = api
        .get(&format!("/v1/orders/{order}"), Some(&driver.token))
        .await;
    code == 200 && body["driver_id"].as_str() == Some(driver.id.as_str())
}

/// A simulated courier: accepts every offer it gets (answering through
/// `entry`, whichever node made the offer), then picks the order up and
/// delivers it, and is free again.
async fn courier(
    entry: Arc<Api>,
    driver: User,
    mut offers: mpsc::Receiver<(Value, usize)>,
    delivered: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    loop {
        let (offer, _) = tokio::select! {
            () = stop.cancelled() => return,
            offer = offers.recv() => match offer {
                Some(offer) => offer,
                None => return,
            },
        };
        let offer_id = offer["offer_id"].as_str().unwrap_or_default();
        let order = offer["order_id"].as_str().unwrap_or_default().to_owned();
        let (status, _) = entry
            .post(
                &format!("/v1/offers/{offer_id}/accept"),
                Some(&driver.token),
                Value::Null,
            )
            .await;
        // Refusals (a lapsed offer, the dead node's, another's order) are
        // part of the run. An accept whose answer was lost (the owner
        // killed after it committed) may still have made the order ours,
        // as a driver app finds on its next look: ask.
        if status != 200 && !holds(&entry, &driver, &order).await {
            continue;
        }
        if step_until(&entry, &driver.token, &order, "picked_up").await
            && step_until(&entry, &driver.token, &order, "delivered").await
        {
            delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Places `count` paid orders at `restaurant` through `api` as `customer`
/// and has the kitchen accept them and say they are ready; counts them in
/// `placed`.
async fn place_orders(
    api: Arc<Api>,
    customer: User,
    owner: Arc<User>,
    kitchen: (String, String),
    count: usize,
    placed: Arc<AtomicUsize>,
) {
    let (restaurant, item) = kitchen;
    for i in 0..count {
        let (status, order) = api
            .post(
                "/v1/orders",
                Some(&customer.token),
                json!({"restaurant_id": restaurant,
                       "items": [{"menu_item_id": item, "quantity": 1}],
                       "delivery": {"lat": KITCHEN.0 - 0.005 - (i % 10) as f64 * 0.001, "lng": KITCHEN.1, "address": "Avenyn 10"},
                       "payment": {"method": "card", "token": "tok_ok"}}),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        let id = order["order_id"].as_str().unwrap().to_owned();
        api.step(&owner, &id, "accepted").await;
        api.step(&owner, &id, "ready_for_pickup").await;
        placed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Polls `check` until it holds, for at most `limit`.
async fn within<T>(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_run_loses_no_order_and_assigns_none_twice() {
    const ORDERS: usize = 1_000;
    const COURIERS: usize = 100;
    const PLACERS: usize = 8;
    let Some((database_url, redis_url, prefix)) = cluster_env().await else {
        return;
    };
    let a = Node::start(&database_url, &redis_url, &prefix, "node-a").await;
    let b = Node::start(&database_url, &redis_url, &prefix, "node-b").await;
    let nodes = [&a, &b];
    let stop = CancellationToken::new();

    // Couriers around the kitchen, each streaming to both nodes.
    let kitchen = a.api().open_soup_kitchen("Lease Soup", KITCHEN).await;
    let owner = Arc::new(kitchen.0);
    let shop = (kitchen.1, kitchen.2);
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut couriers = Vec::new();
    // Answers enter through a node chosen per courier, set once the leader
    // is known (the follower: it forwards to the leader until the kill).
    let mut entries = Vec::new();
    for i in 0..COURIERS {
        let driver = a.api().signup(&format!("courier{i}"), "driver").await;
        let at = (
            KITCHEN.0 + (i % 10) as f64 * 0.0005,
            KITCHEN.1 + (i / 10) as f64 * 0.0005,
        );
        let (tx, rx) = mpsc::channel(16);
        for (n, node) in nodes.iter().enumerate() {
            tokio::spawn(driver_stream(
                node.api()
                    .ws_url(&format!("/v1/drivers/stream?token={}", driver.token)),
                at,
                tx.clone(),
                n,
                stop.clone(),
            ));
        }
        entries.push((driver, rx));
    }

    // A first order shows which node took the region.
    let customer = a.api().signup("first", "customer").await;
    let placed = Arc::new(AtomicUsize::new(0));
    place_orders(
        Arc::new(Api::new(a.api().http)),
        customer,
        owner.clone(),
        shop.clone(),
        1,
        placed.clone(),
    )
    .await;
    let (leader, follower) = within(
        Duration::from_secs(30),
        "a node leads the region",
        async || match (a.regions().await.is_empty(), b.regions().await.is_empty()) {
            (false, true) => Some((0, 1)),
            (true, false) => Some((1, 0)),
            _ => None,
        },
    )
    .await;
    let (leader, follower) = (nodes[leader], nodes[follower]);
    let entry = Arc::new(Api::new(follower.api().http));
    for (driver, rx) in entries {
        couriers.push(tokio::spawn(courier(
            entry.clone(),
            driver,
            rx,
            delivered.clone(),
            stop.clone(),
        )));
    }

    // The rest, through the follower, by several customers at once.
    let mut placers = Vec::new();
    for p in 0..PLACERS {
        let customer = follower
            .api()
            .signup(&format!("customer{p}"), "customer")
            .await;
        let count = (ORDERS - 1) / PLACERS + usize::from(p < (ORDERS - 1) % PLACERS);
        placers.push(tokio::spawn(place_orders(
            entry.clone(),
            customer,
            owner.clone(),
            shop.clone(),
            count,
            placed.clone(),
        )));
    }
    // Mid-run: the leader dies at once, offers and all.
    within(
        Duration::from_secs(300),
        "a third of the orders delivered",
        async || (delivered.load(Ordering::Relaxed) >= ORDERS / 3).then_some(()),
    )
    .await;
    let token_before = leader.regions().await;
    leader.signal("-KILL");
    eprintln!(
        "killed the leader at {} placed, {} delivered",
        placed.load(Ordering::Relaxed),
        delivered.load(Ordering::Relaxed)
    );
    // The follower takes the region within about the lease time, with a
    // higher token.
    let taken = within(
        Duration::from_secs(30),
        "the follower takes over",
        async || {
            let regions = follower.regions().await;
            (!regions.is_empty()).then_some(regions)
        },
    )
    .await;
    assert!(
        taken[0].1 > token_before.first().map_or(0, |r| r.1),
        "{taken:?} after {token_before:?}"
    );
    for placer in placers {
        placer.await.unwrap();
    }
    within(
        Duration::from_secs(600),
        "every order delivered",
        async || (delivered.load(Ordering::Relaxed) >= ORDERS).then_some(()),
    )
    .await;
    stop.cancel();
    for c in couriers {
        let _ = c.await;
    }

    // What the database says.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url)
        .await
        .unwrap();
    let unassigned: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE driver_id IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unassigned, 0, "every order found a driver");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'delivered'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, ORDERS as i64);
    let twice: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE event_type = 'order.assigned' \
         GROUP BY aggregate_id HAVING count(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(twice.is_empty(), "assigned twice: {twice:?}");
    // Per driver, in the order they were written: an assignment only after
    // the driver's previous order was delivered.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT o.driver_id, e.event_type FROM events e JOIN orders o ON o.id = e.aggregate_id \
         WHERE e.event_type IN ('order.assigned', 'order.delivered') \
         ORDER BY o.driver_id, e.insert_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut holding: Option<(&str, bool)> = None;
    for (driver, event) in &rows {
        let busy = match holding {
            Some((d, busy)) if d == driver => busy,
            _ => false,
        };
        let now_busy = match event.as_str() {
            "order.assigned" => {
                assert!(!busy, "driver {driver} was given a second order");
                true
            }
            _ => false,
        };
        holding = Some((driver, now_busy));
    }
    drop(b);
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_cannot_assign_with_its_old_token() {
    let Some((database_url, redis_url, prefix)) = cluster_env().await else {
        return;
    };
    let a = Node::start(&database_url, &redis_url, &prefix, "node-a").await;
    let b = Node::start(&database_url, &redis_url, &prefix, "node-b").await;
    let nodes = [&a, &b];
    let stop = CancellationToken::new();
    let (owner, restaurant, item) = a.api().open_soup_kitchen("Paused Soup", KITCHEN).await;
    let driver = a.api().signup("courier", "driver").await;
    let (tx, mut offers) = mpsc::channel(16);
    for (n, node) in nodes.iter().enumerate() {
        tokio::spawn(driver_stream(
            node.api()
                .ws_url(&format!("/v1/drivers/stream?token={}", driver.token)),
            (KITCHEN.0 + 0.001, KITCHEN.1),
            tx.clone(),
            n,
            stop.clone(),
        ));
    }
    let customer = a.api().signup("customer", "customer").await;
    let placed = Arc::new(AtomicUsize::new(0));
    // Both nodes know the courier before the order comes.
    for node in nodes {
        let admin = node.api().admin_token().await;
        within(
            Duration::from_secs(15),
            "the courier is known",
            async || {
                let (status, _) = node
                    .api()
                    .get(&format!("/v1/drivers/{}", driver.id), Some(&admin))
                    .await;
                (status == 200).then_some(())
            },
        )
        .await;
    }
    place_orders(
        Arc::new(Api::new(a.api().http)),
        User {
            id: customer.id.clone(),
            token: customer.token.clone(),
        },
        Arc::new(owner),
        (restaurant, item),
        1,
        placed,
    )
    .await;

    // The leader's offer reaches the courier, who does not answer yet.
    let (first, from) = tokio::time::timeout(WAIT, offers.recv())
        .await
        .expect("an offer in time")
        .unwrap();
    let (leader, follower) = (nodes[from], nodes[1 - from]);
    let old = leader.regions().await;
    assert_eq!(old.len(), 1, "the offer's node leads the region: {old:?}");

    // Paused past its lease: the follower takes the region (a higher
    // token) and offers the order itself.
    leader.signal("-STOP");
    let taken = within(
        Duration::from_secs(30),
        "the follower takes over",
        async || {
            let regions = follower.regions().await;
            (!regions.is_empty()).then_some(regions)
        },
    )
    .await;
    assert_eq!(taken[0].0, old[0].0);
    assert!(taken[0].1 > old[0].1, "{taken:?} after {old:?}");
    let (second, second_from) = tokio::time::timeout(WAIT, offers.recv())
        .await
        .expect("the new leader's offer in time")
        .unwrap();
    assert_eq!(second["order_id"], first["order_id"]);
    assert_eq!(nodes[second_from].api().http, follower.api().http);

    // The courier answers the old offer to the paused leader; the answer
    // waits in its socket until it wakes, with its old token.
    let old_answer = {
        let api = Api::new(leader.api().http);
        let token = driver.token.clone();
        let offer_id = first["offer_id"].as_str().unwrap().to_owned();
        tokio::spawn(async move {
            api.post(
                &format!("/v1/offers/{offer_id}/accept"),
                Some(&token),
                Value::Null,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    leader.signal("-CONT");
    let (status, body) = tokio::time::timeout(WAIT, old_answer)
        .await
        .expect("the resumed leader answers")
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("lease_lost")),
        "{body}"
    );
    assert!(
        leader
            .metric("hexdash_fenced_writes_refused_total{write=\"accept\"}")
            .await
            >= 1.0
    );
    // The order has no driver: the database refused the old token.
    let order_id = first["order_id"].as_str().unwrap();
    let (_, order) = a
        .api()
        .get(&format!("/v1/orders/{order_id}"), Some(&customer.token))
        .await;
    assert_eq!(order["driver_id"], Value::Null, "{order}");
    // It noticed: no region lease on it, one lost.
    within(
        Duration::from_secs(15),
        "the old leader lets go",
        async || leader.regions().await.is_empty().then_some(()),
    )
    .await;
    assert!(leader.metric("hexdash_lease_lost_total").await >= 1.0);

    // The new leader's offer is the one that counts (answered through the
    // old leader: forwarded).
    let offer_id = second["offer_id"].as_str().unwrap();
    let (status, body) = leader
        .api()
        .post(
            &format!("/v1/offers/{offer_id}/accept"),
            Some(&driver.token),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, order) = a
        .api()
        .get(&format!("/v1/orders/{order_id}"), Some(&customer.token))
        .await;
    assert_eq!(order["driver_id"], driver.id.as_str(), "{order}");
    stop.cancel();
}
