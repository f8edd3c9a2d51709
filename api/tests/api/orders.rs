//! Restaurants, placing and reading orders, listing, cancelling, and the
//! start-up restore of the live state.

use auth::Role;
use axum::http::Method;
use engine::{OrderId, OrderStatus};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn restaurants_create_and_get() {
    let app = TestApp::new().await;
    let owner = app.user(Role::Restaurant).await;
    let r = app
        .post(
            "/v1/restaurants",
            owner.token(),
            json!({"name": " Sjömagasinet ", "location": {"lat": 57.6969, "lng": 11.9136}, "address": "Adolf Edelsvärds gata 5"}),
        )
        .await;
    let body = r.assert_ok(201).clone();
    assert_eq!(body["name"], "Sjömagasinet");
    assert_eq!(body["owner_id"], owner.id.to_string());
    assert_eq!(body["location"], json!({"lat": 57.6969, "lng": 11.9136}));
    let id = body["restaurant_id"].as_str().unwrap();

    // Anyone signed in can read it.
    let customer = app.user(Role::Customer).await;
    let got = app
        .get(&format!("/v1/restaurants/{id}"), customer.token())
        .await;
    assert_eq!(got.assert_ok(200), &body);
    app.get(&format!("/v1/restaurants/{id}"), None)
        .await
        .assert_error(401, "missing_token");
    app.get(
        &format!("/v1/restaurants/{}", uuid::Uuid::new_v4()),
        customer.token(),
    )
    .await
    .assert_error(404, "not_found");

    // Admins may create; customers and drivers may not.
    let admin = app.admin().await;
    app.restaurant(&admin).await;
    let body = json!({"name": "X", "location": {"lat": 1.0, "lng": 1.0}, "address": "Y"});
    app.post("/v1/restaurants", customer.token(), body.clone())
        .await
        .assert_error(403, "forbidden");
    let driver = app.user(Role::Driver).await;
    app.post("/v1/restaurants", driver.token(), body)
        .await
        .assert_error(403, "forbidden");

    // Validation.
    for (body, code) in [
        (
            json!({"name": "", "location": {"lat": 1.0, "lng": 1.0}, "address": "Y"}),
            "invalid_name",
        ),
        (
            json!({"name": "X", "location": {"lat": 1.0, "lng": 1.0}, "address": " "}),
            "invalid_address",
        ),
        (
            json!({"name": "X", "location": {"lat": 95.0, "lng": 1.0}, "address": "Y"}),
            "invalid_location",
        ),
        (
            json!({"name": "X", "location": {"lat": -91.0, "lng": 1.0}, "address": "Y"}),
            "invalid_location",
        ),
        (
            json!({"name": "X", "location": {"lat": 1.0, "lng": -180.5}, "address": "Y"}),
            "invalid_location",
        ),
        (
            json!({"name": "X", "location": {"lat": 1.0}, "address": "Y"}),
            "invalid_body",
        ),
        (json!({"name": "X", "address": "Y"}), "invalid_body"),
    ] {
        app.post("/v1/restaurants", owner.token(), body)
            .await
            .assert_error(400, code);
    }
}

