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
