//! Stuck orders with real clients against the real binary, on SQLite and
//! (with `HEXDASH_TEST_DATABASE_URL`) PostgreSQL: a paid order nobody
//! accepts is rejected and refunded by the system, the customer told on
//! its `me` channel, also when its deadline passed while the server was
//! down; an order no driver takes raises `order.dispatch_stalled` to
//! admins, on the feed and the `me` channel, once per order even when the
//! matcher raises it again after a restart.

mod common;

use common::*;
use serde_json::{Value, json};

const RESTAURANT: (f64, f64) = (57.7089, 11.9746);

/// A restaurant with one dish; its owner, id and the dish.
async fn restaurant(app: &TestApp) -> (User, String, String) {
    app.open_soup_kitchen("Sega Gubben", RESTAURANT).await
}

/// Places an order paid with `card` (`tok_ok`, `tok_declined` …); the
/// body.
async fn order(app: &TestApp, customer: &User, restaurant: &str, item: &str, card: &str) -> Value {
    let (status, o) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant,
                   "items": [{"menu_item_id": item, "quantity": 1}],
                   "delivery": {"lat": RESTAURANT.0 - 0.01, "lng": RESTAURANT.1, "address": "Avenyn 10"},
                   "payment": {"method": "card", "token": card}}),
        )
        .await;
    assert_eq!(status, 201, "{o}");
    o
}

/// Subscribes `device` to `me` (after `after`) and waits for the ack.
async fn subscribe_me(device: &mut Watcher, after: Option<i64>) {
    let mut msg = json!({"op": "subscribe", "channel": "me"});
    if let Some(after) = after {
        msg["after"] = json!(after);
    }
    device.send(msg).await;
    let ack = device.next().await;
    assert_eq!(ack, json!({"type": "subscribed", "channel": "me"}));
}

/// The next notification on `device`.
async fn next_note(device: &mut Watcher) -> Value {
    let v = device.next().await;
    assert_eq!(v["type"], "notification", "{v}");
    v
}

