//! Admin listings: filters, keyset pages that neither skip nor repeat, and
//! clear 400s for bad parameters.

use std::collections::HashSet;

use auth::Role;
use axum::http::Method;
use engine::UserId;
use serde_json::{Value, json};

use crate::common::*;

/// Signs up `name` <`email`> with `role`; its id.
async fn signup(app: &TestApp, name: &str, email: &str, role: Role) -> UserId {
    let r = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": email, "password": "correct horse battery", "name": name, "role": role.as_str()}),
        )
        .await;
    r.assert_ok(201)["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Every page of `uri` (which has its own `?…`) at `limit`, following
/// `next_cursor`; the items under `key`, in order.
async fn all_pages(
    app: &TestApp,
    token: Option<&str>,
    uri: &str,
    key: &str,
    limit: u32,
) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut page_uri = format!("{uri}&limit={limit}");
        if let Some(c) = &cursor {
            page_uri.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&page_uri, token).await;
        let body = r.assert_ok(200).clone();
        let page = body[key].as_array().unwrap();
        assert!(page.len() <= limit as usize);
        items.extend(page.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
    panic!("more than 100 pages");
}

fn ids(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|v| v[field].as_str().unwrap().to_owned())
        .collect()
}

/// Newest first by creation time, then id; no id twice.
#[track_caller]
fn newest_first(items: &[Value], id_field: &str) {
    let keys: Vec<(i64, String)> = items
        .iter()
        .map(|v| {
            (
                v["created_at"].as_i64().unwrap(),
                v[id_field].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "newest first");
    let unique: HashSet<&String> = keys.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), keys.len(), "a row repeated");
}

dual_test! {
    async fn users_filter_and_page() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let anna = signup(&app, "Anna Lind", &format!("anna-{tag}@example.com"), Role::Customer).await;
        let bo = signup(&app, "Bo 100% Berg", &format!("bo-{tag}@example.com"), Role::Driver).await;
        let cleo = signup(&app, "Cleo", &format!("CLEO-{tag}@Example.com"), Role::Restaurant).await;
        for i in 0..5 {
            signup(&app, &format!("Filler {i}"), &format!("filler{i}-{tag}@example.com"), Role::Customer).await;
        }
        app.post(&format!("/v1/admin/users/{bo}/ban"), admin.token(), json!({})).await.assert_ok(200);
        let token = admin.token();

        // Everyone, in pages of 3: the same as one page of 100.
        let paged = all_pages(&app, token, "/v1/admin/users?", "users", 3).await;
        let whole = all_pages(&app, token, "/v1/admin/users?", "users", 100).await;
        assert_eq!(ids(&paged, "user_id"), ids(&whole, "user_id"));
        assert_eq!(paged.len(), 9, "8 signups and the admin");
        newest_first(&paged, "user_id");
        assert!(paged.iter().all(|u| u.get("password_hash").is_none()));

        let list = |q: &'static str| {
            let app = &app;
            async move { all_pages(app, token, &format!("/v1/admin/users?{q}"), "users", 100).await }
        };
        assert_eq!(ids(&list("role=driver").await, "user_id"), [bo.to_string()]);
        let banned = list("banned=true").await;
        assert_eq!(ids(&banned, "user_id"), [bo.to_string()]);
        assert_eq!(banned[0]["banned"], true);
        assert!(banned[0]["banned_at"].is_i64());
        assert_eq!(list("banned=false").await.len(), 8);
        assert_eq!(list("role=driver&banned=false").await.len(), 0);
        // Text: name or email, case-insensitive, `%` literal.
        assert_eq!(ids(&list("q=anna%20LIND").await, "user_id"), [anna.to_string()]);
        assert_eq!(ids(&list("q=cleo-").await, "user_id"), [cleo.to_string()]);
        assert_eq!(ids(&list("q=100%25").await, "user_id"), [bo.to_string()]);
        assert_eq!(list("q=1%25").await.len(), 0, "% is not a wildcard");
        assert_eq!(list("q=filler&role=customer").await.len(), 5);
        assert_eq!(list("q=%20%20").await.len(), 9, "blank: no filter");

        for (q, code) in [
            ("role=chef", "invalid_role"),
            ("banned=maybe", "invalid_query"),
            ("limit=0", "invalid_limit"),
            ("limit=101", "invalid_limit"),
            ("cursor=abc", "invalid_cursor"),
            ("cursor=1_2", "invalid_cursor"),
        ] {
            app.get(&format!("/v1/admin/users?{q}"), token).await.assert_error(400, code);
        }
        let long = "x".repeat(101);
        app.get(&format!("/v1/admin/users?q={long}"), token).await.assert_error(400, "invalid_text");
        let customer = app.user(Role::Customer).await;
        app.get("/v1/admin/users", customer.token()).await.assert_error(403, "forbidden");
    }
}

