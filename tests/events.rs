//! The event stream in the running app: the admin endpoints list what was
//! appended, a dead letter's replay is delivered once, and the in-process
//! consumers resume where they stopped after a restart on the same file.

mod common;

use api::store::Store;
use common::*;
use serde_json::json;

/// Appends one `restaurant.updated` event to the app's database through a
/// pool of its own (as another writer of the same file would).
async fn append_restaurant_updated(dir: &std::path::Path) {
    let url = format!("sqlite://{}/hexdash.db", dir.display());
    let store = api::store::SqlStore::connect(&url).await.unwrap();
    let log = store.event_log();
    let mut tx = log.pool().begin().await.unwrap();
    let event = events::NewEvent {
        event_type: events::EventType::RestaurantUpdated,
        aggregate_id: uuid::Uuid::now_v7().to_string(),
        at_ms: now_ms(),
        actor: events::Actor::System("test".to_owned()),
        payload: events::Payload::v1(json!({})),
    };
    events::append(&mut tx, &event).await.unwrap();
    tx.commit().await.unwrap();
    store.event_log().pool().close().await;
}

/// Every in-process consumer's stored position, and the published head.
async fn positions(dir: &std::path::Path) -> (Vec<i64>, i64) {
    let url = format!("sqlite://{}/hexdash.db", dir.display());
    let store = api::store::SqlStore::connect(&url).await.unwrap();
    let log = store.event_log();
    let mut out = Vec::new();
    for name in ["live_board", "matcher_trigger", "search_catalog"] {
        out.push(log.position(name).await.unwrap().unwrap_or(0));
    }
    let head = log.head().await.unwrap();
    log.pool().close().await;
    (out, head)
}

fn fast(c: &mut hexdash::config::Config) {
    c.events.poll_interval_ms = 20;
    c.events.checkpoint_every = 1;
}

#[tokio::test]
async fn admin_endpoints_list_events_and_replay_a_dead_letter_once() {
    let dir = TempDir::create();
    let app = spawn_app_in(&dir.0, fast).await;
    let admin = app.admin_token().await;
    append_restaurant_updated(&dir.0).await;
    let event_id = eventually(async || {
        let (status, body) = app
            .get(
                "/v1/admin/events?type=restaurant.updated&limit=10",
                Some(&admin),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["events"][0]["id"].as_i64()
    })
    .await;
    // Bad parameters are refused with reasons.
    let (status, body) = app.get("/v1/admin/events?limit=0", Some(&admin)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_limit")),
        "{body}"
    );
    let (status, body) = app
        .get("/v1/admin/events?type=order.teleported", Some(&admin))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unknown_event_type")),
        "{body}"
    );

    // The catalog consumer gave up on the event (as after a fault).
    let url = format!("sqlite://{}/hexdash.db", dir.0.display());
    let store = api::store::SqlStore::connect(&url).await.unwrap();
    let dead: i64 = sqlx::query_scalar(
        "INSERT INTO event_dead_letters (consumer, seq, attempts, last_error, state, failed_at_ms) \
         VALUES ('search_catalog', $1, 5, 'fault', 'dead', 0) RETURNING id",
    )
    .bind(event_id)
    .fetch_one(store.event_log().pool())
    .await
    .unwrap();
    let (status, body) = app
        .get(
            "/v1/admin/dead-letters?consumer=search_catalog",
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["dead_letters"][0]["id"], dead, "{body}");
    assert_eq!(body["dead_letters"][0]["event_id"], event_id);

    let path = format!("/v1/admin/dead-letters/{dead}/replay");
    let (status, body) = app.post(&path, Some(&admin), json!({})).await;
    assert_eq!(status, 202, "{body}");
    eventually(async || {
        let (_, body) = app.get("/v1/admin/dead-letters", Some(&admin)).await;
        (body["dead_letters"][0]["state"] == "replayed").then_some(())
    })
    .await;
    // Delivered once: a second replay is refused.
    let (status, body) = app.post(&path, Some(&admin), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_replayed")),
        "{body}"
    );
    let (status, _) = app
        .post(
            "/v1/admin/dead-letters/999999/replay",
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    store.event_log().pool().close().await;
    app.stop().await;
}

#[tokio::test]
async fn consumers_resume_after_a_restart_on_the_same_file() {
    let dir = TempDir::create();
    let app = spawn_app_in(&dir.0, fast).await;
    for _ in 0..3 {
        append_restaurant_updated(&dir.0).await;
    }
    eventually(async || {
        let (positions, head) = positions(&dir.0).await;
        (head >= 3 && positions.iter().all(|&p| p == head)).then_some(())
    })
    .await;
    app.stop().await;

    // Written while the app is down: the next start delivers them.
    for _ in 0..2 {
        append_restaurant_updated(&dir.0).await;
    }
    let app = spawn_app_in(&dir.0, fast).await;
    eventually(async || {
        let (positions, head) = positions(&dir.0).await;
        (head == 5 && positions.iter().all(|&p| p == 5)).then_some(())
    })
    .await;
    app.stop().await;
}
