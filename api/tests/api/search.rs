//! Restaurant and dish search near a point: text, cuisine, open now, the
//! restaurant's own delivery radius, ranking and pages; the catalog follows
//! every write and is rebuilt from the store on start-up.

use auth::Role;
use axum::http::Method;
use serde_json::{Value, json};

use crate::common::*;

/// Creates a restaurant `dlat` degrees north of HERE with `cuisines`, a
/// `radius_m` delivery radius and `dishes`; its id.
async fn place(
    app: &TestApp,
    owner: &User,
    name: &str,
    dlat: f64,
    cuisines: &[&str],
    radius_m: u32,
    dishes: &[&str],
) -> String {
    let r = app
        .post(
            "/v1/restaurants",
            owner.token(),
            json!({"name": name, "location": {"lat": HERE.0 + dlat, "lng": HERE.1}, "address": "Gatan 1",
                   "cuisines": cuisines, "delivery_radius_m": radius_m}),
        )
        .await;
    let id = r.assert_ok(201)["restaurant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    if !dishes.is_empty() {
        let items: Vec<Value> = dishes
            .iter()
            .map(|d| json!({"name": d, "price_cents": 10_000}))
            .collect();
        app.post(
            &format!("/v1/restaurants/{id}/menu"),
            owner.token(),
            json!({"items": items}),
        )
        .await
        .assert_ok(201);
    }
    id
}

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let r = app
        .get(
            &format!("/v1/restaurants?lat={}&lng={}&{query}", HERE.0, HERE.1),
            None,
        )
        .await;
    r.assert_ok(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_owned())
        .collect()
}

dual_test! {
    async fn search_by_text_cuisine_hours_and_radius() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        // 0.01° of latitude ≈ 1.1 km.
        place(&app, &owner, "Pizzeria Napoli", 0.01, &["pizza", "italian"], 5_000, &["Margherita", "Calzone"]).await;
        place(&app, &owner, "Trattoria Roma", 0.02, &["italian"], 5_000, &["Pizza bianca", "Lasagne"]).await;
        let thai = place(&app, &owner, "Bangkok Kitchen", 0.005, &["thai"], 5_000, &["Pad thai", "Green curry"]).await;
        // Far, and with a small radius: does not deliver here.
        place(&app, &owner, "Pizza Express Långt Bort", 0.1, &["pizza"], 2_000, &["Pepperoni"]).await;
        // Close, but only delivers 300 m around itself (0.5 km away).
        place(&app, &owner, "Tiny Pizza", -0.0045, &["pizza"], 300, &["Slice"]).await;

        // No text: everything that delivers here, nearest first.
        assert_eq!(names(&app, "").await, ["Bangkok Kitchen", "Pizzeria Napoli", "Trattoria Roma"]);
        // Text over names, cuisines and dishes; name matches rank first.
        assert_eq!(names(&app, "q=pizza").await, ["Pizzeria Napoli", "Trattoria Roma"]);
        let r = app.get(&format!("/v1/restaurants?lat={}&lng={}&q=curry", HERE.0, HERE.1), None).await;
        let body = r.assert_ok(200);
        assert_eq!(body["total"], 1);
        assert_eq!(body["results"][0]["restaurant_id"], thai);
        assert_eq!(body["results"][0]["matched_dishes"][0]["name"], "Green curry");
        assert!(body["results"][0]["distance_m"].as_f64().unwrap() > 500.0);
        // Prefixes, any case.
        assert_eq!(names(&app, "q=LASAG").await, ["Trattoria Roma"]);
        assert_eq!(names(&app, "q=nothing-like-this").await, Vec::<String>::new());
        // Cuisine filter.
        assert_eq!(names(&app, "cuisine=italian").await, ["Pizzeria Napoli", "Trattoria Roma"]);
        assert_eq!(names(&app, "cuisine=Thai").await, ["Bangkok Kitchen"]);

        // Pages.
        let r = app.get(&format!("/v1/restaurants?lat={}&lng={}&limit=2", HERE.0, HERE.1), None).await;
        let body = r.assert_ok(200);
        assert_eq!((body["total"].as_u64(), body["next_offset"].as_u64()), (Some(3), Some(2)));
        assert_eq!(names(&app, "limit=2&offset=2").await, ["Trattoria Roma"]);

        // Closing hours and edits show at once.
        let uri = format!("/v1/restaurants/{thai}");
        let closed = json!({"time_zone": "UTC", "weekly": {}});
        app.call(Method::PATCH, &uri, owner.token(), Some(json!({"opening_hours": closed})))
            .await
            .assert_ok(200);
        assert_eq!(names(&app, "open_now=true").await, ["Pizzeria Napoli", "Trattoria Roma"]);
        assert_eq!(names(&app, "").await.len(), 3, "closed ones still listed without open_now");
        app.call(Method::PATCH, &uri, owner.token(), Some(json!({"name": "Siam Kitchen"})))
            .await
            .assert_ok(200);
        assert_eq!(names(&app, "q=siam").await, ["Siam Kitchen"]);

        // A new node loads the same catalog from the store.
        let restarted = TestApp::with_store(app.state.store.clone()).await;
        api::restore_live_state(&restarted.state).await.unwrap();
        assert_eq!(names(&restarted, "q=pizza").await, ["Pizzeria Napoli", "Trattoria Roma"]);
        assert_eq!(names(&restarted, "open_now=true").await, ["Pizzeria Napoli", "Trattoria Roma"]);

        // Bad queries.
        for (q, code) in [
            ("", "invalid_location"),
            ("lat=91&lng=0", "invalid_location"),
            ("lat=57.7&lng=11.9&limit=0", "invalid_limit"),
            ("lat=57.7&lng=11.9&limit=101", "invalid_limit"),
            ("lat=57.7&lng=11.9&limit=-1", "invalid_query"),
            ("lat=x&lng=11.9", "invalid_query"),
            ("lat=57.7&lng=11.9&open_now=maybe", "invalid_query"),
        ] {
            app.get(&format!("/v1/restaurants?{q}"), None).await.assert_error(400, code);
        }
        let long = "a".repeat(201);
        app.get(&format!("/v1/restaurants?lat=57.7&lng=11.9&q={long}"), None)
            .await
            .assert_error(400, "invalid_query");
    }
}