dual_test! {
    async fn restaurants_filter_and_page() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let token = admin.token();
        let first = app.user(Role::Restaurant).await;
        let second = app.user(Role::Restaurant).await;
        let mut made = Vec::new();
        for (owner, name) in [(&first, "Pho Saigon"), (&first, "Pizza Napoli"), (&second, "Sushi Bar")] {
            let r = app
                .post(
                    "/v1/restaurants",
                    owner.token(),
                    json!({"name": name, "location": {"lat": HERE.0, "lng": HERE.1}, "address": "Kungsgatan 1"}),
                )
                .await;
            made.push(r.assert_ok(201)["restaurant_id"].as_str().unwrap().to_owned());
        }
        app.call(
            Method::PATCH,
            &format!("/v1/restaurants/{}", made[1]),
            first.token(),
            Some(json!({"accepting_orders": false})),
        )
        .await
        .assert_ok(200);

        let paged = all_pages(&app, token, "/v1/admin/restaurants?", "restaurants", 1).await;
        assert_eq!(paged.len(), 3);
        newest_first(&paged, "restaurant_id");
        let mut expected = made.clone();
        expected.reverse();
        assert_eq!(ids(&paged, "restaurant_id"), expected);

        let list = |q: String| {
            let app = &app;
            async move { ids(&all_pages(app, token, &format!("/v1/admin/restaurants?{q}"), "restaurants", 100).await, "restaurant_id") }
        };
        assert_eq!(list(format!("owner_id={}", first.id)).await, [made[1].clone(), made[0].clone()]);
        assert_eq!(list("accepting=false".into()).await, [made[1].clone()]);
        assert_eq!(list(format!("accepting=true&owner_id={}", first.id)).await, [made[0].clone()]);
        assert_eq!(list("q=PIZZA".into()).await, [made[1].clone()]);
        assert_eq!(list("q=kungsgatan".into()).await.len(), 3, "the address too");
        app.get("/v1/admin/restaurants?owner_id=nope", token).await.assert_error(400, "invalid_query");
        app.get("/v1/admin/restaurants?accepting=2", token).await.assert_error(400, "invalid_query");
        app.get("/v1/admin/restaurants", first.token()).await.assert_error(403, "forbidden");
    }
}

dual_test! {
    async fn drivers_with_their_live_status() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let token = admin.token();
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let busy_driver = app.user(Role::Driver).await;
        let busy = busy_driver.id;
        let free = signup(&app, "Free Bird", &format!("free-{tag}@example.com"), Role::Driver).await;
        let idle = signup(&app, "Idle Ida", &format!("idle-{tag}@example.com"), Role::Driver).await;
        app.ping(busy.into(), HERE.0, HERE.1);
        let order = app.place_order(&customer, restaurant).await;
        assert_eq!(app.offer_of(order).driver_id, busy.into());
        app.accept(&busy_driver, &app.offer_of(order)).await.assert_ok(200);
        app.ping(free.into(), HERE.0 + 0.01, HERE.1);

        let list = |q: &'static str| {
            let app = &app;
            async move { all_pages(app, token, &format!("/v1/admin/drivers?{q}"), "drivers", 2).await }
        };
        let all = list("").await;
        assert_eq!(all.len(), 3);
        newest_first(&all, "driver_id");
        let by_id = |id: UserId| all.iter().find(|d| d["driver_id"] == json!(id)).unwrap().clone();
        let b = by_id(busy);
        assert_eq!((b["status"].clone(), b["current_order"].clone()), (json!("busy"), json!(order)));
        assert!(b["lat"].is_f64() && b["seen_at"].is_i64());
        assert_eq!(by_id(free)["status"], "available");
        let i = by_id(idle);
        assert_eq!((i["status"].clone(), i["lat"].clone()), (json!("offline"), Value::Null));
        assert_eq!(ids(&list("status=busy").await, "driver_id"), [busy.to_string()]);
        assert_eq!(ids(&list("status=available").await, "driver_id"), [free.to_string()]);
        assert_eq!(ids(&list("status=offline").await, "driver_id"), [idle.to_string()]);
        assert_eq!(ids(&list("q=bird").await, "driver_id"), [free.to_string()]);
        assert_eq!(list("banned=true").await.len(), 0);
        let _ = tag;
        app.get("/v1/admin/drivers?status=asleep", token).await.assert_error(400, "invalid_status");
        app.get("/v1/admin/drivers", customer.token()).await.assert_error(403, "forbidden");
    }
}

