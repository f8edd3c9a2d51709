//! Notifications live, with real clients against the real binary: the
//! `me` channel of `/v1/ws` replays what a device missed after its last
//! id and then goes live with no gap and no repeat; two devices of one
//! user converge; a driver hears of its order's cancellation on MQTT and
//! on its WebSocket stream.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const RESTAURANT: (f64, f64) = (57.7089, 11.9746);

/// A restaurant with one dish; its owner.
async fn restaurant(app: &TestApp) -> (User, String, String) {
    app.open_soup_kitchen("Notis", RESTAURANT).await
}

/// Places and pays an order; its id.
async fn order(app: &TestApp, customer: &User, restaurant: &str, item: &str) -> String {
    let (status, o) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant,
                   "items": [{"menu_item_id": item, "quantity": 1}],
                   "delivery": {"lat": RESTAURANT.0 - 0.01, "lng": RESTAURANT.1, "address": "Avenyn 10"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{o}");
    assert_eq!(o["status"], "paid");
    o["order_id"].as_str().unwrap().to_owned()
}

/// Waits until `user`'s newest stored notification is `id`.
async fn stored_up_to(app: &TestApp, user: &User, id: i64) {
    eventually(async || {
        let (status, body) = app.get("/v1/notifications/unread", Some(&user.token)).await;
        assert_eq!(status, 200, "{body}");
        (body["last_id"].as_i64() >= Some(id)).then_some(())
    })
    .await;
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

/// The next `n` notifications on `device`: (id, event type).
async fn notes(device: &mut Watcher, n: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        let v = device.next().await;
        assert_eq!(v["type"], "notification", "{v}");
        got.push((
            v["id"].as_i64().unwrap(),
            v["event_type"].as_str().unwrap().to_owned(),
        ));
    }
    got
}

fn ids(notes: &[(i64, String)]) -> Vec<i64> {
    notes.iter().map(|(id, _)| *id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_device_gets_exactly_what_it_missed_and_devices_converge() {
    let app = spawn_app().await;
    let (owner, restaurant, item) = restaurant(&app).await;
    let customer = app.signup("customer", "customer").await;

    // Phone listens live; the first order's payment reaches it.
    let mut phone = Watcher::connect(&app, &customer.token).await;
    subscribe_me(&mut phone, None).await;
    let first = order(&app, &customer, &restaurant, &item).await;
    let seen = notes(&mut phone, 1).await;
    assert_eq!(seen, vec![(1, "order.paid".to_owned())]);
    let last_seen = seen[0].0;

    // The phone goes away; five things happen to the customer's orders.
    drop(phone);
    app.step(&owner, &first, "accepted").await;
    app.step(&owner, &first, "preparing").await;
    app.step(&owner, &first, "ready_for_pickup").await;
    let second = order(&app, &customer, &restaurant, &item).await;
    app.step(&owner, &second, "accepted").await;
    stored_up_to(&app, &customer, 6).await;

    // It reconnects with its last id: exactly those five, in order. A
    // laptop starting from nothing gets all six.
    let mut phone = Watcher::connect(&app, &customer.token).await;
    subscribe_me(&mut phone, Some(last_seen)).await;
    let missed = notes(&mut phone, 5).await;
    assert_eq!(
        missed,
        [
            (2, "order.accepted"),
            (3, "order.preparing"),
            (4, "order.ready_for_pickup"),
            (5, "order.paid"),
            (6, "order.accepted"),
        ]
        .map(|(id, t)| (id, t.to_owned()))
    );
    let mut laptop = Watcher::connect(&app, &customer.token).await;
    subscribe_me(&mut laptop, Some(0)).await;
    assert_eq!(ids(&notes(&mut laptop, 6).await), vec![1, 2, 3, 4, 5, 6]);

    // Live from here, on both devices; the next message after the replay
    // is the next id, so nothing came twice at the seam.
    app.step(&owner, &second, "preparing").await;
    assert_eq!(
        notes(&mut phone, 1).await,
        vec![(7, "order.preparing".to_owned())]
    );
    assert_eq!(
        notes(&mut laptop, 1).await,
        vec![(7, "order.preparing".to_owned())]
    );

    // A device subscribing while notifications are being made gets every
    // one after its cursor once, in order, whichever side of the seam.
    let mut tablet = Watcher::connect(&app, &customer.token).await;
    tablet
        .send(json!({"op": "subscribe", "channel": "me", "after": 5}))
        .await;
    let burst = tokio::spawn({
        let api = Api::new(app.http);
        let (owner, customer) = (owner.token.clone(), customer.token.clone());
        let (restaurant, item) = (restaurant.clone(), item.clone());
        async move {
            for _ in 0..3 {
                let (status, o) = api
                    .post(
                        "/v1/orders",
                        Some(&customer),
                        json!({"restaurant_id": restaurant,
                               "items": [{"menu_item_id": item, "quantity": 1}],
                               "delivery": {"lat": RESTAURANT.0 - 0.01, "lng": RESTAURANT.1, "address": "Avenyn 10"},
                               "payment": {"method": "card", "token": "tok_ok"}}),
                    )
                    .await;
                assert_eq!(status, 201, "{o}");
                let id = o["order_id"].as_str().unwrap();
                let (status, body) = api
                    .post(
                        &format!("/v1/orders/{id}/status"),
                        Some(&owner),
                        json!({"status": "accepted"}),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
            }
        }
    });
    assert_eq!(tablet.next().await["type"], "subscribed");
    burst.await.unwrap();
    // 6 and 7, then three orders paid and accepted: 8 … 13.
    assert_eq!(
        ids(&notes(&mut tablet, 8).await),
        (6..=13).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&notes(&mut phone, 6).await),
        (8..=13).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&notes(&mut laptop, 6).await),
        (8..=13).collect::<Vec<_>>()
    );
    let (_, feed) = app
        .get("/v1/notifications?after=0&limit=200", Some(&customer.token))
        .await;
    let stored: Vec<i64> = feed["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        stored,
        (1..=13).collect::<Vec<_>>(),
        "the devices hold what the feed holds"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_me_requests_get_clear_errors() {
    let app = spawn_app().await;
    let user = app.signup("someone", "customer").await;
    let mut device = Watcher::connect(&app, &user.token).await;
    for (msg, code) in [
        (
            json!({"op": "subscribe", "channel": "me", "after": -1}),
            "bad_after",
        ),
        (
            json!({"op": "subscribe", "channel": "me", "after": "7"}),
            "bad_after",
        ),
        (
            json!({"op": "subscribe", "channel": "me", "after": 1.5}),
            "bad_after",
        ),
        (
            json!({"op": "subscribe", "channel": "mine"}),
            "unknown_channel",
        ),
    ] {
        device.send(msg.clone()).await;
        let v = device.next().await;
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("error"), Some(code)),
            "{msg} → {v}"
        );
    }
    // The socket is still good: a valid subscribe and unsubscribe.
    subscribe_me(&mut device, Some(0)).await;
    device
        .send(json!({"op": "unsubscribe", "channel": "me"}))
        .await;
    assert_eq!(
        device.next().await,
        json!({"type": "unsubscribed", "channel": "me"})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_hears_of_its_orders_cancellation_on_mqtt_and_its_stream() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (owner, restaurant, item) = restaurant(&app).await;
    let customer = app.signup("customer", "customer").await;
    let user = app.signup("courier", "driver").await;
    let mut driver = MqttDriver::connect(&app, &user).await;
    driver
        .ping(RESTAURANT.0 + 0.002, RESTAURANT.1, now_ms())
        .await;
    let (mut stream, _) = tokio_tungstenite::connect_async(
        app.ws_url(&format!("/v1/drivers/stream?token={}", user.token)),
    )
    .await
    .unwrap();

    let order_id = order(&app, &customer, &restaurant, &item).await;
    app.step(&owner, &order_id, "accepted").await;
    let offer = driver.next_offer().await;
    assert_eq!(offer["type"], "offer", "{offer}");
    // What a courier decides on: the restaurant, the item count, how far
    // to the pickup (0.002° north: 222 m) and from there to the door
    // (0.01° south: 1,112 m).
    assert_eq!(
        offer["restaurant"],
        json!({"name": "Notis", "address": "Kungsgatan 1"}),
        "{offer}"
    );
    assert_eq!(offer["items"], 1);
    assert_eq!(offer["pickup_distance_m"], 222);
    assert_eq!(offer["trip_distance_m"], 1_112);
    let (status, body) = app
        .post(
            &format!("/v1/offers/{}/accept", offer["offer_id"].as_str().unwrap()),
            Some(&user.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The dispatcher cancels the order the driver is carrying.
    let (status, body) = app
        .post(
            &format!("/v1/orders/{order_id}/cancel"),
            Some(&admin),
            json!({"reason": "restaurant closed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let cancelled = loop {
        let v = driver.next_offer().await;
        if v["type"] == "notification" {
            break v;
        }
    };
    assert_eq!(cancelled["event_type"], "order.cancelled", "{cancelled}");
    assert_eq!(cancelled["order_id"], order_id.as_str());
    assert_eq!(cancelled["status"], "cancelled");
    // The same notification, same id, on the driver's WebSocket stream.
    let on_stream = loop {
        let msg = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "notification" {
                break v;
            }
        }
    };
    assert_eq!(on_stream, cancelled);
    // And in the driver's feed.
    let (_, feed) = app.get("/v1/notifications", Some(&user.token)).await;
    assert_eq!(feed["notifications"][0]["id"], cancelled["id"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restaurants_channel_sees_a_new_order_as_it_is_paid_and_every_change() {
    let app = spawn_app().await;
    let (owner, restaurant, item) = restaurant(&app).await;
    let customer = app.signup("customer", "customer").await;
    let channel = format!("restaurant:{restaurant}");
    // An order already open when the kitchen screen starts comes first.
    let earlier = order(&app, &customer, &restaurant, &item).await;
    let mut kitchen = Watcher::connect(&app, &owner.token).await;
    kitchen
        .send(json!({"op": "subscribe", "channel": channel}))
        .await;
    assert_eq!(
        kitchen.next().await,
        json!({"type": "subscribed", "channel": channel})
    );
    let snapshot = kitchen.next().await;
    assert_eq!(
        (snapshot["order_id"].as_str(), snapshot["status"].as_str()),
        (Some(earlier.as_str()), Some("paid"))
    );

    // A new order: the channel's next message is it, paid, stamped with
    // the time it was paid (before the answer to the customer's request).
    let placed_at = now_ms();
    let new = order(&app, &customer, &restaurant, &item).await;
    let answered_at = now_ms();
    let arrived = kitchen.next().await;
    assert_eq!(arrived["type"], "status", "{arrived}");
    assert_eq!(arrived["order_id"], new.as_str());
    assert_eq!(arrived["status"], "paid");
    let paid_at = arrived["at"].as_i64().unwrap();
    assert!(
        (placed_at..=answered_at).contains(&paid_at),
        "{placed_at} <= {paid_at} <= {answered_at}"
    );
    // And every change after, in order.
    app.step(&owner, &new, "accepted").await;
    app.step(&owner, &new, "preparing").await;
    let (status, body) = app
        .post(
            &format!("/v1/orders/{earlier}/cancel"),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let v = kitchen.next().await;
        seen.push((
            v["order_id"].as_str().unwrap().to_owned(),
            v["status"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            (new.clone(), "accepted".to_owned()),
            (new.clone(), "preparing".to_owned()),
            (earlier.clone(), "cancelled".to_owned()),
        ]
    );

    // An admin may watch it; another restaurant's owner and a customer
    // may not; a bad id is refused.
    let admin = app.admin_token().await;
    let mut console = Watcher::connect(&app, &admin).await;
    console
        .send(json!({"op": "subscribe", "channel": channel}))
        .await;
    assert_eq!(console.next().await["type"], "subscribed");
    let other = app.signup("other-owner", "restaurant").await;
    for (token, code) in [(&other.token, "not_found"), (&customer.token, "forbidden")] {
        let mut w = Watcher::connect(&app, token).await;
        w.send(json!({"op": "subscribe", "channel": channel})).await;
        let v = w.next().await;
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("error"), Some(code)),
            "{v}"
        );
    }
    // (The kitchen may hear a status twice, when the order's record moves
    // on without changing it: the refund of the cancelled order.)
    kitchen
        .send(json!({"op": "subscribe", "channel": "restaurant:42"}))
        .await;
    let refused = kitchen.next_of("error").await;
    assert_eq!(refused["code"], "bad_restaurant_id", "{refused}");
    app.stop().await;
}
