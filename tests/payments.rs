//! Refunds on a real server: an order paid before a restart is refunded
//! after it (the simulated gateway's ledger lives in the database), and a
//! refund the gateway cannot take at first is retried by itself, with its
//! outcomes counted in `/metrics`.

mod common;

use common::*;
use serde_json::{Value, json};

/// A restaurant with one dish, and a customer: (restaurant, dish, customer).
async fn shop(app: &TestApp) -> (String, String, User) {
    let owner = app.signup("owner", "restaurant").await;
    let (status, restaurant) = app
        .post(
            "/v1/restaurants",
            Some(&owner.token),
            json!({"name": "Fiskekrogen", "location": {"lat": 57.70, "lng": 11.97}, "address": "Lilla Torget 1"}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    let restaurant = restaurant["restaurant_id"].as_str().unwrap().to_owned();
    let (status, menu) = app
        .post(
            &format!("/v1/restaurants/{restaurant}/menu"),
            Some(&owner.token),
            json!({"items": [{"name": "Fish soup", "price_cents": 12_500}]}),
        )
        .await;
    assert_eq!(status, 201, "{menu}");
    let dish = menu["items"][0]["menu_item_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (restaurant, dish, app.signup("customer", "customer").await)
}

/// Places an order paid with `token`; its id (the order is `paid`).
async fn paid_order(app: &TestApp, shop: &(String, String, User), token: &str) -> String {
    let (restaurant, dish, customer) = shop;
    let (status, order) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant,
                   "items": [{"menu_item_id": dish, "quantity": 1}],
                   "delivery": {"lat": 57.69, "lng": 11.97, "address": "Avenyn 10"},
                   "payment": {"method": "card", "token": token}}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "paid", "{order}");
    order["order_id"].as_str().unwrap().to_owned()
}

async fn cancel(app: &TestApp, customer: &User, order: &str) {
    let (status, body) = app
        .post(
            &format!("/v1/orders/{order}/cancel"),
            Some(&customer.token),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled", "{body}");
}

/// Waits until the order's refund is settled (no longer pending); it.
async fn settled_refund(app: &TestApp, customer: &User, order: &str) -> Value {
    let uri = format!("/v1/orders/{order}/payments");
    eventually(async || {
        let (status, body) = app.get(&uri, Some(&customer.token)).await;
        assert_eq!(status, 200, "{body}");
        body["payments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == "refund" && p["status"] != "pending")
            .cloned()
    })
    .await
}

/// The value of one counter series in the `/metrics` text (0 if absent).
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_paid_before_a_restart_is_refunded_after_it() {
    let dir = TempDir::create();
    let app = spawn_app_in(&dir.0, |_| {}).await;
    let shop = shop(&app).await;
    let order = paid_order(&app, &shop, "tok_ok").await;
    app.stop().await;

    // A new server on the same database file (the JWT secret is fixed, so
    // the customer's token still works).
    let app = spawn_app_in(&dir.0, |_| {}).await;
    let customer = &shop.2;
    cancel(&app, customer, &order).await;
    let refund = settled_refund(&app, customer, &order).await;
    assert_eq!(refund["status"], "succeeded", "{refund}");
    assert_eq!(refund["failure"], Value::Null, "{refund}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_gateway_cannot_take_is_retried_by_itself() {
    let app = spawn_app_with(|c| {
        c.api.payment_backoff_ms = 1;
        c.api.refund_retry_backoff_ms = 1;
    })
    .await;
    let shop = shop(&app).await;
    // Each refund of a `tok_refund_flaky` charge fails transiently 5 times:
    // more than one round of calls (4 by default), so it goes through only
    // on a background retry.
    let order = paid_order(&app, &shop, "tok_refund_flaky").await;
    cancel(&app, &shop.2, &order).await;
    let refund = settled_refund(&app, &shop.2, &order).await;
    assert_eq!(refund["status"], "succeeded", "{refund}");
    assert_eq!(refund["retries"], 1, "{refund}");

    let metrics = common::prometheus_text::scrape(&app).await;
    assert!(
        metrics.contains("# HELP hexdash_refunds_total "),
        "{metrics}"
    );
    let refunds = |outcome: &str| {
        counter(
            &metrics,
            &format!("hexdash_refunds_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert!(refunds("retried") >= 1.0, "{metrics}");
    assert!(refunds("succeeded") >= 1.0, "{metrics}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_gateway_opens_the_breaker_orders_fail_fast_and_it_closes_by_itself() {
    let app = spawn_app_with(|c| {
        c.api.payment_timeout_ms = 200;
        c.api.payment_backoff_ms = 1;
        c.api.payment_breaker_failures = 4;
        c.api.payment_breaker_open_ms = 1_500;
    })
    .await;
    let shop = shop(&app).await;
    let (restaurant, dish, customer) = &shop;
    let order = |token: &str| {
        json!({"restaurant_id": restaurant,
               "items": [{"menu_item_id": dish, "quantity": 1}],
               "delivery": {"lat": 57.69, "lng": 11.97, "address": "Avenyn 10"},
               "payment": {"method": "card", "token": token}})
    };
    let search = app.url("/v1/restaurants?lat=57.70&lng=11.97");
    let well_behaved = || async {
        let r = app.client.get(&search).send().await.unwrap();
        assert_eq!(r.status(), 200);
    };
    let gap = std::time::Duration::from_millis(5);
    let quiet = common::beside::sample(100, gap, well_behaved).await;

    // A gateway that never answers: four calls time out, the order fails
    // and the breaker opens.
    let (status, failed) = app
        .post("/v1/orders", Some(&customer.token), order("tok_hang"))
        .await;
    assert_eq!(status, 201, "{failed}");
    assert_eq!(failed["status"], "payment_failed", "{failed}");
    let failure = failed["payment"]["failure"].as_str().unwrap();
    assert!(failure.contains("within 200 ms"), "{failure}");
    let (_, ready) = app.get("/readyz", None).await;
    assert_eq!(ready["payment_gateway"], "open", "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");

    // Open: a new order is refused before anything is written, with the
    // time to wait; searching and tracking go on as before.
    let attacked = common::beside::sample(100, gap, well_behaved).await;
    let (_, before) = app.get("/v1/orders", Some(&customer.token)).await;
    let resp = app
        .client
        .post(app.url("/v1/orders"))
        .bearer_auth(&customer.token)
        .json(&order("tok_ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payment_unavailable", "{body}");
    let (_, after) = app.get("/v1/orders", Some(&customer.token)).await;
    assert_eq!(before["orders"], after["orders"], "an order was written");

    // After the open time one order is the trial; its charge closes it.
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    paid_order(&app, &shop, "tok_ok").await;
    let (_, ready) = app.get("/readyz", None).await;
    assert_eq!(ready["payment_gateway"], "closed", "{ready}");

    let metrics = common::prometheus_text::scrape(&app).await;
    assert_eq!(
        counter(&metrics, "hexdash_payment_circuit_opened_total"),
        1.0
    );
    assert!(counter(&metrics, "hexdash_payment_circuit_state") == 0.0);
    common::beside::assert_within_twice("payment gateway down", &quiet, &attacked);
    app.stop().await;
}
