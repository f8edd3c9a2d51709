//! Quotes before ordering on a real server with the shipped Gothenburg
//! road graph (`matcher.roads`): every search result and the cart (`GET
//! /v1/cart?lat=&lng=`) carry `quote` (`eta_s` and the delivery fee on
//! road distance), and placing the cart for the same point charges
//! exactly the quoted fee; off the map the fee falls back to crow-fly.

mod common;

use common::*;
use serde_json::{Value, json};

const RESTAURANT: (f64, f64) = (57.7000, 11.9700);
/// About 1.2 km north-west of the restaurant, in the city.
const COURIER: (f64, f64) = (57.7080, 11.9600);
const PREP_S: u64 = 600;
/// Fee settings of the default config.
const BASE_CENTS: i64 = 290;
const PER_KM_CENTS: i64 = 100;

fn graph_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("gothenburg_roads_2016.hxroads")
}

fn fee(distance_m: f64) -> i64 {
    BASE_CENTS + PER_KM_CENTS * (distance_m / 1000.0).ceil() as i64
}

fn p((lat, lng): (f64, f64)) -> routing::LatLng {
    routing::LatLng { lat, lng }
}

fn crow_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    p(a).distance_m(p(b))
}

/// A restaurant at `at` with one dish; (restaurant id, dish id).
async fn restaurant(app: &TestApp, owner: &User, at: (f64, f64)) -> (String, String) {
    let (status, restaurant) = app
        .post(
            "/v1/restaurants",
            Some(&owner.token),
            json!({"name": "Vägkrogen", "location": {"lat": at.0, "lng": at.1}, "address": "Gatan 3",
                   "avg_prep_time_s": PREP_S, "delivery_radius_m": 10_000}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    let id = restaurant["restaurant_id"].as_str().unwrap().to_owned();
    let (status, menu) = app
        .post(
            &format!("/v1/restaurants/{id}/menu"),
            Some(&owner.token),
            json!({"items": [{"name": "Kåldolmar", "price_cents": 13_900}]}),
        )
        .await;
    assert_eq!(status, 201, "{menu}");
    (
        id,
        menu["items"][0]["menu_item_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// The search result of `restaurant_id` for a delivery at `door`.
async fn search_hit(app: &TestApp, restaurant_id: &str, door: (f64, f64)) -> Value {
    let (code, body) = app
        .get(
            &format!("/v1/restaurants?lat={}&lng={}&limit=100", door.0, door.1),
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["restaurant_id"] == restaurant_id)
        .cloned()
        .unwrap_or_else(|| panic!("{restaurant_id} not found: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_on_the_roads_and_checkout_charges_the_quoted_fee() {
    let app = spawn_app_with(|c| {
        c.matcher.roads = Some(graph_path());
    })
    .await;
    let router = routing::Router::new(
        routing::load::read_graph(&graph_path()).unwrap(),
        routing::Config::default(),
    );
    // A door whose road distance starts one more kilometre than its
    // straight line, so the road fee and the crow-fly fee differ.
    let door = (0..400)
        .map(|i| {
            let a = f64::from(i) * 0.157;
            let r = 0.004 + f64::from(i % 20) * 0.0008;
            (RESTAURANT.0 + r * a.sin(), RESTAURANT.1 + 1.8 * r * a.cos())
        })
        .find(|&d| {
            let route = router.routes_to(&[p(RESTAURANT)], p(d))[0];
            route.on_roads && fee(route.distance_m) != fee(crow_m(RESTAURANT, d))
        })
        .expect("a door where road and crow-fly fees differ");
    let route = router.routes_to(&[p(RESTAURANT)], p(door))[0];
    let to_door_s = u64::from(route.time_ms.div_ceil(1000));

    let customer = app.signup("customer", "customer").await;
    let owner = app.signup("owner", "restaurant").await;
    let courier = app.signup("courier", "driver").await;
    let (restaurant_id, dish) = restaurant(&app, &owner, RESTAURANT).await;

    // Nobody on duty: the default courier time (300 s, under the prep).
    let hit = search_hit(&app, &restaurant_id, door).await;
    let q = &hit["quote"];
    assert_eq!(q["courier_found"], false, "{hit}");
    assert_eq!(q["courier_to_restaurant_s"], 300);
    assert_eq!(q["prep_s"], PREP_S);
    assert_eq!(q["on_roads"], true);
    assert_eq!(q["restaurant_to_door_s"], to_door_s);
    assert_eq!(q["eta_s"], PREP_S + to_door_s, "{q}");
    let distance = q["distance_m"].as_f64().unwrap();
    assert!(
        (distance - route.distance_m).abs() <= 0.05,
        "{q} vs {route:?}"
    );
    assert_eq!(q["delivery_fee_cents"], fee(route.distance_m));
    assert_ne!(q["delivery_fee_cents"], fee(crow_m(RESTAURANT, door)));

    // A courier pinging: their road time to the restaurant.
    let driver = MqttDriver::connect(&app, &courier).await;
    driver.ping(COURIER.0, COURIER.1, now_ms()).await;
    let courier_s = u64::from(
        router
            .travel_time_or_crow_fly_ms(p(COURIER), p(RESTAURANT))
            .div_ceil(1000),
    );
    let q = eventually(async || {
        let hit = search_hit(&app, &restaurant_id, door).await;
        (hit["quote"]["courier_found"] == true).then(|| hit["quote"].clone())
    })
    .await;
    assert_eq!(q["courier_to_restaurant_s"], courier_s, "{q}");
    assert_eq!(q["eta_s"], PREP_S.max(courier_s) + to_door_s, "{q}");

    // The cart: no quote without a point, the same quote with it.
    let (code, cart) = app
        .post(
            "/v1/cart/items",
            Some(&customer.token),
            json!({"menu_item_id": dish, "quantity": 2}),
        )
        .await;
    assert_eq!(code, 200, "{cart}");
    assert_eq!(cart["quote"], Value::Null);
    let (code, cart) = app.get("/v1/cart", Some(&customer.token)).await;
    assert_eq!(code, 200, "{cart}");
    assert_eq!(cart["quote"], Value::Null);
    assert_eq!(cart["deliverable"], Value::Null);
    let (code, cart) = app
        .get(
            &format!("/v1/cart?lat={}&lng={}", door.0, door.1),
            Some(&customer.token),
        )
        .await;
    assert_eq!(code, 200, "{cart}");
    assert_eq!(cart["quote"], q, "{cart}");
    assert_eq!(cart["deliverable"], true);

    // Checkout for the same point charges the quoted fee.
    let (code, order) = app
        .post(
            "/v1/cart/checkout",
            Some(&customer.token),
            json!({"delivery": {"lat": door.0, "lng": door.1, "address": "Dörren 4"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(code, 201, "{order}");
    assert_eq!(
        order["delivery_fee_cents"], q["delivery_fee_cents"],
        "{order}"
    );
    assert_eq!(order["subtotal_cents"], 2 * 13_900);
    assert_eq!(
        order["total_cents"].as_i64().unwrap(),
        2 * 13_900 + q["delivery_fee_cents"].as_i64().unwrap()
    );

    // Off the map (a restaurant in Stockholm): crow-fly, and placing
    // charges the same.
    let stockholm = (59.3300, 18.0600);
    let near_door = (59.3400, 18.0700);
    let (far_id, far_dish) = restaurant(&app, &owner, stockholm).await;
    let hit = search_hit(&app, &far_id, near_door).await;
    let q = &hit["quote"];
    assert_eq!(q["on_roads"], false, "{hit}");
    let crow = crow_m(stockholm, near_door);
    assert!(
        (q["distance_m"].as_f64().unwrap() - crow).abs() <= 0.05,
        "{q}"
    );
    assert_eq!(q["delivery_fee_cents"], fee(crow));
    let (code, order) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": far_id,
                   "items": [{"menu_item_id": far_dish, "quantity": 1}],
                   "delivery": {"lat": near_door.0, "lng": near_door.1, "address": "Dörren 5"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(code, 201, "{order}");
    assert_eq!(order["delivery_fee_cents"], q["delivery_fee_cents"]);
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_carts_quote_refuses_a_half_or_wrong_point_and_says_when_out_of_reach() {
    let app = spawn_app().await;
    let customer = app.signup("customer", "customer").await;
    let owner = app.signup("owner", "restaurant").await;
    let (_, dish) = restaurant(&app, &owner, RESTAURANT).await;
    // Half a point is a well-formed request that cannot be served (422);
    // a value out of range or of the wrong type is malformed (400).
    for (query, status_wanted, code) in [
        ("lat=57.7", 422, "invalid_location"),
        ("lng=11.9", 422, "invalid_location"),
        ("lat=91&lng=11.9", 400, "invalid_location"),
        ("lat=57.7&lng=abc", 400, "invalid_query"),
    ] {
        let (status, body) = app
            .get(&format!("/v1/cart?{query}"), Some(&customer.token))
            .await;
        assert_eq!(status, status_wanted, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    // An empty cart has nothing to quote.
    let (status, body) = app
        .get("/v1/cart?lat=57.7&lng=11.97", Some(&customer.token))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["quote"], Value::Null);
    // Beyond the 10 km radius: quoted, but not deliverable.
    let (code, _) = app
        .post(
            "/v1/cart/items",
            Some(&customer.token),
            json!({"menu_item_id": dish}),
        )
        .await;
    assert_eq!(code, 200);
    let (status, body) = app
        .get("/v1/cart?lat=57.85&lng=11.97", Some(&customer.token))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deliverable"], false, "{body}");
    // Without a road graph: crow-fly, at the ETA's crow-fly speed.
    let q = &body["quote"];
    assert_eq!(q["on_roads"], false);
    let crow = crow_m(RESTAURANT, (57.85, 11.97));
    assert_eq!(q["delivery_fee_cents"], fee(crow), "{q}");
    app.stop().await;
}
