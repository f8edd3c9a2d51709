//! Every REST endpoint × every kind of caller: the order's customer, the
//! restaurant's owner, the order's driver, an admin, no token, an expired
//! token and a banned user's token, against the expected allow or deny.
//!
//! "Allowed" means the request got past authentication and authorisation
//! (any answer but 401, 403 and 404 — the last is how the api denies a
//! non-party, so ids do not leak; a 409 or 422 is an allowed caller asking
//! for something the state does not permit). "Unauthenticated" is 401;
//! "denied" is 403 or 404. Nothing may answer 5xx.

use auth::{Principal, Role};
use axum::http::Method;
use engine::{OfferId, OrderId, RestaurantId};
use serde_json::{Value, json};

use crate::common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Customer,
    Restaurant,
    Driver,
    Admin,
    NoToken,
    Expired,
    Banned,
}

const CALLERS: [Caller; 7] = [
    Caller::Customer,
    Caller::Restaurant,
    Caller::Driver,
    Caller::Admin,
    Caller::NoToken,
    Caller::Expired,
    Caller::Banned,
];

struct World {
    app: TestApp,
    customer: User,
    owner: User,
    driver: User,
    admin: User,
    expired: String,
    banned: User,
    /// A user the admin bans and unbans.
    victim: User,
    /// A dead letter the admin asks to replay.
    dead_letter: i64,
    restaurant: RestaurantId,
    item: engine::MenuItemId,
    /// Paid, assigned to `driver`: every party endpoint uses it.
    order: OrderId,
    /// Accepted by the restaurant and offered to `driver`.
    offer: OfferId,
    /// A live refresh token per caller (logins of a spare account), for
    /// the public refresh endpoint.
    spare_refresh: Vec<String>,
    /// A saved address per caller with an account (the customer's for
    /// the others).
    addresses: Vec<String>,
    /// A webhook endpoint the admin reads.
    webhook: String,
    /// A webhook endpoint the admin deletes.
    doomed_webhook: String,
    /// A paid order the admin force-cancels.
    doomed_order: OrderId,
    /// A driver the admin sets offline.
    spare_driver: User,
    /// Delivered by `driver` and reviewed by `customer`.
    reviewed_order: OrderId,
    /// Its review.
    review: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::new().await;
        let customer = app.user(Role::Customer).await;
        let owner = app.user(Role::Restaurant).await;
        let driver = app.user(Role::Driver).await;
        let admin = app.admin().await;
        let banned = app.user(Role::Customer).await;
        let victim = app.user(Role::Customer).await;
        let restaurant = app.restaurant(&owner).await;
        let item = app.item_of(restaurant);
        let order = app.place_paid_order(&customer, restaurant).await;
        app.state
            .store
            .assign_driver(order, driver.driver_id(), now_ms())
            .await
            .unwrap();
        app.ping(driver.driver_id(), HERE.0, HERE.1);
        let offered = app.place_order(&customer, restaurant).await;
        let offer = app.offer_of(offered).offer_id;
        let expired = app.token_issued_ago(
            Principal {
                user_id: customer.id,
                role: Role::Customer,
            },
            ACCESS_TTL_S + 60,
        );
        app.post(
            &format!("/v1/admin/users/{}/ban", banned.id),
            admin.token(),
            json!({}),
        )
        .await
        .assert_ok(200);
        let log = app.state.store.event_log();
        let dead_letter: i64 = sqlx::query_scalar(
            "INSERT INTO event_dead_letters (consumer, seq, attempts, last_error, state, failed_at_ms) \
             VALUES ('role_matrix', 1, 1, 'test', 'dead', 0) RETURNING id",
        )
        .fetch_one(log.pool())
        .await
        .unwrap();
        let spare = app.user(Role::Customer).await;
        let mut spare_refresh = Vec::new();
        for _ in CALLERS {
            let r = app
                .post(
                    "/v1/auth/login",
                    None,
                    json!({"email": spare.email, "password": spare.password}),
                )
                .await;
            spare_refresh.push(
                r.assert_ok(200)["refresh_token"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let mut addresses = Vec::new();
        for user in [&customer, &owner, &driver, &admin] {
            let r = app
                .post("/v1/me/addresses", user.token(), json!({"label": "Home", "address": "Gatan 1", "location": {"lat": 57.7, "lng": 11.9}}))
                .await;
            addresses.push(r.assert_ok(201)["address_id"].as_str().unwrap().to_owned());
        }
        let mut hooks = Vec::new();
        for _ in 0..2 {
            let r = app
                .post(
                    "/v1/admin/webhooks",
                    admin.token(),
                    json!({"url": "http://127.0.0.1:9/hooks", "event_types": ["order.placed"]}),
                )
                .await;
            hooks.push(r.assert_ok(201)["id"].as_str().unwrap().to_owned());
        }
        let doomed_webhook = hooks.pop().unwrap();
        let webhook = hooks.pop().unwrap();
        let doomed_order = app.place_paid_order(&customer, restaurant).await;
        let spare_driver = app.user(Role::Driver).await;
        let reviewed_order = app.place_paid_order(&customer, restaurant).await;
        app.state
            .store
            .assign_driver(reviewed_order, driver.driver_id(), now_ms())
            .await
            .unwrap();
        let owner_token = app.owner_token(restaurant);
        for (token, status) in [
            (owner_token.as_str(), "accepted"),
            (owner_token.as_str(), "ready_for_pickup"),
            (driver.token.as_str(), "picked_up"),
            (driver.token.as_str(), "delivered"),
        ] {
            app.post(
                &format!("/v1/orders/{reviewed_order}/status"),
                Some(token),
                json!({ "status": status }),
            )
            .await
            .assert_ok(200);
        }
        let review = app
            .post(
                &format!("/v1/orders/{reviewed_order}/review"),
                customer.token(),
                json!({"restaurant": {"stars": 5}, "driver": {"stars": 4}}),
            )
            .await
            .assert_ok(201)["review_id"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            reviewed_order,
            review,
            doomed_order,
            spare_driver,
            webhook,
            doomed_webhook,
            app,
            customer,
            owner,
            driver,
            admin,
            expired,
            banned,
            victim,
            dead_letter,
            restaurant,
            item,
            order,
            offer,
            spare_refresh,
            addresses,
        }
    }

    fn user(&self, caller: Caller) -> Option<&User> {
        match caller {
            Caller::Customer => Some(&self.customer),
            Caller::Restaurant => Some(&self.owner),
            Caller::Driver => Some(&self.driver),
            Caller::Admin => Some(&self.admin),
            Caller::Banned => Some(&self.banned),
            Caller::NoToken | Caller::Expired => None,
        }
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        match caller {
            Caller::Expired => Some(&self.expired),
            other => self.user(other).map(|u| u.token.as_str()),
        }
    }
}

/// One endpoint: how to call it, and who is allowed (`Y`/`N` for
/// customer, restaurant, driver, admin). Public endpoints allow everyone,
/// whatever token comes along; the others answer 401 to no token, an
/// expired one and a banned user's.
struct Endpoint {
    name: &'static str,
    /// `method path` as the OpenAPI document names the operation.
    route: &'static str,
    allowed: &'static str,
    public: bool,
    call: fn(&World, Caller) -> (Method, String, Option<Value>),
}

fn index(caller: Caller) -> usize {
    CALLERS.iter().position(|&c| c == caller).unwrap()
}

fn unique_email() -> String {
    format!("m-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn order_body(w: &World) -> Value {
    w.app.order_body(w.restaurant, "tok_ok")
}

fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        Endpoint {
            name: "signup",
            route: "post /v1/auth/signup",
            allowed: "YYYY",
            public: true,
            call: |_, _| {
                (
                    M::POST,
                    "/v1/auth/signup".into(),
                    Some(
                        json!({"email": unique_email(), "password": "password123", "name": "N", "role": "customer"}),
                    ),
                )
            },
        },
        Endpoint {
            name: "login",
            route: "post /v1/auth/login",
            allowed: "YYYY",
            public: true,
            call: |w, _| {
                (
                    M::POST,
                    "/v1/auth/login".into(),
                    Some(json!({"email": w.victim.email, "password": w.victim.password})),
                )
            },
        },
        Endpoint {
            name: "refresh",
            route: "post /v1/auth/refresh",
            allowed: "YYYY",
            public: true,
            call: |w, c| {
                let token = &w.spare_refresh[index(c)];
                (
                    M::POST,
                    "/v1/auth/refresh".into(),
                    Some(json!({"refresh_token": token})),
                )
            },
        },
        Endpoint {
            name: "get me",
            route: "get /v1/me",
            allowed: "YYYY",
            public: false,
            call: |_, _| (M::GET, "/v1/me".into(), None),
        },
        Endpoint {
            name: "patch me",
            route: "patch /v1/me",
            allowed: "YYYY",
            public: false,
            call: |_, _| (M::PATCH, "/v1/me".into(), Some(json!({"name": "Renamed"}))),
        },
        Endpoint {
            name: "list addresses",
            route: "get /v1/me/addresses",
            allowed: "YYYY",
            public: false,
            call: |_, _| (M::GET, "/v1/me/addresses".into(), None),
        },
        Endpoint {
            name: "add address",
            route: "post /v1/me/addresses",
            allowed: "YYYY",
            public: false,
            call: |_, _| {
                (
                    M::POST,
                    "/v1/me/addresses".into(),
                    Some(
                        json!({"label": "Home", "address": "Gatan 1", "location": {"lat": 57.7, "lng": 11.9}}),
                    ),
                )
            },
        },
        Endpoint {
            name: "delete address",
            route: "delete /v1/me/addresses/{address_id}",
            allowed: "YYYY",
            public: false,
            call: |w, c| {
                let id = w.addresses.get(index(c)).unwrap_or(&w.addresses[0]);
                (M::DELETE, format!("/v1/me/addresses/{id}"), None)
            },
        },
        Endpoint {
            name: "kitchen orders",
            route: "get /v1/restaurants/{restaurant_id}/orders",
            allowed: "NYNY",
            public: false,
            call: |w, _| {
                (
                    M::GET,
                    format!("/v1/restaurants/{}/orders?status=paid", w.restaurant),
                    None,
                )
            },
        },
        Endpoint {
            name: "list notifications",
            route: "get /v1/notifications",
            allowed: "YYYY",
            public: false,
            call: |_, _| (M::GET, "/v1/notifications?after=0&limit=10".into(), None),
        },
        Endpoint {
            name: "unread notifications",
            route: "get /v1/notifications/unread",
            allowed: "YYYY",
            public: false,
            call: |_, _| (M::GET, "/v1/notifications/unread".into(), None),
        },
        Endpoint {
            // Ids are each recipient's own and nobody has one in this
            // world (no notification consumer runs): everyone gets the 404
            // that another user's id would get (notifications.rs has the
            // recipient's own).
            name: "mark a notification read",
            route: "post /v1/notifications/{notification_id}/read",
            allowed: "NNNN",
            public: false,
            call: |_, _| (M::POST, "/v1/notifications/1/read".into(), Some(json!({}))),
        },
        Endpoint {
            name: "mark all notifications read",
            route: "post /v1/notifications/read-all",
            allowed: "YYYY",
            public: false,
            call: |_, _| {
                (
                    M::POST,
                    "/v1/notifications/read-all".into(),
                    Some(json!({})),
                )
            },
        },
        Endpoint {
            name: "my notification preferences",
            route: "get /v1/me/notification-preferences",
            allowed: "YYYY",
            public: false,
            call: |_, _| (M::GET, "/v1/me/notification-preferences".into(), None),
        },
        Endpoint {
            name: "set my notification preferences",
            route: "put /v1/me/notification-preferences",
            allowed: "YYYY",
            public: false,
            call: |_, _| {
                (
                    M::PUT,
                    "/v1/me/notification-preferences".into(),
                    Some(json!({"sms": {"enabled": false}})),
                )
            },
        },
        Endpoint {
            name: "messages sent to me",
            route: "get /v1/notifications/sent",
            allowed: "YYYY",
            public: false,
            call: |_, _| (M::GET, "/v1/notifications/sent?limit=5".into(), None),
        },
        Endpoint {
            name: "messages sent (admin)",
            route: "get /v1/admin/notifications/sent",
            allowed: "NNNY",
            public: false,
            call: |_, _| {
                (
                    M::GET,
                    "/v1/admin/notifications/sent?channel=email".into(),
                    None,
                )
            },
        },
        Endpoint {
            name: "channel simulator rules",
            route: "get /v1/admin/notifications/simulator",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/notifications/simulator".into(), None),
        },
        Endpoint {
            name: "set channel simulator rules",
            route: "put /v1/admin/notifications/simulator",
            allowed: "NNNY",
            public: false,
            call: |_, _| {
                (
                    M::PUT,
                    "/v1/admin/notifications/simulator".into(),
                    Some(json!({"push_failure_rate": 0.0, "email_failure_rate": 0.0,
                                "sms_failure_rate": 0.0, "fail_to": []})),
                )
            },
        },
        Endpoint {
            name: "orders report",
            route: "get /v1/admin/reports/orders",
            allowed: "NNNY",
            public: false,
            call: |_, _| {
                (
                    M::GET,
                    "/v1/admin/reports/orders?from=2026-01-01&to=2026-01-08&tz=Europe/Stockholm"
                        .into(),
                    None,
                )
            },
        },
        Endpoint {
            // An owner reads its own restaurants' lines only.
            name: "restaurants report",
            route: "get /v1/admin/reports/restaurants",
            allowed: "NYNY",
            public: false,
            call: |_, _| {
                (
                    M::GET,
                    "/v1/admin/reports/restaurants?from=2026-01-01&to=2026-01-08".into(),
                    None,
                )
            },
        },
        Endpoint {
            name: "drivers report",
            route: "get /v1/admin/reports/drivers",
            allowed: "NNNY",
            public: false,
            call: |_, _| {
                (
                    M::GET,
                    "/v1/admin/reports/drivers?from=2026-01-01T08:00&to=2026-01-01T20:00&bucket=hour"
                        .into(),
                    None,
                )
            },
        },
        Endpoint {
            name: "rebuild reports",
            route: "post /v1/admin/reports/rebuild",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::POST, "/v1/admin/reports/rebuild".into(), Some(json!({}))),
        },
        Endpoint {
            name: "ban",
            route: "post /v1/admin/users/{user_id}/ban",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/admin/users/{}/ban", w.victim.id),
                    Some(json!({})),
                )
            },
        },
        Endpoint {
            name: "unban",
            route: "post /v1/admin/users/{user_id}/unban",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/admin/users/{}/unban", w.victim.id),
                    Some(json!({})),
                )
            },
        },
        Endpoint {
            name: "review an order",
            route: "post /v1/orders/{order_id}/review",
            allowed: "YNNN",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/orders/{}/review", w.reviewed_order),
                    Some(json!({"restaurant": {"stars": 3}})),
                )
            },
        },
        Endpoint {
            name: "edit a review",
            route: "put /v1/orders/{order_id}/review",
            allowed: "YNNN",
            public: false,
            call: |w, _| {
                (
                    M::PUT,
                    format!("/v1/orders/{}/review", w.reviewed_order),
                    Some(json!({"restaurant": {"stars": 4}, "driver": {"stars": 4}})),
                )
            },
        },
        Endpoint {
            name: "get a review",
            route: "get /v1/orders/{order_id}/review",
            allowed: "YYYY",
            public: false,
            call: |w, _| {
                (
                    M::GET,
                    format!("/v1/orders/{}/review", w.reviewed_order),
                    None,
                )
            },
        },
        Endpoint {
            name: "restaurant reviews",
            route: "get /v1/restaurants/{restaurant_id}/reviews",
            allowed: "YYYY",
            public: true,
            call: |w, _| {
                (
                    M::GET,
                    format!("/v1/restaurants/{}/reviews", w.restaurant),
                    None,
                )
            },
        },
        Endpoint {
            name: "driver reviews",
            route: "get /v1/drivers/{driver_id}/reviews",
            allowed: "NNYY",
            public: false,
            call: |w, _| (M::GET, format!("/v1/drivers/{}/reviews", w.driver.id), None),
        },
        Endpoint {
            name: "hide a review",
            route: "post /v1/admin/reviews/{review_id}/hide",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/admin/reviews/{}/hide", w.review),
                    Some(json!({"reason": "test"})),
                )
            },
        },
        Endpoint {
            name: "unhide a review",
            route: "post /v1/admin/reviews/{review_id}/unhide",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/admin/reviews/{}/unhide", w.review),
                    None,
                )
            },
        },
        Endpoint {
            name: "list users",
            route: "get /v1/admin/users",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/users?limit=5".into(), None),
        },
        Endpoint {
            name: "list restaurants",
            route: "get /v1/admin/restaurants",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/restaurants?accepting=true".into(), None),
        },
        Endpoint {
            name: "list drivers",
            route: "get /v1/admin/drivers",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/drivers?status=available".into(), None),
        },
        Endpoint {
            name: "list orders (admin)",
            route: "get /v1/admin/orders",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/orders?status=paid".into(), None),
        },
        Endpoint {
            name: "console road map",
            route: "get /v1/admin/console/roads",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/console/roads".into(), None),
        },
        Endpoint {
            name: "console hexagons",
            route: "get /v1/admin/console/hexes",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/console/hexes?resolution=8".into(), None),
        },
        Endpoint {
            name: "console board",
            route: "get /v1/admin/console/board",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/console/board".into(), None),
        },
        Endpoint {
            name: "force-cancel an order",
            route: "post /v1/admin/orders/{order_id}/cancel",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/admin/orders/{}/cancel", w.doomed_order),
                    Some(json!({"reason": "customer called"})),
                )
            },
        },
        Endpoint {
            name: "reassign an order",
            route: "post /v1/admin/orders/{order_id}/reassign",
            allowed: "NNNY",
            public: false,
            // Paid, not accepted: the admin is allowed and answered 409.
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/admin/orders/{}/reassign", w.order),
                    Some(json!({"driver_id": null})),
                )
            },
        },
        Endpoint {
            name: "set a driver offline",
            route: "post /v1/admin/drivers/{driver_id}/offline",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/admin/drivers/{}/offline", w.spare_driver.id),
                    None,
                )
            },
        },
        Endpoint {
            name: "list events",
            route: "get /v1/admin/events",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/events?limit=5".into(), None),
        },
        Endpoint {
            name: "list dead letters",
            route: "get /v1/admin/dead-letters",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/dead-letters".into(), None),
        },
        Endpoint {
            name: "replay dead letter",
            route: "post /v1/admin/dead-letters/{id}/replay",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/admin/dead-letters/{}/replay", w.dead_letter),
                    Some(json!({})),
                )
            },
        },
        Endpoint {
            name: "register webhook",
            route: "post /v1/admin/webhooks",
            allowed: "NNNY",
            public: false,
            call: |_, _| {
                (
                    M::POST,
                    "/v1/admin/webhooks".into(),
                    Some(
                        json!({"url": "https://hooks.example.com/in", "event_types": ["order.paid"]}),
                    ),
                )
            },
        },
        Endpoint {
            name: "list webhooks",
            route: "get /v1/admin/webhooks",
            allowed: "NNNY",
            public: false,
            call: |_, _| (M::GET, "/v1/admin/webhooks".into(), None),
        },
        Endpoint {
            name: "get webhook",
            route: "get /v1/admin/webhooks/{webhook_id}",
            allowed: "NNNY",
            public: false,
            call: |w, _| (M::GET, format!("/v1/admin/webhooks/{}", w.webhook), None),
        },
        Endpoint {
            name: "enable webhook",
            route: "patch /v1/admin/webhooks/{webhook_id}",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::PATCH,
                    format!("/v1/admin/webhooks/{}", w.webhook),
                    Some(json!({"enabled": true})),
                )
            },
        },
        Endpoint {
            name: "webhook deliveries",
            route: "get /v1/admin/webhooks/{webhook_id}/deliveries",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::GET,
                    format!("/v1/admin/webhooks/{}/deliveries", w.webhook),
                    None,
                )
            },
        },
        Endpoint {
            name: "delete webhook",
            route: "delete /v1/admin/webhooks/{webhook_id}",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::DELETE,
                    format!("/v1/admin/webhooks/{}", w.doomed_webhook),
                    None,
                )
            },
        },
        Endpoint {
            name: "create restaurant",
            route: "post /v1/restaurants",
            allowed: "NYNY",
            public: false,
            call: |_, _| {
                (
                    M::POST,
                    "/v1/restaurants".into(),
                    Some(
                        json!({"name": "R", "location": {"lat": 57.7, "lng": 11.9}, "address": "A"}),
                    ),
                )
            },
        },
        Endpoint {
            name: "search",
            route: "get /v1/restaurants",
            allowed: "YYYY",
            public: true,
            call: |_, _| {
                (
                    M::GET,
                    format!("/v1/restaurants?lat={}&lng={}&q=fish", HERE.0, HERE.1),
                    None,
                )
            },
        },
        Endpoint {
            name: "get restaurant",
            route: "get /v1/restaurants/{restaurant_id}",
            allowed: "YYYY",
            public: true,
            call: |w, _| (M::GET, format!("/v1/restaurants/{}", w.restaurant), None),
        },
        Endpoint {
            name: "patch restaurant",
            route: "patch /v1/restaurants/{restaurant_id}",
            allowed: "NYNY",
            public: false,
            call: |w, _| {
                (
                    M::PATCH,
                    format!("/v1/restaurants/{}", w.restaurant),
                    Some(json!({"avg_prep_time_s": 600})),
                )
            },
        },
        Endpoint {
            name: "get menu",
            route: "get /v1/restaurants/{restaurant_id}/menu",
            allowed: "YYYY",
            public: true,
            call: |w, _| {
                (
                    M::GET,
                    format!("/v1/restaurants/{}/menu", w.restaurant),
                    None,
                )
            },
        },
        Endpoint {
            name: "add menu items",
            route: "post /v1/restaurants/{restaurant_id}/menu",
            allowed: "NYNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/restaurants/{}/menu", w.restaurant),
                    Some(json!({"items": [{"name": "Tea", "price_cents": 2_000}]})),
                )
            },
        },
        Endpoint {
            name: "patch menu item",
            route: "patch /v1/restaurants/{restaurant_id}/menu/{menu_item_id}",
            allowed: "NYNY",
            public: false,
            call: |w, _| {
                (
                    M::PATCH,
                    format!("/v1/restaurants/{}/menu/{}", w.restaurant, w.item),
                    Some(json!({"available": true})),
                )
            },
        },
        Endpoint {
            name: "get cart",
            route: "get /v1/cart",
            allowed: "YNNN",
            public: false,
            call: |_, _| (M::GET, "/v1/cart".into(), None),
        },
        Endpoint {
            name: "add to cart",
            route: "post /v1/cart/items",
            allowed: "YNNN",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    "/v1/cart/items".into(),
                    Some(json!({"menu_item_id": w.item})),
                )
            },
        },
        Endpoint {
            name: "set cart quantity",
            route: "put /v1/cart/items/{menu_item_id}",
            allowed: "YNNN",
            public: false,
            call: |w, _| {
                (
                    M::PUT,
                    format!("/v1/cart/items/{}", w.item),
                    Some(json!({"quantity": 2})),
                )
            },
        },
        Endpoint {
            name: "remove from cart",
            route: "delete /v1/cart/items/{menu_item_id}",
            allowed: "YNNN",
            public: false,
            call: |w, _| (M::DELETE, format!("/v1/cart/items/{}", w.item), None),
        },
        Endpoint {
            name: "clear cart",
            route: "delete /v1/cart",
            allowed: "YNNN",
            public: false,
            call: |_, _| (M::DELETE, "/v1/cart".into(), None),
        },
        Endpoint {
            name: "checkout",
            route: "post /v1/cart/checkout",
            allowed: "YNNN",
            public: false,
            call: |_, _| {
                (
                    M::POST,
                    "/v1/cart/checkout".into(),
                    Some(
                        json!({"delivery": {"lat": 57.71, "lng": 11.98, "address": "A"}, "payment": {"method": "card", "token": "tok_ok"}}),
                    ),
                )
            },
        },
        Endpoint {
            name: "place order",
            route: "post /v1/orders",
            allowed: "YNNN",
            public: false,
            call: |w, _| (M::POST, "/v1/orders".into(), Some(order_body(w))),
        },
        Endpoint {
            name: "list orders",
            route: "get /v1/orders",
            allowed: "YYYY",
            public: false,
            call: |_, _| (M::GET, "/v1/orders".into(), None),
        },
        Endpoint {
            name: "get order",
            route: "get /v1/orders/{order_id}",
            allowed: "YYYY",
            public: false,
            call: |w, _| (M::GET, format!("/v1/orders/{}", w.order), None),
        },
        Endpoint {
            name: "order history",
            route: "get /v1/orders/{order_id}/history",
            allowed: "YYYY",
            public: false,
            call: |w, _| (M::GET, format!("/v1/orders/{}/history", w.order), None),
        },
        Endpoint {
            name: "order payments",
            route: "get /v1/orders/{order_id}/payments",
            allowed: "YYYY",
            public: false,
            call: |w, _| (M::GET, format!("/v1/orders/{}/payments", w.order), None),
        },
        Endpoint {
            name: "accept order (restaurant step)",
            route: "post /v1/orders/{order_id}/status",
            allowed: "NYNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/orders/{}/status", w.order),
                    Some(json!({"status": "accepted"})),
                )
            },
        },
        Endpoint {
            name: "pick up (driver step)",
            route: "post /v1/orders/{order_id}/status",
            allowed: "NNYY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/orders/{}/status", w.order),
                    Some(json!({"status": "picked_up"})),
                )
            },
        },
        Endpoint {
            name: "cancel order",
            route: "post /v1/orders/{order_id}/cancel",
            allowed: "YNNY",
            public: false,
            call: |w, _| (M::POST, format!("/v1/orders/{}/cancel", w.order), None),
        },
        Endpoint {
            name: "refund",
            route: "post /v1/orders/{order_id}/refund",
            allowed: "NNNY",
            public: false,
            call: |w, _| {
                (
                    M::POST,
                    format!("/v1/orders/{}/refund", w.order),
                    Some(json!({"amount_cents": 100, "reason": "r"})),
                )
            },
        },
        Endpoint {
            name: "driver availability",
            route: "put /v1/drivers/{driver_id}/availability",
            allowed: "NNYY",
            public: false,
            call: |w, _| {
                (
                    M::PUT,
                    format!("/v1/drivers/{}/availability", w.driver.id),
                    Some(json!({"status": "available"})),
                )
            },
        },
        Endpoint {
            name: "nearby drivers",
            route: "get /v1/drivers/nearby",
            allowed: "NNNY",
            public: false,
            call: |_, _| {
                (
                    M::GET,
                    format!("/v1/drivers/nearby?lat={}&lng={}", HERE.0, HERE.1),
                    None,
                )
            },
        },
        Endpoint {
            name: "get driver",
            route: "get /v1/drivers/{driver_id}",
            allowed: "NNYY",
            public: false,
            call: |w, _| (M::GET, format!("/v1/drivers/{}", w.driver.id), None),
        },
        Endpoint {
            name: "driver track",
            route: "get /v1/drivers/{driver_id}/track",
            allowed: "NNYY",
            public: false,
            call: |w, _| (M::GET, format!("/v1/drivers/{}/track", w.driver.id), None),
        },
        Endpoint {
            // The order is not delivered yet: its parties get the 409
            // `not_delivered`, anyone else the 404 of an order they may
            // not know (tracks.rs has a delivered one).
            name: "order route",
            route: "get /v1/orders/{order_id}/route",
            allowed: "YYYY",
            public: false,
            call: |w, _| (M::GET, format!("/v1/orders/{}/route", w.order), None),
        },
        Endpoint {
            name: "decline offer",
            route: "post /v1/offers/{offer_id}/decline",
            allowed: "NNYN",
            public: false,
            call: |w, _| (M::POST, format!("/v1/offers/{}/decline", w.offer), None),
        },
        Endpoint {
            name: "accept offer",
            route: "post /v1/offers/{offer_id}/accept",
            allowed: "NNYN",
            public: false,
            call: |w, _| (M::POST, format!("/v1/offers/{}/accept", w.offer), None),
        },
        // Last: a logout ends the caller's access token for every call
        // after it.
        Endpoint {
            name: "logout",
            route: "post /v1/auth/logout",
            allowed: "YYYY",
            public: false,
            call: |_, _| {
                (
                    M::POST,
                    "/v1/auth/logout".into(),
                    Some(json!({"refresh_token": "not-a-live-token"})),
                )
            },
        },
    ]
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied,
    Unauthenticated,
}

