//! Drivers' positions, presence and driver-bound messages between nodes
//! through Redis: real `hexdash serve` processes on one PostgreSQL and one
//! Redis (`HEXDASH_TEST_DATABASE_URL` and `HEXDASH_TEST_REDIS_URL`;
//! skipped when either is unset, failing when set and unreachable).

mod common;

use common::process::PrivateRedis;
use common::*;
use serde_json::{Value, json};

/// Central Gothenburg: every point of these tests lies in one region.
const RESTAURANT: (f64, f64) = (57.7000, 11.9700);

/// A point `metres` north of the restaurant.
fn north(metres: f64) -> (f64, f64) {
    (RESTAURANT.0 + metres / 111_195.0, RESTAURANT.1)
}

/// A node: a `hexdash serve` process with `roles`, in a directory of its
/// own, killed when dropped.
struct Node {
    server: process::ServerProcess,
    _dir: TempDir,
}

impl Node {
    async fn start(
        database_url: &str,
        redis_url: &str,
        prefix: &str,
        id: &str,
        roles: &str,
    ) -> Node {
        let dir = TempDir::create();
        let env = [
            ("HEXDASH_REDIS_URL", redis_url),
            ("HEXDASH_CLUSTER__KEY_PREFIX", prefix),
            ("HEXDASH_CLUSTER__NODE_ID", id),
            ("HEXDASH_ROLES", roles),
        ];
        let server = process::ServerProcess::start(&dir, database_url, &env).await;
        Node { server, _dir: dir }
    }

