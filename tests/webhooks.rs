//! Webhooks through the real server: an admin registers endpoints over
//! REST, events go into the log, and receivers started here (real HTTP
//! servers on port 0) check what arrives: the signature verifies, a
//! receiver answering 500 twice gets the event on the third try, one that
//! never answers ends in the dead letters, and it holds up no other
//! endpoint; one that answers 410 Gone is disabled until an admin enables
//! it again.
//!
//! Until the outbox appends business events, the test appends them itself
//! with `events::append` on the app's database file (the relay finds them
//! by its poll).

mod common;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{TempDir, TestApp, eventually, spawn_app_in};
use serde_json::{Value, json};
use sqlx::AnyPool;
use sqlx::any::AnyConnectOptions;

/// What the receiver saw, per path.
#[derive(Default)]
struct Seen {
    /// Signing secret per path (set after registration).
    secrets: HashMap<String, String>,
    /// Requests per path (verified bodies for the good ones).
    bodies: HashMap<String, Vec<Value>>,
    /// Requests per path, answered or not.
    tries: HashMap<String, u32>,
    /// Signatures that did not verify.
    bad_signatures: u32,
}

type Shared = Arc<Mutex<Seen>>;

/// `/ok/…` answers 204; `/flaky/…` 500 to its first two requests, then
/// 204; `/gone/…` 410 to its first request, then 204; `/dead/…` never
/// answers. Every request's signature is checked.
async fn receive(
    State(seen): State<Shared>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = format!("{kind}/{name}");
    let tries = {
        let mut seen = seen.lock().unwrap();
        let secret = seen.secrets.get(&path).cloned().unwrap_or_default();
        let header = headers
            .get(webhooks::SIGNATURE_HEADER)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let now_s = common::now_ms() / 1000;
        if webhooks::verify(secret.as_bytes(), header, &body, now_s, 300).is_err() {
            seen.bad_signatures += 1;
        }
        let event: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            headers[webhooks::EVENT_ID_HEADER].to_str().unwrap(),
            event["id"].to_string()
        );
        assert_eq!(
            headers[webhooks::EVENT_TYPE_HEADER].to_str().unwrap(),
            event["type"].as_str().unwrap()
        );
        let tries = seen.tries.entry(path.clone()).or_default();
        *tries += 1;
        let tries = *tries;
        if kind == "ok" || (kind == "flaky" && tries > 2) || (kind == "gone" && tries > 1) {
            seen.bodies.entry(path).or_default().push(event);
        }
        tries
    };
    match kind.as_str() {
        "flaky" if tries <= 2 => StatusCode::INTERNAL_SERVER_ERROR,
        "gone" if tries == 1 => StatusCode::GONE,
        "dead" => std::future::pending().await,
        _ => StatusCode::NO_CONTENT,
    }
}

