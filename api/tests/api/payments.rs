//! Refunds that outlive the process and the gateway's bad moments: a charge
//! made before a restart refunded after it (the simulated gateway's ledger
//! is in the database), and refunds the gateway cannot take retried in the
//! background until they go through, or fail for good after the last round.

use api::store::{Payment, PaymentKind, PaymentStatus};
use auth::Role;
use axum::http::Method;
use engine::OrderId;
use serde_json::json;

use crate::common::*;

/// The order's refunds, oldest first.
async fn refunds(app: &TestApp, order: OrderId) -> Vec<Payment> {
    let payments = app.state.store.payments(order).await.unwrap();
    payments
        .into_iter()
        .filter(|p| p.kind == PaymentKind::Refund)
        .collect()
}

/// Waits until the order has one refund and it is no longer pending.
async fn settled_refund(app: &TestApp, order: OrderId) -> Payment {
    eventually(|| async {
        let r = refunds(app, order).await;
        r.len() == 1 && r[0].status != PaymentStatus::Pending
    })
    .await;
    refunds(app, order).await.remove(0)
}

/// Places an order paid with `token` (status `paid`); its id and total.
async fn paid_order(
    app: &TestApp,
    customer: &User,
    restaurant: engine::RestaurantId,
    token: &str,
) -> (OrderId, i64) {
    let r = app
        .post(
            "/v1/orders",
            customer.token(),
            app.order_body(restaurant, token),
        )
        .await;
    let body = r.assert_ok(201);
    assert_eq!(body["status"], "paid", "{body}");
    let id = body["order_id"].as_str().unwrap().parse().unwrap();
    (id, body["total_cents"].as_i64().unwrap())
}

async fn cancel(app: &TestApp, customer: &User, order: OrderId) {
    let uri = format!("/v1/orders/{order}/cancel");
    let r = app.call(Method::POST, &uri, customer.token(), None).await;
    assert_eq!(r.assert_ok(200)["status"], "cancelled");
}

dual_test! {
    async fn an_order_paid_before_a_restart_is_refunded_after_it() {
        let before = TestApp::new().await;
        let owner = before.user(Role::Restaurant).await;
        let restaurant = before.restaurant(&owner).await;
        let customer = before.user(Role::Customer).await;
        let (order, total) = paid_order(&before, &customer, restaurant, "tok_ok").await;
        let store = before.state.store.clone();
        drop(before);

        // A new process on the same database: a new gateway, a new saga.
        let after = TestApp::with_store(store).await;
        api::restore_live_state(&after.state).await.unwrap();
        cancel(&after, &customer, order).await;
        let refund = settled_refund(&after, order).await;
        assert_eq!(
            (refund.status, refund.failure.as_deref(), refund.amount_cents),
            (PaymentStatus::Succeeded, None, total),
            "{refund:?}"
        );
        let totals = after.gateway.totals().await.unwrap();
        assert_eq!((totals.charges, totals.refunded_cents), (1, total));

        // The gateway still holds the refund to what it charged: an admin
        // refund on top is refused by the store, and the ledger agrees.
        let admin = after.admin().await;
        after
            .post(&format!("/v1/orders/{order}/refund"), admin.token(), json!({"amount_cents": 1, "reason": "x"}))
            .await
            .assert_error(422, "refund_exceeds_paid");
    }
}

dual_test! {
    async fn a_refund_the_gateway_cannot_take_is_retried_by_itself() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;

        // Every refund of a `tok_refund_flaky` charge fails transiently 5
        // times: one round of 4 calls fails, the refund is put off, and the
        // background round goes through on its second call.
        let (order, total) = paid_order(&app, &customer, restaurant, "tok_refund_flaky").await;
        cancel(&app, &customer, order).await;
        let refund = settled_refund(&app, order).await;
        assert_eq!(refund.status, PaymentStatus::Succeeded, "{refund:?}");
        assert_eq!((refund.attempts, refund.retries), (6, 1));
        assert_eq!((refund.failure, refund.retry_at_ms), (None, None));
        assert_eq!(app.gateway.totals().await.unwrap().refunded_cents, total);
    }
}

