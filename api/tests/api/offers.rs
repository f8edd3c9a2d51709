//! Answers to offers: codes, concurrency, and the store/engine agreement.

use auth::Role;
use axum::http::Method;
use engine::{OfferId, OrderStatus};
use serde_json::json;

use crate::common::*;

struct Setup {
    app: TestApp,
    customer: User,
    restaurant: engine::RestaurantId,
    driver: User,
}

async fn setup() -> Setup {
    setup_with(TestApp::new().await).await
}

async fn setup_with(app: TestApp) -> Setup {
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let driver = app.user(Role::Driver).await;
    app.ping(driver.driver_id(), HERE.0, HERE.1);
    Setup {
        app,
        customer,
        restaurant,
        driver,
    }
}

dual_test! {
    async fn accept_assigns_in_store_and_engine() {
        let Setup {
            app,
            customer,
            restaurant,
            driver,
        } = setup().await;
        let order = app.place_order(&customer, restaurant).await;
        let offer = app.offer_of(order);
        assert_eq!(offer.driver_id, driver.driver_id());
        let r = app.accept(&driver, &offer).await;
        assert_eq!(
            r.assert_ok(200),
            &json!({"offer_id": offer.offer_id, "order_id": order, "status": "accepted"})
        );
        let stored = app.state.store.order(order).await.unwrap().unwrap();
        assert_eq!(stored.driver_id, Some(driver.driver_id()));
        assert_eq!(stored.status, OrderStatus::Accepted);
        let events = app.state.store.order_events(order).await.unwrap();
        assert_eq!(events.last().unwrap().driver_id, Some(driver.driver_id()));
        assert_eq!(
            app.state.engine.order(order).unwrap().driver_id,
            Some(driver.driver_id())
        );
        let view = app.state.engine.driver(driver.driver_id()).unwrap();
        assert_eq!(
            (view.status, view.current_order),
            (engine::DriverStatus::Busy, Some(order))
        );

        // Answering again: the offer is no longer pending.
        let r = app.accept(&driver, &offer).await;
        r.assert_error(409, "offer_not_pending");
        assert_eq!(r.body["error"]["offer_state"], "accepted");
        let r = app
            .call(
                Method::POST,
                &format!("/v1/offers/{}/decline", offer.offer_id),
                driver.token(),
                None,
            )
            .await;
        r.assert_error(409, "offer_not_pending");
    }
}

dual_test! {
    async fn decline_moves_the_order_on() {
        let Setup {
            app,
            customer,
            restaurant,
            driver,
        } = setup().await;
        let second = app.user(Role::Driver).await;
        app.ping(second.driver_id(), HERE.0 + 0.002, HERE.1);
        let order = app.place_order(&customer, restaurant).await;
        let offer = app.offer_of(order);
        assert_eq!(offer.driver_id, driver.driver_id(), "nearest first");
        let r = app
            .call(
                Method::POST,
                &format!("/v1/offers/{}/decline", offer.offer_id),
                driver.token(),
                None,
            )
            .await;
        assert_eq!(
            r.assert_ok(200),
            &json!({"offer_id": offer.offer_id, "status": "declined"})
        );
        let next = app.offer_of(order);
        assert_eq!(next.driver_id, second.driver_id());
        // The declined offer cannot be accepted any more.
        let r = app.accept(&driver, &offer).await;
        r.assert_error(409, "offer_not_pending");
        assert_eq!(r.body["error"]["offer_state"], "declined");
        app.accept(&second, &next).await.assert_ok(200);
    }
}

