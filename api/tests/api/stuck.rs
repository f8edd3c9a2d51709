//! Paid orders no restaurant accepts in time are rejected and refunded by
//! the system (`api::stuck`), on the injected clock: not a moment before
//! the deadline, exactly once, and never against a restaurant's accept
//! that got there first (one of the two wins, whichever it is).

use auth::Role;
use engine::{OrderId, OrderStatus};
use serde_json::json;

use crate::common::*;

/// 2025-12-06T05:46:40Z (see `time.rs`).
const T0: i64 = 1_765_000_000_000;
/// The deadline the tests set, seconds.
const AFTER_S: u64 = 600;

/// The app's state with auto-rejecting after [`AFTER_S`].
fn with_deadline(app: &TestApp) -> api::AppState {
    let mut state = app.state.clone();
    state.config.auto_reject_after_s = AFTER_S;
    state
}

dual_test! {
    async fn a_paid_order_nobody_accepts_is_rejected_and_refunded_at_its_deadline() {
        let clock = clock::ManualClock::new(T0);
        let app = TestApp::with_clock(clock.clone()).await;
        let state = with_deadline(&app);
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let paid_at = clock.advance(1_000);
        let order = app.place_paid_order(&customer, restaurant).await;
        // Another, paid later, and one the restaurant accepts: neither is
        // due when the first is.
        clock.advance(60_000);
        let later = app.place_paid_order(&customer, restaurant).await;
        let accepted = app.place_order(&customer, restaurant).await;

        // One millisecond short of the deadline: nothing.
        clock.set(paid_at + AFTER_S as i64 * 1_000 - 1);
        let round = api::stuck::sweep(&state).await.unwrap();
        assert!(round.rejected.is_empty(), "{round:?}");
        assert_eq!(app.order_status(order).await, OrderStatus::Paid);

        // At the deadline: rejected, by the system, refunded in full.
        clock.advance(1);
        let round = api::stuck::sweep(&state).await.unwrap();
        assert_eq!(round.rejected, vec![order]);
        assert_eq!(round.raced, 0);
        assert_eq!(app.order_status(order).await, OrderStatus::Rejected);
        assert_eq!(app.order_status(later).await, OrderStatus::Paid);
        assert_eq!(app.order_status(accepted).await, OrderStatus::Accepted);
        let history = app
            .get(&format!("/v1/orders/{order}/history"), customer.token())
            .await;
        let last = history.assert_ok(200)["events"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["status"], "rejected", "{last}");
        assert!(last["actor_id"].is_null(), "the system acted: {last}");
        assert_eq!(last["at"], paid_at + AFTER_S as i64 * 1_000);
        let refunded = || async {
            let r = app
                .get(&format!("/v1/orders/{order}/payments"), customer.token())
                .await;
            let payments = r.assert_ok(200)["payments"].as_array().unwrap().clone();
            payments
                .iter()
                .any(|p| p["kind"] == "refund" && p["status"] == "succeeded" && p["amount_cents"] == payments[0]["amount_cents"])
        };
        eventually(refunded).await;

        // A later sweep has nothing to do; the restaurant's accept now is
        // refused with where the order is.
        let round = api::stuck::sweep(&state).await.unwrap();
        assert!(round.rejected.is_empty(), "{round:?}");
        let r = app
            .post(
                &format!("/v1/orders/{order}/status"),
                Some(&app.owner_token(restaurant)),
                json!({"status": "accepted"}),
            )
            .await;
        r.assert_error(409, "illegal_transition");
        assert_eq!(r.body["error"]["current_status"], "rejected");

        // Off (0): overdue orders wait.
        clock.advance(24 * 3_600 * 1_000);
        let mut off = state.clone();
        off.config.auto_reject_after_s = 0;
        let round = api::stuck::sweep(&off).await.unwrap();
        assert!(round.rejected.is_empty());
        assert_eq!(app.order_status(later).await, OrderStatus::Paid);
    }
}

dual_test! {
    /// Each overdue order gets a restaurant's accept and the sweep at
    /// once: per order exactly one applies, and what the others saw agrees
    /// with it (an accept answered 200 means accepted and not refunded; a
    /// rejection means the accept got 409 and the money went back).
    async fn an_accept_racing_the_auto_reject_has_exactly_one_outcome() {
        let clock = clock::ManualClock::new(T0);
        let app = TestApp::with_clock(clock.clone()).await;
        let state = with_deadline(&app);
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let owner_token = app.owner_token(restaurant);
        let mut orders: Vec<OrderId> = Vec::new();
        for _ in 0..12 {
            orders.push(app.place_paid_order(&customer, restaurant).await);
        }
        clock.advance(AFTER_S as i64 * 1_000);

        let accepts: Vec<_> = orders
            .iter()
            .map(|order| {
                let req = request(
                    axum::http::Method::POST,
                    &format!("/v1/orders/{order}/status"),
                    Some(&owner_token),
                    Some(json!({"status": "accepted"})),
                );
                let router = app.router.clone();
                tokio::spawn(async move {
                    use tower::ServiceExt;
                    reply(router.oneshot(req).await.unwrap()).await
                })
            })
            .collect();
        let sweep = {
            let state = state.clone();
            tokio::spawn(async move { api::stuck::sweep(&state).await.unwrap() })
        };
        let mut replies = Vec::new();
        for a in accepts {
            replies.push(a.await.unwrap());
        }
        let round = sweep.await.unwrap();

        // An order the restaurant accepted before the sweep read the due
        // ones is not among them; the others it rejected or lost.
        assert!(round.rejected.len() + round.raced <= orders.len(), "{round:?}");
        for (order, reply) in orders.iter().zip(&replies) {
            let status = app.order_status(*order).await;
            let rejected = round.rejected.contains(order);
            match reply.status.as_u16() {
                200 => {
                    assert_eq!(status, OrderStatus::Accepted, "{order}");
                    assert!(!rejected, "{order} accepted and rejected");
                }
                409 => {
                    assert_eq!(status, OrderStatus::Rejected, "{order}");
                    assert!(rejected, "{order} rejected by nobody");
                    assert_eq!(reply.body["error"]["current_status"], "rejected");
                }
                other => panic!("{order}: {other} {}", reply.body),
            }
            let refunds = app
                .state
                .store
                .payments(*order)
                .await
                .unwrap()
                .into_iter()
                .filter(|p| p.kind == api::store::PaymentKind::Refund)
                .count();
            assert_eq!(refunds, usize::from(rejected), "{order}: refunds");
        }
    }
}
