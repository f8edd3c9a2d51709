//! A dispatcher's interventions: force-cancel (refunded once, whatever the
//! retries), reassign (one driver per order, in the store and the engine,
//! under racing accepts), and setting a driver offline.

use auth::Role;
use axum::http::Method;
use engine::{DriverStatus, OrderId, OrderStatus, RestaurantId};
use serde_json::{Value, json};
use sqlx::Row;

use crate::common::*;

struct Scene {
    app: TestApp,
    admin: User,
    customer: User,
    restaurant: RestaurantId,
    /// Nearest to the restaurant: offered first.
    a: User,
    /// A little further.
    b: User,
    /// Further still.
    c: User,
}

async fn scene() -> Scene {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let a = app.user(Role::Driver).await;
    let b = app.user(Role::Driver).await;
    let c = app.user(Role::Driver).await;
    app.ping(a.driver_id(), HERE.0, HERE.1);
    app.ping(b.driver_id(), HERE.0 + 0.003, HERE.1);
    app.ping(c.driver_id(), HERE.0 + 0.006, HERE.1);
    Scene {
        app,
        admin,
        customer,
        restaurant,
        a,
        b,
        c,
    }
}

impl Scene {
    /// An accepted order that `a` (offered first) accepted.
    async fn order_of_a(&self) -> OrderId {
        let order = self.app.place_order(&self.customer, self.restaurant).await;
        let offer = self.app.offer_of(order);
        assert_eq!(offer.driver_id, self.a.driver_id());
        self.app.accept(&self.a, &offer).await.assert_ok(200);
        order
    }

    async fn reassign(&self, order: OrderId, to: Value) -> Reply {
        self.app
            .post(
                &format!("/v1/admin/orders/{order}/reassign"),
                self.admin.token(),
                json!({ "driver_id": to }),
            )
            .await
    }

    async fn force_cancel(&self, order: OrderId) -> Reply {
        self.app
            .post(
                &format!("/v1/admin/orders/{order}/cancel"),
                self.admin.token(),
                json!({"reason": "the kitchen burned down"}),
            )
            .await
    }

    async fn step(&self, order: OrderId, token: Option<&str>, status: &str) -> Reply {
        self.app
            .post(
                &format!("/v1/orders/{order}/status"),
                token,
                json!({ "status": status }),
            )
            .await
    }

    /// Exactly one driver has `order`, the same in the store and on the
    /// engine's board, and that driver is bound to it; no other driver of
    /// the scene is. The driver.
    async fn one_driver(&self, order: OrderId) -> engine::DriverId {
        let stored = self.app.state.store.order(order).await.unwrap().unwrap();
        let holder = stored
            .driver_id
            .expect("the order has a driver in the store");
        let board = self.app.state.engine.order(order).unwrap();
        assert_eq!(board.driver_id, Some(holder), "board vs store");
        for d in [&self.a, &self.b, &self.c] {
            let view = self.app.state.engine.driver(d.driver_id()).unwrap();
            if d.driver_id() == holder {
                assert_eq!(view.current_order, Some(order), "holder bound");
                assert_eq!(view.status, DriverStatus::Busy);
            } else {
                assert_ne!(view.current_order, Some(order), "a second driver");
            }
        }
        holder
    }
}