dual_test! {
    async fn orders_filter_by_party_status_and_time() {
        // A manual clock: each order placed a second after the last.
        let clock = clock::ManualClock::new(1_763_700_000_000);
        let app = TestApp::with_clock(clock.clone()).await;
        let admin = app.admin().await;
        let token = admin.token();
        let owner = app.user(Role::Restaurant).await;
        let here = app.restaurant(&owner).await;
        let there = app.restaurant(&owner).await;
        let anna = app.user(Role::Customer).await;
        let bo = app.user(Role::Customer).await;
        let driver = app.user(Role::Driver).await;
        app.ping(driver.driver_id(), HERE.0, HERE.1);
        let assigned = app.place_order(&anna, here).await;
        app.accept(&driver, &app.offer_of(assigned)).await.assert_ok(200);
        let mut placed = vec![assigned];
        for (customer, restaurant) in [(&anna, there), (&bo, here), (&bo, there), (&anna, here)] {
            clock.advance(1_000);
            placed.push(app.place_paid_order(customer, restaurant).await);
        }
        let paged = all_pages(&app, token, "/v1/admin/orders?", "orders", 2).await;
        newest_first(&paged, "order_id");
        let mut expected: Vec<String> = placed.iter().map(|o| o.to_string()).collect();
        expected.reverse();
        assert_eq!(ids(&paged, "order_id"), expected);

        let list = |q: String| {
            let app = &app;
            async move { ids(&all_pages(app, token, &format!("/v1/admin/orders?{q}"), "orders", 100).await, "order_id") }
        };
        let s = |i: usize| placed[i].to_string();
        assert_eq!(list(format!("customer_id={}", bo.id)).await, [s(3), s(2)]);
        assert_eq!(list(format!("restaurant_id={there}")).await, [s(3), s(1)]);
        assert_eq!(list(format!("driver_id={}", driver.id)).await, [s(0)]);
        assert_eq!(list("status=accepted".into()).await, [s(0)]);
        assert_eq!(list(format!("status=paid&customer_id={}&restaurant_id={here}", anna.id)).await, [s(4)]);
        // A time range: from the second order (inclusive) to the fourth
        // (exclusive), by their stored creation times.
        let created = |i: usize| paged.iter().find(|o| o["order_id"] == json!(placed[i])).unwrap()["created_at"].as_i64().unwrap();
        let (from, until) = (created(1), created(3));
        assert_eq!(until - from, 2_000);
        assert_eq!(list(format!("from_ms={from}&until_ms={until}")).await, [s(2), s(1)]);
        assert_eq!(list(format!("from_ms={from}&until_ms={}", until + 1)).await, [s(3), s(2), s(1)]);
        assert_eq!(list(format!("from_ms={}", created(4) + 1)).await.len(), 0);

        app.get("/v1/admin/orders?status=lost", token).await.assert_error(400, "invalid_status");
        app.get("/v1/admin/orders?from_ms=-1", token).await.assert_error(400, "invalid_query");
        app.get("/v1/admin/orders?from_ms=10&until_ms=10", token).await.assert_error(422, "invalid_range");
        app.get("/v1/admin/orders?driver_id=x", token).await.assert_error(400, "invalid_query");
        app.get("/v1/admin/orders", anna.token()).await.assert_error(403, "forbidden");
    }
}
