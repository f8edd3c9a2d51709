//! Customer ETAs on a real server with the shipped Gothenburg road graph
//! (`matcher.roads`): `GET /v1/orders/{id}` and the order's WebSocket
//! channel give the courier's road time to the restaurant (`eta_s`) and to
//! the door (`delivery_eta_s`: waiting for the food, expected the
//! restaurant's preparation time after it accepted, then the road from the
//! restaurant to the door).

mod common;

use common::*;
use serde_json::json;

const RESTAURANT: (f64, f64) = (57.7000, 11.9700);
const DOOR: (f64, f64) = (57.6950, 11.9850);
/// About 1.2 km north-west of the restaurant, in the city.
const COURIER: (f64, f64) = (57.7080, 11.9600);
/// The preparation the food is expected to take (no history yet: what
/// the restaurant declares).
const PREP_S: u64 = 600;

fn graph_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("gothenburg_roads_2016.hxroads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etas_follow_the_roads_and_wait_for_the_food() {
    let app = spawn_app_with(|c| {
        c.matcher.roads = Some(graph_path());
    })
    .await;
    // The same graph, to compute what the server should say.
    let router = routing::Router::new(
        routing::load::read_graph(&graph_path()).unwrap(),
        routing::Config::default(),
    );
    let road_s = |a: (f64, f64), b: (f64, f64)| {
        let p = |(lat, lng)| routing::LatLng { lat, lng };
        u64::from(router.travel_time_or_crow_fly_ms(p(a), p(b)).div_ceil(1000))
    };

    let customer = app.signup("customer", "customer").await;
    let owner = app.signup("owner", "restaurant").await;
    let courier = app.signup("courier", "driver").await;
    let (status, restaurant) = app
        .post(
            "/v1/restaurants",
            Some(&owner.token),
            json!({"name": "Vägkrogen", "location": {"lat": RESTAURANT.0, "lng": RESTAURANT.1}, "address": "Gatan 3",
                   "avg_prep_time_s": PREP_S}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    let restaurant_id = restaurant["restaurant_id"].as_str().unwrap().to_owned();
    let (status, menu) = app
        .post(
            &format!("/v1/restaurants/{restaurant_id}/menu"),
            Some(&owner.token),
            json!({"items": [{"name": "Kåldolmar", "price_cents": 13_900}]}),
        )
        .await;
    assert_eq!(status, 201, "{menu}");
    let dish = menu["items"][0]["menu_item_id"].as_str().unwrap();
    let mut driver = MqttDriver::connect(&app, &courier).await;
    driver.ping(COURIER.0, COURIER.1, now_ms()).await;

    let (status, order) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant_id,
                   "items": [{"menu_item_id": dish, "quantity": 1}],
                   "delivery": {"lat": DOOR.0, "lng": DOOR.1, "address": "Dörren 4"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    let (code, body) = app
        .post(
            &format!("/v1/orders/{order_id}/status"),
            Some(&owner.token),
            json!({"status": "accepted"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let offer = driver.next_offer().await;
    let (code, body) = app
        .post(
            &format!("/v1/offers/{}/accept", offer["offer_id"].as_str().unwrap()),
            Some(&courier.token),
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{body}");

    // REST: the road time to the restaurant; to the door, the food's wait
    // (longer than the drive) and the road from the restaurant on.
    let (code, body) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&customer.token))
        .await;
    assert_eq!(code, 200, "{body}");
    let to_pickup = road_s(COURIER, RESTAURANT);
    let pickup_to_door = road_s(RESTAURANT, DOOR);
    assert!(
        to_pickup < PREP_S - 60,
        "the drive is shorter than the prep"
    );
    assert_eq!(body["eta_s"], to_pickup, "{body}");
    let door = body["delivery_eta_s"].as_u64().unwrap();
    assert!(
        (PREP_S - 10 + pickup_to_door..=PREP_S + pickup_to_door).contains(&door),
        "{door}: prep {PREP_S} + road {pickup_to_door}"
    );
    // The road, not the crow-fly placeholder.
    let crow_fly = |a: (f64, f64), b: (f64, f64)| {
        let p = |(lat, lng)| engine::LatLng::new(lat, lng).unwrap();
        u64::from(engine::eta::eta_s(p(a), p(b)))
    };
    assert_ne!(to_pickup, crow_fly(COURIER, RESTAURANT));

    // The order's channel: the same source (so within its countdown).
    let mut watcher = Watcher::connect(&app, &customer.token).await;
    watcher
        .send(json!({"op": "subscribe", "channel": format!("order:{order_id}")}))
        .await;
    let location = watcher.next_of("location").await;
    let eta = location["eta_s"].as_u64().unwrap();
    assert!(eta <= to_pickup && eta + 15 >= to_pickup, "{location}");
    let door_ws = location["delivery_eta_s"].as_u64().unwrap();
    assert!(door_ws <= door && door_ws + 15 >= door, "{location}");
    app.stop().await;
}
