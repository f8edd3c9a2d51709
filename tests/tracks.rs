//! Breadcrumbs with real clients against the real binary: a driver's
//! pings over MQTT (the real ingest path) come back from `GET
//! /v1/drivers/{id}/track` downsampled and bounded, and a delivered order
//! keeps its route (pickup, the courier's fixes between pickup and
//! delivery, dropoff), readable by its parties. On SQLite, and on
//! PostgreSQL with `HEXDASH_TEST_DATABASE_URL` set.

mod common;

use common::*;
use serde_json::{Value, json};

const RESTAURANT: (f64, f64) = (57.7089, 11.9746);
const DOOR: (f64, f64) = (57.6989, 11.9746);

/// A restaurant with one dish; its owner, id and the dish.
async fn restaurant(app: &TestApp) -> (User, String, String) {
    app.open_soup_kitchen("Spåret", RESTAURANT).await
}

/// The track's device times.
fn times(track: &Value) -> Vec<i64> {
    track["properties"]["timestamps_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect()
}

/// The driver's track since `since` once the breadcrumbs have `last`.
async fn track_up_to(app: &TestApp, token: &str, driver: &str, since: i64, last: i64) -> Value {
    eventually(async || {
        let (status, track) = app
            .get(
                &format!("/v1/drivers/{driver}/track?since={since}"),
                Some(token),
            )
            .await;
        assert_eq!(status, 200, "{track}");
        (times(&track).last() == Some(&last)).then_some(track)
    })
    .await
}

async fn pings_come_back_downsampled_and_bounded(db: Db) {
    let app = spawn_app_on(&db, |c| {
        c.breadcrumbs.window_s = 60;
        c.breadcrumbs.min_spacing_ms = 5_000;
    })
    .await;
    let user = app.signup("courier", "driver").await;
    let driver = MqttDriver::connect(&app, &user).await;
    // Two minutes of 1 Hz fixes, recorded a while ago, moving north.
    let t0 = now_ms() - 150_000;
    let lat = |i: i64| RESTAURANT.0 + i as f64 * 1e-4;
    for i in 0..120 {
        driver.ping(lat(i), RESTAURANT.1, t0 + i * 1_000).await;
    }
    // Kept: one fix per 5 s (t0, t0 + 5 s … t0 + 115 s; the fixes between
    // are dropped), and of those only the minute before the newest.
    let track = track_up_to(&app, &user.token, &user.id, 0, t0 + 115_000).await;
    let expected: Vec<i64> = (11..=23).map(|k| t0 + k * 5_000).collect();
    assert_eq!(times(&track), expected);
    assert_eq!(track["type"], "Feature");
    assert_eq!(track["geometry"]["type"], "LineString");
    let coordinates = track["geometry"]["coordinates"].as_array().unwrap();
    assert_eq!(coordinates.len(), expected.len());
    for (c, k) in coordinates.iter().zip(11..=23) {
        // [lng, lat], as GeoJSON has it.
        assert_eq!(c[0].as_f64().unwrap(), RESTAURANT.1, "{c}");
        assert!((c[1].as_f64().unwrap() - lat(k * 5)).abs() < 1e-6, "{c}");
    }
    assert_eq!(track["properties"]["driver_id"], user.id.as_str());
    assert_eq!(track["properties"]["min_spacing_ms"], 5_000);
    assert_eq!(track["properties"]["window_s"], 60);

    // `since` cuts the start; without it, the last window of the clock
    // (which the fixes, 30 s old and more, mostly fall out of).
    let (_, later) = app
        .get(
            &format!("/v1/drivers/{}/track?since={}", user.id, t0 + 100_000),
            Some(&user.token),
        )
        .await;
    assert_eq!(
        times(&later),
        [t0 + 100_000, t0 + 105_000, t0 + 110_000, t0 + 115_000]
    );
    let (_, recent) = app
        .get(&format!("/v1/drivers/{}/track", user.id), Some(&user.token))
        .await;
    let since = recent["properties"]["since_ms"].as_i64().unwrap();
    assert!(since >= t0 + 90_000, "{recent}");
    assert!(times(&recent).iter().all(|&t| t >= since), "{recent}");
    let (_, none) = app
        .get(
            &format!("/v1/drivers/{}/track?since={}", user.id, t0 + 116_000),
            Some(&user.token),
        )
        .await;
    assert!(none["geometry"].is_null(), "{none}");
    assert_eq!(none["properties"]["timestamps_ms"], json!([]));

    // Who may read it: the driver and admins; not a customer, not another
    // driver. A bad `since` is a 400.
    let admin = app.admin_token().await;
    let path = format!("/v1/drivers/{}/track?since=0", user.id);
    let (status, by_admin) = app.get(&path, Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(times(&by_admin), expected);
    let customer = app.signup("customer", "customer").await;
    assert_eq!(app.get(&path, Some(&customer.token)).await.0, 403);
    let other = app.signup("other", "driver").await;
    assert_eq!(app.get(&path, Some(&other.token)).await.0, 403);
    let (status, body) = app
        .get(
            &format!("/v1/drivers/{}/track?since=-1", user.id),
            Some(&user.token),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drivers_pings_come_back_as_its_track_downsampled_and_bounded() {
    for db in databases().await {
        pings_come_back_downsampled_and_bounded(db).await;
    }
}

async fn delivered_order_keeps_its_route(db: Db) {
    let app = spawn_app_on(&db, |c| {
        c.breadcrumbs.window_s = 600;
        c.breadcrumbs.min_spacing_ms = 300;
        // Pickup and dropoff, and room for four of the courier's fixes.
        c.breadcrumbs.route_max_points = 6;
    })
    .await;
    let admin = app.admin_token().await;
    let (owner, restaurant, item) = restaurant(&app).await;
    let customer = app.signup("customer", "customer").await;
    let user = app.signup("courier", "driver").await;
    let mut driver = MqttDriver::connect(&app, &user).await;
    // On its way to the restaurant: fixes before the pickup.
    driver
        .ping(RESTAURANT.0 + 0.002, RESTAURANT.1, now_ms() - 2_000)
        .await;
    driver
        .ping(RESTAURANT.0 + 0.001, RESTAURANT.1, now_ms())
        .await;

    let (status, o) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant,
                   "items": [{"menu_item_id": item, "quantity": 1}],
                   "delivery": {"lat": DOOR.0, "lng": DOOR.1, "address": "Avenyn 10"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{o}");
    let order = o["order_id"].as_str().unwrap().to_owned();
    app.step(&owner, &order, "accepted").await;
    let offer = driver.next_offer().await;
    let (status, body) = app
        .post(
            &format!("/v1/offers/{}/accept", offer["offer_id"].as_str().unwrap()),
            Some(&user.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.step(&owner, &order, "ready_for_pickup").await;
    let route_path = format!("/v1/orders/{order}/route");
    let (status, body) = app.get(&route_path, Some(&customer.token)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_delivered");
    app.step(&user, &order, "picked_up").await;

    // Two seconds of fixes every 100 ms toward the door, after the
    // pickup: kept one per 300 ms (t0, t0 + 300 … t0 + 1800: seven). The
    // first is more than the spacing after the fixes before the pickup.
    let t0 = now_ms() + 400;
    let lat = |i: i64| RESTAURANT.0 - i as f64 * 5e-4;
    for i in 0..20 {
        driver.ping(lat(i), RESTAURANT.1, t0 + i * 100).await;
    }
    track_up_to(&app, &user.token, &user.id, t0, t0 + 1_800).await;
    // The last fix's device time must not be after the delivery.
    while now_ms() <= t0 + 2_000 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.step(&user, &order, "delivered").await;

    let route = eventually(async || {
        let (status, route) = app.get(&route_path, Some(&customer.token)).await;
        (status == 200).then_some(route)
    })
    .await;
    assert_eq!(route["type"], "Feature");
    assert_eq!(route["geometry"]["type"], "LineString");
    let props = &route["properties"];
    assert_eq!(props["order_id"], order.as_str());
    assert_eq!(props["driver_id"], user.id.as_str());
    // Seven fixes between the steps, downsampled to four, ends kept.
    assert_eq!(props["breadcrumbs"], 4);
    let picked_up_at = props["picked_up_at_ms"].as_i64().unwrap();
    let delivered_at = props["delivered_at_ms"].as_i64().unwrap();
    assert!(picked_up_at < t0 && delivered_at > t0 + 1_800, "{props}");
    assert_eq!(
        times(&route),
        [
            picked_up_at,
            t0,
            t0 + 600,
            t0 + 1_200,
            t0 + 1_800,
            delivered_at
        ]
    );
    let coordinates = route["geometry"]["coordinates"].as_array().unwrap();
    assert_eq!(
        coordinates[0],
        json!([RESTAURANT.1, RESTAURANT.0]),
        "pickup"
    );
    assert_eq!(coordinates[5], json!([DOOR.1, DOOR.0]), "dropoff");
    for (c, i) in coordinates[1..5].iter().zip([0, 6, 12, 18]) {
        assert!((c[1].as_f64().unwrap() - lat(i)).abs() < 1e-6, "{c}");
    }

    // Every party reads the same route; another customer cannot tell the
    // order exists.
    for token in [&owner.token, &user.token, &admin] {
        let (status, same) = app.get(&route_path, Some(token)).await;
        assert_eq!(status, 200, "{same}");
        assert_eq!(same, route);
    }
    let stranger = app.signup("stranger", "customer").await;
    assert_eq!(app.get(&route_path, Some(&stranger.token)).await.0, 404);

    // Kept with the order: after a restart (no breadcrumbs in memory)
    // it reads the same.
    drop(driver);
    app.stop().await;
    let again = spawn_app_on(&db, |_| {}).await;
    let (status, kept) = again.get(&route_path, Some(&customer.token)).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept, route);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_order_keeps_its_route_from_pickup_to_dropoff() {
    for db in databases().await {
        delivered_order_keeps_its_route(db).await;
    }
}
