//! `POST /v1/orders/{id}/status`, table-driven: every (current status,
//! actor, target) case below, each on a fresh scene, against the HTTP code
//! it must get. On success the store, its history and the engine's board
//! must all show the new status.

use auth::Role;
use axum::http::Method;
use engine::OrderId;
use engine::OrderStatus::{self, *};
use serde_json::json;

use crate::common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
    Customer,
    OtherCustomer,
    Owner,
    OtherOwner,
    /// The driver assigned to the order, when the scene has one (otherwise
    /// a driver with no relation to the order).
    Driver,
    OtherDriver,
    Admin,
}

struct Scene {
    app: TestApp,
    customer: User,
    other_customer: User,
    owner: User,
    other_owner: User,
    driver: User,
    other_driver: User,
    admin: User,
    order: OrderId,
}

impl Scene {
    fn user(&self, actor: Actor) -> &User {
        match actor {
            Actor::Customer => &self.customer,
            Actor::OtherCustomer => &self.other_customer,
            Actor::Owner => &self.owner,
            Actor::OtherOwner => &self.other_owner,
            Actor::Driver => &self.driver,
            Actor::OtherDriver => &self.other_driver,
            Actor::Admin => &self.admin,
        }
    }

    async fn step(&self, by: Actor, status: &str) {
        let r = self
            .app
            .post(
                &format!("/v1/orders/{}/status", self.order),
                self.user(by).token(),
                json!({"status": status}),
            )
            .await;
        r.assert_ok(200);
    }
}

/// A fresh app with an order in `start`, assigned to `driver` if `with_driver`.
async fn scene(start: OrderStatus, with_driver: bool) -> Scene {
    let app = TestApp::new().await;
    let (customer, other_customer) = (
        app.user(Role::Customer).await,
        app.user(Role::Customer).await,
    );
    let (owner, other_owner) = (
        app.user(Role::Restaurant).await,
        app.user(Role::Restaurant).await,
    );
    let (driver, other_driver) = (app.user(Role::Driver).await, app.user(Role::Driver).await);
    let admin = app.admin().await;
    let restaurant = app.restaurant(&owner).await;
    app.restaurant(&other_owner).await;
    if with_driver {
        app.ping(driver.driver_id(), HERE.0, HERE.1);
    }
    let order = app.place_order(&customer, restaurant).await;
    if with_driver {
        let offer = app.offer_of(order);
        assert_eq!(offer.driver_id, driver.driver_id());
        app.accept(&driver, &offer).await.assert_ok(200);
    }
    let s = Scene {
        app,
        customer,
        other_customer,
        owner,
        other_owner,
        driver,
        other_driver,
        admin,
        order,
    };
    let path: &[&str] = match start {
        Placed => &[],
        Accepted => &["accepted"],
        Preparing => &["accepted", "preparing"],
        ReadyForPickup => &["ready_for_pickup"],
        PickedUp => &["ready_for_pickup", "picked_up"],
        Delivered => &["ready_for_pickup", "picked_up", "delivered"],
        Rejected => &["rejected"],
        Cancelled => &[],
        Paid | PaymentFailed => panic!("not reachable in the foundation"),
    };
    for status in path {
        s.step(Actor::Admin, status).await;
    }
    if start == Cancelled {
        let r = s
            .app
            .call(
                Method::POST,
                &format!("/v1/orders/{}/cancel", s.order),
                s.admin.token(),
                None,
            )
            .await;
        r.assert_ok(200);
    }
    assert_eq!(s.app.order_status(s.order).await, start);
    s
}

/// Runs one case; describes a mismatch.
async fn check(
    start: OrderStatus,
    with_driver: bool,
    actor: Actor,
    target: &str,
    expected: u16,
) -> Result<(), String> {
    let s = scene(start, with_driver).await;
    let case = format!("{start:?} (driver: {with_driver}) --{actor:?}--> {target:?}");
    let r = s
        .app
        .post(
            &format!("/v1/orders/{}/status", s.order),
            s.user(actor).token(),
            json!({"status": target}),
        )
        .await;
    if r.status.as_u16() != expected {
        return Err(format!(
            "{case}: expected {expected}, got {} {}",
            r.status, r.body
        ));
    }
    if expected != 200 {
        assert_error_body(&r.body);
        if expected == 409 {
            assert_eq!(r.body["error"]["code"], "illegal_transition", "{case}");
            assert_eq!(r.body["error"]["current_status"], start.as_str(), "{case}");
        }
        // Nothing moved.
        assert_eq!(s.app.order_status(s.order).await, start, "{case}");
        return Ok(());
    }
    let target = OrderStatus::parse(target).unwrap();
    assert_eq!(r.body["status"], target.as_str(), "{case}");
    assert_eq!(s.app.order_status(s.order).await, target, "{case}");
    let events = s.app.state.store.order_events(s.order).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.status, last.actor_id),
        (target, Some(s.user(actor).id)),
        "{case}"
    );
    assert_eq!(
        s.app.state.engine.order(s.order).unwrap().status,
        target,
        "{case}"
    );
    if target.is_terminal() {
        assert_eq!(
            s.app.state.matcher.dispatching(),
            0,
            "{case}: still dispatching"
        );
        if with_driver {
            let view = s.app.state.engine.driver(s.driver.driver_id()).unwrap();
            assert_eq!(view.current_order, None, "{case}: driver not freed");
        }
    }
    Ok(())
}

