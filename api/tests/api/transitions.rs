//! The order state machine over HTTP, as a table: every (status, actor,
//! action) triple — 10 statuses × 7 actors × 7 actions — on an order of
//! its own, against the answer the rules give (`lifecycle::decide`, itself
//! checked against a literal table in its unit tests): 200 and the step
//! stored, its history row and the engine's board updated; 403 for a
//! party's step that is not theirs; 409 `illegal_transition` with
//! `current_status` for a step the order cannot take now; 404 for someone
//! who is not a party. Then the cases the table cannot show (statuses this
//! endpoint never sets, a pickup without a driver) and racing steps.

use std::collections::HashMap;

use api::lifecycle::{self, Action, Party, Refusal};
use api::store::Transition;
use auth::{Principal, Role};
use axum::http::Method;
use engine::OrderId;
use engine::OrderStatus::{self, *};
use serde_json::json;

use crate::common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Actor {
    Customer,
    OtherCustomer,
    Owner,
    OtherOwner,
    /// The driver the order is assigned to.
    Driver,
    OtherDriver,
    Admin,
}

const ACTORS: [Actor; 7] = [
    Actor::Customer,
    Actor::OtherCustomer,
    Actor::Owner,
    Actor::OtherOwner,
    Actor::Driver,
    Actor::OtherDriver,
    Actor::Admin,
];

struct World {
    app: TestApp,
    users: HashMap<Actor, User>,
    roles: HashMap<Actor, Role>,
    restaurant: engine::RestaurantId,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::new().await;
        let mut users = HashMap::new();
        let mut roles = HashMap::new();
        for (actor, role) in [
            (Actor::Customer, Role::Customer),
            (Actor::OtherCustomer, Role::Customer),
            (Actor::Owner, Role::Restaurant),
            (Actor::OtherOwner, Role::Restaurant),
            (Actor::Driver, Role::Driver),
            (Actor::OtherDriver, Role::Driver),
        ] {
            users.insert(actor, app.user(role).await);
            roles.insert(actor, role);
        }
        users.insert(Actor::Admin, app.admin().await);
        roles.insert(Actor::Admin, Role::Admin);
        let restaurant = app.restaurant(&users[&Actor::Owner]).await;
        app.restaurant(&users[&Actor::OtherOwner]).await;
        Self {
            app,
            users,
            roles,
            restaurant,
        }
    }

    /// A fresh order in `status`, assigned to the Driver if `with_driver`,
    /// put there through the store (which compare-and-sets but does not
    /// judge steps), so every status is reachable in one write.
    async fn order_in(&self, status: OrderStatus, with_driver: bool) -> OrderId {
        let order = self
            .app
            .place_paid_order(&self.users[&Actor::Customer], self.restaurant)
            .await;
        let store = &self.app.state.store;
        if with_driver {
            let driver = self.users[&Actor::Driver].driver_id();
            store.assign_driver(order, driver, now_ms()).await.unwrap();
        }
        if status != Paid {
            let t = Transition {
                order_id: order,
                from: Paid,
                to: status,
                actor_id: None,
                at_ms: now_ms(),
                refund_id: engine::PaymentId::new(),
            };
            store.transition_order(&t).await.unwrap();
        }
        order
    }

    async fn act(&self, actor: Actor, order: OrderId, action: Action) -> Reply {
        let token = self.users[&actor].token();
        match action {
            Action::Set(to) => {
                self.app
                    .post(
                        &format!("/v1/orders/{order}/status"),
                        token,
                        json!({"status": to.as_str()}),
                    )
                    .await
            }
            Action::Cancel => {
                self.app
                    .call(
                        Method::POST,
                        &format!("/v1/orders/{order}/cancel"),
                        token,
                        None,
                    )
                    .await
            }
        }
    }
}

fn actions() -> Vec<Action> {
    let mut all: Vec<Action> = lifecycle::SETTABLE
        .iter()
        .map(|&s| Action::Set(s))
        .collect();
    all.push(Action::Cancel);
    all
}

