//! Menus and stock, idempotent placement, payments and refunds, carts:
//! including the races (50 orders for 10 in stock, 20 retries of one
//! `Idempotency-Key`, concurrent refunds).

use api::store::{PaymentKind, PaymentStatus};
use auth::Role;
use axum::body::Body;
use axum::http::{Method, Request, header};
use engine::{OrderId, RestaurantId};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::*;

/// A restaurant with a counted item: (restaurant, item, owner).
async fn shop_with_stock(app: &TestApp, stock: i64) -> (RestaurantId, engine::MenuItemId, User) {
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let item = app
        .menu_item(
            &owner,
            restaurant,
            json!({"name": "Kanelbulle", "price_cents": 3_500, "category": "Fika", "stock": stock}),
        )
        .await;
    (restaurant, item, owner)
}

fn order_of(restaurant: RestaurantId, item: engine::MenuItemId, qty: i64, token: &str) -> Value {
    json!({
        "restaurant_id": restaurant,
        "items": [{"menu_item_id": item, "quantity": qty}],
        "delivery": {"lat": HERE.0 + 0.01, "lng": HERE.1, "address": "Vasagatan 2"},
        "payment": {"method": "card", "token": token}
    })
}

fn post_with_key(uri: &str, token: &str, key: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn stock_of(app: &TestApp, item: engine::MenuItemId) -> Option<i64> {
    app.state
        .store
        .menu_item(item)
        .await
        .unwrap()
        .unwrap()
        .stock
}

fn order_id(body: &Value) -> OrderId {
    body["order_id"].as_str().unwrap().parse().unwrap()
}

dual_test! {
    async fn menus_grouped_validated_and_owned() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let r = app
            .post(
                &format!("/v1/restaurants/{restaurant}/menu"),
                owner.token(),
                json!({"items": [
                    {"name": "Räksmörgås", "price_cents": 16_500, "category": "Mains", "description": "Shrimp sandwich", "stock": 12},
                    {"name": "Kaffe", "price_cents": 3_000, "category": "Drinks"},
                    {"name": "Pyttipanna", "price_cents": 14_000, "category": "Mains", "available": false}
                ]}),
            )
            .await;
        let items = r.assert_ok(201)["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["stock"], 12);
        assert_eq!(items[1]["stock"], Value::Null);
        // Public, grouped by category in order of first appearance (the
        // default item of `restaurant()` is in "Menu").
        let menu = app.get(&format!("/v1/restaurants/{restaurant}/menu"), None).await;
        let names: Vec<&str> = menu.assert_ok(200)["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Menu", "Mains", "Drinks"]);

        // Patch: price, stock (null stops counting), availability.
        let item = items[0]["menu_item_id"].as_str().unwrap();
        let uri = format!("/v1/restaurants/{restaurant}/menu/{item}");
        let r = app
            .call(Method::PATCH, &uri, owner.token(), Some(json!({"price_cents": 17_000, "stock": null, "available": false})))
            .await;
        let body = r.assert_ok(200);
        assert_eq!((body["price_cents"].as_i64(), body["stock"].clone(), body["available"].clone()), (Some(17_000), Value::Null, json!(false)));

        // Only the owner or an admin.
        let other = app.user(Role::Restaurant).await;
        app.call(Method::PATCH, &uri, other.token(), Some(json!({"price_cents": 1})))
            .await
            .assert_error(403, "forbidden");
        app.post(&format!("/v1/restaurants/{restaurant}/menu"), other.token(), json!({"items": [{"name": "x", "price_cents": 1}]}))
            .await
            .assert_error(403, "forbidden");
        let admin = app.admin().await;
        app.call(Method::PATCH, &uri, admin.token(), Some(json!({"available": true})))
            .await
            .assert_ok(200);
        // An item of another restaurant under this one's path: 404.
        let other_restaurant = app.restaurant(&other).await;
        let foreign = app.item_of(other_restaurant);
        app.call(Method::PATCH, &format!("/v1/restaurants/{restaurant}/menu/{foreign}"), owner.token(), Some(json!({"available": true})))
            .await
            .assert_error(404, "not_found");

        // Validation.
        let add = format!("/v1/restaurants/{restaurant}/menu");
        for (item, code) in [
            (json!({"name": "x", "price_cents": -1}), "invalid_price"),
            (json!({"name": "x", "price_cents": 10_000_001}), "invalid_price"),
            (json!({"name": "x", "price_cents": 1, "stock": -1}), "invalid_stock"),
            (json!({"name": "", "price_cents": 1}), "invalid_name"),
            (json!({"name": "x", "price_cents": 1, "category": " "}), "invalid_category"),
            (json!({"name": "x", "price_cents": "1"}), "invalid_body"),
            (json!({"name": "x", "price_cents": 1.5}), "invalid_body"),
            (json!({"name": "x", "price_cents": 1, "colour": "red"}), "invalid_body"),
        ] {
            app.post(&add, owner.token(), json!({"items": [item]}))
                .await
                .assert_error(400, code);
        }
        app.post(&add, owner.token(), json!({"items": []}))
            .await
            .assert_error(400, "invalid_items");
        app.call(Method::PATCH, &uri, owner.token(), Some(json!({"stock": -5})))
            .await
            .assert_error(400, "invalid_stock");
    }
}

