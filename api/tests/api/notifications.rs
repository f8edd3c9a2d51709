//! The notification feed: the `notifications` consumer turns order events
//! into notifications for the people they concern (customer, restaurant,
//! courier, admins), once per recipient and event whatever the stream
//! redelivers, skipping backfilled history; each user reads, counts and
//! marks their own over REST, and each stored notification is pushed once.

use std::sync::Arc;

use api::consumers::notify::Push;
use engine::UserId;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::common::*;

/// Records every push.
#[derive(Default)]
struct Pushed(Mutex<Vec<(UserId, contract::Notification)>>);

impl Push for Pushed {
    fn push(&self, user: UserId, n: &contract::Notification) {
        self.0.lock().push((user, n.clone()));
    }
}

impl Pushed {
    fn of(&self, user: UserId) -> Vec<(i64, String)> {
        self.0
            .lock()
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, n)| (n.id, n.event_type.clone()))
            .collect()
    }
}

/// `user`'s whole feed as (id, event type).
async fn feed(app: &TestApp, user: &User) -> Vec<(i64, String)> {
    let r = app.get("/v1/notifications", user.token()).await;
    r.assert_ok(200)["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_i64().unwrap(),
                n["event_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits until `user` has `n` notifications.
async fn feed_of_len(app: &TestApp, user: &User, n: usize) -> Vec<(i64, String)> {
    eventually(|| async { feed(app, user).await.len() >= n }).await;
    feed(app, user).await
}

fn pairs(items: &[(i64, &str)]) -> Vec<(i64, String)> {
    items.iter().map(|(i, t)| (*i, (*t).to_owned())).collect()
}

dual_test! {
    async fn each_party_hears_of_its_order_once_and_marks_it_read() {
        let pushed = Arc::new(Pushed::default());
        let app = TestApp::with_notifications(pushed.clone()).await;
        let owner = app.user(auth::Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(auth::Role::Customer).await;
        let order = app.place_order(&customer, restaurant).await;

        // The customer hears of the payment and the acceptance; the kitchen
        // of the new order only (it accepted it itself).
        let customer_feed = feed_of_len(&app, &customer, 2).await;
        assert_eq!(customer_feed, pairs(&[(1, "order.paid"), (2, "order.accepted")]));
        assert_eq!(feed_of_len(&app, &owner, 1).await, pairs(&[(1, "order.paid")]));
        let r = app.get("/v1/notifications", customer.token()).await;
        let first = &r.assert_ok(200)["notifications"][0];
        assert_eq!(first["order_id"], order.to_string());
        assert_eq!(first["restaurant_id"], restaurant.to_string());
        assert_eq!(first["status"], "paid");
        assert!(first["text"].as_str().unwrap().len() > 5, "{first}");
        assert!(first.get("read_at_ms").is_none(), "{first}");
        // Pushed once each, in id order, after being stored.
        eventually(|| async { pushed.of(customer.id).len() == 2 }).await;
        assert_eq!(pushed.of(customer.id), customer_feed);
        assert_eq!(pushed.of(owner.id), pairs(&[(1, "order.paid")]));

        // Paging with the cursor.
        let r = app.get("/v1/notifications?after=1&limit=1", customer.token()).await;
        let body = r.assert_ok(200);
        assert_eq!(body["notifications"].as_array().unwrap().len(), 1);
        assert_eq!(body["notifications"][0]["id"], 2);
        assert_eq!(body["next_after"], 2);
        let r = app.get("/v1/notifications?after=2", customer.token()).await;
        let body = r.assert_ok(200);
        assert_eq!(body["notifications"], json!([]));
        assert!(body.get("next_after").is_none(), "{body}");

        // Unread, one read, all read.
        let r = app.get("/v1/notifications/unread", customer.token()).await;
        assert_eq!(r.assert_ok(200), &json!({"unread": 2, "last_id": 2}));
        let r = app.post("/v1/notifications/1/read", customer.token(), json!({})).await;
        let read_at = r.assert_ok(200)["read_at_ms"].as_i64().unwrap();
        let r = app.post("/v1/notifications/1/read", customer.token(), json!({})).await;
        assert_eq!(r.assert_ok(200)["read_at_ms"], read_at, "the first time is kept");
        let r = app.get("/v1/notifications/unread", customer.token()).await;
        assert_eq!(r.assert_ok(200)["unread"], 1);
        app.post("/v1/notifications/9/read", customer.token(), json!({}))
            .await
            .assert_error(404, "not_found");
        let r = app.post("/v1/notifications/read-all", customer.token(), json!({"up_to": 1})).await;
        assert_eq!(r.assert_ok(200), &json!({"marked": 0}));
        let r = app.post("/v1/notifications/read-all", customer.token(), json!({})).await;
        assert_eq!(r.assert_ok(200), &json!({"marked": 1}));
        let r = app.get("/v1/notifications/unread", customer.token()).await;
        assert_eq!(r.assert_ok(200), &json!({"unread": 0, "last_id": 2}));
        // The owner's feed is untouched by the customer's marks.
        let r = app.get("/v1/notifications/unread", Some(&app.owner_token(restaurant))).await;
        assert_eq!(r.assert_ok(200)["unread"], 1);
    }
}

dual_test! {
    async fn bad_cursors_and_pages_are_refused() {
        let app = TestApp::with_notifications(Arc::new(Pushed::default())).await;
        let user = app.user(auth::Role::Customer).await;
        for (query, code) in [
            ("after=-1", "invalid_query"),
            ("after=x", "invalid_query"),
            ("after=1.5", "invalid_query"),
            ("limit=0", "invalid_limit"),
            ("limit=201", "invalid_limit"),
            ("limit=-3", "invalid_query"),
        ] {
            app.get(&format!("/v1/notifications?{query}"), user.token())
                .await
                .assert_error(400, code);
        }
        app.post("/v1/notifications/x/read", user.token(), json!({}))
            .await
            .assert_error(400, "invalid_path");
        app.post("/v1/notifications/read-all", user.token(), json!({"up_to": -1}))
            .await
            .assert_error(400, "invalid_up_to");
        app.post("/v1/notifications/read-all", user.token(), json!({"all": true}))
            .await
            .assert_error(400, "invalid_body");
        app.get("/v1/notifications", None).await.assert_error(401, "missing_token");
    }
}

dual_test! {
    async fn admins_hear_of_failed_payments() {
        let app = TestApp::with_notifications(Arc::new(Pushed::default())).await;
        let admin = app.admin().await;
        let owner = app.user(auth::Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(auth::Role::Customer).await;
        let r = app
            .post("/v1/orders", customer.token(), app.order_body(restaurant, "tok_declined"))
            .await;
        assert_eq!(r.assert_ok(201)["status"], "payment_failed");
        assert_eq!(feed_of_len(&app, &admin, 1).await, pairs(&[(1, "payment.failed")]));
        assert_eq!(feed_of_len(&app, &customer, 1).await, pairs(&[(1, "payment.failed")]));
        // The kitchen never hears of an order that was not paid.
        assert_eq!(feed(&app, &owner).await, vec![]);
    }
}

dual_test! {
    async fn a_redelivered_or_backfilled_event_stores_nothing() {
        let app = TestApp::with_notifications(Arc::new(Pushed::default())).await;
        let owner = app.user(auth::Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(auth::Role::Customer).await;
        app.place_paid_order(&customer, restaurant).await;
        feed_of_len(&app, &customer, 1).await;
        let page = app
            .state
            .store
            .event_log()
            .list_events(
                &events::EventFilter {
                    event_type: Some(events::EventType::OrderPaid),
                    ..Default::default()
                },
                None,
                10,
            )
            .await
            .unwrap();
        let paid = &page.events[0];
        // The stream delivering it again (after a crash) stores nothing.
        let again = commerce::usecase::notify::record(&*app.state.store, paid, now_ms())
            .await
            .unwrap();
        assert!(again.is_empty(), "{again:?}");
        // History copied into the stream is not news.
        let mut old = paid.clone();
        old.id += 1_000;
        old.payload.body["backfilled"] = Value::Bool(true);
        let stored = commerce::usecase::notify::record(&*app.state.store, &old, now_ms())
            .await
            .unwrap();
        assert!(stored.is_empty(), "{stored:?}");
        // The same event under a new id would be news: the check is by id.
        old.payload.body["backfilled"] = Value::Bool(false);
        let stored = commerce::usecase::notify::record(&*app.state.store, &old, now_ms())
            .await
            .unwrap();
        assert_eq!(stored.len(), 2, "customer and restaurant");
        assert_eq!(stored[0].seq, 2);
        assert_eq!(feed(&app, &customer).await.len(), 2);
    }
}

dual_test! {
    async fn the_kitchen_lists_its_orders_by_status() {
        let app = TestApp::new().await;
        let owner = app.user(auth::Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let other_owner = app.user(auth::Role::Restaurant).await;
        let other = app.restaurant(&other_owner).await;
        let customer = app.user(auth::Role::Customer).await;
        let waiting = app.place_paid_order(&customer, restaurant).await;
        let accepted = app.place_order(&customer, restaurant).await;
        let newest = app.place_paid_order(&customer, restaurant).await;
        app.place_paid_order(&customer, other).await;
        let path = format!("/v1/restaurants/{restaurant}/orders");
        let ids = |r: &Reply| -> Vec<String> {
            r.assert_ok(200)["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_owned())
                .collect()
        };
        let r = app.get(&format!("{path}?status=paid"), owner.token()).await;
        assert_eq!(ids(&r), vec![newest.to_string(), waiting.to_string()]);
        let r = app.get(&format!("{path}?status=accepted"), owner.token()).await;
        assert_eq!(ids(&r), vec![accepted.to_string()]);
        // Paged newest first; an admin sees it too.
        let admin = app.admin().await;
        let r = app.get(&format!("{path}?limit=2"), admin.token()).await;
        assert_eq!(ids(&r), vec![newest.to_string(), accepted.to_string()]);
        let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
        let r = app.get(&format!("{path}?limit=2&cursor={cursor}"), admin.token()).await;
        assert_eq!(ids(&r), vec![waiting.to_string()]);
        assert!(r.body["next_cursor"].is_null(), "{}", r.body);
        // Others' restaurants, bad filters.
        app.get(&path, other_owner.token()).await.assert_error(403, "forbidden");
        app.get(&path, customer.token()).await.assert_error(403, "forbidden");
        app.get(&format!("/v1/restaurants/{}/orders", uuid::Uuid::new_v4()), owner.token())
            .await
            .assert_error(404, "not_found");
        app.get(&format!("{path}?status=cooking"), owner.token()).await.assert_error(400, "invalid_status");
        app.get(&format!("{path}?limit=0"), owner.token()).await.assert_error(400, "invalid_limit");
        app.get(&format!("{path}?cursor=x"), owner.token()).await.assert_error(400, "invalid_cursor");
        app.get("/v1/restaurants/nope/orders", owner.token()).await.assert_error(400, "invalid_path");
    }
}

dual_test! {
    async fn a_reassignment_tells_both_drivers() {
        let app = TestApp::with_notifications(Arc::new(Pushed::default())).await;
        let owner = app.user(auth::Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(auth::Role::Customer).await;
        let admin = app.admin().await;
        let (from, to) = (app.user(auth::Role::Driver).await, app.user(auth::Role::Driver).await);
        app.place_paid_order(&customer, restaurant).await;
        feed_of_len(&app, &customer, 1).await;
        let page = app
            .state
            .store
            .event_log()
            .list_events(&events::EventFilter::default(), None, 10)
            .await
            .unwrap();
        let paid = page.events.iter().find(|e| e.event_type == events::EventType::OrderPaid).unwrap();
        // `order.reassigned` as the dispatcher's reassign writes it
        // (docs/EVENTS.md): the admin took the order from one driver and
        // gave it to another.
        let mut moved = paid.clone();
        moved.id += 1_000;
        moved.event_type = events::EventType::OrderReassigned;
        moved.actor = events::Actor::User(admin.id.as_uuid());
        moved.payload.body["status_from"] = json!("accepted");
        moved.payload.body["status"] = json!("accepted");
        moved.payload.body["driver_from"] = json!(from.id.to_string());
        moved.payload.body["driver_id"] = json!(to.id.to_string());
        let stored = commerce::usecase::notify::record(&*app.state.store, &moved, now_ms())
            .await
            .unwrap();
        let told: Vec<UserId> = stored.iter().map(|n| n.new.user_id).collect();
        assert_eq!(told, vec![customer.id, owner.id, to.id, from.id]);
        let r = app.get("/v1/notifications", from.token()).await;
        let n = &r.assert_ok(200)["notifications"][0];
        assert_eq!(n["event_type"], "order.reassigned");
        assert_eq!(n["text"], "The order was taken from you by a dispatcher");
    }
}
