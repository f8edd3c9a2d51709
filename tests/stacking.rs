//! Stacking on the way, on a real server (`matcher.stacking`): a courier
//! bound for one restaurant with an order is offered a second order from
//! another restaurant it passes (a stacked offer over MQTT, `stacked_with`
//! the first), accepts it, and carries both: an arrival at each
//! restaurant on its order's channel, both pickups, the first customer
//! served first. The second customer's ETA (`GET /v1/orders/{id}` and the
//! order's WebSocket channel) counts the first delivery.

mod common;

use common::*;
use serde_json::{Value, json};

/// The first restaurant, central Gothenburg.
const R1: (f64, f64) = (57.7000, 11.9700);
/// The second, about 200 m north of the first.
const R2: (f64, f64) = (57.7018, 11.9700);
/// The courier, about 400 m north of the first: it passes the second.
const COURIER: (f64, f64) = (57.7036, 11.9700);
/// The first customer's door, about 1.1 km south-east of R1.
const D1: (f64, f64) = (57.6950, 11.9850);
/// The second's, about 170 m beyond the first's.
const D2: (f64, f64) = (57.6940, 11.9870);
/// Both kitchens' declared preparation.
const PREP_S: u64 = 600;

/// The crow-fly ETA between two points (no road graph here), seconds.
fn eta_s(a: (f64, f64), b: (f64, f64)) -> u64 {
    let p = |(lat, lng)| engine::LatLng::new(lat, lng).unwrap();
    u64::from(engine::eta::eta_s(p(a), p(b)))
}