dual_test! {
    async fn offer_error_codes() {
        let Setup {
            app,
            customer,
            restaurant,
            driver,
        } = setup().await;
        let order = app.place_order(&customer, restaurant).await;
        let offer = app.offer_of(order);
        let other = app.user(Role::Driver).await;
        for verb in ["accept", "decline"] {
            let uri = format!("/v1/offers/{}/{verb}", offer.offer_id);
            // Made to another driver.
            app.call(Method::POST, &uri, other.token(), None)
                .await
                .assert_error(403, "forbidden");
            // Not a driver at all.
            app.call(Method::POST, &uri, customer.token(), None)
                .await
                .assert_error(403, "forbidden");
            app.call(Method::POST, &uri, None, None)
                .await
                .assert_error(401, "missing_token");
            // Unknown and malformed offer ids.
            let unknown = format!("/v1/offers/{}/{verb}", OfferId::new());
            app.call(Method::POST, &unknown, driver.token(), None)
                .await
                .assert_error(404, "not_found");
            let bad = format!("/v1/offers/not-an-id/{verb}");
            app.call(Method::POST, &bad, driver.token(), None)
                .await
                .assert_error(400, "invalid_path");
            // Wrong method.
            let r = app.call(Method::GET, &uri, driver.token(), None).await;
            r.assert_error(405, "method_not_allowed");
        }
        // Withdrawn when an admin cancels (the customer no longer may:
        // the restaurant accepted).
        let admin = app.admin().await;
        app.call(
            Method::POST,
            &format!("/v1/orders/{order}/cancel"),
            admin.token(),
            None,
        )
        .await
        .assert_ok(200);
        let r = app.accept(&driver, &offer).await;
        r.assert_error(409, "offer_not_pending");
        assert_eq!(r.body["error"]["offer_state"], "withdrawn");
    }
}

dual_test! {
    async fn twenty_concurrent_accepts_win_once() {
        let Setup {
            app,
            customer,
            restaurant,
            driver,
        } = setup().await;
        let order = app.place_order(&customer, restaurant).await;
        let offer = app.offer_of(order);
        let accept = || {
            request(
                Method::POST,
                &format!("/v1/offers/{}/accept", offer.offer_id),
                driver.token(),
                None,
            )
        };
        let mut ok = 0;
        for r in app.concurrently((0..20).map(|_| accept()).collect()).await {
            match r.status.as_u16() {
                200 => ok += 1,
                _ => r.assert_error(409, "offer_not_pending"),
            }
        }
        assert_eq!(ok, 1);
        let stored = app.state.store.order(order).await.unwrap().unwrap();
        assert_eq!(stored.driver_id, Some(driver.driver_id()));
        let assigned = app
            .state
            .store
            .order_events(order)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.driver_id.is_some())
            .count();
        assert_eq!(assigned, 1);
    }
}

dual_test! {
    async fn store_refusal_undoes_the_engine_assignment() {
        let Setup {
            app,
            customer,
            restaurant,
            driver,
        } = setup().await;
        let order = app.place_order(&customer, restaurant).await;
        let offer = app.offer_of(order);
        // The store closes the order behind the live side's back.
        let t = api::store::Transition {
            order_id: order,
            from: OrderStatus::Accepted,
            to: OrderStatus::Cancelled,
            actor_id: None,
            at_ms: now_ms(),
            refund_id: engine::PaymentId::new(),
        };
        app.state.store.transition_order(&t).await.unwrap();
        let r = app.accept(&driver, &offer).await;
        r.assert_error(409, "order_unavailable");
        // The engine agrees with the store again, and the driver is free.
        assert_eq!(app.state.engine.order(order).unwrap().driver_id, None);
        assert_eq!(
            app.state.engine.order(order).unwrap().status,
            OrderStatus::Cancelled
        );
        let view = app.state.engine.driver(driver.driver_id()).unwrap();
        assert_eq!(
            (view.status, view.current_order),
            (engine::DriverStatus::Available, None)
        );
        assert_eq!(
            app.state
                .store
                .order(order)
                .await
                .unwrap()
                .unwrap()
                .driver_id,
            None
        );
    }
}