dual_test! {
    async fn a_refund_waiting_for_a_retry_stays_owed() {
        // Rounds an hour apart: the refund waits for its second round for
        // the whole test.
        let config = api::Config { refund_retry_backoff_ms: 3_600_000, ..test_config() };
        let app = TestApp::with_store_and_config(test_store().await, config).await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let admin = app.admin().await;
        let (order, total) = paid_order(&app, &customer, restaurant, "tok_refund_error").await;

        // The admin's refund comes back pending: the gateway could not be
        // reached, a background round is scheduled, the amount stays owed.
        let uri = format!("/v1/orders/{order}/refund");
        let r = app.post(&uri, admin.token(), json!({"amount_cents": 500, "reason": "cold"})).await;
        let body = r.assert_ok(201);
        assert_eq!((body["status"].as_str(), body["retries"].as_i64(), body["attempts"].as_i64()), (Some("pending"), Some(1), Some(4)), "{body}");
        assert!(body["failure"].as_str().unwrap().starts_with("gateway unavailable after 4 attempts"), "{body}");
        // Not before the test is over (the backoff is capped at 30 min).
        assert!(body["retry_at"].as_i64().unwrap() >= now_ms() + 600_000, "{body}");
        let r = app.post(&uri, admin.token(), json!({"amount_cents": total, "reason": "all"})).await;
        r.assert_error(422, "refund_exceeds_paid");
        assert_eq!(r.body["error"]["refundable_cents"], (total - 500).to_string());
    }
}

dual_test! {
    async fn a_refund_out_of_retries_fails_for_good_and_is_refundable_again() {
        // Every round makes its four calls: no circuit breaker opening
        // after the second round (it has a test of its own).
        let config = api::Config { payment_breaker_failures: 0, ..test_config() };
        let app = TestApp::with_store_and_config(test_store().await, config).await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let admin = app.admin().await;
        let (order, total) = paid_order(&app, &customer, restaurant, "tok_refund_error").await;
        cancel(&app, &customer, order).await;

        // Three rounds (the test configuration) after the first, it fails
        // for good, and its amount can be refunded again.
        let refund = settled_refund(&app, order).await;
        assert_eq!((refund.status, refund.retries, refund.attempts), (PaymentStatus::Failed, 3, 4 * 4), "{refund:?}");
        assert!(refund.failure.as_deref().unwrap().ends_with("(and 3 background retries)"), "{refund:?}");
        let uri = format!("/v1/orders/{order}/refund");
        let r = app.post(&uri, admin.token(), json!({"amount_cents": total + 1, "reason": "x"})).await;
        r.assert_error(422, "refund_exceeds_paid");
        assert_eq!(r.body["error"]["refundable_cents"], total.to_string());
        assert_eq!(app.gateway.totals().await.unwrap().refunds, 0);
    }
}

