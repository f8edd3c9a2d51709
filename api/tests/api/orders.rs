//! Restaurants, placing and reading orders, listing, cancelling, and the
//! start-up restore of the live state.

use auth::Role;
use axum::http::Method;
use engine::{OrderId, OrderStatus};
use serde_json::json;

use crate::common::*;

dual_test! {
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

        // Anyone can read it, even without a token (browsing before
        // signing up).
        let customer = app.user(Role::Customer).await;
        let got = app
            .get(&format!("/v1/restaurants/{id}"), customer.token())
            .await;
        assert_eq!(got.assert_ok(200), &body);
        assert_eq!(
            app.get(&format!("/v1/restaurants/{id}"), None)
                .await
                .assert_ok(200),
            &body
        );
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
}

dual_test! {
    async fn place_order_and_read_it_back() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let drink = app
            .menu_item(&owner, restaurant, json!({"name": "Lemonade", "price_cents": 3_000, "stock": 5}))
            .await;
        let customer = app.user(Role::Customer).await;
        let soup = app.item_of(restaurant);
        let r = app
            .post(
                "/v1/orders",
                customer.token(),
                json!({
                    "restaurant_id": restaurant,
                    "items": [
                        {"menu_item_id": soup, "quantity": 2},
                        {"menu_item_id": drink, "quantity": 1},
                        {"menu_item_id": drink, "quantity": 1}
                    ],
                    "delivery": {"lat": 57.71, "lng": 11.98, "address": "Vasagatan 2"},
                    "payment": {"method": "card", "token": "tok_ok"}
                }),
            )
            .await;
        let created = r.assert_ok(201).clone();
        // Paid at placement; priced on the server: 2 × 125.00 + 2 × 30.00,
        // and a fee of 2.90 + 1.00 per started km (0.4 km: one).
        assert_eq!(created["status"], "paid");
        assert_eq!(created["subtotal_cents"], 31_000);
        assert_eq!(created["delivery_fee_cents"], 390);
        assert_eq!(created["total_cents"], 31_390);
        assert_eq!(created["payment"]["status"], "succeeded");
        assert_eq!(created["payment"]["amount_cents"], 31_390);
        let order_id: OrderId = created["order_id"].as_str().unwrap().parse().unwrap();

        let got = app
            .get(&format!("/v1/orders/{order_id}"), customer.token())
            .await;
        let body = got.assert_ok(200);
        assert_eq!(body["status"], "paid");
        assert_eq!(body["restaurant_id"], restaurant.to_string());
        assert_eq!(body["customer_id"], customer.id.to_string());
        assert_eq!(body["driver_id"], serde_json::Value::Null);
        assert_eq!(body["eta_s"], serde_json::Value::Null);
        assert_eq!(body["pickup"], json!({"lat": HERE.0, "lng": HERE.1}));
        assert_eq!(body["dropoff"], json!({"lat": 57.71, "lng": 11.98}));
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert!(items.contains(&json!({"menu_item_id": drink, "name": "Lemonade", "unit_price_cents": 3_000, "quantity": 2})));
        assert!(body["created_at"].as_i64().unwrap() > 1_700_000_000_000);
        // The stock was taken.
        let menu = app.get(&format!("/v1/restaurants/{restaurant}/menu"), None).await;
        assert_eq!(menu.assert_ok(200)["categories"][0]["items"][1]["stock"], 3);

        // Stored with its timestamped history; the engine tracks it; no
        // driver is sought until the restaurant accepts.
        let history = app
            .get(&format!("/v1/orders/{order_id}/history"), customer.token())
            .await;
        let events = history.assert_ok(200)["events"].as_array().unwrap().clone();
        let steps: Vec<(&str, &serde_json::Value)> = events
            .iter()
            .map(|e| (e["status"].as_str().unwrap(), &e["actor_id"]))
            .collect();
        assert_eq!(
            steps,
            [("placed", &json!(customer.id)), ("paid", &serde_json::Value::Null)]
        );
        assert!(events.iter().all(|e| e["at"].as_i64().unwrap() > 1_700_000_000_000));
        let track = app.state.engine.order(order_id).expect("tracked");
        assert_eq!(track.status, OrderStatus::Paid);
        assert_eq!(track.restaurant_owner_id, owner.id);
        assert!(track.is_party(customer.id) && track.is_party(owner.id));
        assert_eq!(app.state.matcher.dispatching(), 0);
        app.post(
            &format!("/v1/orders/{order_id}/status"),
            owner.token(),
            json!({"status": "accepted"}),
        )
        .await
        .assert_ok(200);
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
}

