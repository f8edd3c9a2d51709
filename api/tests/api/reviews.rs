//! Ratings and reviews: only after delivery, only the ordering customer,
//! once per order, editable within the window (manual clock); hidden
//! reviews stop counting; averages exact.

use auth::Role;
use axum::http::Method;
use engine::{OrderId, RestaurantId};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::*;

const T0: i64 = 1_763_700_000_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

struct Scene {
    app: TestApp,
    clock: clock::ManualClock,
    admin: User,
    customer: User,
    restaurant: RestaurantId,
    driver: User,
}

async fn scene() -> Scene {
    let clock = clock::ManualClock::new(T0);
    // The search catalog follows reviews through the event stream.
    let app = TestApp::with_clock_and_consumers(clock.clone(), |state| {
        vec![Arc::new(api::consumers::catalog::CatalogSync::new(state))]
    })
    .await;
    let admin = app.admin().await;
    let owner = app.user(Role::Restaurant).await;
    let restaurant = app.restaurant(&owner).await;
    let customer = app.user(Role::Customer).await;
    let driver = app.user(Role::Driver).await;
    app.ping(driver.driver_id(), HERE.0, HERE.1);
    Scene {
        app,
        clock,
        admin,
        customer,
        restaurant,
        driver,
    }
}

impl Scene {
    /// An order of `customer`, carried by the driver up to `until`
    /// (`accepted` … `delivered`).
    async fn order(&self, customer: &User, until: &str) -> OrderId {
        self.order_at(self.restaurant, customer, until).await
    }

    /// [`Scene::order`] from `restaurant`.
    async fn order_at(&self, restaurant: RestaurantId, customer: &User, until: &str) -> OrderId {
        let order = self.app.place_order(customer, restaurant).await;
        if until == "accepted" {
            return order;
        }
        let offer = self.app.offer_of(order);
        self.app.accept(&self.driver, &offer).await.assert_ok(200);
        let owner = self.app.owner_token(restaurant);
        for (token, status) in [
            (owner.as_str(), "ready_for_pickup"),
            (self.driver.token.as_str(), "picked_up"),
            (self.driver.token.as_str(), "delivered"),
        ] {
            self.app
                .post(
                    &format!("/v1/orders/{order}/status"),
                    Some(token),
                    json!({"status": status}),
                )
                .await
                .assert_ok(200);
            if status == until {
                break;
            }
        }
        order
    }

    async fn review(&self, who: &User, order: OrderId, body: Value) -> Reply {
        self.app
            .post(&format!("/v1/orders/{order}/review"), who.token(), body)
            .await
    }

    async fn restaurant_reviews(&self) -> Value {
        let r = self
            .app
            .get(
                &format!("/v1/restaurants/{}/reviews", self.restaurant),
                None,
            )
            .await;
        r.assert_ok(200).clone()
    }

    async fn driver_reviews(&self, token: Option<&str>) -> Value {
        let r = self
            .app
            .get(&format!("/v1/drivers/{}/reviews", self.driver.id), token)
            .await;
        r.assert_ok(200).clone()
    }
}

fn stars(restaurant: i64, driver: Option<i64>) -> Value {
    match driver {
        Some(d) => {
            json!({"restaurant": {"stars": restaurant, "text": "Hot and fast"}, "driver": {"stars": d}})
        }
        None => json!({"restaurant": {"stars": restaurant}}),
    }
}