dual_test! {
    async fn fifty_orders_for_ten_in_stock() {
        let app = TestApp::new().await;
        let (restaurant, item, _) = shop_with_stock(&app, 10).await;
        let mut customers = Vec::new();
        for _ in 0..5 {
            customers.push(app.user(Role::Customer).await);
        }
        let orders = (0..50)
            .map(|i| {
                request(
                    Method::POST,
                    "/v1/orders",
                    customers[i % 5].token(),
                    Some(order_of(restaurant, item, 1, "tok_ok")),
                )
            })
            .collect();
        let (mut placed, mut sold_out) = (Vec::new(), 0);
        for r in app.concurrently(orders).await {
            match r.status.as_u16() {
                201 => {
                    assert_eq!(r.body["status"], "paid", "{}", r.body);
                    placed.push(order_id(&r.body));
                }
                _ => {
                    r.assert_error(409, "out_of_stock");
                    assert_eq!(r.body["error"]["menu_item_id"], item.to_string());
                    sold_out += 1;
                }
            }
        }
        assert_eq!((placed.len(), sold_out), (10, 40));
        assert_eq!(stock_of(&app, item).await, Some(0));
        assert_eq!(app.gateway.totals().await.unwrap().charges, 10);

        // A cancelled order gives its unit back; the next order gets it.
        let admin = app.admin().await;
        app.call(Method::POST, &format!("/v1/orders/{}/cancel", placed[0]), admin.token(), None)
            .await
            .assert_ok(200);
        assert_eq!(stock_of(&app, item).await, Some(1));
        app.post("/v1/orders", customers[0].token(), order_of(restaurant, item, 1, "tok_ok"))
            .await
            .assert_ok(201);
        app.post("/v1/orders", customers[0].token(), order_of(restaurant, item, 1, "tok_ok"))
            .await
            .assert_error(409, "out_of_stock");
    }
}