/// SQLite only: the test moves the retries' due times with raw SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_waiting_for_a_retry_is_resumed_after_a_restart() {
    let sql = api::store::SqlStore::connect("sqlite::memory:")
        .await
        .unwrap();
    let store: std::sync::Arc<dyn api::Store> = std::sync::Arc::new(sql.clone());
    let config = api::Config {
        refund_retry_backoff_ms: 3_600_000,
        ..test_config()
    };
    let before = TestApp::with_store_and_config(store.clone(), config).await;
    let owner = before.user(Role::Restaurant).await;
    let restaurant = before.restaurant(&owner).await;
    let customer = before.user(Role::Customer).await;
    let (due, due_total) = paid_order(&before, &customer, restaurant, "tok_refund_flaky").await;
    let (later, later_total) = paid_order(&before, &customer, restaurant, "tok_refund_flaky").await;
    cancel(&before, &customer, due).await;
    cancel(&before, &customer, later).await;
    for order in [due, later] {
        eventually(|| async {
            let r = refunds(&before, order).await;
            r.len() == 1 && r[0].retries == 1
        })
        .await;
    }
    drop(before);

    // Stopped while both refunds waited; one's round fell due meanwhile,
    // the other's is a few seconds ahead.
    let set_retry_at = |order: OrderId, at_ms: i64| {
        let sql = sql.clone();
        async move {
            sqlx::query(
                "UPDATE payments SET retry_at_ms = $1 WHERE kind = 'refund' AND order_id = $2",
            )
            .bind(at_ms)
            .bind(order.to_string())
            .execute(sql.pool())
            .await
            .unwrap();
        }
    };
    set_retry_at(due, 0).await;
    let later_at_ms = now_ms() + 3_000;
    set_retry_at(later, later_at_ms).await;
    let after = TestApp::with_store(store).await;
    let restored = api::restore_live_state(&after.state).await.unwrap();
    assert_eq!(restored.payments_resumed, 2);

    // The due one goes through at once (two rounds: the new gateway fails
    // it transiently again first). Had the other been sent at start-up
    // too, its first round would be over by then.
    let refund = settled_refund(&after, due).await;
    assert_eq!(refund.status, PaymentStatus::Succeeded, "{refund:?}");
    assert_eq!(
        after.gateway.totals().await.unwrap().refunded_cents,
        due_total
    );
    if now_ms() < later_at_ms {
        let waiting = refunds(&after, later).await.remove(0);
        assert_eq!(
            (waiting.status, waiting.retries),
            (PaymentStatus::Pending, 1),
            "{waiting:?}"
        );
    }
    // And the other, once its time came.
    let refund = settled_refund(&after, later).await;
    assert_eq!(refund.status, PaymentStatus::Succeeded, "{refund:?}");
    assert!(refund.updated_at_ms >= later_at_ms, "{refund:?}");
    assert_eq!(
        after.gateway.totals().await.unwrap().refunded_cents,
        due_total + later_total
    );
}

/// Background refund rounds an hour apart, so a deferred refund stays put
/// for the rest of a test.
fn hourly_refund_rounds() -> api::Config {
    api::Config {
        refund_retry_backoff_ms: 3_600_000,
        ..test_config()
    }
}

/// A paid order cancelled with a gateway that cannot refund it
/// (`tok_refund_error`), returned once its refund's first background round
/// has been deferred.
async fn refund_waiting_for_its_second_round(app: &TestApp) -> OrderId {
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let (order, _) = paid_order(app, &customer, restaurant, "tok_refund_error").await;
    cancel(app, &customer, order).await;
    eventually(|| async {
        let r = refunds(app, order).await;
        r.len() == 1 && r[0].retries == 1
    })
    .await;
    order
}

dual_test! {
    async fn of_two_rounds_for_one_refund_only_one_defers_it() {
        // Rounds an hour apart: the refund stays at one background round.
        let app = TestApp::with_store_and_config(test_store().await, hourly_refund_rounds()).await;
        let order = refund_waiting_for_its_second_round(&app).await;
        let id = refunds(&app, order).await[0].id;

        // A round that started before the first deferral (it saw 0 rounds)
        // loses: it must not bump the count nor start a second timer.
        let stale = app.state.store.defer_refund(id, 0, "late", 4, now_ms() + 1_000, now_ms()).await.unwrap();
        assert!(stale.is_none(), "{stale:?}");
        let current = app.state.store.defer_refund(id, 1, "next", 4, now_ms() + 1_000, now_ms()).await.unwrap();
        assert_eq!(current.map(|p| p.retries), Some(2));
    }
}

dual_test! {
    async fn a_stopped_apps_refund_timer_lets_go_of_its_store() {
        // Rounds an hour apart: without shutdown, the timer would hold the
        // app's state (and the store) for that hour.
        let store = test_store().await;
        let app = TestApp::with_store_and_config(store.clone(), hourly_refund_rounds()).await;
        refund_waiting_for_its_second_round(&app).await;
        drop(app);
        eventually(|| async { std::sync::Arc::strong_count(&store) == 1 }).await;
    }
}