fn expected(e: &Endpoint, caller: Caller) -> Outcome {
    if e.public {
        return Outcome::Allowed;
    }
    let column = match caller {
        Caller::Customer => 0,
        Caller::Restaurant => 1,
        Caller::Driver => 2,
        Caller::Admin => 3,
        Caller::NoToken | Caller::Expired | Caller::Banned => return Outcome::Unauthenticated,
    };
    match e.allowed.as_bytes()[column] {
        b'Y' => Outcome::Allowed,
        _ => Outcome::Denied,
    }
}

dual_test! {
    async fn every_endpoint_for_every_caller() {
        let w = World::new().await;
        let all = endpoints();
        let mut failures = Vec::new();
        for e in &all {
            for caller in CALLERS {
                let (method, uri, body) = (e.call)(&w, caller);
                let r = w.app.call(method, &uri, w.token(caller), body).await;
                let status = r.status.as_u16();
                assert!(status < 500, "{} as {caller:?}: {status} {}", e.name, r.body);
                let got = match status {
                    401 => Outcome::Unauthenticated,
                    403 | 404 => Outcome::Denied,
                    _ => Outcome::Allowed,
                };
                let want = expected(e, caller);
                if got != want {
                    failures.push(format!("{} as {caller:?}: expected {want:?}, got {status} {}", e.name, r.body));
                }
                if status >= 400 {
                    assert_error_body(&r.body);
                }
            }
        }
        assert!(failures.is_empty(), "{} of {} cells wrong:\n{}", failures.len(), all.len() * CALLERS.len(), failures.join("\n"));
        // Every REST operation of the api is in the matrix: the document's
        // operations under /v1, less those other crates serve.
        let served_elsewhere = [
            "post /v1/drivers/{driver_id}/locations",
            "get /v1/drivers/stream",
            "get /v1/ws",
        ];
        let doc = serde_json::to_value(api::openapi::document()).unwrap();
        let mut documented: Vec<String> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let route = format!("{method} {path}");
                if path.starts_with("/v1/") && !served_elsewhere.contains(&route.as_str()) {
                    documented.push(route);
                }
            }
        }
        let mut covered: Vec<String> = all.iter().map(|e| e.route.to_owned()).collect();
        documented.sort();
        covered.sort();
        covered.dedup();
        assert_eq!(covered, documented, "role matrix rows vs documented REST operations");
    }
}