dual_test! {
    async fn only_the_customer_after_delivery_once_per_order() {
        let s = scene().await;
        // Not delivered yet: every stage before is refused.
        for until in ["accepted", "ready_for_pickup", "picked_up"] {
            let order = s.order(&s.customer, until).await;
            let r = s.review(&s.customer, order, stars(5, Some(5))).await;
            r.assert_error(409, "not_delivered");
            s.app.post(&format!("/v1/admin/orders/{order}/cancel"), s.admin.token(), json!({"reason": "test"})).await.assert_ok(200);
        }
        let order = s.order(&s.customer, "delivered").await;
        // Other parties and strangers.
        let stranger = s.app.user(Role::Customer).await;
        s.review(&stranger, order, stars(1, None)).await.assert_error(404, "not_found");
        s.review(&s.driver, order, stars(1, None)).await.assert_error(403, "forbidden");
        s.review(&s.admin, order, stars(1, None)).await.assert_error(403, "forbidden");
        s.app
            .post(&format!("/v1/orders/{order}/review"), None, stars(1, None))
            .await
            .assert_error(401, "missing_token");
        // Bad input.
        for (body, code) in [
            (json!({"restaurant": {"stars": 0}}), "invalid_rating"),
            (json!({"restaurant": {"stars": 6}}), "invalid_rating"),
            (json!({"restaurant": {"stars": 4}, "driver": {"stars": -1}}), "invalid_rating"),
            (json!({"restaurant": {"stars": 4, "text": "x".repeat(1001)}}), "invalid_text"),
            (json!({"restaurant": {"stars": 4.5}}), "invalid_body"),
            (json!({"driver": {"stars": 4}}), "invalid_body"),
            (json!({"restaurant": {"stars": 4}, "tip": 1}), "invalid_body"),
        ] {
            s.review(&s.customer, order, body).await.assert_error(400, code);
        }
        // The customer, once; racing twice, once.
        let racing = (0..3)
            .map(|_| request(Method::POST, &format!("/v1/orders/{order}/review"), s.customer.token(), Some(stars(4, Some(5)))))
            .collect();
        let replies = s.app.concurrently(racing).await;
        let created: Vec<&Reply> = replies.iter().filter(|r| r.status.as_u16() == 201).collect();
        assert_eq!(created.len(), 1, "{replies:?}");
        for r in replies.iter().filter(|r| r.status.as_u16() != 201) {
            r.assert_error(409, "already_reviewed");
        }
        let review = &created[0].body;
        assert_eq!(review["restaurant_stars"], 4);
        assert_eq!(review["restaurant_text"], "Hot and fast");
        assert_eq!(review["driver_stars"], 5);
        assert_eq!(review["driver_id"], json!(s.driver.id));
        assert_eq!(review["editable_until"], T0 + 7 * DAY_MS);
        // Readable by the order's parties.
        for who in [&s.customer, &s.driver, &s.admin] {
            let r = s.app.get(&format!("/v1/orders/{order}/review"), who.token()).await;
            assert_eq!(r.assert_ok(200)["review_id"], review["review_id"]);
        }
        s.app.get(&format!("/v1/orders/{order}/review"), stranger.token()).await.assert_error(404, "not_found");
    }
}

dual_test! {
    async fn edits_within_the_window_only() {
        let s = scene().await;
        let order = s.order(&s.customer, "delivered").await;
        let uri = format!("/v1/orders/{order}/review");
        s.app
            .call(Method::PUT, &uri, s.customer.token(), Some(stars(2, None)))
            .await
            .assert_error(404, "not_found");
        s.review(&s.customer, order, stars(2, Some(3))).await.assert_ok(201);
        s.clock.advance(7 * DAY_MS);
        // Access tokens expire on the same clock: fresh ones.
        let fresh = |user: &User, role: Role| {
            s.app.token_issued_ago(auth::Principal { user_id: user.id, role }, 0)
        };
        let customer = fresh(&s.customer, Role::Customer);
        let driver = fresh(&s.driver, Role::Driver);
        let r = s.app.call(Method::PUT, &uri, Some(&customer), Some(stars(5, None))).await;
        let body = r.assert_ok(200);
        assert_eq!((body["restaurant_stars"].clone(), body["driver_stars"].clone()), (json!(5), Value::Null));
        assert_eq!(body["updated_at"], T0 + 7 * DAY_MS);
        // The driver rating left out is gone from the driver's count.
        assert_eq!(s.driver_reviews(Some(&driver)).await["rating"]["count"], 0);
        s.clock.advance(1);
        let r = s.app.call(Method::PUT, &uri, Some(&customer), Some(stars(1, None))).await;
        r.assert_error(409, "edit_window_closed");
        assert_eq!(r.body["error"]["editable_until"], (T0 + 7 * DAY_MS).to_string());
        s.app.call(Method::PUT, &uri, Some(&driver), Some(stars(1, None))).await.assert_error(403, "forbidden");
        assert_eq!(s.restaurant_reviews().await["rating"]["average"], 5.0);
    }
}

