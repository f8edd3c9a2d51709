//! The live order board by version: an older change that reaches the board
//! late (the payments saga's `paid` after the restaurant's `accepted`)
//! never overwrites the newer one, on the direct path and through the
//! event stream's board consumer.

use commerce::ports::LiveSide;
use engine::OrderStatus;

use crate::common::*;

#[tokio::test]
async fn a_late_settlement_never_shows_paid_after_accepted() {
    let app = TestApp::new().await;
    let customer = app.user(auth::Role::Customer).await;
    let owner = app.user(auth::Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let id = app.place_paid_order(&customer, restaurant).await;
    let stored = app.state.store.order(id).await.unwrap().unwrap();
    let live = app.state.live();
    let at = |status| commerce::store::Order {
        status,
        ..stored.clone()
    };
    // placed (1) → paid (2) → accepted (3); the saga's update for 2
    // arrives after the accept's for 3.
    live.status_changed(&at(OrderStatus::Accepted), 3, now_ms());
    live.status_changed(&at(OrderStatus::Paid), 2, now_ms());
    let track = app.state.engine.order(id).unwrap();
    assert_eq!(track.status, OrderStatus::Accepted);
    assert_eq!(track.version, 3);
    // A redelivered event of version 3 (the consumer's reload) is refused
    // as no newer; version 4 applies.
    assert!(!api::live::track_at(&live, &at(OrderStatus::Paid), 3));
    live.status_changed(&at(OrderStatus::Preparing), 4, now_ms());
    assert_eq!(
        app.state.engine.order(id).unwrap().status,
        OrderStatus::Preparing
    );
}