/// The order's `order.reassigned` payloads, oldest first.
async fn reassigned_events(app: &TestApp, order: OrderId) -> Vec<Value> {
    let rows = sqlx::query(
        "SELECT payload_json FROM events WHERE aggregate_id = $1 \
         AND event_type = 'order.reassigned' ORDER BY aggregate_version",
    )
    .bind(order.to_string())
    .fetch_all(app.state.store.event_log().pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let text: String = r.get("payload_json");
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

dual_test! {
    async fn force_cancel_refunds_once_at_any_stage() {
        let s = scene().await;
        let order = s.order_of_a().await;
        let owner = s.app.owner_token(s.restaurant);
        s.step(order, Some(&owner), "ready_for_pickup").await.assert_ok(200);
        s.step(order, s.a.token(), "picked_up").await.assert_ok(200);
        let total = s.app.state.store.order(order).await.unwrap().unwrap().total_cents;

        let r = s.force_cancel(order).await;
        let body = r.assert_ok(200);
        assert_eq!(body["order"]["status"], "cancelled");
        assert_eq!(body["cancelled_from"], "picked_up");
        assert_eq!(body["already_cancelled"], false);
        assert_eq!(body["refund"]["status"], "succeeded", "{body}");
        assert_eq!(body["refund"]["amount_cents"], total);
        assert_eq!(body["refund"]["actor_id"], json!(s.admin.id));
        assert!(body["refund"]["reason"].as_str().unwrap().contains("kitchen burned down"));
        // The driver is free again.
        let view = s.app.state.engine.driver(s.a.driver_id()).unwrap();
        assert_eq!((view.status, view.current_order), (DriverStatus::Available, None));

        // A retry answers the cancelled order and refunds nothing more.
        let r = s.force_cancel(order).await;
        let body = r.assert_ok(200);
        assert_eq!(body["already_cancelled"], true);
        assert_eq!(body["cancelled_from"], Value::Null);
        assert_eq!(body["refund"], Value::Null);
        assert_eq!(s.app.gateway.totals().await.unwrap().refunded_cents, total);

        // Retries racing each other: one cancels, one refund.
        let second = s.app.place_paid_order(&s.customer, s.restaurant).await;
        let racing = (0..4)
            .map(|_| {
                request(
                    Method::POST,
                    &format!("/v1/admin/orders/{second}/cancel"),
                    s.admin.token(),
                    Some(json!({"reason": "duplicate"})),
                )
            })
            .collect();
        let replies = s.app.concurrently(racing).await;
        let fresh = replies
            .iter()
            .filter(|r| r.assert_ok(200)["already_cancelled"] == false)
            .count();
        assert_eq!(fresh, 1);
        assert_eq!(s.app.gateway.totals().await.unwrap().refunded_cents, 2 * total);
        let refunds: Vec<_> = s
            .app
            .state
            .store
            .payments(second)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.kind == api::store::PaymentKind::Refund)
            .collect();
        assert_eq!(refunds.len(), 1);
        // An admin refund on top finds nothing left.
        s.app
            .post(
                &format!("/v1/orders/{second}/refund"),
                s.admin.token(),
                json!({"reason": "again"}),
            )
            .await
            .assert_error(422, "refund_exceeds_paid");
    }
}

dual_test! {
    async fn force_cancel_refusals() {
        let s = scene().await;
        let order = s.order_of_a().await;
        let owner = s.app.owner_token(s.restaurant);
        s.step(order, Some(&owner), "ready_for_pickup").await.assert_ok(200);
        s.step(order, s.a.token(), "picked_up").await.assert_ok(200);
        s.step(order, s.a.token(), "delivered").await.assert_ok(200);
        let r = s.force_cancel(order).await;
        r.assert_error(409, "illegal_transition");
        assert_eq!(r.body["error"]["current_status"], "delivered");

        let uri = format!("/v1/admin/orders/{order}/cancel");
        s.app
            .post(&uri, s.customer.token(), json!({"reason": "x"}))
            .await
            .assert_error(403, "forbidden");
        for bad in [json!({"reason": "  "}), json!({"reason": "x".repeat(501)})] {
            s.app
                .post(&uri, s.admin.token(), bad)
                .await
                .assert_error(400, "invalid_reason");
        }
        s.app
            .post(&uri, s.admin.token(), json!({}))
            .await
            .assert_error(400, "invalid_body");
        s.app
            .post(
                &format!("/v1/admin/orders/{}/cancel", OrderId::new()),
                s.admin.token(),
                json!({"reason": "x"}),
            )
            .await
            .assert_error(404, "not_found");
    }
}

dual_test! {
    async fn reassign_moves_the_order_and_frees_the_old_driver() {
        let s = scene().await;
        let order = s.order_of_a().await;
        assert_eq!(s.one_driver(order).await, s.a.driver_id());

        let r = s.reassign(order, json!(s.b.id)).await;
        let body = r.assert_ok(200);
        assert_eq!(body["driver_from"], json!(s.a.id));
        assert_eq!(body["driver_id"], json!(s.b.id));
        assert_eq!(body["order"]["driver_id"], json!(s.b.id));
        assert_eq!(s.one_driver(order).await, s.b.driver_id());
        let a = s.app.state.engine.driver(s.a.driver_id()).unwrap();
        assert_eq!((a.status, a.current_order), (DriverStatus::Available, None));
        let events = reassigned_events(&s.app, order).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["driver_from"], json!(s.a.id));
        assert_eq!(events[0]["driver_id"], json!(s.b.id));
        let history = s
            .app
            .get(&format!("/v1/orders/{order}/history"), s.admin.token())
            .await;
        let last = history.assert_ok(200)["events"].as_array().unwrap().last().cloned().unwrap();
        assert_eq!((last["kind"].clone(), last["driver_id"].clone()), (json!("reassigned"), json!(s.b.id)));

        // The old driver no longer sees it; the new one can pick it up.
        s.app
            .get(&format!("/v1/orders/{order}"), s.a.token())
            .await
            .assert_error(404, "not_found");
        s.app
            .get(&format!("/v1/orders/{order}"), s.b.token())
            .await
            .assert_ok(200);

        // Back to the matcher: b is freed and the order offered to someone
        // else first (a, now free; b cools down for it).
        let r = s.reassign(order, Value::Null).await;
        let body = r.assert_ok(200);
        assert_eq!(body["driver_from"], json!(s.b.id));
        assert_eq!(body["driver_id"], Value::Null);
        assert_eq!(body["order"]["dispatch"]["state"], "offered", "{body}");
        let stored = s.app.state.store.order(order).await.unwrap().unwrap();
        assert_eq!(stored.driver_id, None);
        assert_eq!(s.app.state.engine.order(order).unwrap().driver_id, None);
        let b = s.app.state.engine.driver(s.b.driver_id()).unwrap();
        assert_eq!((b.status, b.current_order), (DriverStatus::Available, None));
        let offer = s.app.offer_of(order);
        assert_eq!(offer.driver_id, s.a.driver_id(), "the driver it was taken from waits");
        let events = reassigned_events(&s.app, order).await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1]["driver_from"], json!(s.b.id));
        assert_eq!(events[1]["driver_id"], Value::Null);

        // A waiting order straight to a driver: the offer is withdrawn.
        let r = s.reassign(order, json!(s.c.id)).await;
        assert_eq!(r.assert_ok(200)["driver_from"], Value::Null);
        assert_eq!(s.one_driver(order).await, s.c.driver_id());
        assert!(s.app.state.matcher.pending_offer(order).is_none());
        s.app.accept(&s.a, &offer).await.assert_error(409, "offer_not_pending");
        assert_eq!(s.one_driver(order).await, s.c.driver_id());
        s.step(order, Some(&s.app.owner_token(s.restaurant)), "ready_for_pickup")
            .await
            .assert_ok(200);
        s.step(order, s.c.token(), "picked_up").await.assert_ok(200);
        let r = s.reassign(order, json!(s.a.id)).await;
        r.assert_error(409, "not_reassignable");
        assert_eq!(r.body["error"]["current_status"], "picked_up");
    }
}

