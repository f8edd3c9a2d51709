//! Dispatcher areas, slow clients, connection limits, keepalive, shutdown.

mod common;

use std::time::{Duration, Instant};

use auth::Role;
use common::*;
use engine::{Availability, DriverId, UserId};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use ws_gateway::Config;

/// Central Gothenburg, `[min_lng, min_lat, max_lng, max_lat]`.
const BOX: [f64; 4] = [11.95, 57.69, 12.00, 57.72];
/// Timestamps one minute apart keep every test move plausible.
const STEP_MS: i64 = 60_000;

/// The drivers of the next `drivers` frame, by id.
async fn next_frame(c: &mut Client) -> Vec<Value> {
    let frame = c.expect("drivers").await;
    let mut drivers = frame["drivers"].as_array().unwrap().clone();
    drivers.sort_by_key(|d| d["driver_id"].as_str().unwrap().to_owned());
    drivers
}

fn entry(driver: DriverId, lat: f64, lng: f64, status: &str, ts: i64) -> Value {
    json!({"driver_id": driver, "lat": lat, "lng": lng, "status": status, "ts": ts})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatcher_area_gets_a_snapshot_then_moves_and_exits() {
    let app = spawn_app(Config::default()).await;
    let (a, b, far) = (DriverId::new(), DriverId::new(), DriverId::new());
    app.ping(a, 57.700, 11.970, T0);
    app.ping(b, 57.730, 11.970, T0); // just north of the box
    app.ping(far, 57.800, 12.200, T0);
    // Those pings' events are handled before the snapshot is taken, so the
    // frames below are exactly the ones the moves cause.
    app.settle().await;

    let mut admin = app.connect(UserId::new(), Role::Admin).await;
    admin.subscribe_area(BOX).await;
    assert_eq!(
        admin.expect("subscribed").await,
        json!({"type": "subscribed", "channel": "area", "bbox": BOX})
    );
    assert_eq!(
        next_frame(&mut admin).await,
        vec![entry(a, 57.700, 11.970, "available", T0)]
    );

    // A moves inside.
    app.ping(a, 57.701, 11.971, T0 + STEP_MS);
    assert_eq!(
        next_frame(&mut admin).await,
        vec![entry(a, 57.701, 11.971, "available", T0 + STEP_MS)]
    );
    // B enters.
    app.ping(b, 57.715, 11.970, T0 + STEP_MS);
    assert_eq!(
        next_frame(&mut admin).await,
        vec![entry(b, 57.715, 11.970, "available", T0 + STEP_MS)]
    );
    // A leaves: sent once more, outside, so the console can drop it.
    app.ping(a, 57.725, 11.971, T0 + 2 * STEP_MS);
    assert_eq!(
        next_frame(&mut admin).await,
        vec![entry(a, 57.725, 11.971, "available", T0 + 2 * STEP_MS)]
    );
    // Moves entirely outside are not sent: the next frame is B's alone.
    app.ping(a, 57.726, 11.971, T0 + 3 * STEP_MS);
    app.ping(far, 57.801, 12.200, T0 + STEP_MS);
    app.ping(b, 57.716, 11.970, T0 + 2 * STEP_MS);
    assert_eq!(
        next_frame(&mut admin).await,
        vec![entry(b, 57.716, 11.970, "available", T0 + 2 * STEP_MS)]
    );

    // A status change of a driver in the box reaches the frame too.
    app.engine
        .set_availability(b, Availability::Offline, T0 + 2 * STEP_MS);
    assert_eq!(
        next_frame(&mut admin).await,
        vec![entry(b, 57.716, 11.970, "offline", T0 + 2 * STEP_MS)]
    );

    // A new box replaces the old one, with its own snapshot.
    admin.subscribe_area([12.10, 57.75, 12.30, 57.85]).await;
    admin.expect("subscribed").await;
    assert_eq!(
        next_frame(&mut admin).await,
        vec![entry(far, 57.801, 12.200, "available", T0 + STEP_MS)]
    );
    // An empty box still gets its (empty) snapshot frame.
    admin.subscribe_area([0.0, 0.0, 0.1, 0.1]).await;
    admin.expect("subscribed").await;
    assert_eq!(next_frame(&mut admin).await, Vec::<Value>::new());

    admin
        .send(json!({"op": "unsubscribe", "channel": "area"}))
        .await;
    assert_eq!(
        admin.expect("unsubscribed").await,
        json!({"type": "unsubscribed", "channel": "area"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatchers_hear_of_orders_nobody_took_in_their_area() {
    let app = spawn_app(Config::default()).await;
    let mut here = app.connect(UserId::new(), Role::Admin).await;
    here.subscribe_area(BOX).await;
    here.expect("subscribed").await;
    next_frame(&mut here).await;
    let mut elsewhere = app.connect(UserId::new(), Role::Admin).await;
    elsewhere.subscribe_area([12.10, 57.75, 12.30, 57.85]).await;
    elsewhere.expect("subscribed").await;
    next_frame(&mut elsewhere).await;

    let news = |pickup: (f64, f64), resolved| engine::Unassigned {
        order_id: engine::OrderId::new(),
        pickup: engine::LatLng::new(pickup.0, pickup.1).unwrap(),
        attempts: 3,
        since_ms: T0,
        at_ms: T0 + 180_000,
        resolved,
    };
    let inside = news((57.700, 11.970), false);
    app.engine.publish_unassigned(inside);
    assert_eq!(
        here.expect("unassigned").await,
        json!({
            "type": "unassigned", "order_id": inside.order_id, "lat": 57.700, "lng": 11.970,
            "attempts": 3, "since": T0, "at": T0 + 180_000, "resolved": false
        })
    );
    // The other dispatcher's next message is about its own area only.
    let theirs = news((57.800, 12.200), true);
    app.engine.publish_unassigned(theirs);
    let got = elsewhere.expect("unassigned").await;
    assert_eq!(got["order_id"], json!(theirs.order_id));
    assert_eq!(got["resolved"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn areas_are_for_dispatchers_only() {
    let app = spawn_app(Config::default()).await;
    for role in [Role::Customer, Role::Restaurant, Role::Driver] {
        let mut c = app.connect(UserId::new(), role).await;
        c.subscribe_area(BOX).await;
        let err = c.expect_error("forbidden").await;
        assert_eq!(err["channel"], "area");
    }
    let mut admin = app.connect(UserId::new(), Role::Admin).await;
    admin.subscribe_area([12.0, 57.0, 11.0, 58.0]).await;
    admin.expect_error("bad_bbox").await;
    admin
        .send(json!({"op": "subscribe", "channel": "area"}))
        .await;
    admin.expect_error("bad_bbox").await;
    admin.subscribe_area(BOX).await;
    admin.expect("subscribed").await;
    admin.expect("drivers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_requests_over_the_cap_get_an_error_and_the_socket_stays() {
    let app = spawn_app(Config {
        subscribes_per_window: 3,
        subscribe_window_ms: 3_600_000,
        ..Config::default()
    })
    .await;
    let mut admin = app.connect(UserId::new(), Role::Admin).await;
    for i in 0..3 {
        let shift = f64::from(i) * 0.001;
        admin
            .subscribe_area([BOX[0] + shift, BOX[1], BOX[2] + shift, BOX[3]])
            .await;
        admin.until(|m| m["type"] == "subscribed").await;
    }
    // A client re-subscribing box after box, as fast as it can.
    for _ in 0..20 {
        admin.subscribe_area(BOX).await;
    }
    for _ in 0..20 {
        let err = admin
            .until(|m| m["type"] == "error" || m["type"] == "subscribed")
            .await;
        assert_eq!(err["code"], "rate_limited", "{err}");
        assert_eq!(err["channel"], "area");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("at most 3 subscribe requests"),
            "{err}"
        );
    }
    // Still connected and served: unsubscribing is not limited.
    admin
        .send(json!({"op": "unsubscribe", "channel": "area"}))
        .await;
    admin.until(|m| m["type"] == "unsubscribed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_delays_nobody_stays_bounded_and_is_dropped() {
    const FLEET: usize = 2_000;
    let config = Config {
        write_timeout_ms: 1_000,
        ..Config::default()
    };
    let (control_limit, slots, area_limit) = (
        config.control_queue_limit,
        config.max_order_subscriptions * 2,
        config.area_frame_limit,
    );
    let app = spawn_app(config).await;
    let fleet: Vec<DriverId> = (0..FLEET).map(|_| DriverId::new()).collect();
    let spot = |i: usize, round: i64| {
        (
            57.695 + (i / 50) as f64 * 0.0005 + round as f64 * 1e-5,
            11.96 + (i % 50) as f64 * 0.0005,
        )
    };
    for (i, d) in fleet.iter().enumerate() {
        let (lat, lng) = spot(i, 0);
        app.ping(*d, lat, lng, T0);
    }
    let customer = UserId::new();
    let courier = DriverId::new();
    let order = app.order(customer, (57.70, 11.97), (57.71, 11.98));
    app.ping(courier, 57.69, 11.96, T0);
    app.engine.assign(order.order_id, courier, T0).unwrap();

    // The stalled client watches the whole fleet and the order, reads its
    // first answers, then never reads again.
    let mut stalled = app.connect(UserId::new(), Role::Admin).await;
    stalled.subscribe_area(BOX).await;
    stalled.subscribe_order(order.order_id).await;
    let mut acks = 0;
    while acks < 2 {
        acks += usize::from(stalled.next().await["type"] == "subscribed");
    }
    let mut fast = app.connect(customer, Role::Customer).await;
    fast.subscribe_order(order.order_id).await;
    fast.expect("subscribed").await;
    fast.expect("status").await;
    fast.expect("location").await;

    // Rounds until the stalled writer has been blocked for the write timeout.
    let started = Instant::now();
    let mut round = 0i64;
    let mut worst = Duration::ZERO;
    while app.gateway.connection_count() > 1 {
        round += 1;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stalled client was never dropped"
        );
        let ts = T0 + round * 1_000;
        for (i, d) in fleet.iter().enumerate() {
            let (lat, lng) = spot(i, round);
            app.ping(*d, lat, lng, ts);
        }
        let sent = Instant::now();
        app.ping(courier, 57.69 + round as f64 * 1e-5, 11.96, ts);
        let loc = fast
            .until(|v| v["type"] == "location" && v["ts"] == ts)
            .await;
        assert_eq!(loc["order_id"], json!(order.order_id));
        worst = worst.max(sent.elapsed());

        // Latest-wins: never more than one pending entry per driver and key.
        let backlog = app.gateway.backlog();
        assert!(backlog.area_drivers <= FLEET + 1, "{backlog:?}");
        assert!(backlog.locations <= 2, "{backlog:?}");
        assert!(
            backlog.max_per_client <= control_limit + slots + area_limit,
            "{backlog:?}"
        );
    }
    // Generous for a debug build on two busy cores; a stalled writer would
    // instead hold the fast client up for the whole write timeout.
    assert!(
        worst < Duration::from_millis(900),
        "worst fast-client latency {worst:?}"
    );

    // The fast client carries on. The courier keeps its pace (a fixed
    // 57.70 was a jump of over 850 m in 10 s when the loop ran few rounds,
    // which the engine rightly refuses as implausible).
    app.ping(
        courier,
        57.69 + (round + 10) as f64 * 1e-5,
        11.96,
        T0 + (round + 10) * 1_000,
    );
    fast.until(|v| v["type"] == "location" && v["ts"] == T0 + (round + 10) * 1_000)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_before_the_upgrade() {
    let app = spawn_app(Config {
        max_connections: 1,
        ..Config::default()
    })
    .await;
    let first = app.connect(UserId::new(), Role::Customer).await;
    assert_eq!(app.gateway.connection_count(), 1);
    let token = app.token(UserId::new(), Role::Customer);
    let err = tokio_tungstenite::connect_async(format!("{}?token={token}", app.url()))
        .await
        .unwrap_err();
    let (status, body) = refused(err);
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "too_many_connections");

    drop(first);
    eventually("the first connection to end", || {
        app.gateway.connection_count() == 0
    })
    .await;
    app.connect(UserId::new(), Role::Customer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_closed_and_answering_ones_kept() {
    let config = Config {
        ping_interval_ms: 50,
        idle_timeout_ms: 300,
        ..Config::default()
    };
    let app = spawn_app(config).await;
    let mut live = app.connect(UserId::new(), Role::Customer).await;
    let _silent = app.connect(UserId::new(), Role::Customer).await;
    assert_eq!(app.gateway.connection_count(), 2);

    // Reading answers the server's pings (tungstenite replies with pongs).
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut pings = 0;
    while app.gateway.connection_count() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent client was never closed"
        );
        if let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_millis(20), live.ws.next()).await
        {
            assert!(matches!(msg, Message::Ping(_)), "unexpected {msg:?}");
            pings += 1;
        }
    }
    assert!(pings >= 2, "only {pings} pings");
    live.send(json!({"op": "subscribe", "channel": "area", "bbox": BOX}))
        .await;
    live.expect_error("forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_going_away_and_refuses_newcomers() {
    let app = spawn_app(Config::default()).await;
    let customer = UserId::new();
    let order = app.order(customer, (57.70, 11.97), (57.71, 11.98));
    let mut a = app.connect(customer, Role::Customer).await;
    a.subscribe_order(order.order_id).await;
    a.expect("subscribed").await;
    a.expect("status").await;
    let mut b = app.connect(UserId::new(), Role::Admin).await;
    b.subscribe_area(BOX).await;
    b.expect("subscribed").await;
    b.expect("drivers").await;

    app.shutdown.cancel();
    for client in [&mut a, &mut b] {
        match client.next_frame().await {
            Frame::Closed(Some(close)) => assert_eq!(u16::from(close.code), 1001, "{close:?}"),
            other => panic!("expected a Close frame, got {other:?}"),
        }
    }
    let mut app = app;
    let fanout = app.fanout.take().unwrap();
    within(fanout).await.unwrap();
    assert_eq!(app.gateway.connection_count(), 0);

    let token = app.token(UserId::new(), Role::Customer);
    let err = tokio_tungstenite::connect_async(format!("{}?token={token}", app.url()))
        .await
        .unwrap_err();
    let (status, body) = refused(err);
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "shutting_down");
}