dual_test! {
    async fn averages_are_exact_and_hidden_reviews_stop_counting() {
        let s = scene().await;
        let mut review_ids = Vec::new();
        // Restaurant stars 5, 4, 4 (average 4.33, total 13); the driver
        // is rated 5 and 2 (3.5), once not at all.
        for (r, d) in [(5, Some(5)), (4, Some(2)), (4, None)] {
            let customer = s.app.user(Role::Customer).await;
            let order = s.order(&customer, "delivered").await;
            let body = s.review(&customer, order, stars(r, d)).await.assert_ok(201).clone();
            review_ids.push(body["review_id"].as_str().unwrap().to_owned());
            s.clock.advance(1_000);
        }
        let listed = s.restaurant_reviews().await;
        assert_eq!(listed["rating"], json!({"average": 4.33, "count": 3, "stars_total": 13}));
        let newest_first: Vec<&str> = listed["reviews"].as_array().unwrap().iter().map(|r| r["review_id"].as_str().unwrap()).collect();
        let mut expected: Vec<&str> = review_ids.iter().map(|s| s.as_str()).collect();
        expected.reverse();
        assert_eq!(newest_first, expected);
        let driver = s.driver_reviews(s.driver.token()).await;
        assert_eq!(driver["rating"], json!({"average": 3.5, "count": 2, "stars_total": 7}));
        assert_eq!(driver["reviews"].as_array().unwrap().len(), 2);
        // Paging: one at a time, same order.
        let first = s.app.get(&format!("/v1/restaurants/{}/reviews?limit=1", s.restaurant), None).await;
        let first = first.assert_ok(200);
        assert_eq!(first["reviews"][0]["review_id"], expected[0]);
        let cursor = first["next_cursor"].as_str().unwrap();
        let second = s.app.get(&format!("/v1/restaurants/{}/reviews?limit=1&cursor={cursor}", s.restaurant), None).await;
        assert_eq!(second.assert_ok(200)["reviews"][0]["review_id"], expected[1]);

        // Hide the 5-star review: it stops counting for both.
        let hide = format!("/v1/admin/reviews/{}/hide", review_ids[0]);
        s.app.post(&hide, s.customer.token(), json!({"reason": "x"})).await.assert_error(403, "forbidden");
        s.app.post(&hide, s.admin.token(), json!({"reason": " "})).await.assert_error(400, "invalid_reason");
        let r = s.app.post(&hide, s.admin.token(), json!({"reason": "abusive language"})).await;
        let body = r.assert_ok(200);
        assert_eq!((body["hidden"].clone(), body["hidden_reason"].clone()), (json!(true), json!("abusive language")));
        let listed = s.restaurant_reviews().await;
        assert_eq!(listed["rating"], json!({"average": 4.0, "count": 2, "stars_total": 8}));
        assert_eq!(listed["reviews"].as_array().unwrap().len(), 2, "hidden: not listed publicly");
        assert_eq!(s.driver_reviews(s.driver.token()).await["rating"], json!({"average": 2.0, "count": 1, "stars_total": 2}));
        // Admins still see it in the driver's listing, marked.
        let for_admin = s.driver_reviews(s.admin.token()).await;
        let hidden: Vec<&Value> = for_admin["reviews"].as_array().unwrap().iter().filter(|r| r["hidden"] == true).collect();
        assert_eq!(hidden.len(), 1);
        assert_eq!(for_admin["rating"]["count"], 1);
        // Hiding again keeps the first reason; unhiding counts it again.
        let again = s.app.post(&hide, s.admin.token(), json!({"reason": "other"})).await;
        assert_eq!(again.assert_ok(200)["hidden_reason"], "abusive language");
        let unhide = format!("/v1/admin/reviews/{}/unhide", review_ids[0]);
        s.app.call(Method::POST, &unhide, s.admin.token(), None).await.assert_ok(200);
        assert_eq!(s.restaurant_reviews().await["rating"], json!({"average": 4.33, "count": 3, "stars_total": 13}));
        s.app
            .call(Method::POST, &format!("/v1/admin/reviews/{}/unhide", uuid::Uuid::new_v4()), s.admin.token(), None)
            .await
            .assert_error(404, "not_found");
        // Reading a driver's reviews: the driver itself or an admin.
        s.app
            .get(&format!("/v1/drivers/{}/reviews", s.driver.id), s.customer.token())
            .await
            .assert_error(403, "forbidden");
        s.app
            .get(&format!("/v1/restaurants/{}/reviews", engine::RestaurantId::new()), None)
            .await
            .assert_error(404, "not_found");
        s.app
            .get(&format!("/v1/restaurants/{}/reviews?limit=0", s.restaurant), None)
            .await
            .assert_error(400, "invalid_limit");
    }
}