dual_test! {
    async fn reassign_refusals() {
        let s = scene().await;
        let order = s.order_of_a().await;
        let uri = format!("/v1/admin/orders/{order}/reassign");
        s.app
            .post(&uri, s.customer.token(), json!({"driver_id": null}))
            .await
            .assert_error(403, "forbidden");
        s.app
            .post(&uri, s.a.token(), json!({"driver_id": null}))
            .await
            .assert_error(403, "forbidden");
        s.app
            .post(&uri, s.admin.token(), json!({}))
            .await
            .assert_error(400, "invalid_driver");
        s.app
            .post(&uri, s.admin.token(), json!({"driver_id": "nope"}))
            .await
            .assert_error(400, "invalid_body");
        s.app
            .post(&uri, s.admin.token(), json!({"driver_id": null, "x": 1}))
            .await
            .assert_error(400, "invalid_body");
        s.reassign(order, json!(s.a.id)).await.assert_error(409, "already_assigned");
        s.reassign(order, json!(s.customer.id)).await.assert_error(404, "not_found");
        s.reassign(order, json!(uuid::Uuid::new_v4())).await.assert_error(404, "not_found");
        s.reassign(OrderId::new(), Value::Null).await.assert_error(404, "not_found");
        // Never pinged: offline.
        let idle = s.app.user(Role::Driver).await;
        s.reassign(order, json!(idle.id)).await.assert_error(409, "driver_offline");
        // Declared offline.
        s.app
            .call(
                Method::PUT,
                &format!("/v1/drivers/{}/availability", s.c.id),
                s.c.token(),
                Some(json!({"status": "offline"})),
            )
            .await
            .assert_ok(200);
        s.reassign(order, json!(s.c.id)).await.assert_error(409, "driver_offline");
        // Busy with another order.
        let other = s.app.place_order(&s.customer, s.restaurant).await;
        let offer = s.app.offer_of(other);
        assert_eq!(offer.driver_id, s.b.driver_id());
        s.app.accept(&s.b, &offer).await.assert_ok(200);
        let r = s.reassign(order, json!(s.b.id)).await;
        r.assert_error(409, "driver_busy");
        assert_eq!(r.body["error"]["held_order_id"], json!(other));
        // Banned.
        let banned = s.app.user(Role::Driver).await;
        s.app.ping(banned.driver_id(), HERE.0, HERE.1 + 0.003);
        s.app
            .post(&format!("/v1/admin/users/{}/ban", banned.id), s.admin.token(), json!({}))
            .await
            .assert_ok(200);
        s.reassign(order, json!(banned.id)).await.assert_error(409, "driver_banned");
        // Not accepted yet: nothing to reassign.
        let paid = s.app.place_paid_order(&s.customer, s.restaurant).await;
        let r = s.reassign(paid, Value::Null).await;
        r.assert_error(409, "not_reassignable");
        assert_eq!(r.body["error"]["current_status"], "paid");
        // With the matcher and nobody given: nothing to do.
        s.reassign(order, Value::Null).await.assert_ok(200);
        s.reassign(order, Value::Null).await.assert_error(409, "not_assigned");
        // Nothing of the refusals changed who has what.
        assert_eq!(s.one_driver(other).await, s.b.driver_id());
        assert_eq!(
            s.app.order_status(order).await,
            OrderStatus::Accepted
        );
    }
}