dual_test! {
    async fn twenty_retries_of_one_key_make_one_order_and_one_charge() {
        let app = TestApp::new().await;
        let (restaurant, item, _) = shop_with_stock(&app, 100).await;
        let customer = app.user(Role::Customer).await;
        let body = order_of(restaurant, item, 2, "tok_ok");
        let key = uuid::Uuid::new_v4().to_string();
        let retries = (0..20)
            .map(|_| post_with_key("/v1/orders", &customer.token, &key, &body))
            .collect();
        let mut ids = Vec::new();
        for r in app.concurrently(retries).await {
            ids.push(order_id(r.assert_ok(201)));
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one order for every retry");
        let order = ids[0];
        assert_eq!(app.gateway.totals().await.unwrap().charges, 1);
        let payments = app.state.store.payments(order).await.unwrap();
        assert_eq!(payments.len(), 1);
        assert_eq!(payments[0].status, PaymentStatus::Succeeded);
        assert_eq!(stock_of(&app, item).await, Some(98), "stock taken once");
        let list = app.get("/v1/orders", customer.token()).await;
        assert_eq!(list.assert_ok(200)["orders"].as_array().unwrap().len(), 1);

        // A later retry is answered from the key, marked as a replay.
        let resp = app.router.clone().oneshot(post_with_key("/v1/orders", &customer.token, &key, &body)).await.unwrap();
        assert_eq!(resp.headers()["idempotent-replayed"], "true");
        let r = reply(resp).await;
        assert_eq!(order_id(r.assert_ok(201)), order);
        // The same key for another request: 422. Keys are per customer.
        let other_body = order_of(restaurant, item, 3, "tok_ok");
        let r = app.send(post_with_key("/v1/orders", &customer.token, &key, &other_body)).await;
        r.assert_error(422, "idempotency_key_reused");
        let someone_else = app.user(Role::Customer).await;
        let r = app.send(post_with_key("/v1/orders", &someone_else.token, &key, &body)).await;
        assert_ne!(order_id(r.assert_ok(201)), order);
        // Malformed keys.
        for bad in ["", &"k".repeat(256), "with space"] {
            let r = app.send(post_with_key("/v1/orders", &customer.token, bad, &body)).await;
            r.assert_error(400, "invalid_idempotency_key");
        }
    }
}

dual_test! {
    async fn payment_outcomes() {
        let app = TestApp::new().await;
        let (restaurant, item, _) = shop_with_stock(&app, 10).await;
        let customer = app.user(Role::Customer).await;

        // Declined: the order fails and its stock comes back.
        let r = app.post("/v1/orders", customer.token(), order_of(restaurant, item, 3, "tok_declined")).await;
        let body = r.assert_ok(201).clone();
        assert_eq!(body["status"], "payment_failed");
        assert_eq!(body["payment"]["status"], "failed");
        assert_eq!(body["payment"]["failure"], "card declined");
        assert_eq!(stock_of(&app, item).await, Some(10));
        let payments = app.state.store.payments(order_id(&body)).await.unwrap();
        assert_eq!(payments[0].attempts, 1, "a decline is not retried");

        // Transient failures are retried with backoff; four failures fail it.
        let r = app.post("/v1/orders", customer.token(), order_of(restaurant, item, 1, "tok_error")).await;
        let body = r.assert_ok(201).clone();
        assert_eq!(body["status"], "payment_failed");
        let payments = app.state.store.payments(order_id(&body)).await.unwrap();
        assert_eq!(payments[0].attempts, 4);
        assert_eq!(stock_of(&app, item).await, Some(10));

        // Two transient failures, then success.
        let r = app.post("/v1/orders", customer.token(), order_of(restaurant, item, 1, "tok_flaky")).await;
        let body = r.assert_ok(201).clone();
        assert_eq!(body["status"], "paid");
        let payments = app.state.store.payments(order_id(&body)).await.unwrap();
        assert_eq!(payments[0].attempts, 3);
        assert_eq!(app.gateway.totals().await.unwrap().charges, 1);
        assert_eq!(stock_of(&app, item).await, Some(9));

        // A failed order cannot be accepted.
        let failed = app.post("/v1/orders", customer.token(), order_of(restaurant, item, 1, "tok_declined")).await;
        let failed = order_id(failed.assert_ok(201));
        let admin = app.admin().await;
        app.post(&format!("/v1/orders/{failed}/status"), admin.token(), json!({"status": "accepted"}))
            .await
            .assert_error(409, "illegal_transition");
    }
}

dual_test! {
    async fn rejection_refunds_and_admin_refunds_never_exceed_the_charge() {
        let app = TestApp::new().await;
        let (restaurant, item, owner) = shop_with_stock(&app, 10).await;
        let customer = app.user(Role::Customer).await;
        let admin = app.admin().await;

        // The restaurant rejects a paid order: stock back, refunded in full.
        let r = app.post("/v1/orders", customer.token(), order_of(restaurant, item, 2, "tok_ok")).await;
        let rejected = order_id(r.assert_ok(201));
        let total = r.body["total_cents"].as_i64().unwrap();
        app.post(&format!("/v1/orders/{rejected}/status"), owner.token(), json!({"status": "rejected"}))
            .await
            .assert_ok(200);
        assert_eq!(stock_of(&app, item).await, Some(10));
        eventually(|| async {
            let p = app.state.store.payments(rejected).await.unwrap();
            p.len() == 2 && p[1].status == PaymentStatus::Succeeded
        })
        .await;
        let p = app.state.store.payments(rejected).await.unwrap();
        assert_eq!((p[1].kind, p[1].amount_cents, p[1].actor_id), (PaymentKind::Refund, total, None));
        // Nothing is left to refund.
        app.post(&format!("/v1/orders/{rejected}/refund"), admin.token(), json!({"amount_cents": 1, "reason": "goodwill"}))
            .await
            .assert_error(422, "refund_exceeds_paid");

        // Partial refunds by an admin, up to the charge and no further.
        let r = app.post("/v1/orders", customer.token(), order_of(restaurant, item, 1, "tok_ok")).await;
        let order = order_id(r.assert_ok(201));
        let total = r.body["total_cents"].as_i64().unwrap();
        let refund_uri = format!("/v1/orders/{order}/refund");
        let r = app.post(&refund_uri, admin.token(), json!({"amount_cents": 1_000, "reason": "cold food"})).await;
        let body = r.assert_ok(201);
        assert_eq!((body["kind"].as_str(), body["status"].as_str(), body["amount_cents"].as_i64()), (Some("refund"), Some("succeeded"), Some(1_000)));
        // Ten concurrent refunds of 40% of what is left: at most two fit.
        let left = total - 1_000;
        let slice = left * 2 / 5;
        let refunds = (0..10)
            .map(|_| request(Method::POST, &refund_uri, admin.token(), Some(json!({"amount_cents": slice, "reason": "race"}))))
            .collect();
        let mut granted = 0;
        for r in app.concurrently(refunds).await {
            match r.status.as_u16() {
                201 => granted += 1,
                _ => r.assert_error(422, "refund_exceeds_paid"),
            }
        }
        assert_eq!(granted, 2);
        // "The rest" refunds exactly what is left.
        let r = app.post(&refund_uri, admin.token(), json!({"reason": "all of it"})).await;
        assert_eq!(r.assert_ok(201)["amount_cents"].as_i64(), Some(left - 2 * slice));
        let refunded: i64 = app
            .state
            .store
            .payments(order)
            .await
            .unwrap()
            .iter()
            .filter(|p| p.kind == PaymentKind::Refund && p.status == PaymentStatus::Succeeded)
            .map(|p| p.amount_cents)
            .sum();
        assert_eq!(refunded, total);
        // The gateway agrees: nothing refunded beyond what it charged.
        let totals = app.gateway.totals().await.unwrap();
        assert_eq!(totals.refunded_cents, totals.charged_cents);

        // Who may see payments and refund.
        let history = app.get(&format!("/v1/orders/{order}/payments"), customer.token()).await;
        // The charge, the first refund, the two that fit, and the rest.
        assert_eq!(history.assert_ok(200)["payments"].as_array().unwrap().len(), 5);
        app.post(&refund_uri, customer.token(), json!({"amount_cents": 1, "reason": "x"}))
            .await
            .assert_error(403, "forbidden");
        app.post(&refund_uri, admin.token(), json!({"amount_cents": 0, "reason": "x"}))
            .await
            .assert_error(400, "invalid_amount");
        app.post(&refund_uri, admin.token(), json!({"amount_cents": -5, "reason": "x"}))
            .await
            .assert_error(400, "invalid_amount");
        app.post(&format!("/v1/orders/{}/refund", uuid::Uuid::new_v4()), admin.token(), json!({"amount_cents": 1, "reason": "x"}))
            .await
            .assert_error(404, "not_found");
    }
}

dual_test! {
    async fn cart_add_change_remove_checkout() {
        let app = TestApp::new().await;
        let (restaurant, bun, owner) = shop_with_stock(&app, 5).await;
        let soup = app.item_of(restaurant);
        let customer = app.user(Role::Customer).await;
        let empty = app.get("/v1/cart", customer.token()).await;
        assert_eq!(empty.assert_ok(200)["items"], json!([]));

        app.post("/v1/cart/items", customer.token(), json!({"menu_item_id": bun, "quantity": 2}))
            .await
            .assert_ok(200);
        let r = app.post("/v1/cart/items", customer.token(), json!({"menu_item_id": bun})).await;
        assert_eq!(r.assert_ok(200)["items"][0]["quantity"], 3);
        let r = app.call(Method::PUT, &format!("/v1/cart/items/{soup}"), customer.token(), Some(json!({"quantity": 2}))).await;
        let cart = r.assert_ok(200);
        assert_eq!(cart["restaurant_id"], restaurant.to_string());
        assert_eq!(cart["subtotal_cents"], 3 * 3_500 + 2 * 12_500);

        // One restaurant per cart.
        let other_owner = app.user(Role::Restaurant).await;
        let other = app.restaurant(&other_owner).await;
        let r = app.post("/v1/cart/items", customer.token(), json!({"menu_item_id": app.item_of(other)})).await;
        r.assert_error(409, "cart_has_other_restaurant");
        // Bounds and unknown items.
        app.call(Method::PUT, &format!("/v1/cart/items/{soup}"), customer.token(), Some(json!({"quantity": 100})))
            .await
            .assert_error(400, "invalid_quantity");
        app.post("/v1/cart/items", customer.token(), json!({"menu_item_id": bun, "quantity": 97}))
            .await
            .assert_error(422, "invalid_quantity");
        app.post("/v1/cart/items", customer.token(), json!({"menu_item_id": bun, "quantity": -1}))
            .await
            .assert_error(400, "invalid_quantity");
        app.post("/v1/cart/items", customer.token(), json!({"menu_item_id": uuid::Uuid::new_v4()}))
            .await
            .assert_error(404, "not_found");
        // Set to 0 removes; DELETE removes.
        let r = app.call(Method::PUT, &format!("/v1/cart/items/{soup}"), customer.token(), Some(json!({"quantity": 0}))).await;
        assert_eq!(r.assert_ok(200)["items"].as_array().unwrap().len(), 1);
        app.call(Method::PUT, &format!("/v1/cart/items/{soup}"), customer.token(), Some(json!({"quantity": 1})))
            .await
            .assert_ok(200);
        let r = app.call(Method::DELETE, &format!("/v1/cart/items/{soup}"), customer.token(), None).await;
        assert_eq!(r.assert_ok(200)["items"].as_array().unwrap().len(), 1);

        // Checkout: the cart becomes a paid order and is emptied.
        let checkout = json!({
            "delivery": {"lat": HERE.0 + 0.01, "lng": HERE.1, "address": "Vasagatan 2"},
            "payment": {"method": "card", "token": "tok_ok"}
        });
        let key = uuid::Uuid::new_v4().to_string();
        let r = app.send(post_with_key("/v1/cart/checkout", &customer.token, &key, &checkout)).await;
        let order = r.assert_ok(201).clone();
        assert_eq!(order["status"], "paid");
        assert_eq!(order["items"], json!([{"menu_item_id": bun, "name": "Kanelbulle", "unit_price_cents": 3_500, "quantity": 3}]));
        assert_eq!(stock_of(&app, bun).await, Some(2));
        let cart = app.get("/v1/cart", customer.token()).await;
        assert_eq!(cart.assert_ok(200)["items"], json!([]));
        // A retried checkout replays; a new one of the empty cart is 422.
        let r = app.send(post_with_key("/v1/cart/checkout", &customer.token, &key, &checkout)).await;
        assert_eq!(r.assert_ok(201)["order_id"], order["order_id"]);
        app.post("/v1/cart/checkout", customer.token(), checkout.clone())
            .await
            .assert_error(422, "cart_empty");
        // More than the stock left: out of stock, and the cart is kept.
        app.post("/v1/cart/items", customer.token(), json!({"menu_item_id": bun, "quantity": 3}))
            .await
            .assert_ok(200);
        app.post("/v1/cart/checkout", customer.token(), checkout.clone())
            .await
            .assert_error(409, "out_of_stock");
        let cart = app.get("/v1/cart", customer.token()).await;
        assert_eq!(cart.assert_ok(200)["items"][0]["orderable"], false);
        // Clear.
        let r = app.call(Method::DELETE, "/v1/cart", customer.token(), None).await;
        assert_eq!(r.assert_ok(200)["items"], json!([]));
        // Only customers have carts.
        app.get("/v1/cart", owner.token()).await.assert_error(403, "forbidden");
    }
}

dual_test! {
    async fn restaurants_closed_or_paused_take_no_orders() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let uri = format!("/v1/restaurants/{restaurant}");
        // Paused by the owner.
        app.call(Method::PATCH, &uri, owner.token(), Some(json!({"accepting_orders": false})))
            .await
            .assert_ok(200);
        app.post("/v1/orders", customer.token(), app.order_body(restaurant, "tok_ok"))
            .await
            .assert_error(422, "not_accepting_orders");
        // Open one minute a week, not now: closed.
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        let later = now.checked_add(jiff::Span::new().hours(12)).unwrap();
        let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][later.weekday().to_monday_zero_offset() as usize];
        let (h, m) = (later.hour(), later.minute().min(58));
        let hours = json!({"time_zone": "UTC", "weekly": {day: [[format!("{h:02}:{m:02}"), format!("{h:02}:{:02}", m + 1)]]}});
        let r = app
            .call(Method::PATCH, &uri, owner.token(), Some(json!({"accepting_orders": true, "opening_hours": hours})))
            .await;
        assert_eq!(r.assert_ok(200)["open_now"], false);
        app.post("/v1/orders", customer.token(), app.order_body(restaurant, "tok_ok"))
            .await
            .assert_error(422, "restaurant_closed");
        // Always open again.
        let r = app.call(Method::PATCH, &uri, owner.token(), Some(json!({"opening_hours": null}))).await;
        assert_eq!(r.assert_ok(200)["open_now"], true);
        app.post("/v1/orders", customer.token(), app.order_body(restaurant, "tok_ok"))
            .await
            .assert_ok(201);
        // Hours of the documented shape that make no sense are 422; bad
        // fields are refused with a reason.
        for body in [
            json!({"opening_hours": {"time_zone": "Mars/Olympus", "weekly": {}}}),
            json!({"opening_hours": {"time_zone": "UTC", "weekly": {"mon": [["25:00", "26:00"]]}}}),
            json!({"opening_hours": {"time_zone": "UTC", "weekly": {"mon": [["10:00", "14:00"], ["12:00", "16:00"]]}}}),
        ] {
            app.call(Method::PATCH, &uri, owner.token(), Some(body.clone()))
                .await
                .assert_error(422, "invalid_opening_hours");
        }
        for (body, code) in [
            (json!({"opening_hours": {"time_zone": "UTC", "weekly": {"mon": [["10:00"]]}}}), "invalid_body"),
            (json!({"delivery_radius_m": 0}), "invalid_radius"),
            (json!({"delivery_radius_m": 50_001}), "invalid_radius"),
            (json!({"avg_prep_time_s": 7_201}), "invalid_prep_time"),
            (json!({"cuisines": [""]}), "invalid_cuisines"),
            (json!({"name": "  "}), "invalid_name"),
            (json!({"owner_id": customer.id}), "invalid_body"),
        ] {
            app.call(Method::PATCH, &uri, owner.token(), Some(body.clone()))
                .await
                .assert_error(400, code);
        }
        // Only its owner (or an admin) edits it.
        let other = app.user(Role::Restaurant).await;
        app.call(Method::PATCH, &uri, other.token(), Some(json!({"name": "Mine now"})))
            .await
            .assert_error(403, "forbidden");
    }
}

