//! The app's time is injected: with a `clock::ManualClock` a test moves
//! time forward without sleeping and sees exactly that time in tokens,
//! order stamps and offer expiry.

use auth::Role;

use crate::common::*;

/// 2025-12-06T05:46:40Z: far enough from the system clock that a stamp
/// taken from it instead would show.
const T0: i64 = 1_765_000_000_000;

#[tokio::test]
async fn an_access_token_expires_when_the_clock_passes_its_ttl() {
    let clock = clock::ManualClock::new(T0);
    let app = TestApp::with_clock(clock.clone()).await;
    let ann = app.user(Role::Customer).await;
    app.get("/v1/me", ann.token()).await.assert_ok(200);
    // Within the TTL (plus the verifier's 5 s leeway): still good.
    clock.advance(ACCESS_TTL_S as i64 * 1000);
    app.get("/v1/me", ann.token()).await.assert_ok(200);
    clock.advance(6_000);
    let r = app.get("/v1/me", ann.token()).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
}

#[tokio::test]
async fn order_stamps_and_offer_expiry_come_from_the_injected_clock() {
    let clock = clock::ManualClock::new(T0);
    let app = TestApp::with_clock(clock.clone()).await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let driver = app.user(Role::Driver).await;
    let placed_at = clock.advance(1_000);
    app.ping(driver.driver_id(), HERE.0 + 0.01, HERE.1);
    let order = app.place_order(&customer, restaurant).await;
    let r = app
        .get(&format!("/v1/orders/{order}"), customer.token())
        .await;
    let body = r.assert_ok(200);
    assert_eq!(body["created_at"], placed_at, "{body}");
    assert_eq!(body["updated_at"], placed_at, "{body}");
    // The matcher stamps the offer's expiry from the same clock.
    let offer = app.offer_of(order);
    let timeout_ms = app.state.matcher.config().offer_timeout_s as i64 * 1000;
    assert_eq!(offer.expires_at_ms, placed_at + timeout_ms);
}

/// The Unix ms a UUIDv7 carries.
fn stamp_ms(id: uuid::Uuid) -> i64 {
    let (s, ns) = id.get_timestamp().expect("a UUIDv7").to_unix();
    (s * 1000 + u64::from(ns / 1_000_000)) as i64
}

#[tokio::test]
async fn new_ids_carry_the_injected_clocks_time() {
    let clock = clock::ManualClock::new(T0);
    let app = TestApp::with_clock(clock.clone()).await;
    let owner = app.user(Role::Restaurant).await;
    assert_eq!(stamp_ms(owner.id.as_uuid()), T0, "an account");
    let restaurant = app.restaurant(&owner).await;
    assert_eq!(stamp_ms(restaurant.as_uuid()), T0, "a restaurant");
    assert_eq!(
        stamp_ms(app.item_of(restaurant).as_uuid()),
        T0,
        "a menu item"
    );
    let customer = app.user(Role::Customer).await;
    let placed_at = clock.advance(1_000);
    let order = app.place_paid_order(&customer, restaurant).await;
    assert_eq!(stamp_ms(order.as_uuid()), placed_at, "an order");
    let payments = app.state.store.payments(order).await.unwrap();
    assert_eq!(stamp_ms(payments[0].id.as_uuid()), placed_at, "its charge");
    // The refund a cancellation makes owed, made by the step.
    let cancelled_at = clock.advance(1_000);
    let admin = app.admin().await;
    app.post(
        &format!("/v1/orders/{order}/cancel"),
        admin.token(),
        serde_json::json!({}),
    )
    .await
    .assert_ok(200);
    let payments = app.state.store.payments(order).await.unwrap();
    let refund = payments
        .iter()
        .find(|p| p.kind == api::store::PaymentKind::Refund)
        .expect("a refund");
    assert_eq!(stamp_ms(refund.id.as_uuid()), cancelled_at, "its refund");
}