dual_test! {
    async fn reassign_racing_accepts_leaves_exactly_one_driver() {
        let s = scene().await;
        let mut outcomes = std::collections::HashMap::new();
        for round in 0..12 {
            let order = s.app.place_order(&s.customer, s.restaurant).await;
            let offer = s.app.offer_of(order);
            assert_eq!(offer.driver_id, s.a.driver_id(), "round {round}");
            let mut racing = vec![
                request(
                    Method::POST,
                    &format!("/v1/offers/{}/accept", offer.offer_id),
                    s.a.token(),
                    None,
                ),
                request(
                    Method::POST,
                    &format!("/v1/admin/orders/{order}/reassign"),
                    s.admin.token(),
                    Some(json!({"driver_id": s.b.id})),
                ),
            ];
            // Every other round a second dispatcher races too, for c.
            if round % 2 == 1 {
                racing.push(request(
                    Method::POST,
                    &format!("/v1/admin/orders/{order}/reassign"),
                    s.admin.token(),
                    Some(json!({"driver_id": s.c.id})),
                ));
            }
            let replies = s.app.concurrently(racing).await;
            for r in &replies {
                assert!(
                    r.status.as_u16() == 200 || r.status.as_u16() == 409,
                    "round {round}: {} {}",
                    r.status,
                    r.body
                );
            }
            assert!(replies.iter().any(|r| r.status.as_u16() == 200), "round {round}: nobody won");
            let holder = s.one_driver(order).await;
            // A winner's answer names the holder at its time; the last
            // word is the store's, which the board and drivers agree with.
            let name = if holder == s.a.driver_id() { "a" } else if holder == s.b.driver_id() { "b" } else { "c" };
            *outcomes.entry(name).or_insert(0) += 1;
            // Every reassignment that won is in the stream, from the
            // driver it took the order from.
            let won = replies[1..].iter().filter(|r| r.status.as_u16() == 200).count();
            assert_eq!(reassigned_events(&s.app, order).await.len(), won, "round {round}");
            // Free everyone for the next round.
            s.force_cancel(order).await.assert_ok(200);
            for d in [&s.a, &s.b, &s.c] {
                let view = s.app.state.engine.driver(d.driver_id()).unwrap();
                assert_eq!(view.current_order, None, "round {round}");
            }
        }
        eprintln!("holders over the rounds: {outcomes:?}");
    }
}

dual_test! {
    async fn admin_sets_a_driver_offline() {
        let s = scene().await;
        let order = s.app.place_order(&s.customer, s.restaurant).await;
        assert_eq!(s.app.offer_of(order).driver_id, s.a.driver_id());
        let r = s
            .app
            .call(
                Method::POST,
                &format!("/v1/admin/drivers/{}/offline", s.a.id),
                s.admin.token(),
                None,
            )
            .await;
        let body = r.assert_ok(200);
        assert_eq!(body["status"], "offline");
        assert_eq!(body["withdrawn_offer_order_id"], json!(order));
        assert_eq!(body["current_order"], Value::Null);
        // The order moves on to the next driver.
        assert_eq!(s.app.offer_of(order).driver_id, s.b.driver_id());
        let view = s.app.state.engine.driver(s.a.driver_id()).unwrap();
        assert_eq!(view.status, DriverStatus::Offline);

        // A driver holding an order stays busy with it.
        let offer = s.app.offer_of(order);
        s.app.accept(&s.b, &offer).await.assert_ok(200);
        let r = s
            .app
            .call(
                Method::POST,
                &format!("/v1/admin/drivers/{}/offline", s.b.id),
                s.admin.token(),
                None,
            )
            .await;
        let body = r.assert_ok(200);
        assert_eq!(body["status"], "busy");
        assert_eq!(body["current_order"], json!(order));
        assert_eq!(body["withdrawn_offer_order_id"], Value::Null);

        for (who, status, code) in [
            (s.customer.id, 404, "not_found"),
            (engine::UserId::new(), 404, "not_found"),
        ] {
            s.app
                .call(
                    Method::POST,
                    &format!("/v1/admin/drivers/{who}/offline"),
                    s.admin.token(),
                    None,
                )
                .await
                .assert_error(status, code);
        }
        s.app
            .call(
                Method::POST,
                &format!("/v1/admin/drivers/{}/offline", s.c.id),
                s.c.token(),
                None,
            )
            .await
            .assert_error(403, "forbidden");
    }
}
