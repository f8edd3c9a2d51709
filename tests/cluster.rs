//! Several nodes: roles choose what a node serves, `/readyz` reports each
//! dependency and the node, and (on PostgreSQL and Redis:
//! `HEXDASH_TEST_DATABASE_URL` and `HEXDASH_TEST_REDIS_URL`, skipped when
//! either is unset) a change committed on one `hexdash serve` process
//! reaches the in-memory state of another through the Redis event stream.

mod common;

use common::process::PrivateRedis;
use common::*;
use serde_json::json;

#[tokio::test]
async fn roles_choose_what_a_node_serves() {
    let app = spawn_app_with(|c| c.roles = "ingest,gateway".parse().unwrap()).await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["checks"],
        json!({"database": true, "mqtt_broker": true}),
        "no Redis configured, so none checked"
    );
    assert_eq!(body["node"]["roles"], json!(["ingest", "gateway"]));
    assert!(body["node"]["id"].as_str().is_some_and(|id| !id.is_empty()));
    // No REST API on this node.
    let (status, _) = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "a@b.test", "password": "a-long-password", "name": "a", "role": "customer"}),
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;

    // No ingest: no broker to check (nor to bind).
    let app = spawn_app_with(|c| c.roles = "gateway,relay".parse().unwrap()).await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"], json!({"database": true}));
    assert_eq!(body["node"]["roles"], json!(["gateway", "relay"]));
    app.stop().await;
}

#[tokio::test]
async fn the_api_without_the_matcher_is_refused_at_start_without_redis() {
    let dir = TempDir::create();
    let mut config = test_config(&dir.0);
    config.roles = "api,ingest".parse().unwrap();
    let err = hexdash::App::build(config, std::sync::Arc::new(clock::SystemClock))
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("api and matcher go together"), "{message}");
}

#[tokio::test]
async fn readiness_shows_redis_down() {
    // Nothing listens on port 1: Redis is down from the start, which the
    // node survives and reports.
    let app = spawn_app_with(|c| c.redis_url = Some("redis://127.0.0.1:1".into())).await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["redis"], false);
    assert_eq!(body["checks"]["database"], true);
    app.stop().await;
}

/// A node: a `hexdash serve` process in a directory of its own, on the
/// shared database and Redis, killed when dropped.
struct Node {
    server: process::ServerProcess,
    _dir: TempDir,
}

impl Node {
    async fn start(database_url: &str, redis_url: &str, prefix: &str, node_id: &str) -> Node {
        Node::start_with(database_url, redis_url, prefix, node_id, &[]).await
    }

    /// [`Node::start`] with `extra` settings on top.
    async fn start_with(
        database_url: &str,
        redis_url: &str,
        prefix: &str,
        node_id: &str,
        extra: &[(&str, &str)],
    ) -> Node {
        let dir = TempDir::create();
        let mut env = vec![
            ("HEXDASH_REDIS_URL", redis_url),
            ("HEXDASH_CLUSTER__KEY_PREFIX", prefix),
            ("HEXDASH_CLUSTER__NODE_ID", node_id),
        ];
        env.extend_from_slice(extra);
        let server = process::ServerProcess::start(&dir, database_url, &env).await;
        Node { server, _dir: dir }
    }
}

impl std::ops::Deref for Node {
    type Target = process::ServerProcess;

    fn deref(&self) -> &process::ServerProcess {
        &self.server
    }
}