    /// The sum of a metric's samples on this node's `/metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let text = self
            .api
            .client
            .get(self.api.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl std::ops::Deref for Node {
    type Target = process::ServerProcess;

    fn deref(&self) -> &process::ServerProcess {
        &self.server
    }
}

/// The test databases and a Redis prefix of the test's own; `None`
/// (skipped) without both variables.
async fn services() -> Option<(String, String, String)> {
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

/// The drivers `api`'s node lists near the restaurant: (id, lat).
async fn nearby(api: &Api, admin: &str) -> Vec<(String, f64)> {
    let (status, body) = api
        .get(
            &format!(
                "/v1/drivers/nearby?lat={}&lng={}&radius_m=5000",
                RESTAURANT.0, RESTAURANT.1
            ),
            Some(admin),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["driver_id"].as_str().unwrap().to_owned(),
                d["lat"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Sends one ping through `api`'s HTTP batch endpoint.
async fn http_ping(api: &Api, driver: &User, at: (f64, f64), ts: i64) {
    let (status, body) = api
        .post(
            &format!("/v1/drivers/{}/locations", driver.id),
            Some(&driver.token),
            json!([{"lat": at.0, "lng": at.1, "ts": ts}]),
        )
        .await;
    assert!(status < 300, "{status}: {body}");
}

/// Subscribes `watcher` to `order` on a node whose board may not have the
/// order yet (it comes through the event stream): retried until the
/// first status arrives.
async fn watch_order(api: &Api, token: &str, order: &str) -> Watcher {
    eventually(async || {
        let mut watcher = Watcher::connect_to(api, token).await;
        watcher
            .send(json!({"op": "subscribe", "channel": format!("order:{order}")}))
            .await;
        loop {
            let message = watcher.next().await;
            match message["type"].as_str() {
                Some("status") => return Some(watcher),
                Some("error") => return None,
                _ => {}
            }
        }
    })
    .await
}

/// The three nodes: a driver on A's MQTT, a customer watching on
/// B, the order placed on C. The order is offered to the right driver (on
/// A's MQTT, made by C's matcher), accepted over REST on C, assigned
/// once, and the customer on B sees every ping the driver sends on A
/// after the assignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_offer_assign_and_track_across_redis() {
    let Some((database_url, redis_url, prefix)) = services().await else {
        return;
    };
    let c = Node::start(
        &database_url,
        &redis_url,
        &prefix,
        "node-c",
        "api,matcher,relay",
    )
    .await;
    let a = Node::start(&database_url, &redis_url, &prefix, "node-a", "ingest").await;
    let b = Node::start(&database_url, &redis_url, &prefix, "node-b", "gateway").await;
    let admin = c.api.admin_token().await;
    let customer = c.api.signup("customer", "customer").await;
    let near = c.api.signup("near", "driver").await;
    let far = c.api.signup("far", "driver").await;
    let (owner, restaurant, soup) = c.api.open_soup_kitchen("Soppa", RESTAURANT).await;

    // Both drivers on A's MQTT; C's nearby lists them, nearest first.
    let mut near_mqtt = MqttDriver::connect_at(a.mqtt, &near).await;
    let mut far_mqtt = MqttDriver::connect_at(a.mqtt, &far).await;
    let t0 = now_ms();
    near_mqtt.ping(north(300.0).0, north(300.0).1, t0).await;
    far_mqtt.ping(north(2_500.0).0, north(2_500.0).1, t0).await;
    let listed = eventually(async || {
        let listed = nearby(&c.api, &admin).await;
        (listed.len() == 2).then_some(listed)
    })
    .await;
    assert_eq!(listed[0].0, near.id, "{listed:?}");
    assert_eq!(listed[1].0, far.id, "{listed:?}");

    // The order is placed on C; the customer watches it on B.
    let door = north(-2_000.0);
    let (status, order) = c
        .api
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant,
                   "items": [{"menu_item_id": soup, "quantity": 1}],
                   "delivery": {"lat": door.0, "lng": door.1, "address": "Avenyn 10"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    let mut watcher = watch_order(&b.api, &customer.token, &order_id).await;
    c.api.step(&owner, &order_id, "accepted").await;

    // C's matcher offers it to the nearest driver, whose MQTT is on A.
    let offer = near_mqtt.next_offer().await;
    assert_eq!(offer["type"], "offer", "{offer}");
    assert_eq!(offer["order_id"], order_id.as_str());
    let offer_id = offer["offer_id"].as_str().unwrap().to_owned();
    let (status, body) = c
        .api
        .post(
            &format!("/v1/offers/{offer_id}/accept"),
            Some(&near.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Assigned once: B tells the customer which driver, C's store agrees,
    // and a second accept is refused.
    let assigned = loop {
        let message = watcher.next_of("status").await;
        if !message["driver_id"].is_null() {
            break message;
        }
    };
    assert_eq!(assigned["driver_id"], near.id.as_str(), "{assigned}");
    let (_, fetched) = c
        .api
        .get(&format!("/v1/orders/{order_id}"), Some(&customer.token))
        .await;
    assert_eq!(fetched["driver_id"], near.id.as_str(), "{fetched}");
    let (status, _) = c
        .api
        .post(
            &format!("/v1/offers/{offer_id}/accept"),
            Some(&near.token),
            json!({}),
        )
        .await;
    assert!(status >= 400, "a second accept is refused: {status}");
    assert!(
        far_mqtt.offers.try_recv().is_err(),
        "the farther driver was never offered it"
    );

    // B holds the driver's region within moments of the assignment (its
    // board tells it; the driver's region comes from the directory): the
    // driver pings in place until B's customer sees it …
    let mut ts = now_ms().max(t0 + 1);
    let here = north(300.0);
    loop {
        ts += 1_000;
        near_mqtt.ping(here.0, here.1, ts).await;
        let seen = tokio::time::timeout(std::time::Duration::from_millis(500), async {
            loop {
                let message = watcher.next_of("location").await;
                if message["ts"].as_i64() == Some(ts) {
                    return;
                }
            }
        })
        .await;
        if seen.is_ok() {
            break;
        }
        assert!(
            now_ms() - t0 < WAIT.as_millis() as i64 * 4,
            "B never showed the driver"
        );
    }
    // … and from then on every ping the driver sends on A reaches it, in
    // order.
    let start = ts;
    for (i, metres) in [250.0, 200.0, 150.0, 100.0, 50.0].iter().enumerate() {
        let (lat, lng) = north(*metres);
        let ts = start + 1_000 * (i as i64 + 1);
        near_mqtt.ping(lat, lng, ts).await;
        let location = loop {
            let message = watcher.next_of("location").await;
            if message["ts"].as_i64().unwrap() > start {
                break message;
            }
        };
        assert_eq!(location["driver_id"], near.id.as_str(), "{location}");
        assert_eq!(location["order_id"], order_id.as_str(), "{location}");
        assert_eq!(location["ts"], ts, "every ping, in order: {location}");
        assert!(
            (location["lat"].as_f64().unwrap() - lat).abs() < 1e-6,
            "{location}"
        );
    }

    // The figures say what travelled.
    assert!(a.metric("hexdash_cluster_positions_published_total").await >= 7.0);
    assert!(b.metric("hexdash_cluster_positions_received_total").await >= 6.0);
    assert!(b.metric("hexdash_cluster_regions_held").await >= 1.0);
    assert!(c.metric("hexdash_cluster_driver_messages_total").await >= 1.0);
    drop((a, b, c));
    cleanup(&redis_url, &prefix).await;
}

/// `nearby` and a driver's own page on one node answer for drivers that
/// ping another (two nodes with every role: each ignores its own
/// publications and holds the other's regions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearby_answers_for_drivers_pinging_another_node() {
    let Some((database_url, redis_url, prefix)) = services().await else {
        return;
    };
    let all = "api,ingest,gateway,matcher,relay";
    let a = Node::start(&database_url, &redis_url, &prefix, "node-a", all).await;
    let b = Node::start(&database_url, &redis_url, &prefix, "node-b", all).await;
    let admin = b.api.admin_token().await;
    let on_a = a.api.signup("on-a", "driver").await;
    let on_b = b.api.signup("on-b", "driver").await;
    let t0 = now_ms();
    http_ping(&a.api, &on_a, north(100.0), t0).await;
    http_ping(&b.api, &on_b, north(900.0), t0).await;

    for node in [&a, &b] {
        let listed = eventually(async || {
            let listed = nearby(&node.api, &admin).await;
            (listed.len() == 2).then_some(listed)
        })
        .await;
        let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec![on_a.id.as_str(), on_b.id.as_str()]);
    }

    // A move on A is seen on B; B's page of the driver follows.
    let moved = north(400.0);
    http_ping(&a.api, &on_a, moved, t0 + 1_000).await;
    let page: Value = eventually(async || {
        let (status, body) = b
            .api
            .get(&format!("/v1/drivers/{}", on_a.id), Some(&admin))
            .await;
        (status == 200 && (body["lat"].as_f64()? - moved.0).abs() < 1e-6).then_some(body)
    })
    .await;
    assert_eq!(page["status"], "available", "{page}");

    // A declaration made on B for A's driver reaches every node (the
    // newest declaration wins, and A's later records carry it).
    let (status, body) = b
        .api
        .put(
            &format!("/v1/drivers/{}/availability", on_a.id),
            &on_a.token,
            json!({"status": "offline"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    http_ping(&a.api, &on_a, moved, t0 + 2_000).await;
    for node in [&a, &b] {
        eventually(async || {
            let (_, body) = node
                .api
                .get(&format!("/v1/drivers/{}", on_a.id), Some(&admin))
                .await;
            (body["status"] == "offline").then_some(())
        })
        .await;
    }
    drop((a, b));
    cleanup(&redis_url, &prefix).await;
}

/// A node serving only the api holds no region for a watcher or a
/// matcher; its `nearby` holds the regions around the query on demand,
/// so it answers for a driver pinging another node, and follows the
/// driver's moves while the region stays held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearby_on_an_api_node_holds_the_regions_it_asks_about() {
    let Some((database_url, redis_url, prefix)) = services().await else {
        return;
    };
    let all = "api,ingest,gateway,matcher,relay";
    let a = Node::start(&database_url, &redis_url, &prefix, "node-a", all).await;
    let api_only = Node::start(&database_url, &redis_url, &prefix, "node-api", "api").await;
    let admin = api_only.api.admin_token().await;
    let driver = a.api.signup("held-on-demand", "driver").await;
    // The driver pings as an app does, every poll: a region held after the
    // driver's last ping and before its snapshot was written sees the
    // driver with its next ping.
    let listed = eventually(async || {
        http_ping(&a.api, &driver, north(100.0), now_ms()).await;
        let listed = nearby(&api_only.api, &admin).await;
        (listed.len() == 1).then_some(listed)
    })
    .await;
    assert_eq!(listed[0].0, driver.id);
    assert!(
        api_only
            .metric("hexdash_cluster_on_demand_holds_total")
            .await
            >= 1.0
    );

    // The region stays held: a move on A shows in the next answers.
    let moved = north(700.0);
    eventually(async || {
        http_ping(&a.api, &driver, moved, now_ms()).await;
        let listed = nearby(&api_only.api, &admin).await;
        (listed.len() == 1 && (listed[0].1 - moved.0).abs() < 1e-6).then_some(())
    })
    .await;
    drop((a, api_only));
    cleanup(&redis_url, &prefix).await;
}

/// Redis killed and started again, empty, mid-run: the ingest node keeps
/// applying its driver's pings and counts what it could not publish; both
/// nodes reconnect and resubscribe by themselves, and positions flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_flow_again_after_a_redis_restart() {
    let Some((database_url, _, _)) = services().await else {
        return;
    };
    let port = free_port();
    let redis = PrivateRedis::start(port).await;
    let prefix = "hexdash:";
    let c = Node::start(
        &database_url,
        &redis.url(),
        prefix,
        "node-c",
        "api,matcher,relay",
    )
    .await;
    let a = Node::start(
        &database_url,
        &redis.url(),
        prefix,
        "node-a",
        "api,ingest,matcher",
    )
    .await;
    let admin = c.api.admin_token().await;
    let driver = a.api.signup("restarted", "driver").await;
    let t0 = now_ms();
    http_ping(&a.api, &driver, north(100.0), t0).await;
    eventually(async || {
        let listed = nearby(&c.api, &admin).await;
        (listed.first().map(|(id, _)| id) == Some(&driver.id)).then_some(())
    })
    .await;

    drop(redis);
    // A keeps serving its driver while Redis is away; what it could not
    // publish is counted.
    let during = north(200.0);
    let mut ts = t0;
    eventually(async || {
        ts += 1_000;
        http_ping(&a.api, &driver, during, ts).await;
        (a.metric("hexdash_cluster_positions_dropped_total").await > 0.0).then_some(())
    })
    .await;
    let (_, page) = a
        .api
        .get(&format!("/v1/drivers/{}", driver.id), Some(&admin))
        .await;
    assert!(
        (page["lat"].as_f64().unwrap() - during.0).abs() < 1e-6,
        "{page}"
    );

    let _redis = PrivateRedis::start(port).await;
    let after = north(700.0);
    eventually(async || {
        ts += 1_000;
        http_ping(&a.api, &driver, after, ts).await;
        let listed = nearby(&c.api, &admin).await;
        listed
            .iter()
            .any(|(id, lat)| id == &driver.id && (lat - after.0).abs() < 1e-6)
            .then_some(())
    })
    .await;
    assert!(c.metric("hexdash_cluster_snapshot_loads_total").await >= 2.0);
}

/// Removes the test's keys (its prefix) from the shared Redis.
async fn cleanup(redis_url: &str, prefix: &str) {
    let client = redis::Client::open(redis_url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