/// The arrival a message announces, if it is one.
fn arrival(msg: &Value) -> Option<&str> {
    (msg["type"] == "status").then(|| msg["arrival"].as_str())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_courier_takes_a_second_order_from_a_restaurant_on_its_way() {
    let app = spawn_app_with(|c| {
        c.matcher.stacking = true;
    })
    .await;
    let open = async |name: &str, at: (f64, f64)| {
        let owner = app.signup("owner", "restaurant").await;
        let (status, r) = app
            .post(
                "/v1/restaurants",
                Some(&owner.token),
                json!({"name": name, "location": {"lat": at.0, "lng": at.1}, "address": "Gatan 1",
                       "avg_prep_time_s": PREP_S}),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        let id = r["restaurant_id"].as_str().unwrap().to_owned();
        let (status, menu) = app
            .post(
                &format!("/v1/restaurants/{id}/menu"),
                Some(&owner.token),
                json!({"items": [{"name": "Soppa", "price_cents": 9_000}]}),
            )
            .await;
        assert_eq!(status, 201, "{menu}");
        let dish = menu["items"][0]["menu_item_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (owner, id, dish)
    };
    let (owner1, restaurant1, dish1) = open("Första", R1).await;
    let (owner2, restaurant2, dish2) = open("Andra", R2).await;
    let courier = app.signup("courier", "driver").await;
    let mut driver = MqttDriver::connect(&app, &courier).await;
    // Fixes stamped in the past, a minute apart: plausible speeds.
    let mut ts = now_ms() - 30 * 60 * 1000;
    driver.ping(COURIER.0, COURIER.1, ts).await;
    let admin = app.admin_token().await;
    let nearby = format!(
        "/v1/drivers/nearby?lat={}&lng={}&radius_m=5000&status=available",
        R1.0, R1.1
    );
    eventually(async || {
        let (_, body) = app.get(&nearby, Some(&admin)).await;
        (body["drivers"].as_array()?.len() == 1).then_some(())
    })
    .await;

    // An order placed, accepted by its kitchen, watched by its customer.
    let place = async |restaurant: &str, dish: &str, door: (f64, f64)| {
        let customer = app.signup("customer", "customer").await;
        let (status, order) = app
            .post(
                "/v1/orders",
                Some(&customer.token),
                json!({"restaurant_id": restaurant,
                       "items": [{"menu_item_id": dish, "quantity": 1}],
                       "delivery": {"lat": door.0, "lng": door.1, "address": "Dörren 1"},
                       "payment": {"method": "card", "token": "tok_ok"}}),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        let order_id = order["order_id"].as_str().unwrap().to_owned();
        let mut watcher = Watcher::connect(&app, &customer.token).await;
        watcher
            .send(json!({"op": "subscribe", "channel": format!("order:{order_id}")}))
            .await;
        watcher.next_of("subscribed").await;
        (customer, order_id, watcher)
    };
    let accept = async |offer: &Value| {
        let (code, body) = app
            .post(
                &format!("/v1/offers/{}/accept", offer["offer_id"].as_str().unwrap()),
                Some(&courier.token),
                json!({}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
    };

    let (customer1, order1, mut watcher1) = place(&restaurant1, &dish1, D1).await;
    app.step(&owner1, &order1, "accepted").await;
    let offer = driver.next_offer().await;
    assert_eq!(offer["order_id"], order1.as_str(), "{offer}");
    assert!(
        offer.get("stacked_with").is_none(),
        "a plain offer: {offer}"
    );
    accept(&offer).await;

    // The second order, from the restaurant on the courier's way: offered
    // to it, stacked on the first, with its own restaurant as the pickup.
    let (customer2, order2, mut watcher2) = place(&restaurant2, &dish2, D2).await;
    app.step(&owner2, &order2, "accepted").await;
    let offer = driver.next_offer().await;
    assert_eq!(offer["order_id"], order2.as_str(), "{offer}");
    assert_eq!(offer["stacked_with"], order1.as_str(), "{offer}");
    let pickup = &offer["pickup"];
    assert!(
        (pickup["lat"].as_f64().unwrap() - R2.0).abs() < 1e-9,
        "{offer}"
    );
    accept(&offer).await;
    let (code, body) = app
        .get(&format!("/v1/drivers/{}", courier.id), Some(&courier.token))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["orders"], json!([order1, order2]), "{body}");

    // ETAs: one round for both, R2 (passed first), R1, the first door,
    // then the second's. The second customer's door ETA counts the first
    // delivery: the first's, then the drive between the doors.
    let door_eta = async |customer: &User, order: &str| {
        let (code, body) = app
            .get(&format!("/v1/orders/{order}"), Some(&customer.token))
            .await;
        assert_eq!(code, 200, "{body}");
        (
            body["eta_s"].as_u64().unwrap(),
            body["delivery_eta_s"].as_u64().unwrap(),
        )
    };
    let (_, door1) = door_eta(&customer1, &order1).await;
    let (to_r2, door2) = door_eta(&customer2, &order2).await;
    let between = eta_s(D1, D2);
    assert!(
        door2 + 2 >= door1 + between && door2 <= door1 + between + 2,
        "second door {door2}: first {door1} + {between}"
    );
    let alone = PREP_S + eta_s(R2, D2);
    assert!(
        door2 > alone,
        "{door2}: more than the second order alone ({alone})"
    );
    // The food is the longer wait; the courier's next stop is R2.
    assert!(door1 >= PREP_S - 10 + eta_s(R1, D1), "{door1}");
    assert!(to_r2 <= eta_s(COURIER, R2) + 1, "{to_r2}");

    // At the second restaurant first: its arrival on the second order's
    // channel, with the ETA of the round.
    ts += 60_000;
    driver.ping(R2.0, R2.1, ts).await;
    let msg = loop {
        let msg = watcher2.next().await;
        if arrival(&msg).is_some() {
            break msg;
        }
        if msg["type"] == "location" {
            let door_ws = msg["delivery_eta_s"].as_u64().unwrap();
            assert!(
                door_ws + 15 >= door2 && door_ws <= door2 + 15,
                "{msg}: REST said {door2}"
            );
        }
    };
    assert_eq!(arrival(&msg), Some("arrived_at_restaurant"), "{msg}");
    assert_eq!(msg["order_id"], order2.as_str());
    app.step(&owner2, &order2, "ready_for_pickup").await;
    app.step(&courier, &order2, "picked_up").await;

    // Then the first restaurant.
    ts += 60_000;
    driver.ping(R1.0, R1.1, ts).await;
    let msg = loop {
        let msg = watcher1.next().await;
        if arrival(&msg).is_some() {
            break msg;
        }
    };
    assert_eq!(arrival(&msg), Some("arrived_at_restaurant"), "{msg}");
    assert_eq!(msg["order_id"], order1.as_str());
    app.step(&owner1, &order1, "ready_for_pickup").await;
    app.step(&courier, &order1, "picked_up").await;

    // Both on board: the second door still after the first.
    let (_, door1) = door_eta(&customer1, &order1).await;
    let (_, door2) = door_eta(&customer2, &order2).await;
    assert!(
        door2 + 2 >= door1 + between,
        "{door2} vs {door1} + {between}"
    );

    // The first door, then the second.
    ts += 60_000;
    driver.ping(D1.0, D1.1, ts).await;
    app.step(&courier, &order1, "delivered").await;
    let (code, body) = app
        .get(&format!("/v1/drivers/{}", courier.id), Some(&courier.token))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["orders"]),
        (&json!("busy"), &json!([order2])),
        "{body}"
    );
    ts += 60_000;
    driver.ping(D2.0, D2.1, ts).await;
    app.step(&courier, &order2, "delivered").await;
    let (_, body) = app
        .get(&format!("/v1/drivers/{}", courier.id), Some(&courier.token))
        .await;
    assert_eq!(body["status"], "available", "{body}");
    for (customer, order) in [(&customer1, &order1), (&customer2, &order2)] {
        let (_, body) = app
            .get(&format!("/v1/orders/{order}"), Some(&customer.token))
            .await;
        assert_eq!(body["status"], "delivered", "{body}");
    }
    app.stop().await;
}
