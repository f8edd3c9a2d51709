//! The outbox through the REST layer: 50 orders placed and stepped
//! concurrently over HTTP get per-order event versions 1, 2, 3 … with no
//! gaps and no duplicates, one event per change, in the order of the
//! changes; the history the endpoint shows is read from those events; and
//! events name the user who acted (an admin when an admin did).

use std::collections::HashMap;

use axum::http::Method;
use serde_json::json;
use sqlx::Row;

use crate::common::*;

const ORDERS: usize = 50;

dual_test! {
    async fn concurrent_orders_get_gapless_versions() {
        let app = TestApp::new().await;
        let owner = app.user(auth::Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(auth::Role::Customer).await;
        // Placed (and paid) all at once.
        let placing = (0..ORDERS)
            .map(|_| request(Method::POST, "/v1/orders", customer.token(), Some(app.order_body(restaurant, "tok_ok"))))
            .collect();
        let orders: Vec<String> = app
            .concurrently(placing)
            .await
            .iter()
            .map(|r| r.assert_ok(201)["order_id"].as_str().unwrap().to_owned())
            .collect();
        // Then every order stepped, all at once per step.
        let steps = ["accepted", "preparing", "ready_for_pickup"];
        for status in steps {
            let stepping = orders
                .iter()
                .map(|o| {
                    request(
                        Method::POST,
                        &format!("/v1/orders/{o}/status"),
                        owner.token(),
                        Some(json!({"status": status})),
                    )
                })
                .collect();
            for r in app.concurrently(stepping).await {
                r.assert_ok(200);
            }
        }
        // Each order's events, in insert order.
        let rows = sqlx::query(
            "SELECT aggregate_id, aggregate_version, event_type FROM events \
             WHERE aggregate_kind = 'order' ORDER BY insert_id",
        )
        .fetch_all(app.state.store.event_log().pool())
        .await
        .unwrap();
        let mut by_order: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        for row in &rows {
            by_order
                .entry(row.get("aggregate_id"))
                .or_default()
                .push((row.get("aggregate_version"), row.get("event_type")));
        }
        assert_eq!(by_order.len(), ORDERS);
        let expected: Vec<(i64, String)> = [
            "order.placed",
            "order.paid",
            "order.accepted",
            "order.preparing",
            "order.ready_for_pickup",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| (i as i64 + 1, (*t).to_owned()))
        .collect();
        for o in &orders {
            assert_eq!(by_order[o], expected, "{o}");
            // The history endpoint tells the same steps.
            let history = app.get(&format!("/v1/orders/{o}/history"), customer.token()).await;
            let statuses: Vec<&str> = history.assert_ok(200)["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["status"].as_str().unwrap())
                .collect();
            assert_eq!(statuses, ["placed", "paid", "accepted", "preparing", "ready_for_pickup"]);
        }
    }
}

/// `(type, actor)` of the events about `aggregate_id`, in insert order.
async fn events_of(app: &TestApp, aggregate_id: &str) -> Vec<(String, String)> {
    sqlx::query("SELECT event_type, actor FROM events WHERE aggregate_id = $1 ORDER BY insert_id")
        .bind(aggregate_id)
        .fetch_all(app.state.store.event_log().pool())
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get("event_type"), row.get("actor")))
        .collect()
}

fn ev(event_type: &str, actor: &User) -> (String, String) {
    (event_type.to_owned(), format!("user:{}", actor.id))
}

dual_test! {
    /// A change an admin makes to a restaurant, a menu or an account names
    /// that admin as the event's actor (the owner's own changes name the
    /// owner); a ban or unban that changes nothing writes no event.
    async fn events_name_the_acting_user() {
        let app = TestApp::new().await;
        let owner = app.user(auth::Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let item = app.item_of(restaurant);
        let admin = app.admin().await;
        let customer = app.user(auth::Role::Customer).await;

        let restaurant_uri = format!("/v1/restaurants/{restaurant}");
        let item_uri = format!("/v1/restaurants/{restaurant}/menu/{item}");
        for who in [&owner, &admin] {
            app.call(Method::PATCH, &restaurant_uri, who.token(), Some(json!({"name": "Renamed"})))
                .await
                .assert_ok(200);
            app.call(Method::PATCH, &item_uri, who.token(), Some(json!({"price_cents": 990})))
                .await
                .assert_ok(200);
        }
        app.post(&format!("{restaurant_uri}/menu"), admin.token(), json!({"items": [{"name": "Bread", "price_cents": 100}]}))
            .await
            .assert_ok(201);
        assert_eq!(
            events_of(&app, &restaurant.to_string()).await,
            [
                ev("restaurant.updated", &owner),
                ev("menu.updated", &owner),
                ev("restaurant.updated", &owner),
                ev("menu.updated", &owner),
                ev("restaurant.updated", &admin),
                ev("menu.updated", &admin),
                ev("menu.updated", &admin),
            ]
        );

        // Banned twice, unbanned twice: one event each way, by the admin;
        // the second ban keeps the first ban's time.
        let ban = format!("/v1/admin/users/{}/ban", customer.id);
        let unban = format!("/v1/admin/users/{}/unban", customer.id);
        let first = app.post(&ban, admin.token(), json!({})).await.assert_ok(200)["banned_at"].clone();
        let again = app.post(&ban, admin.token(), json!({})).await.assert_ok(200)["banned_at"].clone();
        assert!(first.is_i64(), "{first}");
        assert_eq!(again, first);
        for _ in 0..2 {
            let r = app.post(&unban, admin.token(), json!({})).await;
            assert_eq!(r.assert_ok(200)["banned"], false);
        }
        assert_eq!(
            events_of(&app, &customer.id.to_string()).await,
            [ev("user.banned", &admin), ev("user.unbanned", &admin)]
        );
    }
}