/// The restaurants a search near Gothenburg's centre finds on `api`.
async fn found(api: &Api) -> Vec<String> {
    let (status, body) = api
        .get("/v1/restaurants?lat=57.7089&lng=11.9746&limit=100", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["restaurant_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_change_on_one_node_reaches_another_through_redis() {
    let (Some(database_url), Ok(redis_url)) = (
        postgres_schema_url().await,
        std::env::var("HEXDASH_TEST_REDIS_URL"),
    ) else {
        eprintln!("HEXDASH_TEST_DATABASE_URL or HEXDASH_TEST_REDIS_URL unset: skipped");
        return;
    };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    // B starts first: its catalog loads empty, so what it finds later came
    // through the stream.
    let b = Node::start(&database_url, &redis_url, &prefix, "node-b").await;
    let a = Node::start(&database_url, &redis_url, &prefix, "node-a").await;
    for (node, id) in [(&a, "node-a"), (&b, "node-b")] {
        let (status, body) = node.api.get("/readyz", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["redis"], true, "{body}");
        assert_eq!(body["node"]["id"], id);
    }
    assert!(found(&b.api).await.is_empty());

    let owner = a.api.signup("owner", "restaurant").await.token;
    let (status, restaurant) = a
        .api
        .post(
            "/v1/restaurants",
            Some(&owner),
            json!({"name": "Stream Café", "location": {"lat": 57.7089, "lng": 11.9746}, "address": "Kungsgatan 1"}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    let id = restaurant["restaurant_id"].as_str().unwrap().to_owned();
    // A's own catalog is updated by the request; B's only by the event.
    assert_eq!(found(&a.api).await, vec![id.clone()]);
    eventually(async || (found(&b.api).await == vec![id.clone()]).then_some(())).await;

    // The events went through Redis: the stream under the test's prefix
    // holds them, with each node's group on it.
    let key = format!("{prefix}events");
    let groups = redis_command(&redis_url, &["XINFO", "GROUPS", &key]).await;
    assert!(
        groups.contains("node:node-a") && groups.contains("node:node-b"),
        "{groups}"
    );
    drop(a);
    drop(b);
    redis_command(&redis_url, &["DEL", &key]).await;
}

/// Two nodes on one PostgreSQL schema and one Redis prefix of the test's
/// own; `None` (skipped) without both test variables.
async fn two_nodes() -> Option<(Node, Node, String, String)> {
    let (Some(database_url), Ok(redis_url)) = (
        postgres_schema_url().await,
        std::env::var("HEXDASH_TEST_REDIS_URL"),
    ) else {
        eprintln!("HEXDASH_TEST_DATABASE_URL or HEXDASH_TEST_REDIS_URL unset: skipped");
        return None;
    };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let a = Node::start(&database_url, &redis_url, &prefix, "node-a").await;
    let b = Node::start(&database_url, &redis_url, &prefix, "node-b").await;
    Some((a, b, redis_url, prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_on_one_node_closes_the_sessions_on_another() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let Some((a, b, redis_url, prefix)) = two_nodes().await else {
        return;
    };
    let driver = a.api.signup("banned-elsewhere", "driver").await;
    // The driver's stream is open on B.
    let (mut stream, _) = tokio_tungstenite::connect_async(
        b.api
            .ws_url(&format!("/v1/drivers/stream?token={}", driver.token)),
    )
    .await
    .unwrap();
    let (status, _) = b.api.get("/v1/me", Some(&driver.token)).await;
    assert_eq!(status, 200);

    let admin = a.api.admin_token().await;
    let (status, body) = a
        .api
        .post(
            &format!("/v1/admin/users/{}/ban", driver.id),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // B closes the socket, saying why, and refuses the token.
    let close = tokio::time::timeout(WAIT, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("the stream ended without a Close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("B closed the banned driver's stream");
    let reason = close.map(|f| f.reason.to_string()).unwrap_or_default();
    assert!(reason.contains("banned"), "{reason}");
    let (status, body) = b.api.get("/v1/me", Some(&driver.token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("banned"))
    );

    // The unban on A lets the driver back in on B.
    let (status, _) = a
        .api
        .post(
            &format!("/v1/admin/users/{}/unban", driver.id),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    eventually(async || {
        let (status, _) = b.api.get("/v1/me", Some(&driver.token)).await;
        (status == 200).then_some(())
    })
    .await;
    drop((a, b));
    redis_command(&redis_url, &["DEL", &format!("{prefix}events")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_node_ends_the_token_on_another() {
    let Some((a, b, redis_url, prefix)) = two_nodes().await else {
        return;
    };
    let customer = a.api.signup("logs-out-elsewhere", "customer").await;
    let (status, _) = b.api.get("/v1/me", Some(&customer.token)).await;
    assert_eq!(status, 200);
    let (status, body) = a
        .api
        .post(
            "/v1/auth/logout",
            Some(&customer.token),
            json!({"all": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // B hears of it from the event stream.
    eventually(async || {
        let (status, body) = b.api.get("/v1/me", Some(&customer.token)).await;
        (status == 401 && body["error"]["code"] == "token_revoked").then_some(())
    })
    .await;
    drop((a, b));
    redis_command(&redis_url, &["DEL", &format!("{prefix}events")]).await;
}

/// A customer's phones on two nodes both get the customer's notification
/// live, whichever node runs the once-per-cluster notification consumer
/// (the other gets it broadcast through Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_reaches_the_users_devices_on_every_node() {
    let Some((a, b, redis_url, prefix)) = two_nodes().await else {
        return;
    };
    let at = (57.7089, 11.9746);
    let (_, restaurant, item) = a.api.open_soup_kitchen("Notis", at).await;
    let customer = a.api.signup("two-phones", "customer").await;
    let mut phones = Vec::new();
    for node in [&a, &b] {
        let mut phone = Watcher::connect_to(&node.api, &customer.token).await;
        phone
            .send(json!({"op": "subscribe", "channel": "me"}))
            .await;
        assert_eq!(
            phone.next().await,
            json!({"type": "subscribed", "channel": "me"})
        );
        phones.push(phone);
    }
    let (status, order) = b
        .api
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant,
                   "items": [{"menu_item_id": item, "quantity": 1}],
                   "delivery": {"lat": at.0 - 0.01, "lng": at.1, "address": "Avenyn 10"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    for phone in &mut phones {
        let note = phone.next().await;
        assert_eq!(note["type"], "notification", "{note}");
        assert_eq!(note["event_type"], "order.paid", "{note}");
        assert_eq!(note["id"], 1, "{note}");
    }
    drop((a, b));
    redis_command(&redis_url, &["DEL", &format!("{prefix}events")]).await;
}

/// Failed logins counted on either node limit the account on both (the
/// windows live in Redis): five wrong passwords on A and five on B use up
/// the default ten, so the next attempt is refused on A, where only five
/// were seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_on_one_node_count_on_another() {
    let Some((a, b, redis_url, prefix)) = two_nodes().await else {
        return;
    };
    let email = format!("guessed-at-{}@hexdash.test", uuid::Uuid::new_v4().simple());
    let signup = json!({"email": email, "password": "a-long-password", "name": "Guessed At", "role": "customer"});
    let (status, body) = a.api.post("/v1/auth/signup", None, signup).await;
    assert_eq!(status, 201, "{body}");
    let wrong = json!({"email": email, "password": "not-the-password"});
    for node in [&a, &b, &a, &b, &a, &b, &a, &b, &a, &b] {
        let (status, body) = node.api.post("/v1/auth/login", None, wrong.clone()).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = a.api.post("/v1/auth/login", None, wrong).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    drop((a, b));
    redis_command(&redis_url, &["DEL", &format!("{prefix}events")]).await;
}

/// Whether `api`'s node reports Redis as `up` (and its readiness with it).
async fn redis_ready(api: &Api, up: bool) -> Option<()> {
    let (status, body) = api.get("/readyz", None).await;
    let expected = if up { 200 } else { 503 };
    (status == expected && body["checks"]["redis"] == up).then_some(())
}

async fn open_restaurant(api: &Api, owner: &str, name: &str) -> String {
    let (status, restaurant) = api
        .post(
            "/v1/restaurants",
            Some(owner),
            json!({"name": name, "location": {"lat": 57.7089, "lng": 11.9746}, "address": "Kungsgatan 1"}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    restaurant["restaurant_id"].as_str().unwrap().to_owned()
}

/// Redis killed and started again, empty, mid-run: the nodes stay up,
/// `/readyz` shows the outage while it lasts, they reconnect by
/// themselves, and what was committed meanwhile still reaches the other
/// node. Runs with the PostgreSQL and Redis test variables set and
/// `redis-server` installed (it starts one of its own on a free port).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_an_outage_not_an_end() {
    let (Some(database_url), Ok(_)) = (
        postgres_schema_url().await,
        std::env::var("HEXDASH_TEST_REDIS_URL"),
    ) else {
        eprintln!("HEXDASH_TEST_DATABASE_URL or HEXDASH_TEST_REDIS_URL unset: skipped");
        return;
    };
    let port = free_port();
    let redis = PrivateRedis::start(port).await;
    let prefix = "hexdash:";
    let b = Node::start(&database_url, &redis.url(), prefix, "node-b").await;
    let a = Node::start(&database_url, &redis.url(), prefix, "node-a").await;
    let owner = a.api.signup("owner", "restaurant").await.token;
    let before = open_restaurant(&a.api, &owner, "Before").await;
    eventually(async || found(&b.api).await.contains(&before).then_some(())).await;

    drop(redis);
    eventually(async || redis_ready(&b.api, false).await).await;
    // Committed while Redis is away: in PostgreSQL, waiting for the stream.
    let during = open_restaurant(&a.api, &owner, "During").await;
    assert!(!found(&b.api).await.contains(&during));

    let _redis = PrivateRedis::start(port).await;
    eventually(async || redis_ready(&b.api, true).await).await;
    eventually(async || found(&b.api).await.contains(&during).then_some(())).await;
    let after = open_restaurant(&a.api, &owner, "After").await;
    eventually(async || found(&b.api).await.contains(&after).then_some(())).await;
}

/// Runs one command on the Redis at `url`; its reply as text (enough to
/// look for names in).
async fn redis_command(url: &str, args: &[&str]) -> String {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let reply: redis::Value = cmd.query_async(&mut conn).await.unwrap();
    format!("{reply:?}")
}
