//! The whole live path on a real server: drivers ping over MQTT, a customer
//! orders and watches over WebSocket, the matcher offers the nearest driver,
//! a decline moves the order on, and the customer sees the courier move,
//! arrive at the restaurant, and every status change, in order.

mod common;

use common::*;
use serde_json::json;

/// The restaurant, in central Gothenburg.
const RESTAURANT: (f64, f64) = (57.7000, 11.9700);

/// A point `metres` north of the restaurant.
fn north_of_restaurant(metres: f64) -> (f64, f64) {
    (RESTAURANT.0 + metres / 111_195.0, RESTAURANT.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_to_screen_with_decline_and_delivery() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let customer = app.signup("customer", "customer").await;
    let owner = app.signup("owner", "restaurant").await;
    let users = [
        app.signup("near", "driver").await,
        app.signup("mid", "driver").await,
        app.signup("far", "driver").await,
    ];

    let (status, restaurant) = app
        .post(
            "/v1/restaurants",
            Some(&owner.token),
            json!({"name": "Pizzeria Göta", "location": {"lat": RESTAURANT.0, "lng": RESTAURANT.1}, "address": "Kungsgatan 1"}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    let restaurant_id = restaurant["restaurant_id"].as_str().unwrap().to_owned();
    let (status, menu) = app
        .post(
            &format!("/v1/restaurants/{restaurant_id}/menu"),
            Some(&owner.token),
            json!({"items": [{"name": "Margherita", "price_cents": 11_000, "category": "Pizza"}]}),
        )
        .await;
    assert_eq!(status, 201, "{menu}");
    let pizza = menu["items"][0]["menu_item_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Three drivers at known distances from the restaurant: 200 m, 600 m, 1.5 km.
    let mut drivers = Vec::new();
    for (user, metres) in users.iter().zip([200.0, 600.0, 1_500.0]) {
        let driver = MqttDriver::connect(&app, user).await;
        let (lat, lng) = north_of_restaurant(metres);
        driver.ping(lat, lng, now_ms()).await;
        drivers.push(driver);
    }
    let nearby = format!(
        "/v1/drivers/nearby?lat={}&lng={}&radius_m=5000&status=available",
        RESTAURANT.0, RESTAURANT.1
    );
    let listed = eventually(async || {
        let (status, body) = app.get(&nearby, Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        let ids: Vec<String> = body["drivers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["driver_id"].as_str().unwrap().to_owned())
            .collect();
        (ids.len() == 3).then_some(ids)
    })
    .await;
    assert_eq!(
        listed,
        users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        "sorted by distance"
    );

    // The customer orders (paid at placement) and watches the order.
    let delivery = north_of_restaurant(-2_000.0);
    let (status, order) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant_id,
                   "items": [{"menu_item_id": pizza, "quantity": 2}],
                   "delivery": {"lat": delivery.0, "lng": delivery.1, "address": "Avenyn 10"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "paid", "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    let mut watcher = Watcher::connect(&app, &customer.token).await;
    watcher
        .send(json!({"op": "subscribe", "channel": format!("order:{order_id}")}))
        .await;
    let first = watcher.next_of("status").await;
    assert_eq!(first["order_id"], order_id.as_str());
    assert_eq!(first["status"], "paid");

    // The restaurant accepts: from now on a driver is sought.
    let (status, body) = app
        .post(
            &format!("/v1/orders/{order_id}/status"),
            Some(&owner.token),
            json!({"status": "accepted"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(watcher.next_of("status").await["status"], "accepted");

    // The nearest driver is offered the order first, and declines.
    let [near, mid, far] = &mut drivers[..] else {
        unreachable!()
    };
    let offer = near.next_offer().await;
    assert_eq!(offer["type"], "offer");
    assert_eq!(offer["order_id"], order_id.as_str());
    assert!((offer["pickup"]["lat"].as_f64().unwrap() - RESTAURANT.0).abs() < 1e-9);
    let offer_id = offer["offer_id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/v1/offers/{offer_id}/decline"),
            Some(&users[0].token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The next nearest gets it and accepts; the farthest never hears of it.
    let offer = mid.next_offer().await;
    assert_eq!(offer["order_id"], order_id.as_str());
    let offer_id = offer["offer_id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/v1/offers/{offer_id}/accept"),
            Some(&users[1].token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let assigned = watcher.next_of("status").await;
    assert_eq!(assigned["driver_id"], users[1].id.as_str(), "{assigned}");
    let (_, fetched) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&customer.token))
        .await;
    assert_eq!(fetched["driver_id"], users[1].id.as_str());

    // The courier drives to the restaurant; the customer sees each position in
    // order (after the position it had when assigned, sent at once).
    // The arrival at the restaurant (a `status` with `arrival`) may reach
    // the customer before the last position: the gateway reads positions
    // and changes from two streams with no common order. It is kept when
    // seen here, not thrown away with the other messages skipped.
    let start = now_ms();
    let legs = [450.0, 300.0, 150.0, 0.0];
    let mut arrival = None;
    for (i, metres) in legs.iter().enumerate() {
        let (lat, lng) = north_of_restaurant(*metres);
        let ts = start + 1_000 * (i as i64 + 1);
        mid.ping(lat, lng, ts).await;
        let location = loop {
            let message = watcher.next().await;
            if message["type"] == "status" && !message["arrival"].is_null() {
                assert!(arrival.is_none(), "one arrival: {message}");
                arrival = Some(message);
                continue;
            }
            if message["type"] == "location" && message["ts"].as_i64().unwrap() >= start {
                break message;
            }
        };
        assert_eq!(location["driver_id"], users[1].id.as_str());
        assert_eq!(location["order_id"], order_id.as_str());
        assert_eq!(
            location["ts"], ts,
            "positions arrive in order, none skipped"
        );
        assert!(
            (location["lat"].as_f64().unwrap() - lat).abs() < 1e-9,
            "{location}"
        );
        assert!(location["eta_s"].as_i64().is_some(), "{location}");
    }

    // The last fix was at the restaurant: the customer is told of the
    // courier's arrival there (a `status` with `arrival`) before anything
    // else happens to the order. Waiting for it here, not among the steps
    // below, keeps the test from racing the arrival task: it reads the
    // engine's moves beside the steps' changes and may raise the arrival
    // after the gateway has sent a step's status.
    let arrival = match arrival {
        Some(arrival) => arrival,
        None => watcher.next_of("status").await,
    };
    assert_eq!(arrival["arrival"], "arrived_at_restaurant", "{arrival}");

    // Status steps by the restaurant and the driver reach the customer in
    // order, with no second arrival at the restaurant among them.
    let step = async |token: &str, status: &str| {
        let (code, body) = app
            .post(
                &format!("/v1/orders/{order_id}/status"),
                Some(token),
                json!({"status": status}),
            )
            .await;
        assert_eq!(code, 200, "{status}: {body}");
    };
    step(&owner.token, "ready_for_pickup").await;
    step(&users[1].token, "picked_up").await;
    step(&users[1].token, "delivered").await;
    for expected in ["ready_for_pickup", "picked_up", "delivered"] {
        let update = watcher.next_of("status").await;
        assert_eq!(update["status"], expected, "{update}");
        assert!(update["arrival"].is_null(), "{update}");
    }

    // The driver is free again and the far driver was never offered anything.
    let (_, me) = app
        .get(&format!("/v1/drivers/{}", users[1].id), Some(&admin))
        .await;
    assert_eq!(me["status"], "available", "{me}");
    assert!(
        far.offers.try_recv().is_err(),
        "the farthest driver got no offer"
    );
    // Every counter this run touched (orders, offers, charges, pings, …)
    // has its HELP text.
    prometheus_text::assert_well_formed(&prometheus_text::scrape(&app).await);
    app.stop().await;
}