dual_test! {
    async fn place_order_errors() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let item = app.item_of(restaurant);
        let customer = app.user(Role::Customer).await;
        let order = |restaurant: serde_json::Value, lat: f64, lng: f64, address: &str| json!({
            "restaurant_id": restaurant,
            "items": [{"menu_item_id": item, "quantity": 1}],
            "delivery": {"lat": lat, "lng": lng, "address": address},
            "payment": {"method": "card", "token": "tok_ok"}
        });
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
        // Outside the 10 km delivery radius (Borås).
        app.post("/v1/orders", customer.token(), order(json!(restaurant), 57.72, 12.94, "Borås"))
            .await
            .assert_error(422, "outside_delivery_area");
        let with_items = |items: serde_json::Value| json!({"restaurant_id": restaurant, "items": items,
            "delivery": {"lat": 57.7, "lng": 11.9, "address": "Here"}, "payment": {"method": "card", "token": "tok_ok"}});
        for (items, status, code) in [
            (json!([]), 400, "invalid_items"),
            (json!([{"menu_item_id": item, "quantity": 0}]), 400, "invalid_items"),
            (json!([{"menu_item_id": item, "quantity": -1}]), 400, "invalid_items"),
            (json!([{"menu_item_id": item, "quantity": 100}]), 400, "invalid_items"),
            (json!([{"menu_item_id": item, "quantity": 1.5}]), 400, "invalid_body"),
            (json!([{"menu_item_id": item, "quantity": "1"}]), 400, "invalid_body"),
            (json!([{"menu_item_id": uuid::Uuid::new_v4(), "quantity": 1}]), 422, "unknown_item"),
        ] {
            app.post("/v1/orders", customer.token(), with_items(items.clone()))
                .await
                .assert_error(status, code);
        }
        // An item of another restaurant is not on this menu.
        let other_owner = app.user(Role::Restaurant).await;
        let other = app.restaurant(&other_owner).await;
        let foreign = app.item_of(other);
        app.post("/v1/orders", customer.token(), with_items(json!([{"menu_item_id": foreign, "quantity": 1}])))
            .await
            .assert_error(422, "unknown_item");
        // Payment shape.
        let mut bad_method = order(json!(restaurant), 57.7, 11.9, "Here");
        bad_method["payment"]["method"] = json!("cash");
        app.post("/v1/orders", customer.token(), bad_method)
            .await
            .assert_error(400, "invalid_payment");
        let mut no_payment = order(json!(restaurant), 57.7, 11.9, "Here");
        no_payment.as_object_mut().unwrap().remove("payment");
        app.post("/v1/orders", customer.token(), no_payment)
            .await
            .assert_error(400, "invalid_body");
    }
}

dual_test! {
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
}

dual_test! {
    async fn cancel_rules() {
        // (status to reach first, who cancels, expected code)
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let admin = app.admin().await;

        // Customer, while paid (before the restaurant accepts): ok, and
        // the charge is refunded.
        let order = app.place_paid_order(&customer, restaurant).await;
        let r = app
            .call(
                Method::POST,
                &format!("/v1/orders/{order}/cancel"),
                customer.token(),
                None,
            )
            .await;
        assert_eq!(r.assert_ok(200)["status"], "cancelled");
        eventually(|| async {
            let payments = app.state.store.payments(order).await.unwrap();
            payments.len() == 2 && payments[1].status == api::store::PaymentStatus::Succeeded
        })
        .await;
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

        // Customer after acceptance: 409; admin then: ok, the matcher stops.
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
        assert_eq!(app.state.matcher.dispatching(), 0);
        let events = app.state.store.order_events(order).await.unwrap();
        let steps: Vec<_> = events.iter().map(|e| (e.status, e.actor_id)).collect();
        assert_eq!(
            steps,
            [
                (OrderStatus::Placed, Some(customer.id)),
                (OrderStatus::Paid, None),
                (OrderStatus::Accepted, Some(owner.id)),
                (OrderStatus::Cancelled, Some(admin.id))
            ]
        );
    }
}

dual_test! {
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
        // To the door: the food is expected the default 10 minutes after
        // the restaurant accepted (longer than the drive there), then the
        // drive to the door.
        let door = body["delivery_eta_s"].as_u64().unwrap();
        assert!((590..=600 + 3_600).contains(&door), "{door}");
        // The driver sees it in its list.
        let r = app.get("/v1/orders", driver.token()).await;
        assert_eq!(r.assert_ok(200)["orders"][0]["order_id"], order.to_string());
    }
}

dual_test! {
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
        let closed = app.place_paid_order(&customer, restaurant).await;
        app.call(
            Method::POST,
            &format!("/v1/orders/{closed}/cancel"),
            customer.token(),
            None,
        )
        .await
        .assert_ok(200);
        // Its refund is sent in the background: let it settle, so that no
        // payment is left for the restart to resume.
        eventually(|| async {
            let payments = app.state.store.payments(closed).await.unwrap();
            payments.len() == 2 && payments[1].status == api::store::PaymentStatus::Succeeded
        })
        .await;

        // A restart: same store, new engine and matcher.
        let restarted = TestApp::with_store(store).await;
        let restored = api::restore_live_state(&restarted.state).await.unwrap();
        assert_eq!(
            restored,
            api::Restored {
                tracked: 2,
                dispatched: 1,
                // Neither order was ready for pickup yet.
                preparations: 0,
                payments_resumed: 0
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
}