/// `token`'s stored notifications (the first page).
async fn feed(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app
        .get("/v1/notifications?after=0&limit=200", Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body["notifications"].as_array().unwrap().clone()
}

async fn auto_reject_refunds_and_tells_the_customer(db: Db) {
    let app = spawn_app_on(&db, |c| {
        c.api.auto_reject_after_s = 1;
        c.api.auto_reject_sweep_ms = 100;
    })
    .await;
    let admin = app.admin_token().await;
    let (owner, restaurant, item) = restaurant(&app).await;
    let customer = app.signup("customer", "customer").await;
    let mut phone = Watcher::connect(&app, &customer.token).await;
    subscribe_me(&mut phone, None).await;
    let mut kitchen = Watcher::connect(&app, &owner.token).await;
    subscribe_me(&mut kitchen, None).await;

    let o = order(&app, &customer, &restaurant, &item, "tok_ok").await;
    let order_id = o["order_id"].as_str().unwrap().to_owned();
    assert_eq!(o["status"], "paid");
    // Nobody answers: the customer hears of the payment, the rejection
    // and the refund, in that order, live.
    let paid = next_note(&mut phone).await;
    assert_eq!(paid["event_type"], "order.paid", "{paid}");
    let rejected = next_note(&mut phone).await;
    assert_eq!(rejected["event_type"], "order.rejected", "{rejected}");
    assert_eq!(rejected["order_id"], order_id.as_str());
    assert_eq!(rejected["status"], "rejected");
    let refunded = next_note(&mut phone).await;
    assert_eq!(refunded["event_type"], "refund.succeeded", "{refunded}");
    let total = o["total_cents"].as_i64().unwrap();
    assert_eq!(
        refunded["text"],
        format!("You were refunded {}.{:02}", total / 100, total % 100)
    );
    // The restaurant, which did not reject it, is told too.
    let new_order = next_note(&mut kitchen).await;
    assert_eq!(new_order["event_type"], "order.paid", "{new_order}");
    let kitchen_rejected = next_note(&mut kitchen).await;
    assert_eq!(kitchen_rejected["event_type"], "order.rejected");
    assert_eq!(kitchen_rejected["order_id"], order_id.as_str());

    // The order's record: rejected by the system, refunded in full.
    let (_, o) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&customer.token))
        .await;
    assert_eq!(o["status"], "rejected", "{o}");
    let (_, payments) = app
        .get(
            &format!("/v1/orders/{order_id}/payments"),
            Some(&customer.token),
        )
        .await;
    let refund = payments["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "refund")
        .unwrap_or_else(|| panic!("a refund in {payments}"))
        .clone();
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["amount_cents"], o["total_cents"]);
    let (_, events) = app
        .get(
            &format!(
                "/v1/admin/events?aggregate_kind=order&aggregate_id={order_id}&type=order.rejected"
            ),
            Some(&admin),
        )
        .await;
    let rejection = &events["events"][0];
    assert_eq!(rejection["actor"], "system:orders", "{events}");
    // The restaurant comes back too late.
    let (status, body) = app
        .post(
            &format!("/v1/orders/{order_id}/status"),
            Some(&owner.token),
            json!({"status": "accepted"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_nobody_accepts_is_rejected_refunded_and_the_customer_told() {
    for db in databases().await {
        auto_reject_refunds_and_tells_the_customer(db).await;
    }
}

async fn a_deadline_passed_while_down_is_kept(db: Db) {
    // The servers' clock: time passes while none runs only when the test
    // moves it.
    let clock = clock::ManualClock::new(now_ms());
    // Auto-rejecting off: the order waits.
    let app = spawn_app_on_with_clock(
        &db,
        |c| c.api.auto_reject_after_s = 0,
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    let (_, restaurant, item) = restaurant(&app).await;
    let customer = app.signup("customer", "customer").await;
    let o = order(&app, &customer, &restaurant, &item, "tok_ok").await;
    let order_id = o["order_id"].as_str().unwrap().to_owned();
    app.stop().await;
    // Its deadline passes while no server runs.
    clock.advance(1_100);
    // Started again with a one-second deadline: the first sweep, at
    // start, finds the order overdue from its stored payment time.
    let app = spawn_app_on_with_clock(
        &db,
        |c| {
            c.api.auto_reject_after_s = 1;
            c.api.auto_reject_sweep_ms = 60_000;
        },
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    eventually(async || {
        let (_, o) = app
            .get(&format!("/v1/orders/{order_id}"), Some(&customer.token))
            .await;
        (o["status"] == "rejected").then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_reject_deadline_that_passed_while_down_is_kept_after_a_restart() {
    for db in databases().await {
        a_deadline_passed_while_down_is_kept(db).await;
    }
}

/// The admin's `order.dispatch_stalled` notifications about `order_id`.
fn stalls_of<'a>(notes: &'a [Value], order_id: &str) -> Vec<&'a Value> {
    notes
        .iter()
        .filter(|n| n["event_type"] == "order.dispatch_stalled" && n["order_id"] == order_id)
        .collect()
}

async fn a_stalled_dispatch_alerts_admins_once(db: Db) {
    let stall_after_1s = |c: &mut hexdash::Config| {
        c.matcher.unassigned_after_s = 1;
        c.api.auto_reject_after_s = 0;
    };
    let app = spawn_app_on(&db, stall_after_1s).await;
    let admin = app.admin_token().await;
    let (owner, restaurant, item) = restaurant(&app).await;
    let customer = app.signup("customer", "customer").await;
    let mut screen = Watcher::connect(&app, &admin).await;
    subscribe_me(&mut screen, None).await;

    // Accepted, and no driver anywhere: the matcher raises it.
    let o = order(&app, &customer, &restaurant, &item, "tok_ok").await;
    let order_id = o["order_id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(
            &format!("/v1/orders/{order_id}/status"),
            Some(&owner.token),
            json!({"status": "accepted"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let alert = next_note(&mut screen).await;
    assert_eq!(alert["event_type"], "order.dispatch_stalled", "{alert}");
    assert_eq!(alert["order_id"], order_id.as_str());
    assert_eq!(alert["restaurant_id"], restaurant.as_str());
    let notes = feed(&app, &admin).await;
    let stored = stalls_of(&notes, &order_id);
    assert_eq!(stored.len(), 1, "{notes:?}");
    assert_eq!(stored[0]["id"], alert["id"]);
    // The customer and the restaurant are not told of the kitchen's
    // dispatch troubles.
    for token in [&customer.token, &owner.token] {
        assert!(stalls_of(&feed(&app, token).await, &order_id).is_empty());
    }
    let last_seen = alert["id"].as_i64().unwrap();
    drop(screen);
    app.stop().await;

    // After a restart the matcher counts anew and raises the order again:
    // the event is written again, the admins are not told again.
    let app = spawn_app_on(&db, stall_after_1s).await;
    let events_path = format!(
        "/v1/admin/events?aggregate_kind=order&aggregate_id={order_id}&type=order.dispatch_stalled"
    );
    eventually(async || {
        let (_, events) = app.get(&events_path, Some(&admin)).await;
        (events["events"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    // A payment failure after it tells the admins something, so once it is
    // in the feed the consumer has handled the second raise (one consumer,
    // events in order).
    let mut screen = Watcher::connect(&app, &admin).await;
    subscribe_me(&mut screen, Some(last_seen)).await;
    let declined = order(&app, &customer, &restaurant, &item, "tok_declined").await;
    assert_eq!(declined["status"], "payment_failed", "{declined}");
    let next = next_note(&mut screen).await;
    assert_eq!(next["event_type"], "payment.failed", "{next}");
    assert_eq!(next["order_id"], declined["order_id"]);
    let notes = feed(&app, &admin).await;
    let stored = stalls_of(&notes, &order_id);
    assert_eq!(stored.len(), 1, "{notes:?}");
    assert_eq!(stored[0]["id"], alert["id"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_no_driver_takes_alerts_admins_once_on_the_feed_and_the_me_channel() {
    for db in databases().await {
        a_stalled_dispatch_alerts_admins_once(db).await;
    }
}
