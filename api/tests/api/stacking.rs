//! Stacking on the live path (`matcher.stacking`): a courier on the way to
//! a kitchen with one order is offered a second from it, carries both
//! through pickup and delivery over REST; off, the second order goes to
//! another courier. The store's stacking guard on both databases (a
//! second order of any kitchen, beside one not picked up; `tests/stacking.rs`
//! runs a stack on the way on a real server).

use std::sync::Arc;

use api::store::AssignOutcome;
use auth::Role;
use engine::{DriverStatus, OrderId};
use serde_json::json;

use crate::common::*;

fn stacking() -> matcher::Config {
    matcher::Config {
        stacking: true,
        ..matcher::Config::default()
    }
}

/// A restaurant at [`HERE`], a customer, courier `a` at the restaurant
/// holding order 1 (accepted over REST), and a free courier `b` 1 km away.
struct Scene {
    app: TestApp,
    restaurant: engine::RestaurantId,
    customer: User,
    a: User,
    b: User,
    first: OrderId,
}

async fn scene(app: TestApp) -> Scene {
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let a = app.user(Role::Driver).await;
    app.ping(a.driver_id(), HERE.0, HERE.1);
    let first = app.place_order(&customer, restaurant).await;
    let offer = app.offer_of(first);
    assert_eq!((offer.driver_id, offer.stacked_with), (a.driver_id(), None));
    app.accept(&a, &offer).await.assert_ok(200);
    let b = app.user(Role::Driver).await;
    app.ping(b.driver_id(), HERE.0 + 0.009, HERE.1);
    Scene {
        app,
        restaurant,
        customer,
        a,
        b,
        first,
    }
}

async fn step(app: &TestApp, order: OrderId, token: &str, status: &str) {
    app.post(
        &format!("/v1/orders/{order}/status"),
        Some(token),
        json!({ "status": status }),
    )
    .await
    .assert_ok(200);
}

dual_test! {
    async fn a_courier_carries_two_orders_of_one_kitchen() {
        let s = scene(TestApp::with_matcher(stacking()).await).await;
        let app = &s.app;
        let second = app.place_order(&s.customer, s.restaurant).await;
        // Offered to the courier bound for the kitchen, not the free one,
        // and marked stacked.
        let offer = app.offer_of(second);
        assert_eq!(offer.driver_id, s.a.driver_id());
        assert_eq!(offer.stacked_with, Some(s.first));
        app.accept(&s.a, &offer).await.assert_ok(200);
        for order in [s.first, second] {
            let stored = app.state.store.order(order).await.unwrap().unwrap();
            assert_eq!(stored.driver_id, Some(s.a.driver_id()), "store: {order}");
            assert_eq!(app.state.engine.order(order).unwrap().driver_id, Some(s.a.driver_id()));
        }
        // The driver's view lists both; `current_order` stays the first.
        let r = app.get(&format!("/v1/drivers/{}", s.a.driver_id()), Some(&s.a.token)).await;
        let body = r.assert_ok(200);
        assert_eq!(body["status"], "busy");
        assert_eq!(body["current_order"], json!(s.first));
        assert_eq!(body["orders"], json!([s.first, second]));

        // The kitchen readies both, the courier picks up both and
        // delivers the first, then the second.
        let owner = app.owner_token(s.restaurant);
        for order in [s.first, second] {
            step(app, order, &owner, "ready_for_pickup").await;
            step(app, order, &s.a.token, "picked_up").await;
        }
        step(app, s.first, &s.a.token, "delivered").await;
        let view = app.state.engine.driver(s.a.driver_id()).unwrap();
        assert_eq!(view.status, DriverStatus::Busy, "still carrying the second");
        assert_eq!((view.current_order, view.stacked_order), (Some(second), None));
        step(app, second, &s.a.token, "delivered").await;
        let view = app.state.engine.driver(s.a.driver_id()).unwrap();
        assert_eq!((view.status, view.current_order), (DriverStatus::Available, None));
        for order in [s.first, second] {
            assert_eq!(app.order_status(order).await, engine::OrderStatus::Delivered);
        }
        // The free courier was never needed.
        let b = app.state.engine.driver(s.b.driver_id()).unwrap();
        assert_eq!((b.status, b.current_order), (DriverStatus::Available, None));
    }
}