/// The names' order of a search around `HERE` with `params`.
async fn searched(app: &TestApp, params: &str) -> Vec<(String, Value)> {
    let r = app
        .get(
            &format!("/v1/restaurants?lat={}&lng={}&{params}", HERE.0, HERE.1),
            None,
        )
        .await;
    r.assert_ok(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["restaurant_id"].as_str().unwrap().to_owned(),
                h["rating"].clone(),
            )
        })
        .collect()
}

dual_test! {
    async fn search_shows_sorts_and_filters_by_rating() {
        let s = scene().await;
        // A (the scene's, nearest) rated 3; B (500 m north) 5 and 4; C
        // (1 km north) not rated.
        let b = s.app.restaurant_at(&s.app.user(Role::Restaurant).await, HERE.0 + 0.0045, HERE.1).await;
        let c = s.app.restaurant_at(&s.app.user(Role::Restaurant).await, HERE.0 + 0.009, HERE.1).await;
        let mut b_reviews = Vec::new();
        for (restaurant, stars_given) in [(s.restaurant, 3), (b, 5), (b, 4)] {
            let customer = s.app.user(Role::Customer).await;
            let order = s.order_at(restaurant, &customer, "delivered").await;
            let body = s.review(&customer, order, stars(stars_given, None)).await.assert_ok(201).clone();
            if restaurant == b {
                b_reviews.push(body["review_id"].as_str().unwrap().to_owned());
            }
        }
        let (a, b, c) = (s.restaurant.to_string(), b.to_string(), c.to_string());
        let ids = |hits: Vec<(String, Value)>| hits.into_iter().map(|h| h.0).collect::<Vec<_>>();
        // The catalog follows the review events.
        eventually(|| async {
            let hits = searched(&s.app, "sort=rating").await;
            hits.iter().any(|h| h.0 == a && h.1["count"] == 1)
                && hits.iter().any(|h| h.0 == b && h.1["count"] == 2)
        })
        .await;
        let by_rating = searched(&s.app, "sort=rating").await;
        assert_eq!(ids(by_rating.clone()), [b.clone(), a.clone(), c.clone()]);
        assert_eq!(by_rating[0].1, json!({"average": 4.5, "count": 2, "stars_total": 9}));
        assert_eq!(by_rating[2].1, json!({"average": null, "count": 0, "stars_total": 0}));
        assert_eq!(ids(searched(&s.app, "sort=distance").await), [a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids(searched(&s.app, "").await), [a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids(searched(&s.app, "min_rating=3").await), [a.clone(), b.clone()]);
        assert_eq!(ids(searched(&s.app, "min_rating=4.5").await), vec![b.clone()]);
        assert!(searched(&s.app, "min_rating=4.51").await.is_empty());

        // Hiding B's 5 stars: 4.0, still above A, no longer 4.5.
        let hide = format!("/v1/admin/reviews/{}/hide", b_reviews[0]);
        s.app.post(&hide, s.admin.token(), json!({"reason": "fake"})).await.assert_ok(200);
        eventually(|| async { searched(&s.app, "min_rating=4.5").await.is_empty() }).await;
        assert_eq!(ids(searched(&s.app, "sort=rating").await), [b.clone(), a.clone(), c.clone()]);
        assert_eq!(ids(searched(&s.app, "min_rating=4").await), vec![b.clone()]);

        // A restart loads the ratings from the store.
        let restarted = TestApp::with_store(s.app.state.store.clone()).await;
        api::search::load(&restarted.state).await.unwrap();
        let hits = searched(&restarted, "sort=rating").await;
        assert_eq!(ids(hits.clone()), [b.clone(), a.clone(), c.clone()]);
        assert_eq!(hits[0].1, json!({"average": 4.0, "count": 1, "stars_total": 4}));

        // Bad parameters.
        for (params, code) in [
            ("min_rating=0", "invalid_rating"),
            ("min_rating=5.5", "invalid_rating"),
            ("min_rating=NaN", "invalid_rating"),
            ("min_rating=good", "invalid_query"),
            ("sort=best", "invalid_query"),
        ] {
            let r = s.app.get(&format!("/v1/restaurants?lat={}&lng={}&{params}", HERE.0, HERE.1), None).await;
            r.assert_error(400, code);
        }
    }
}