#[tokio::test]
async fn place_order_and_read_it_back() {
    let app = TestApp::new().await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let r = app
        .post(
            "/v1/orders",
            customer.token(),
            json!({
                "restaurant_id": restaurant,
                "items": [{"menu_item_id": uuid::Uuid::new_v4(), "quantity": 2}],
                "delivery": {"lat": 57.71, "lng": 11.98, "address": "Vasagatan 2"},
                "payment": {"method": "card", "token": "tok_ok"}
            }),
        )
        .await;
    let created = r.assert_ok(201).clone();
    assert_eq!(created["status"], "placed");
    assert_eq!(created["total_cents"], 0);
    let order_id: OrderId = created["order_id"].as_str().unwrap().parse().unwrap();

    let got = app
        .get(&format!("/v1/orders/{order_id}"), customer.token())
        .await;
    let body = got.assert_ok(200);
    assert_eq!(body["status"], "placed");
    assert_eq!(body["restaurant_id"], restaurant.to_string());
    assert_eq!(body["customer_id"], customer.id.to_string());
    assert_eq!(body["driver_id"], serde_json::Value::Null);
    assert_eq!(body["eta_s"], serde_json::Value::Null);
    assert_eq!(body["pickup"], json!({"lat": HERE.0, "lng": HERE.1}));
    assert_eq!(body["dropoff"], json!({"lat": 57.71, "lng": 11.98}));
    assert_eq!(body["items"], json!([]));
    assert!(body["created_at"].as_i64().unwrap() > 1_700_000_000_000);

    // The order and its first event are stored; the engine tracks it.
    let events = app.state.store.order_events(order_id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, OrderStatus::Placed);
    assert_eq!(events[0].actor_id, Some(customer.id));
    let track = app.state.engine.order(order_id).expect("tracked");
    assert_eq!(track.status, OrderStatus::Placed);
    assert_eq!(track.restaurant_owner_id, owner.id);
    assert!(track.is_party(customer.id) && track.is_party(owner.id));
    // ... and the matcher is dispatching it (no driver around yet).
    assert_eq!(app.state.matcher.dispatching(), 1);

    // Its restaurant's owner and admins see it; another customer, another
    // owner and an unassigned driver get 404.
    app.get(&format!("/v1/orders/{order_id}"), owner.token())
        .await
        .assert_ok(200);
    let admin = app.admin().await;
    app.get(&format!("/v1/orders/{order_id}"), admin.token())
        .await
        .assert_ok(200);
    for role in [Role::Customer, Role::Restaurant, Role::Driver] {
        let stranger = app.user(role).await;
        app.get(&format!("/v1/orders/{order_id}"), stranger.token())
            .await
            .assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn place_order_errors() {
    let app = TestApp::new().await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let order = |restaurant: serde_json::Value, lat: f64, lng: f64, address: &str| json!({"restaurant_id": restaurant, "delivery": {"lat": lat, "lng": lng, "address": address}});
    let ok = order(json!(restaurant), 57.7, 11.9, "Here");
    // Only customers order.
    for role in [Role::Restaurant, Role::Driver] {
        let u = app.user(role).await;
        app.post("/v1/orders", u.token(), ok.clone())
            .await
            .assert_error(403, "forbidden");
    }
    app.post("/v1/orders", customer.token(), ok)
        .await
        .assert_ok(201);
    let r = app
        .post(
            "/v1/orders",
            customer.token(),
            order(json!(uuid::Uuid::new_v4()), 57.7, 11.9, "Here"),
        )
        .await;
    r.assert_error(404, "not_found");
    let r = app
        .post(
            "/v1/orders",
            customer.token(),
            order(json!("nope"), 57.7, 11.9, "Here"),
        )
        .await;
    r.assert_error(400, "invalid_body");
    for (lat, lng) in [(91.0, 0.0), (-90.5, 0.0), (0.0, 181.0), (0.0, -181.0)] {
        let r = app
            .post(
                "/v1/orders",
                customer.token(),
                order(json!(restaurant), lat, lng, "Here"),
            )
            .await;
        r.assert_error(400, "invalid_location");
    }
    let r = app
        .post(
            "/v1/orders",
            customer.token(),
            order(json!(restaurant), 57.7, 11.9, ""),
        )
        .await;
    r.assert_error(400, "invalid_address");
    let bad_items = json!({"restaurant_id": restaurant, "items": [{"menu_item_id": uuid::Uuid::new_v4(), "quantity": 0}],
        "delivery": {"lat": 57.7, "lng": 11.9, "address": "Here"}});
    app.post("/v1/orders", customer.token(), bad_items)
        .await
        .assert_error(400, "invalid_items");
    let neg_items = json!({"restaurant_id": restaurant, "items": [{"menu_item_id": uuid::Uuid::new_v4(), "quantity": -1}],
        "delivery": {"lat": 57.7, "lng": 11.9, "address": "Here"}});
    app.post("/v1/orders", customer.token(), neg_items)
        .await
        .assert_error(400, "invalid_body");
}

#[tokio::test]
async fn list_orders_per_party_newest_first_with_pages() {
    let app = TestApp::new().await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let other_owner = app.user(Role::Restaurant).await;
    let other_restaurant = app.restaurant(&other_owner).await;
    let customer = app.user(Role::Customer).await;
    let other_customer = app.user(Role::Customer).await;
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(app.place_order(&customer, restaurant).await);
    }
    let theirs = app.place_order(&other_customer, other_restaurant).await;
    mine.reverse(); // newest first

    // Pages of two: 2 + 2 + 1, then no cursor.
    let mut seen = Vec::new();
    let mut uri = "/v1/orders?limit=2".to_owned();
    loop {
        let r = app.get(&uri, customer.token()).await;
        let body = r.assert_ok(200).clone();
        let page: Vec<OrderId> = body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(page.len() <= 2);
        seen.extend(page);
        match body["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/orders?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, mine);

    // The owner sees the orders to its restaurant, not the other one's.
    let r = app.get("/v1/orders?limit=100", owner.token()).await;
    let ids: Vec<String> = r.assert_ok(200)["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(!ids.contains(&format!("\"{theirs}\"")));
    // A driver with no deliveries sees none; an admin sees both customers'.
    let driver = app.user(Role::Driver).await;
    let r = app.get("/v1/orders", driver.token()).await;
    assert_eq!(r.assert_ok(200)["orders"], json!([]));
    let admin = app.admin().await;
    let r = app.get("/v1/orders?limit=100", admin.token()).await;
    let all = r.assert_ok(200)["orders"].to_string();
    assert!(all.contains(&theirs.to_string()) && all.contains(&mine[0].to_string()));

    // Bad paging parameters.
    for q in ["limit=0", "limit=101", "limit=-1", "limit=x"] {
        let r = app.get(&format!("/v1/orders?{q}"), customer.token()).await;
        assert_eq!(r.status.as_u16(), 400, "{q}: {}", r.body);
        assert_error_body(&r.body);
    }
    app.get("/v1/orders?cursor=garbage", customer.token())
        .await
        .assert_error(400, "invalid_cursor");
}

#[tokio::test]
async fn cancel_rules() {
    // (status to reach first, who cancels, expected code)
    let app = TestApp::new().await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let admin = app.admin().await;

    // Customer, while placed: ok, the matcher stops.
    let order = app.place_order(&customer, restaurant).await;
    assert_eq!(app.state.matcher.dispatching(), 1);
    let r = app
        .call(
            Method::POST,
            &format!("/v1/orders/{order}/cancel"),
            customer.token(),
            None,
        )
        .await;
    assert_eq!(r.assert_ok(200)["status"], "cancelled");
    assert_eq!(app.state.matcher.dispatching(), 0);
    assert_eq!(
        app.state.engine.order(order).unwrap().status,
        OrderStatus::Cancelled
    );
    // Twice: 409 with the current status.
    let r = app
        .call(
            Method::POST,
            &format!("/v1/orders/{order}/cancel"),
            customer.token(),
            None,
        )
        .await;
    r.assert_error(409, "illegal_transition");
    assert_eq!(r.body["error"]["current_status"], "cancelled");

    // Customer after acceptance: 409; admin then: ok.
    let order = app.place_order(&customer, restaurant).await;
    app.post(
        &format!("/v1/orders/{order}/status"),
        owner.token(),
        json!({"status": "accepted"}),
    )
    .await
    .assert_ok(200);
    let r = app
        .call(
            Method::POST,
            &format!("/v1/orders/{order}/cancel"),
            customer.token(),
            None,
        )
        .await;
    r.assert_error(409, "illegal_transition");
    assert_eq!(r.body["error"]["current_status"], "accepted");
    // The owner and drivers may not cancel; strangers do not see it.
    app.call(
        Method::POST,
        &format!("/v1/orders/{order}/cancel"),
        owner.token(),
        None,
    )
    .await
    .assert_error(403, "forbidden");
    let stranger = app.user(Role::Customer).await;
    app.call(
        Method::POST,
        &format!("/v1/orders/{order}/cancel"),
        stranger.token(),
        None,
    )
    .await
    .assert_error(404, "not_found");
    app.call(
        Method::POST,
        &format!("/v1/orders/{order}/cancel"),
        admin.token(),
        None,
    )
    .await
    .assert_ok(200);
    assert_eq!(app.order_status(order).await, OrderStatus::Cancelled);
    let events = app.state.store.order_events(order).await.unwrap();
    let steps: Vec<_> = events.iter().map(|e| (e.status, e.actor_id)).collect();
    assert_eq!(
        steps,
        [
            (OrderStatus::Placed, Some(customer.id)),
            (OrderStatus::Accepted, Some(owner.id)),
            (OrderStatus::Cancelled, Some(admin.id))
        ]
    );
}

#[tokio::test]
async fn eta_follows_the_driver() {
    let app = TestApp::new().await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let driver = app.user(Role::Driver).await;
    // About 1.1 km north of the restaurant.
    app.ping(driver.driver_id(), HERE.0 + 0.01, HERE.1);
    let order = app.place_order(&customer, restaurant).await;
    let offer = app.offer_of(order);
    assert_eq!(offer.driver_id, driver.driver_id());
    app.accept(&driver, &offer).await.assert_ok(200);
    let r = app
        .get(&format!("/v1/orders/{order}"), customer.token())
        .await;
    let body = r.assert_ok(200);
    assert_eq!(body["driver_id"], driver.id.to_string());
    // 1112 m / 6 m/s × 1.3 ≈ 241 s.
    let eta = body["eta_s"].as_u64().unwrap();
    assert!((235..=245).contains(&eta), "{eta}");
    // The driver sees it in its list.
    let r = app.get("/v1/orders", driver.token()).await;
    assert_eq!(r.assert_ok(200)["orders"][0]["order_id"], order.to_string());
}

#[tokio::test]
async fn restore_rebuilds_the_live_state() {
    let store = test_store().await;
    let app = TestApp::with_store(store.clone()).await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let driver = app.user(Role::Driver).await;
    app.ping(driver.driver_id(), HERE.0, HERE.1);
    let carried = app.place_order(&customer, restaurant).await;
    app.accept(&driver, &app.offer_of(carried))
        .await
        .assert_ok(200);
    let waiting = app.place_order(&customer, restaurant).await;
    let closed = app.place_order(&customer, restaurant).await;
    app.call(
        Method::POST,
        &format!("/v1/orders/{closed}/cancel"),
        customer.token(),
        None,
    )
    .await
    .assert_ok(200);

    // A restart: same store, new engine and matcher.
    let restarted = TestApp::with_store(store).await;
    let restored = api::restore_live_state(&restarted.state).await.unwrap();
    assert_eq!(
        restored,
        api::Restored {
            tracked: 2,
            dispatched: 1
        }
    );
    let engine = &restarted.state.engine;
    assert_eq!(
        engine.order(carried).unwrap().driver_id,
        Some(driver.driver_id())
    );
    assert_eq!(engine.order(waiting).unwrap().driver_id, None);
    assert!(engine.order(closed).is_none());
    // The carrying driver is bound to its order (so never offered another).
    assert_eq!(
        engine.driver(driver.driver_id()).unwrap().current_order,
        Some(carried)
    );
    assert_eq!(restarted.state.matcher.dispatching(), 1);
    // Steps keep working after the restart.
    let r = restarted
        .post(
            &format!("/v1/orders/{carried}/status"),
            owner.token(),
            json!({"status": "ready_for_pickup"}),
        )
        .await;
    r.assert_ok(200);
    let r = restarted
        .post(
            &format!("/v1/orders/{carried}/status"),
            driver.token(),
            json!({"status": "picked_up"}),
        )
        .await;
    r.assert_ok(200);
}