dual_test! {
    async fn payments_left_pending_by_a_crash_are_resumed_at_start_up() {
        let app = TestApp::new().await;
        let (restaurant, item, _) = shop_with_stock(&app, 10).await;
        let customer = app.user(Role::Customer).await;
        let owner_id = app.state.store.restaurant(restaurant).await.unwrap().unwrap().owner_id;
        // What a crash right after the placement transaction leaves: the
        // order `placed`, its charge pending, the gateway never called.
        let here = engine::LatLng::new(HERE.0, HERE.1).unwrap();
        let new = api::store::NewOrder {
            order: api::store::Order {
                id: OrderId::new(),
                customer_id: customer.id,
                restaurant_id: restaurant,
                restaurant_owner_id: owner_id,
                status: engine::OrderStatus::Placed,
                driver_id: None,
                pickup: here,
                dropoff: here,
                delivery_address: "Vasagatan 2".into(),
                subtotal_cents: 0,
                delivery_fee_cents: 290,
                total_cents: 0,
                lines: Vec::new(),
                created_at_ms: now_ms(),
                updated_at_ms: now_ms(),
                accepted_at_ms: None,
                ready_at_ms: None,
                version: 0,
            },
            items: vec![(item, 2)],
            idempotency: None,
            payment_id: engine::PaymentId::new(),
            payment_method: "card".into(),
            payment_token: "tok_ok".into(),
            clear_cart: false,
        };
        let placed = app.state.store.place_order(&new, customer.id).await.unwrap();
        let api::store::PlaceOutcome::Placed(order, charge) = placed else { panic!("{placed:?}") };
        assert_eq!(charge.amount_cents, 2 * 3_500 + 290);

        let restarted = TestApp::with_store(app.state.store.clone()).await;
        let restored = api::restore_live_state(&restarted.state).await.unwrap();
        assert_eq!(restored.payments_resumed, 1);
        eventually(|| async { restarted.order_status(order.id).await == engine::OrderStatus::Paid }).await;
        assert_eq!(restarted.gateway.totals().await.unwrap().charges, 1);
        let payments = restarted.state.store.payments(order.id).await.unwrap();
        assert_eq!((payments[0].status, payments[0].attempts), (PaymentStatus::Succeeded, 1));
    }
}