const CASES: &[(OrderStatus, bool, Actor, &str, u16)] = &[
    // ---- allowed ----
    (Placed, false, Actor::Owner, "accepted", 200),
    (Placed, false, Actor::Owner, "rejected", 200),
    (Placed, false, Actor::Owner, "ready_for_pickup", 200), // foundation shortcut
    (Placed, false, Actor::Admin, "accepted", 200),
    (Placed, false, Actor::Admin, "rejected", 200),
    (Placed, true, Actor::Admin, "ready_for_pickup", 200),
    (Placed, true, Actor::Owner, "rejected", 200),
    (Accepted, false, Actor::Owner, "preparing", 200),
    (Accepted, false, Actor::Owner, "ready_for_pickup", 200),
    (Accepted, false, Actor::Admin, "preparing", 200),
    (Accepted, false, Actor::Admin, "ready_for_pickup", 200),
    (Preparing, false, Actor::Owner, "ready_for_pickup", 200),
    (Preparing, false, Actor::Admin, "ready_for_pickup", 200),
    (ReadyForPickup, true, Actor::Driver, "picked_up", 200),
    (ReadyForPickup, true, Actor::Admin, "picked_up", 200),
    (PickedUp, true, Actor::Driver, "delivered", 200),
    (PickedUp, true, Actor::Admin, "delivered", 200),
    // ---- illegal from where the order is: 409 ----
    (Placed, false, Actor::Owner, "preparing", 409),
    (Placed, true, Actor::Driver, "picked_up", 409),
    (Placed, true, Actor::Driver, "delivered", 409),
    (Placed, false, Actor::Admin, "picked_up", 409),
    (Placed, false, Actor::Admin, "delivered", 409),
    (Accepted, false, Actor::Owner, "accepted", 409),
    (Accepted, false, Actor::Owner, "rejected", 409),
    (Preparing, false, Actor::Owner, "accepted", 409),
    (Preparing, false, Actor::Owner, "preparing", 409),
    (Preparing, false, Actor::Owner, "rejected", 409),
    (ReadyForPickup, false, Actor::Admin, "picked_up", 409), // no driver yet
    (ReadyForPickup, false, Actor::Owner, "preparing", 409),
    (ReadyForPickup, true, Actor::Driver, "delivered", 409),
    (ReadyForPickup, true, Actor::Owner, "ready_for_pickup", 409),
    (PickedUp, true, Actor::Driver, "picked_up", 409),
    (PickedUp, true, Actor::Owner, "ready_for_pickup", 409),
    (Delivered, true, Actor::Driver, "delivered", 409),
    (Delivered, true, Actor::Admin, "accepted", 409),
    (Delivered, true, Actor::Admin, "picked_up", 409),
    (Cancelled, false, Actor::Owner, "accepted", 409),
    (Cancelled, false, Actor::Admin, "ready_for_pickup", 409),
    (Rejected, false, Actor::Owner, "accepted", 409),
    (Rejected, false, Actor::Admin, "ready_for_pickup", 409),
    // ---- a party, but not this party's step: 403 ----
    (Placed, false, Actor::Customer, "accepted", 403),
    (Placed, false, Actor::Customer, "ready_for_pickup", 403),
    (Placed, true, Actor::Owner, "picked_up", 403),
    (Placed, true, Actor::Driver, "accepted", 403),
    (Accepted, true, Actor::Driver, "ready_for_pickup", 403),
    (ReadyForPickup, true, Actor::Owner, "picked_up", 403),
    (ReadyForPickup, true, Actor::Customer, "picked_up", 403),
    (PickedUp, true, Actor::Owner, "delivered", 403),
    (PickedUp, true, Actor::Customer, "delivered", 403),
    // ---- not a party: 404 ----
    (Placed, false, Actor::OtherCustomer, "accepted", 404),
    (Placed, false, Actor::OtherOwner, "accepted", 404),
    (Placed, false, Actor::Driver, "picked_up", 404), // no driver assigned
    (ReadyForPickup, true, Actor::OtherDriver, "picked_up", 404),
    (PickedUp, true, Actor::OtherDriver, "delivered", 404),
    (PickedUp, true, Actor::OtherOwner, "delivered", 404),
    // ---- not a status this endpoint sets: 400 ----
    (Placed, false, Actor::Owner, "cancelled", 400),
    (Placed, false, Actor::Admin, "placed", 400),
    (Placed, false, Actor::Admin, "paid", 400),
    (Placed, false, Actor::Owner, "shipped", 400),
    (Placed, false, Actor::Admin, "", 400),
    (Placed, false, Actor::Admin, "ACCEPTED", 400),
];

#[tokio::test]
async fn status_transition_table() {
    let mut failures = Vec::new();
    for &(start, with_driver, actor, target, expected) in CASES {
        if let Err(e) = check(start, with_driver, actor, target, expected).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_steps_win_once() {
    let s = scene(Placed, false).await;
    let mut tasks = Vec::new();
    // From `placed` both are legal; after either, neither is.
    for target in [
        "accepted", "rejected", "accepted", "rejected", "accepted", "rejected",
    ] {
        let router = s.app.router.clone();
        let req = request(
            Method::POST,
            &format!("/v1/orders/{}/status", s.order),
            s.owner.token(),
            Some(json!({"status": target})),
        );
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            reply(router.oneshot(req).await.unwrap()).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => ok += 1,
            _ => r.assert_error(409, "illegal_transition"),
        }
    }
    assert_eq!(ok, 1);
    // Exactly one step recorded after `placed`.
    assert_eq!(
        s.app.state.store.order_events(s.order).await.unwrap().len(),
        2
    );
}
