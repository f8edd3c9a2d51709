//! Order tracking over the real socket: auth, authorisation, the message
//! sequence a customer sees, bad client messages, resync after lost changes.

mod common;

use auth::Role;
use common::*;
use engine::eta::eta_s;
use engine::{DriverId, LatLng, OrderId, OrderStatus, UserId};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use ws_gateway::Config;

const PICKUP: (f64, f64) = (57.700, 11.970);
const DROPOFF: (f64, f64) = (57.720, 11.990);

fn ll(p: (f64, f64)) -> LatLng {
    LatLng::new(p.0, p.1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_checked_before_the_upgrade() {
    let app = spawn_app(Config::default()).await;

    let err = tokio_tungstenite::connect_async(app.url())
        .await
        .unwrap_err();
    let (status, body) = refused(err);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "missing_token");

    let err = tokio_tungstenite::connect_async(format!("{}?token=garbage", app.url()))
        .await
        .unwrap_err();
    let (status, body) = refused(err);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_token");

    // `?token=` works for browsers, which cannot set headers.
    let token = app.token(UserId::new(), Role::Customer);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?token={token}", app.url()))
        .await
        .unwrap();
    ws.send(Message::text(
        r#"{"op":"subscribe","channel":"area","bbox":[0,0,1,1]}"#,
    ))
    .await
    .unwrap();
    let mut client = Client { ws };
    client.expect_error("forbidden").await;

    // A banned account's token stops working.
    let banned = UserId::new();
    let token = app.token(banned, Role::Customer);
    app.tokens.ban(banned);
    let err = tokio_tungstenite::connect_async(format!("{}?token={token}", app.url()))
        .await
        .unwrap_err();
    assert_eq!(refused(err).0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_sees_status_positions_then_status_changes_in_order() {
    let app = spawn_app(Config::default()).await;
    let customer = UserId::new();
    let driver = DriverId::new();
    let order = app.order(customer, PICKUP, DROPOFF);
    app.ping(driver, 57.690, 11.960, T0);
    app.engine.assign(order.order_id, driver, T0 + 1).unwrap();

    let mut c = app.connect(customer, Role::Customer).await;
    c.subscribe_order(order.order_id).await;
    let channel = format!("order:{}", order.order_id);
    assert_eq!(
        c.expect("subscribed").await,
        json!({"type": "subscribed", "channel": channel})
    );
    // The current status from the board, then the driver's current position:
    // the map is right at once.
    assert_eq!(
        c.expect("status").await,
        json!({"type": "status", "order_id": order.order_id, "status": "accepted", "driver_id": driver, "at": T0 + 1})
    );
    let here = LatLng::new(57.690, 11.960).unwrap();
    assert_eq!(
        c.expect("location").await,
        json!({"type": "location", "order_id": order.order_id, "driver_id": driver, "lat": 57.690, "lng": 11.960,
               "ts": T0, "eta_s": eta_s(here, ll(PICKUP)),
               "delivery_eta_s": eta_s(here, ll(PICKUP)) + eta_s(ll(PICKUP), ll(DROPOFF))})
    );

    // Each move, one location, towards the pickup: the ETA shrinks.
    let mut last_eta = u64::MAX;
    for i in 1..=5 {
        let (lat, ts) = (57.690 + 0.001 * i as f64, T0 + 1_000 * i);
        app.ping(driver, lat, 11.960, ts);
        let loc = c.expect("location").await;
        assert_eq!(loc["ts"], ts);
        assert_close(&loc["lat"], lat);
        assert_eq!(loc["order_id"], json!(order.order_id));
        let eta = loc["eta_s"].as_u64().unwrap();
        assert!(eta < last_eta, "eta {eta} after {last_eta}");
        last_eta = eta;
    }

    // A burst: whatever the client gets arrives in order and ends with the
    // newest fix (intermediate ones may be coalesced).
    let last_ts = T0 + 1_000 * 30;
    for i in 6..=30 {
        app.ping(
            driver,
            57.695 + 0.0001 * (i - 5) as f64,
            11.960,
            T0 + 1_000 * i,
        );
    }
    let mut previous = T0 + 5_000;
    loop {
        let loc = c.expect("location").await;
        let ts = loc["ts"].as_i64().unwrap();
        assert!(ts > previous, "location {ts} after {previous}");
        previous = ts;
        if ts == last_ts {
            break;
        }
    }

    // Status changes, in order.
    let steps = [
        OrderStatus::Preparing,
        OrderStatus::ReadyForPickup,
        OrderStatus::PickedUp,
    ];
    for (i, status) in steps.into_iter().enumerate() {
        app.engine
            .set_order_status(order.order_id, status, T0 + 40_000 + i as i64)
            .unwrap();
    }
    for (i, status) in steps.into_iter().enumerate() {
        let msg = c.expect("status").await;
        assert_eq!(msg["status"], status.as_str());
        assert_eq!(msg["driver_id"], json!(driver));
        assert_eq!(msg["at"], T0 + 40_000 + i as i64);
    }

    // Picked up: the ETA now points at the customer.
    app.ping(driver, 57.700, 11.970, T0 + 50_000);
    let loc = c.expect("location").await;
    assert_eq!(loc["eta_s"], eta_s(ll(PICKUP), ll(DROPOFF)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_parties_and_admins_may_watch_an_order() {
    let app = spawn_app(Config::default()).await;
    let (customer, other) = (UserId::new(), UserId::new());
    let order = app.order(customer, PICKUP, DROPOFF);
    let others_order = app.order(other, PICKUP, DROPOFF);

    // Another customer: not found (not "forbidden": existence is not
    // revealed), the same as an order that does not exist.
    let mut o = app.connect(other, Role::Customer).await;
    o.subscribe_order(order.order_id).await;
    let err = o.expect_error("not_found").await;
    assert_eq!(err["channel"], format!("order:{}", order.order_id));
    o.subscribe_order(OrderId::new()).await;
    o.expect_error("not_found").await;
    // The socket is still usable.
    o.subscribe_order(others_order.order_id).await;
    o.expect("subscribed").await;
    assert_eq!(
        o.expect("status").await["order_id"],
        json!(others_order.order_id)
    );

    let mut restaurant = app
        .connect(order.restaurant_owner_id, Role::Restaurant)
        .await;
    restaurant.subscribe_order(order.order_id).await;
    restaurant.expect("subscribed").await;

    let mut admin = app.connect(UserId::new(), Role::Admin).await;
    admin.subscribe_order(order.order_id).await;
    admin.expect("subscribed").await;
    admin.expect("status").await;
    admin.subscribe_order(OrderId::new()).await;
    admin.expect_error("not_found").await;

    // A driver may watch the order it carries, not before.
    let driver = DriverId::new();
    app.ping(driver, 57.69, 11.96, T0);
    let mut d = app.connect(UserId::from(driver), Role::Driver).await;
    d.subscribe_order(order.order_id).await;
    d.expect_error("not_found").await;
    app.engine.assign(order.order_id, driver, T0 + 1).unwrap();
    d.subscribe_order(order.order_id).await;
    d.expect("subscribed").await;
    assert_eq!(d.expect("status").await["driver_id"], json!(driver));
    d.expect("location").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_errors_and_the_socket_continues() {
    let app = spawn_app(Config::default()).await;
    let customer = UserId::new();
    let order = app.order(customer, PICKUP, DROPOFF);
    let mut c = app.connect(customer, Role::Customer).await;

    c.send_text("not json").await;
    c.expect_error("invalid_json").await;
    c.send_text(r#"{"op":"subscribe"}"#).await;
    c.expect_error("bad_request").await;
    c.send_text(r#"{"op":"dance","channel":"area"}"#).await;
    c.expect_error("unknown_op").await;
    c.send_text(r#"{"op":"subscribe","channel":"order:42"}"#)
        .await;
    c.expect_error("bad_order_id").await;
    c.send_text(r#"{"op":"subscribe","channel":"weather"}"#)
        .await;
    c.expect_error("unknown_channel").await;
    c.send_text(&format!(
        r#"{{"op":"subscribe","channel":"order:{}","pad":"{}"}}"#,
        order.order_id,
        "x".repeat(5_000)
    ))
    .await;
    c.expect_error("message_too_large").await;
    c.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    c.expect_error("unsupported_message").await;

    c.subscribe_order(order.order_id).await;
    c.expect("subscribed").await;
    c.expect("status").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_stops_positions_and_the_limit_applies() {
    let config = Config {
        max_order_subscriptions: 2,
        ..Config::default()
    };
    let app = spawn_app(config).await;
    let customer = UserId::new();
    let (a, b) = (
        app.order(customer, PICKUP, DROPOFF),
        app.order(customer, PICKUP, DROPOFF),
    );
    let (da, db) = (DriverId::new(), DriverId::new());
    app.ping(da, 57.69, 11.96, T0);
    app.ping(db, 57.69, 11.96, T0);
    app.engine.assign(a.order_id, da, T0).unwrap();
    app.engine.assign(b.order_id, db, T0).unwrap();

    let mut c = app.connect(customer, Role::Customer).await;
    for order in [&a, &b] {
        c.subscribe_order(order.order_id).await;
        c.expect("subscribed").await;
        c.expect("status").await;
        c.expect("location").await;
    }
    let third = app.order(customer, PICKUP, DROPOFF);
    c.subscribe_order(third.order_id).await;
    c.expect_error("too_many_subscriptions").await;

    c.send(json!({"op": "unsubscribe", "channel": format!("order:{}", a.order_id)}))
        .await;
    assert_eq!(
        c.expect("unsubscribed").await["channel"],
        format!("order:{}", a.order_id)
    );
    // The fan-out handles moves in order: B's location arriving first (and
    // alone) shows A's earlier move was not delivered.
    app.ping(da, 57.691, 11.96, T0 + 1_000);
    app.ping(db, 57.691, 11.96, T0 + 1_000);
    let loc = c.expect("location").await;
    assert_eq!(loc["order_id"], json!(b.order_id));

    // Room again for another order.
    c.subscribe_order(third.order_id).await;
    c.expect("subscribed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignment_moves_the_watch_to_the_new_driver() {
    let app = spawn_app(Config::default()).await;
    let customer = UserId::new();
    let order = app.order(customer, PICKUP, DROPOFF);
    let (d1, d2) = (DriverId::new(), DriverId::new());
    app.ping(d1, 57.69, 11.96, T0);
    app.ping(d2, 57.71, 11.98, T0);
    app.engine.assign(order.order_id, d1, T0).unwrap();

    let mut old = app.connect(UserId::from(d1), Role::Driver).await;
    let mut c = app.connect(customer, Role::Customer).await;
    for client in [&mut old, &mut c] {
        client.subscribe_order(order.order_id).await;
        client.expect("subscribed").await;
        client.expect("status").await;
        client.expect("location").await;
    }

    app.engine.unassign(order.order_id, T0 + 10).unwrap();
    app.engine.assign(order.order_id, d2, T0 + 20).unwrap();

    // The old driver is no longer a party: the server ends its subscription.
    let revoked = old.expect("unsubscribed").await;
    assert_eq!(
        revoked,
        json!({"type": "unsubscribed", "channel": format!("order:{}", order.order_id), "reason": "revoked"})
    );

    // The customer sees the unassignment, the new driver, and where it is.
    let unassigned = c.expect("status").await;
    assert!(unassigned.get("driver_id").is_none(), "{unassigned}");
    assert_eq!(c.expect("status").await["driver_id"], json!(d2));
    let loc = c.expect("location").await;
    assert_eq!(loc["driver_id"], json!(d2));
    assert_close(&loc["lat"], 57.71);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_changes_are_resynchronised_from_the_board() {
    // A tiny change stream, and the fan-out started only after it overflowed.
    let engine_config = engine::Config {
        changes_capacity: 4,
        ..engine::Config::default()
    };
    let mut app = spawn_app_with(Config::default(), engine_config).await;
    let customer = UserId::new();
    let order = app.order(customer, PICKUP, DROPOFF);
    let mut c = app.connect(customer, Role::Customer).await;
    c.subscribe_order(order.order_id).await;
    c.expect("subscribed").await;
    assert_eq!(c.expect("status").await["status"], "accepted");

    let steps = [
        OrderStatus::Preparing,
        OrderStatus::ReadyForPickup,
        OrderStatus::PickedUp,
        OrderStatus::Delivered,
    ];
    for (i, status) in steps.into_iter().enumerate() {
        app.engine
            .set_order_status(order.order_id, status, T0 + 10 + i as i64)
            .unwrap();
    }
    // Unrelated changes push the order's events out of the buffer.
    for _ in 0..4 {
        app.order(UserId::new(), PICKUP, DROPOFF);
    }
    app.start_fanout();

    // The current status, once; none of the stale ones after it.
    let msg = c.expect("status").await;
    assert_eq!(msg["status"], "delivered");
    assert_eq!(msg["at"], T0 + 13);
    app.engine
        .set_order_status(order.order_id, OrderStatus::Cancelled, T0 + 20)
        .unwrap();
    assert_eq!(c.expect("status").await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_on_moves_skips_to_the_newest_positions() {
    // A tiny move stream, overflowed before the fan-out starts: the lost
    // positions are superseded, so the customer just gets the newest ones.
    let engine_config = engine::Config {
        moves_capacity: 8,
        ..engine::Config::default()
    };
    let mut app = spawn_app_with(Config::default(), engine_config).await;
    let customer = UserId::new();
    let driver = DriverId::new();
    let order = app.order(customer, PICKUP, DROPOFF);
    app.ping(driver, 57.690, 11.960, T0);
    app.engine.assign(order.order_id, driver, T0).unwrap();
    let mut c = app.connect(customer, Role::Customer).await;
    c.subscribe_order(order.order_id).await;
    c.expect("subscribed").await;
    c.expect("status").await;
    assert_eq!(c.expect("location").await["ts"], T0);

    for i in 1..=50 {
        app.ping(driver, 57.690 + 0.0001 * i as f64, 11.960, T0 + 1_000 * i);
    }
    app.start_fanout();
    let first = c.expect("location").await["ts"].as_i64().unwrap();
    assert!(first > T0 + 40_000, "a lost position was replayed: {first}");
    let mut last = first;
    while last < T0 + 50_000 {
        let ts = c.expect("location").await["ts"].as_i64().unwrap();
        assert!(ts > last, "{ts} after {last}");
        last = ts;
    }
}

/// A courier's arrival (the matcher's fences put it on the engine's change
/// stream) reaches the order's watchers as a `status` with `arrival`, the
/// order's status unchanged; other orders' watchers hear nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrival_is_a_status_message_with_arrival() {
    let app = spawn_app(Config::default()).await;
    let customer = UserId::new();
    let driver = DriverId::new();
    let order = app.order(customer, PICKUP, DROPOFF);
    app.ping(driver, 57.690, 11.960, T0);
    app.engine.assign(order.order_id, driver, T0 + 1).unwrap();
    let mut c = app.connect(customer, Role::Customer).await;
    c.subscribe_order(order.order_id).await;
    c.expect("subscribed").await;
    c.expect("status").await;
    c.expect("location").await;

    app.engine.publish_arrival(engine::Arrived {
        order_id: order.order_id,
        driver_id: driver,
        arrival: engine::Arrival::ArrivedAtRestaurant,
        position: ll(PICKUP),
        at_ms: T0 + 7,
    });
    assert_eq!(
        c.expect("status").await,
        json!({"type": "status", "order_id": order.order_id, "status": "accepted",
               "driver_id": driver, "at": T0 + 7, "arrival": "arrived_at_restaurant"})
    );
}

/// A stacking courier carries two orders of one kitchen: both customers
/// see the courier move on their own order's channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_customers_of_a_stacking_courier_see_it_move() {
    let app = spawn_app(Config::default()).await;
    let (first_customer, second_customer) = (UserId::new(), UserId::new());
    let driver = DriverId::new();
    let first = app.order(first_customer, PICKUP, DROPOFF);
    let second = engine::OrderTrack {
        restaurant_id: first.restaurant_id,
        ..app.order(second_customer, PICKUP, (57.730, 11.990))
    };
    app.engine.track_order(second.clone());
    app.ping(driver, 57.690, 11.960, T0);
    app.engine.assign(first.order_id, driver, T0 + 1).unwrap();
    app.engine
        .assign_stacked(second.order_id, driver, T0 + 2)
        .unwrap();

    let mut clients = Vec::new();
    for (customer, order) in [(first_customer, &first), (second_customer, &second)] {
        let mut c = app.connect(customer, Role::Customer).await;
        c.subscribe_order(order.order_id).await;
        c.expect("subscribed").await;
        c.expect("status").await;
        c.expect("location").await;
        clients.push((c, order.order_id));
    }
    app.ping(driver, 57.6901, 11.960, T0 + 1_000);
    for (c, order_id) in &mut clients {
        let loc = c.expect("location").await;
        assert_eq!(loc["order_id"], json!(order_id));
        assert_eq!(loc["driver_id"], json!(driver));
        assert_eq!(loc["ts"], T0 + 1_000);
    }
}