async fn start_receiver() -> (String, Shared) {
    let seen = Shared::default();
    let app = axum::Router::new()
        .route("/{kind}/{name}", post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// Registers `base/path` for `types`; its id.
async fn register(
    app: &TestApp,
    admin: &str,
    seen: &Shared,
    base: &str,
    path: &str,
    types: Value,
) -> String {
    let (status, body) = app
        .post(
            "/v1/admin/webhooks",
            Some(admin),
            json!({"url": format!("{base}/{path}"), "event_types": types}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    seen.lock().unwrap().secrets.insert(path.to_owned(), secret);
    body["id"].as_str().unwrap().to_owned()
}

/// The app's database, opened beside it.
async fn open_db(dir: &TempDir) -> AnyPool {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}/hexdash.db", dir.0.display());
    sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .connect_with(AnyConnectOptions::from_str(&url).unwrap())
        .await
        .unwrap()
}

/// Appends one event of `event_type` for `order` and commits.
async fn append(pool: &AnyPool, event_type: events::EventType, order: &str) {
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(pool)
        .await
        .unwrap();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    events::append(
        &mut tx,
        &events::NewEvent {
            event_type,
            aggregate_id: order.to_owned(),
            at_ms: common::now_ms(),
            actor: events::Actor::System("test".to_owned()),
            payload: events::Payload::v1(json!({"order_id": order, "total_cents": 990})),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Waits until endpoint `id`'s consumer has recorded a position at or
/// past the event of `aggregate_id` (it records it once idle).
async fn passed(db: &AnyPool, id: &str, aggregate_id: &str) {
    eventually(async || {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE aggregate_id = $1")
            .bind(aggregate_id)
            .fetch_one(db)
            .await
            .unwrap();
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM event_consumers WHERE name = $1")
                .bind(format!("webhook:{id}"))
                .fetch_optional(db)
                .await
                .unwrap();
        (seq.is_some() && position >= seq).then_some(())
    })
    .await;
}

async fn bodies(seen: &Shared, path: &str, n: usize) -> Vec<Value> {
    eventually(async || {
        let seen = seen.lock().unwrap();
        let got = seen.bodies.get(path).cloned().unwrap_or_default();
        (got.len() >= n).then_some(got)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_and_dead_lettered() {
    let dir = TempDir::create();
    let app = spawn_app_in(&dir.0, |c| {
        c.webhooks.timeout_ms = 300;
        c.webhooks.connect_timeout_ms = 300;
        c.webhooks.max_attempts = 3;
        c.webhooks.backoff_initial_ms = 10;
        c.webhooks.backoff_max_ms = 20;
    })
    .await;
    let admin = app.admin_token().await;
    let (base, seen) = start_receiver().await;
    let db = open_db(&dir).await;
    // History before registration is not sent.
    append(&db, events::EventType::OrderPlaced, "o-before").await;
    // Published (an endpoint added before that would still get it).
    eventually(async || {
        let head: i64 = sqlx::query_scalar("SELECT last_seq FROM event_relay WHERE id = 1")
            .fetch_one(&db)
            .await
            .unwrap();
        (head >= 1).then_some(())
    })
    .await;
    let types = json!(["order.placed", "order.paid"]);
    let ok = register(&app, &admin, &seen, &base, "ok/a", types.clone()).await;
    let flaky = register(&app, &admin, &seen, &base, "flaky/b", types.clone()).await;
    let dead = register(&app, &admin, &seen, &base, "dead/c", types).await;
    let only_paid = register(&app, &admin, &seen, &base, "ok/d", json!(["order.paid"])).await;

    // Validation: a clear 422 with the reason, 400 for malformed JSON.
    for (body, reason) in [
        (
            json!({"url": "ftp://x.example/", "event_types": ["order.placed"]}),
            "scheme",
        ),
        (
            json!({"url": "/relative", "event_types": ["order.placed"]}),
            "absolute",
        ),
        (
            json!({"url": "https://x.example/", "event_types": ["order.teleported"]}),
            "unknown event type",
        ),
        (
            json!({"url": "https://x.example/", "event_types": []}),
            "at least one",
        ),
    ] {
        let (status, answer) = app.post("/v1/admin/webhooks", Some(&admin), body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_webhook");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{answer}"
        );
    }
    let malformed = app
        .client
        .post(app.url("/v1/admin/webhooks"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    // The delivery log's cursor is an id: 0 and below are refused.
    let (status, answer) = app
        .get(
            &format!("/v1/admin/webhooks/{flaky}/deliveries?before=0"),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_query");

    append(&db, events::EventType::OrderPlaced, "o1").await;
    append(&db, events::EventType::OrderPaid, "o1").await;

    // Signed, in order, with the documented body; no history.
    let got = bodies(&seen, "ok/a", 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["type"], "order.placed");
    assert_eq!(got[1]["type"], "order.paid");
    assert_eq!(got[0]["aggregate"], json!({"kind": "order", "id": "o1"}));
    assert_eq!(
        (got[0]["version"].as_i64(), got[1]["version"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(got[0]["actor"], "system:test");
    assert_eq!(got[0]["payload"]["schema_version"], 1);
    assert_eq!(got[0]["payload"]["body"]["total_cents"], 990);
    assert!(got[0]["at_ms"].is_i64());
    // Types it did not ask for are not sent.
    let paid_only = bodies(&seen, "ok/d", 1).await;
    assert_eq!(paid_only[0]["type"], "order.paid");

    // 500, 500, then 204: the third try delivers, then the next event.
    let got = bodies(&seen, "flaky/b", 2).await;
    assert_eq!(
        (got[0]["type"].as_str(), got[1]["type"].as_str()),
        (Some("order.placed"), Some("order.paid"))
    );
    let (status, log) = app
        .get(
            &format!("/v1/admin/webhooks/{flaky}/deliveries"),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200);
    let outcomes: Vec<(i64, &str)> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|d| {
            (
                d["attempt"].as_i64().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes[..3],
        [(1, "http_error"), (2, "http_error"), (3, "delivered")]
    );

    // Never answering: every try times out, then the dead letters.
    let dead_letters = eventually(async || {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, attempts FROM event_dead_letters WHERE consumer = $1 ORDER BY seq",
        )
        .bind(format!("webhook:{dead}"))
        .fetch_all(&db)
        .await
        .unwrap();
        (rows.len() == 2).then_some(rows)
    })
    .await;
    assert!(dead_letters.iter().all(|(_, attempts)| *attempts == 3));
    let (_, log) = app
        .get(
            &format!("/v1/admin/webhooks/{dead}/deliveries?limit=200"),
            Some(&admin),
        )
        .await;
    assert!(
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["outcome"] == "timeout")
    );
    assert_eq!(seen.lock().unwrap().bad_signatures, 0);

    // Listing shows no secrets; delete stops and forgets.
    let (_, list) = app.get("/v1/admin/webhooks", Some(&admin)).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 4);
    assert!(list.to_string().find("whsec_").is_none());
    let (status, one) = app
        .get(&format!("/v1/admin/webhooks/{ok}"), Some(&admin))
        .await;
    assert_eq!((status, one["enabled"].as_bool()), (200, Some(true)));
    let deleted = app
        .client
        .delete(app.url(&format!("/v1/admin/webhooks/{dead}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, _) = app
        .get(&format!("/v1/admin/webhooks/{dead}"), Some(&admin))
        .await;
    assert_eq!(status, 404);
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM event_dead_letters WHERE consumer = $1")
            .bind(format!("webhook:{dead}"))
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(left, 0);
    let _ = only_paid;
    app.stop().await;
}

/// A receiver that holds every request for longer than the test lasts
/// delays no other endpoint: each endpoint has its own runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_holds_up_no_other_endpoint() {
    let dir = TempDir::create();
    let app = spawn_app_in(&dir.0, |c| {
        // Longer than `common::WAIT`: were endpoints served one after the
        // other, the good one would wait past the test's patience.
        c.webhooks.timeout_ms = 120_000;
    })
    .await;
    let admin = app.admin_token().await;
    let (base, seen) = start_receiver().await;
    let db = open_db(&dir).await;
    let types = json!(["order.placed", "order.paid"]);
    register(&app, &admin, &seen, &base, "dead/x", types.clone()).await;
    register(&app, &admin, &seen, &base, "ok/y", types).await;
    append(&db, events::EventType::OrderPlaced, "o2").await;
    append(&db, events::EventType::OrderPaid, "o2").await;
    let got = bodies(&seen, "ok/y", 2).await;
    assert_eq!(got.len(), 2);
    // The dead one is still on its first event.
    assert!(
        seen.lock()
            .unwrap()
            .tries
            .get("dead/x")
            .copied()
            .unwrap_or(0)
            <= 1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_gone_or_disabled_is_enabled_again_by_an_admin() {
    let dir = TempDir::create();
    let app = spawn_app_in(&dir.0, |_| {}).await;
    let admin = app.admin_token().await;
    let (base, seen) = start_receiver().await;
    let db = open_db(&dir).await;
    let id = register(
        &app,
        &admin,
        &seen,
        &base,
        "gone/g",
        json!(["order.placed"]),
    )
    .await;
    let path = format!("/v1/admin/webhooks/{id}");

    // The first event is answered 410: the endpoint disables itself.
    append(&db, events::EventType::OrderPlaced, "o-gone").await;
    let endpoint = eventually(async || {
        let (_, body) = app.get(&path, Some(&admin)).await;
        (body["enabled"] == false).then_some(body)
    })
    .await;
    assert_eq!(
        endpoint["disabled_reason"],
        "the receiver answered 410 Gone"
    );

    // Only admins change it, only with a well-formed body, only one that exists.
    let customer = app.signup("c", "customer").await;
    let (status, _) = app
        .patch(&path, &customer.token, json!({"enabled": true}))
        .await;
    assert_eq!(status, 403);
    for bad in [
        json!({"enabled": "yes"}),
        json!({}),
        json!({"enabled": true, "url": "x"}),
    ] {
        let (status, body) = app.patch(&path, &admin, bad).await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = app
        .patch(
            &format!("/v1/admin/webhooks/{}", uuid::Uuid::new_v4()),
            &admin,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(status, 404, "{body}");

    // An event while it is disabled is skipped, not kept for later.
    append(&db, events::EventType::OrderPlaced, "o-while-disabled").await;
    passed(&db, &id, "o-while-disabled").await;
    let (status, body) = app.patch(&path, &admin, json!({"enabled": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["disabled_reason"], Value::Null);
    // Enabled again: the next event is delivered, and only it.
    append(&db, events::EventType::OrderPlaced, "o-after").await;
    let got = bodies(&seen, "gone/g", 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["aggregate"]["id"], "o-after", "{got:?}");

    // An admin disables it: nothing more is sent, and the reason says who.
    let (status, body) = app.patch(&path, &admin, json!({"enabled": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled_reason"], "disabled by an admin");
    append(&db, events::EventType::OrderPlaced, "o-disabled").await;
    append(&db, events::EventType::OrderPlaced, "o-disabled-2").await;
    passed(&db, &id, "o-disabled-2").await;
    let (_, body) = app.patch(&path, &admin, json!({"enabled": true})).await;
    assert_eq!(body["enabled"], true);
    append(&db, events::EventType::OrderPlaced, "o-last").await;
    let got = bodies(&seen, "gone/g", 2).await;
    assert_eq!(got[1]["aggregate"]["id"], "o-last", "{got:?}");
    assert_eq!(seen.lock().unwrap().bad_signatures, 0);
    app.stop().await;
}
