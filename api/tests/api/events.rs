//! The outbox through the REST layer: 50 orders placed and stepped
//! concurrently over HTTP get per-order event versions 1, 2, 3 … with no
//! gaps and no duplicates, one event per change, in the order of the
//! changes; and the history the endpoint shows is read from those events.

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
