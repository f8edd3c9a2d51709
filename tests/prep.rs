//! Prep-aware dispatch on a real server (`matcher.prep_aware = true`): the
//! matcher starts from the preparation time each restaurant declares
//! (`avg_prep_time_s`, kept current when the owner changes it), learns
//! its real one from its orders'
//! `ready_for_pickup` steps (accepted → ready), shows when it expects an
//! order's food (`dispatch.ready_at`: the acceptance plus the estimate),
//! and after a restart keeps both what it learned and when each waiting
//! order's food is due (counted from its acceptance, not from the
//! restart).

mod common;

use common::*;
use serde_json::{Value, json};

/// The estimate for a restaurant that declared nothing: an hour.
const DEFAULT_PREP_S: u64 = 3_600;
/// What the test restaurant declares at first, then after a change: both
/// unlike the default and a learned time (milliseconds here).
const DECLARED_PREP_S: i64 = 1_500;
const CHANGED_PREP_S: i64 = 2_400;

fn prep_aware(config: &mut hexdash::Config) {
    config.matcher.prep_aware = true;
    config.matcher.prep_min_samples = 3;
    config.matcher.prep_default_s = DEFAULT_PREP_S;
}

/// A restaurant with one dish, its owner and a customer.
struct Shop {
    restaurant: String,
    dish: String,
    owner: User,
    customer: User,
}

async fn shop(app: &TestApp) -> Shop {
    let owner = app.signup("owner", "restaurant").await;
    let (status, restaurant) = app
        .post(
            "/v1/restaurants",
            Some(&owner.token),
            json!({"name": "Kökets Tid", "location": {"lat": 57.70, "lng": 11.97}, "address": "Vasagatan 1",
                   "avg_prep_time_s": DECLARED_PREP_S}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    let restaurant = restaurant["restaurant_id"].as_str().unwrap().to_owned();
    let (status, menu) = app
        .post(
            &format!("/v1/restaurants/{restaurant}/menu"),
            Some(&owner.token),
            json!({"items": [{"name": "Pyttipanna", "price_cents": 9_900}]}),
        )
        .await;
    assert_eq!(status, 201, "{menu}");
    let dish = menu["items"][0]["menu_item_id"]
        .as_str()
        .unwrap()
        .to_owned();
    Shop {
        restaurant,
        dish,
        owner,
        customer: app.signup("customer", "customer").await,
    }
}

/// A paid order the restaurant has accepted; its id.
async fn accepted_order(app: &TestApp, shop: &Shop) -> String {
    let (status, order) = app
        .post(
            "/v1/orders",
            Some(&shop.customer.token),
            json!({"restaurant_id": shop.restaurant,
                   "items": [{"menu_item_id": shop.dish, "quantity": 1}],
                   "delivery": {"lat": 57.69, "lng": 11.97, "address": "Avenyn 10"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let id = order["order_id"].as_str().unwrap().to_owned();
    app.step(&shop.owner, &id, "accepted").await;
    id
}

/// When the order stepped to `status`, from its history.
async fn stepped_at(app: &TestApp, who: &User, order: &str, status: &str) -> i64 {
    let (code, history) = app
        .get(&format!("/v1/orders/{order}/history"), Some(&who.token))
        .await;
    assert_eq!(code, 200, "{history}");
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "status" && e["status"] == status)
        .and_then(|e| e["at"].as_i64())
        .unwrap_or_else(|| panic!("no {status} in {history}"))
}

/// The order's `dispatch.ready_at`.
async fn ready_at(app: &TestApp, who: &User, order: &str) -> Value {
    let (code, body) = app
        .get(&format!("/v1/orders/{order}"), Some(&who.token))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["dispatch"]["state"], "searching", "{body}");
    body["dispatch"]["ready_at"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matcher_learns_preparation_times_and_keeps_them_across_a_restart() {
    let dir = TempDir::create();
    let app = spawn_app_in(&dir.0, prep_aware).await;
    let shop = shop(&app).await;
    let owner = &shop.owner;

    // No history: the food is expected what the restaurant declared after
    // acceptance; a change the owner makes applies to the next order.
    let order = accepted_order(&app, &shop).await;
    let accepted = stepped_at(&app, owner, &order, "accepted").await;
    assert_eq!(
        ready_at(&app, owner, &order).await,
        accepted + DECLARED_PREP_S * 1000
    );
    let changed = app
        .client
        .patch(app.url(&format!("/v1/restaurants/{}", shop.restaurant)))
        .bearer_auth(&owner.token)
        .json(&json!({"avg_prep_time_s": CHANGED_PREP_S}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let order = accepted_order(&app, &shop).await;
    let accepted = stepped_at(&app, owner, &order, "accepted").await;
    assert_eq!(
        ready_at(&app, owner, &order).await,
        accepted + CHANGED_PREP_S * 1000
    );

    let mut learned = Vec::new();
    for i in 0..3 {
        let order = accepted_order(&app, &shop).await;
        let accepted = stepped_at(&app, owner, &order, "accepted").await;
        // Different, positive preparation times (the store stamps in ms).
        tokio::time::sleep(std::time::Duration::from_millis(20 + 15 * i)).await;
        app.step(owner, &order, "ready_for_pickup").await;
        let ready = stepped_at(&app, owner, &order, "ready_for_pickup").await;
        learned.push(ready - accepted);
    }
    learned.sort_unstable();
    let median = learned[1];
    assert!(median > 0, "{learned:?}");

    // Three preparations seen: the next order's food is expected their
    // median after its acceptance.
    let order = accepted_order(&app, &shop).await;
    let accepted = stepped_at(&app, owner, &order, "accepted").await;
    assert_eq!(ready_at(&app, owner, &order).await, accepted + median);
    app.stop().await;

    // After a restart: the estimate is read back from the store, and the
    // waiting order's food is still due `median` after its acceptance
    // (long past), not after the restart.
    let app = spawn_app_in(&dir.0, prep_aware).await;
    assert_eq!(ready_at(&app, owner, &order).await, accepted + median);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prep_awareness_nothing_is_held_or_shown() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let order = accepted_order(&app, &shop).await;
    assert_eq!(ready_at(&app, &shop.owner, &order).await, Value::Null);
    app.stop().await;
}