dual_test! {
    async fn a_busy_driver_is_not_offered_and_the_status_steps_free_it() {
        let Setup {
            app,
            customer,
            restaurant,
            driver,
        } = setup().await;
        let first = app.place_order(&customer, restaurant).await;
        app.accept(&driver, &app.offer_of(first))
            .await
            .assert_ok(200);
        let second = app.place_order(&customer, restaurant).await;
        assert!(
            app.state.matcher.pending_offer(second).is_none(),
            "busy drivers get no offers"
        );
        let admin = app.admin().await;
        let mut changes = app.state.engine.subscribe_changes();
        for status in ["ready_for_pickup", "picked_up", "delivered"] {
            let by = if status == "ready_for_pickup" {
                &admin
            } else {
                &driver
            };
            app.post(
                &format!("/v1/orders/{first}/status"),
                by.token(),
                json!({"status": status}),
            )
            .await
            .assert_ok(200);
        }
        // Delivered: the driver is free, and the waiting order reaches it.
        let view = app.state.engine.driver(driver.driver_id()).unwrap();
        assert_eq!(view.current_order, None);
        // The freed driver's status change wakes the matcher, which offers it the
        // waiting order: wait for that offer on the engine's change stream.
        let offer = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                if let engine::Change::Offer(o) = changes.recv_direct().await.unwrap()
                    && o.order_id == second
                {
                    return o;
                }
            }
        })
        .await
        .expect("the waiting order was never offered");
        assert_eq!(offer.driver_id, driver.driver_id());
        assert_eq!(app.offer_of(second).driver_id, driver.driver_id());
    }
}

dual_test! {
    async fn the_order_shows_its_dispatch_and_is_raised_when_nobody_takes_it() {
        let Setup {
            app,
            customer,
            restaurant,
            driver,
        } = setup_with(
            TestApp::with_matcher(matcher::Config {
                unassigned_after_offers: 1,
                ..matcher::Config::default()
            })
            .await,
        )
        .await;
        let admin = app.admin().await;
        let order = app.place_paid_order(&customer, restaurant).await;
        let uri = format!("/v1/orders/{order}");
        let r = app.get(&uri, customer.token()).await;
        assert_eq!(r.assert_ok(200)["dispatch"], json!(null), "not sought before acceptance");

        let owner_token = app.owner_token(restaurant);
        let r = app
            .post(&format!("{uri}/status"), Some(&owner_token), json!({"status": "accepted"}))
            .await;
        let dispatch = &r.assert_ok(200)["dispatch"];
        assert_eq!(dispatch["state"], "offered", "{dispatch}");
        assert_eq!(dispatch["attempts"], 0);
        assert!(dispatch["since"].is_i64());
        assert_eq!(dispatch["unassigned_at"], json!(null));

        // The only driver declines: raised to dispatchers, still sought.
        let offer = app.offer_of(order);
        app.call(
            Method::POST,
            &format!("/v1/offers/{}/decline", offer.offer_id),
            driver.token(),
            None,
        )
        .await
        .assert_ok(200);
        let r = app.get(&uri, admin.token()).await;
        let dispatch = &r.assert_ok(200)["dispatch"];
        assert_eq!(dispatch["state"], "searching", "{dispatch}");
        assert_eq!(dispatch["attempts"], 1);
        assert!(dispatch["unassigned_at"].is_i64(), "{dispatch}");
        // The admin's listing shows it too.
        let r = app.get("/v1/orders", admin.token()).await;
        let listed = r.assert_ok(200)["orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["order_id"] == json!(order))
            .cloned()
            .unwrap();
        assert!(listed["dispatch"]["unassigned_at"].is_i64(), "{listed}");

        // A second driver takes it: the search is over.
        let second = app.user(Role::Driver).await;
        app.ping(second.driver_id(), HERE.0 + 0.002, HERE.1);
        let next = app.offer_of_eventually(order).await;
        assert_eq!(next.driver_id, second.driver_id());
        app.accept(&second, &next).await.assert_ok(200);
        let r = app.get(&uri, admin.token()).await;
        assert_eq!(r.assert_ok(200)["dispatch"], json!(null));
    }
}