dual_test! {
    async fn without_stacking_the_second_order_goes_to_another_courier() {
        let s = scene(TestApp::new().await).await;
        let app = &s.app;
        let second = app.place_order(&s.customer, s.restaurant).await;
        let offer = app.offer_of(second);
        assert_eq!((offer.driver_id, offer.stacked_with), (s.b.driver_id(), None));
        app.accept(&s.b, &offer).await.assert_ok(200);
        let a = app.state.engine.driver(s.a.driver_id()).unwrap();
        assert_eq!(a.orders().collect::<Vec<_>>(), [s.first]);
        let r = app.get(&format!("/v1/drivers/{}", s.a.driver_id()), Some(&s.a.token)).await;
        assert_eq!(r.assert_ok(200)["orders"], json!([s.first]));
    }
}

dual_test! {
    async fn the_store_allows_one_second_order_beside_one_not_picked_up() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let kitchen = app.restaurant(&owner).await;
        let other_owner = app.user(Role::Restaurant).await;
        let other_kitchen = app.restaurant(&other_owner).await;
        let customer = app.user(Role::Customer).await;
        let driver = app.user(Role::Driver).await;
        let d = driver.driver_id();
        // Nobody pings: the orders wait, and only the store is asked.
        let mut same = Vec::new();
        for _ in 0..4 {
            same.push(app.place_order(&customer, kitchen).await);
        }
        let elsewhere = app.place_order(&customer, other_kitchen).await;
        let store = &app.state.store;
        let applied = |o: AssignOutcome| matches!(o, AssignOutcome::Applied(_));

        // Another kitchen's order rides along too (one on the way: the
        // matcher's rule chose it), here beside another driver's order.
        let other_driver = app.user(Role::Driver).await;
        let od = other_driver.driver_id();
        let base = app.place_order(&customer, other_kitchen).await;
        assert!(applied(store.assign_driver(base, od, now_ms()).await.unwrap()));
        assert!(applied(store.assign_stacked_driver(same[3], od, now_ms(), None).await.unwrap()));

        assert!(applied(store.assign_driver(same[0], d, now_ms()).await.unwrap()));
        // Racing stacked accepts, of the same kitchen's orders and
        // another's: exactly one applies, and never a third order.
        let store: Arc<dyn api::Store> = store.clone();
        let candidates = [same[1], same[2], elsewhere];
        let races: Vec<_> = candidates
            .iter()
            .map(|&o| {
                let store = store.clone();
                tokio::spawn(async move { store.assign_stacked_driver(o, d, now_ms(), None).await })
            })
            .collect();
        let mut won = Vec::new();
        for (i, race) in races.into_iter().enumerate() {
            if applied(race.await.unwrap().unwrap()) {
                won.push(candidates[i]);
            }
        }
        assert_eq!(won.len(), 1, "{won:?}");
        for &o in &candidates {
            let holder = store.order(o).await.unwrap().unwrap().driver_id;
            assert_eq!(holder == Some(d), won.contains(&o), "{o}");
        }
        // Once the driver holds one order picked up, nothing rides along.
        let second = won[0];
        let second_owner = if second == elsewhere {
            app.owner_token(other_kitchen)
        } else {
            app.owner_token(kitchen)
        };
        let owner_token = app.owner_token(kitchen);
        step(&app, second, &second_owner, "ready_for_pickup").await;
        step(&app, second, &driver.token, "picked_up").await;
        step(&app, same[0], &owner_token, "ready_for_pickup").await;
        step(&app, same[0], &driver.token, "picked_up").await;
        step(&app, same[0], &driver.token, "delivered").await;
        let free = candidates.iter().copied().find(|o| *o != second).unwrap();
        assert!(!applied(store.assign_stacked_driver(free, d, now_ms(), None).await.unwrap()));
        // Delivered: free again, a stacked accept is a first order.
        step(&app, second, &driver.token, "delivered").await;
        assert!(applied(store.assign_stacked_driver(free, d, now_ms(), None).await.unwrap()));
    }
}