/// What the api must answer, from the rules.
fn expected(world: &World, actor: Actor, order: &api::store::Order, action: Action) -> u16 {
    let principal = Principal {
        user_id: world.users[&actor].id,
        role: world.roles[&actor],
    };
    match Party::of(&principal, order) {
        None => 404,
        Some(party) => match lifecycle::decide(party, order, action) {
            Ok(_) => 200,
            Err(Refusal::NotYours) => 403,
            Err(_) => 409,
        },
    }
}

dual_test! {
    async fn every_status_actor_action() {
        let world = World::new().await;
        let mut failures = Vec::new();
        let mut allowed = 0;
        for status in OrderStatus::ALL {
            for actor in ACTORS {
                for action in actions() {
                    let order_id = world.order_in(status, true).await;
                    let order = world.app.state.store.order(order_id).await.unwrap().unwrap();
                    let want = expected(&world, actor, &order, action);
                    let r = world.act(actor, order_id, action).await;
                    let case = format!("{status:?} --{actor:?}--> {action:?}");
                    if r.status.as_u16() != want {
                        failures.push(format!("{case}: expected {want}, got {} {}", r.status, r.body));
                        continue;
                    }
                    let now = world.app.order_status(order_id).await;
                    if want != 200 {
                        assert_error_body(&r.body);
                        if want == 409 {
                            assert_eq!(r.body["error"]["code"], "illegal_transition", "{case}");
                            assert_eq!(r.body["error"]["current_status"], status.as_str(), "{case}");
                        }
                        assert_eq!(now, status, "{case}: nothing may move");
                        continue;
                    }
                    allowed += 1;
                    let target = action.target();
                    assert_eq!(r.body["status"], target.as_str(), "{case}");
                    assert_eq!(now, target, "{case}");
                    let events = world.app.state.store.order_events(order_id).await.unwrap();
                    let last = events.last().unwrap();
                    assert_eq!(
                        (last.status, last.actor_id),
                        (target, Some(world.users[&actor].id)),
                        "{case}"
                    );
                    assert_eq!(
                        world.app.state.engine.order(order_id).unwrap().status,
                        target,
                        "{case}"
                    );
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // The table's allowed cells, counted: 2 cancels from placed, 2×2
        // + 2 from paid, 2×2 + 1 from accepted, 2 + 1 from preparing, 2 + 1
        // from ready, 2 + 1 from picked up.
        assert_eq!(allowed, 2 + 6 + 5 + 3 + 3 + 3);
    }
}

dual_test! {
    async fn what_the_table_cannot_show() {
        let world = World::new().await;
        let order = world.order_in(Paid, false).await;
        // Statuses this endpoint never sets: 400, whoever asks.
        for target in ["cancelled", "placed", "paid", "payment_failed", "shipped", "", "ACCEPTED"] {
            let r = world
                .app
                .post(
                    &format!("/v1/orders/{order}/status"),
                    world.users[&Actor::Admin].token(),
                    json!({"status": target}),
                )
                .await;
            r.assert_error(400, "invalid_status");
        }
        // A pickup needs a driver, even for an admin.
        let ready = world.order_in(ReadyForPickup, false).await;
        let r = world
            .act(Actor::Admin, ready, Action::Set(PickedUp))
            .await;
        r.assert_error(409, "illegal_transition");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("no driver"));
        // An unassigned driver does not see the order at all.
        world
            .act(Actor::Driver, ready, Action::Set(PickedUp))
            .await
            .assert_error(404, "not_found");
    }
}

dual_test! {
    async fn racing_steps_win_once() {
        let world = World::new().await;
        let order = world.order_in(Paid, false).await;
        // From `paid` both are legal; after either, neither is.
        let steps = [
            "accepted", "rejected", "accepted", "rejected", "accepted", "rejected",
        ]
        .into_iter()
        .map(|target| {
            request(
                Method::POST,
                &format!("/v1/orders/{order}/status"),
                world.users[&Actor::Owner].token(),
                Some(json!({"status": target})),
            )
        })
        .collect();
        let mut ok = 0;
        for r in world.app.concurrently(steps).await {
            match r.status.as_u16() {
                200 => ok += 1,
                _ => r.assert_error(409, "illegal_transition"),
            }
        }
        assert_eq!(ok, 1);
        // Exactly one step recorded after `placed` and `paid`.
        assert_eq!(
            world.app.state.store.order_events(order).await.unwrap().len(),
            3
        );
    }
}
