//! Bad input everywhere: a 4xx with our error body, never a 500 and never
//! axum's plain-text rejections.

use auth::{Principal, Role};
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::json;

use crate::common::*;

/// One bad request and the answer it must get.
struct Case<'a> {
    method: Method,
    uri: &'a str,
    content_type: Option<&'a str>,
    body: String,
    status: u16,
    code: &'a str,
}

fn case<'a>(
    method: Method,
    uri: &'a str,
    ct: Option<&'a str>,
    body: &str,
    status: u16,
    code: &'a str,
) -> Case<'a> {
    Case {
        method,
        uri,
        content_type: ct,
        body: body.to_owned(),
        status,
        code,
    }
}

/// Sends each case with `token`; expects its status and our error body
/// with its code.
async fn check(app: &TestApp, token: Option<&str>, cases: Vec<Case<'_>>) {
    for c in cases {
        let mut b = Request::builder().method(c.method.clone()).uri(c.uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = c.content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let r = app.send(b.body(Body::from(c.body.clone())).unwrap()).await;
        let what = format!("{} {} {:.80}: {}", c.method, c.uri, c.body, r.body);
        assert_eq!(r.status.as_u16(), c.status, "{what}");
        assert_error_body(&r.body);
        assert_eq!(r.body["error"]["code"], c.code, "{what}");
    }
}

const JSON: Option<&str> = Some("application/json");
const POST: Method = Method::POST;
const GET: Method = Method::GET;

dual_test! {
    async fn malformed_bodies() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let item = app.item_of(restaurant);
        let customer = app.user(Role::Customer).await;
        let signup = "/v1/auth/signup";
        check(
            &app,
            None,
            vec![
                // Syntax, types, missing fields, content type.
                case(POST, signup, JSON, "{", 400, "invalid_json"),
                case(POST, signup, JSON, "", 400, "invalid_json"),
                case(POST, signup, JSON, "[]", 400, "invalid_body"),
                case(POST, signup, JSON, "null", 400, "invalid_body"),
                case(
                    POST,
                    signup,
                    JSON,
                    r#"{"email": 1, "password": "x", "name": "n", "role": "customer"}"#,
                    400,
                    "invalid_body",
                ),
                case(
                    POST,
                    signup,
                    JSON,
                    r#"{"email": "a@b.co"}"#,
                    400,
                    "invalid_body",
                ),
                case(
                    POST,
                    signup,
                    None,
                    r#"{"email": "a@b.co"}"#,
                    415,
                    "unsupported_media_type",
                ),
                case(
                    POST,
                    signup,
                    Some("text/plain"),
                    "{}",
                    415,
                    "unsupported_media_type",
                ),
                case(
                    POST,
                    "/v1/auth/login",
                    JSON,
                    r#"{"email": "a@b.co", "password": null}"#,
                    400,
                    "invalid_body",
                ),
                case(
                    POST,
                    "/v1/auth/refresh",
                    JSON,
                    r#"{"refresh_token": 42}"#,
                    400,
                    "invalid_body",
                ),
            ],
        )
        .await;
        // Orders: coordinates that JSON cannot carry or that are out of range,
        // ids of the wrong shape.
        let order = |lat: &str| {
            format!(
                r#"{{"restaurant_id": "{restaurant}", "items": [{{"menu_item_id": "{item}", "quantity": 1}}], "delivery": {{"lat": {lat}, "lng": 11.9, "address": "x"}}, "payment": {{"method": "card", "token": "tok_ok"}}}}"#
            )
        };
        let bad_id =
            r#"{"restaurant_id": "not-a-uuid", "delivery": {"lat": 1, "lng": 1, "address": "x"}}"#;
        check(
            &app,
            customer.token(),
            vec![
                case(POST, "/v1/orders", JSON, &order("NaN"), 400, "invalid_json"),
                case(
                    POST,
                    "/v1/orders",
                    JSON,
                    &order("\"NaN\""),
                    400,
                    "invalid_body",
                ),
                case(
                    POST,
                    "/v1/orders",
                    JSON,
                    &order("1e999"),
                    400,
                    "invalid_json",
                ),
                case(
                    POST,
                    "/v1/orders",
                    JSON,
                    &order("-91"),
                    400,
                    "invalid_location",
                ),
                case(
                    POST,
                    "/v1/orders",
                    JSON,
                    &order("null"),
                    400,
                    "invalid_body",
                ),
                case(POST, "/v1/orders", JSON, bad_id, 400, "invalid_body"),
                case(
                    POST,
                    "/v1/orders",
                    JSON,
                    r#"{"restaurant_id": 7}"#,
                    400,
                    "invalid_body",
                ),
                case(
                    POST,
                    "/v1/orders",
                    JSON,
                    r#"{"restaurant_id": "#,
                    400,
                    "invalid_json",
                ),
            ],
        )
        .await;
    }
}

dual_test! {
    async fn oversized_bodies() {
        let app = TestApp::new().await;
        let customer = app.user(Role::Customer).await;
        let pad = |n: usize| "x".repeat(n * 1024);
        let huge = format!(
            r#"{{"email": "a@b.co", "password": "{}", "name": "n", "role": "customer"}}"#,
            pad(100)
        );
        let huge_order = format!(
            r#"{{"restaurant_id": "{}", "pad": "{}"}}"#,
            uuid::Uuid::new_v4(),
            pad(70)
        );
        // Just under the limit is read, and then judged on its content.
        let padded = format!(
            r#"{{"email": "a@b.co", "password": "x", "name": "n", "role": "customer", "pad": "{}"}}"#,
            pad(60)
        );
        check(
            &app,
            customer.token(),
            vec![
                case(
                    POST,
                    "/v1/auth/signup",
                    JSON,
                    &huge,
                    413,
                    "payload_too_large",
                ),
                case(
                    POST,
                    "/v1/orders",
                    JSON,
                    &huge_order,
                    413,
                    "payload_too_large",
                ),
                case(POST, "/v1/auth/signup", JSON, &padded, 400, "weak_password"),
            ],
        )
        .await;
    }
}

dual_test! {
    async fn bad_paths_and_unknown_ids() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let status = r#"{"status": "accepted"}"#;
        let unknown = uuid::Uuid::new_v4();
        let (order, cancel, step) = (
            format!("/v1/orders/{unknown}"),
            format!("/v1/orders/{unknown}/cancel"),
            format!("/v1/orders/{unknown}/status"),
        );
        let restaurant = format!("/v1/restaurants/{unknown}");
        check(
            &app,
            admin.token(),
            vec![
                // Path segments that are not UUIDs.
                case(GET, "/v1/orders/not-a-uuid", None, "", 400, "invalid_path"),
                case(GET, "/v1/orders/123", None, "", 400, "invalid_path"),
                case(GET, "/v1/restaurants/zzz", None, "", 400, "invalid_path"),
                case(GET, "/v1/drivers/%20", None, "", 400, "invalid_path"),
                case(
                    POST,
                    "/v1/orders/nope/cancel",
                    None,
                    "",
                    400,
                    "invalid_path",
                ),
                case(
                    POST,
                    "/v1/orders/nope/status",
                    JSON,
                    status,
                    400,
                    "invalid_path",
                ),
                case(
                    Method::PUT,
                    "/v1/drivers/nope/availability",
                    JSON,
                    r#"{"status": "offline"}"#,
                    400,
                    "invalid_path",
                ),
                // Well-formed ids of nothing.
                case(GET, &order, None, "", 404, "not_found"),
                case(POST, &cancel, None, "", 404, "not_found"),
                case(POST, &step, JSON, status, 404, "not_found"),
                case(GET, &restaurant, None, "", 404, "not_found"),
                // Unknown routes (with the fallback the binary installs) and methods.
                case(GET, "/v1/nothing-here", None, "", 404, "not_found"),
                case(
                    Method::DELETE,
                    "/v1/orders",
                    None,
                    "",
                    405,
                    "method_not_allowed",
                ),
                case(GET, "/v1/auth/login", None, "", 405, "method_not_allowed"),
                // Query strings of the wrong shape.
                case(GET, "/v1/orders?limit=lots", None, "", 400, "invalid_query"),
            ],
        )
        .await;
    }
}

dual_test! {
    async fn missing_bad_and_expired_tokens() {
        let app = TestApp::new().await;
        let customer = app.user(Role::Customer).await;
        let principal = Principal {
            user_id: customer.id,
            role: Role::Customer,
        };
        let expired = app.token_issued_ago(principal, ACCESS_TTL_S + 60);
        let foreign = auth::Tokens::new(b"some other secret", 900)
            .issue(principal, (now_ms() / 1000) as u64)
            .token;
        let routes: &[(Method, &str, Option<&str>)] = &[
            (Method::GET, "/v1/orders", None),
            (Method::POST, "/v1/orders", Some("{}")),
            (Method::GET, "/v1/drivers/nearby?lat=1&lng=1", None),
            (Method::POST, "/v1/restaurants", Some("{}")),
            (
                Method::POST,
                "/v1/offers/0190a0b0-0000-7000-8000-000000000000/accept",
                None,
            ),
        ];
        for (method, uri, body) in routes {
            let send = |auth: Option<String>| {
                let mut b = Request::builder().method(method.clone()).uri(*uri);
                if let Some(a) = auth {
                    b = b.header(header::AUTHORIZATION, a);
                }
                if body.is_some() {
                    b = b.header(header::CONTENT_TYPE, "application/json");
                }
                app.send(b.body(Body::from(body.unwrap_or("").to_owned())).unwrap())
            };
            send(None).await.assert_error(401, "missing_token");
            send(Some("Basic abc".into()))
                .await
                .assert_error(401, "missing_token");
            send(Some("Bearer not.a.jwt".into()))
                .await
                .assert_error(401, "invalid_token");
            send(Some(format!("Bearer {foreign}")))
                .await
                .assert_error(401, "invalid_token");
            send(Some(format!("Bearer {expired}")))
                .await
                .assert_error(401, "token_expired");
        }
        // A valid token for a role that may not: still our body.
        let r = app
            .post(
                "/v1/restaurants",
                customer.token(),
                json!({"name": "x", "location": {"lat": 1, "lng": 1}, "address": "y"}),
            )
            .await;
        r.assert_error(403, "forbidden");
    }
}

dual_test! {
    async fn every_body_endpoint_refuses_garbage_with_our_body() {
        // Each endpoint that reads a JSON body, called by a caller allowed
        // to use it, with: broken JSON, JSON of the wrong shape, the wrong
        // types inside, no content type, and a body over the limit. None of
        // them may change anything or answer anything but our 4xx.
        let app = TestApp::new().await;
        let customer = app.user(Role::Customer).await;
        let owner = app.user(Role::Restaurant).await;
        let admin = app.admin().await;
        let restaurant = app.restaurant(&owner).await;
        let item = app.item_of(restaurant);
        let order = app.place_paid_order(&customer, restaurant).await;
        let driver = app.user(Role::Driver).await;
        let endpoints: Vec<(Method, String, &User)> = vec![
            (POST, "/v1/auth/signup".into(), &customer),
            (POST, "/v1/auth/login".into(), &customer),
            (POST, "/v1/auth/refresh".into(), &customer),
            (POST, "/v1/auth/logout".into(), &customer),
            (Method::PATCH, "/v1/me".into(), &customer),
            (POST, "/v1/me/addresses".into(), &customer),
            (POST, "/v1/restaurants".into(), &owner),
            (Method::PATCH, format!("/v1/restaurants/{restaurant}"), &owner),
            (POST, format!("/v1/restaurants/{restaurant}/menu"), &owner),
            (Method::PATCH, format!("/v1/restaurants/{restaurant}/menu/{item}"), &owner),
            (POST, "/v1/cart/items".into(), &customer),
            (Method::PUT, format!("/v1/cart/items/{item}"), &customer),
            (POST, "/v1/cart/checkout".into(), &customer),
            (POST, "/v1/orders".into(), &customer),
            (POST, format!("/v1/orders/{order}/status"), &owner),
            (POST, format!("/v1/orders/{order}/refund"), &admin),
            (Method::PUT, format!("/v1/drivers/{}/availability", driver.id), &driver),
        ];
        let huge = format!(r#"{{"pad": "{}"}}"#, "x".repeat(70 * 1024));
        for (method, uri, who) in &endpoints {
            let token = who.token();
            let cases = vec![
                case(method.clone(), uri, JSON, "{", 400, "invalid_json"),
                case(method.clone(), uri, JSON, "not json at all", 400, "invalid_json"),
                case(method.clone(), uri, JSON, "\"a string\"", 400, "invalid_body"),
                case(method.clone(), uri, JSON, "null", 400, "invalid_body"),
                case(method.clone(), uri, Some("text/plain"), "{}", 415, "unsupported_media_type"),
                case(method.clone(), uri, JSON, &huge, 413, "payload_too_large"),
            ];
            check(&app, token, cases).await;
            // Wrong types inside: 400 with our body (serde reports some
            // of these as data errors, some as syntax errors).
            let wrong = r#"{"quantity": "seven", "price_cents": [], "status": 5, "name": {}}"#;
            let r = app
                .send(
                    Request::builder()
                        .method(method.clone())
                        .uri(uri)
                        .header(header::AUTHORIZATION, format!("Bearer {}", who.token))
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(wrong))
                        .unwrap(),
                )
                .await;
            assert_eq!(r.status.as_u16(), 400, "{method} {uri}: {}", r.body);
            let code = r.body["error"]["code"].as_str().unwrap_or_default();
            assert!(["invalid_body", "invalid_json"].contains(&code), "{method} {uri}: {}", r.body);
        }
        // Nothing moved.
        assert_eq!(app.order_status(order).await, engine::OrderStatus::Paid);
        let stored = app.state.store.menu_item(item).await.unwrap().unwrap();
        assert_eq!((stored.price_cents, stored.available), (12_500, true));
        assert_eq!(app.state.store.payments(order).await.unwrap().len(), 1);
    }
}

/// Words of serde's Rust-side messages that must never reach a client.
const RUST_WORDS: &[&str] = &[
    "struct ",
    "i64",
    "u32",
    "u64",
    "usize",
    "f64",
    "tuple",
    "sequence",
    "Failed to deserialize",
    "target type",
    "at line",
    "ProfileUpdate",
    "NewItem",
    "NewAddress",
];

fn assert_client_words(body: &serde_json::Value) {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    for word in RUST_WORDS {
        assert!(!message.contains(word), "{word:?} in {message:?}");
    }
}

dual_test! {
    async fn an_array_is_not_an_object() {
        let app = TestApp::new().await;
        let customer = app.user(Role::Customer).await;
        let before = app.get("/v1/me", customer.token()).await.assert_ok(200).clone();
        // The issue's case: serde's derives read a struct from an array of
        // its fields, so this answered 200.
        let r = app.call(Method::PATCH, "/v1/me", customer.token(), Some(json!(["a", "b"]))).await;
        r.assert_error(400, "invalid_body");
        assert_eq!(r.body["error"]["message"], "expected a JSON object, found an array");
        // Nested too: a point as [lat, lng].
        let r = app
            .post(
                "/v1/me/addresses",
                customer.token(),
                json!({"label": "Home", "address": "Avenyn 1", "location": [57.7, 11.9]}),
            )
            .await;
        r.assert_error(400, "invalid_body");
        assert_eq!(r.body["error"]["message"], "location: expected a JSON object, found an array");
        // Nothing changed.
        let me = app.get("/v1/me", customer.token()).await;
        assert_eq!(me.assert_ok(200), &before);
        let addresses = app.get("/v1/me/addresses", customer.token()).await;
        assert_eq!(addresses.assert_ok(200)["addresses"], json!([]));
    }
}

dual_test! {
    async fn integral_floats_are_integers() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let r = app
            .post(
                &format!("/v1/restaurants/{restaurant}/menu"),
                owner.token(),
                json!({"items": [{"name": "Bulle", "price_cents": 3500.0, "stock": 2.0}]}),
            )
            .await;
        let item = &r.assert_ok(201)["items"][0];
        assert_eq!((&item["price_cents"], &item["stock"]), (&json!(3500), &json!(2)));
        let customer = app.user(Role::Customer).await;
        let id = item["menu_item_id"].as_str().unwrap().to_owned();
        let r = app
            .call(Method::PUT, &format!("/v1/cart/items/{id}"), customer.token(), Some(json!({"quantity": 2.0})))
            .await;
        assert_eq!(r.assert_ok(200)["items"][0]["quantity"], 2);
        let r = app
            .call(
                Method::PATCH,
                &format!("/v1/restaurants/{restaurant}"),
                owner.token(),
                Some(json!({"delivery_radius_m": 4000.0, "avg_prep_time_s": 600.0})),
            )
            .await;
        assert_eq!(r.assert_ok(200)["delivery_radius_m"], 4000);
        // A fraction is still not an integer.
        let r = app
            .call(Method::PUT, &format!("/v1/cart/items/{id}"), customer.token(), Some(json!({"quantity": 1.5})))
            .await;
        r.assert_error(400, "invalid_body");
        assert_eq!(r.body["error"]["message"], "quantity: expected an integer, found 1.5");
    }
}

dual_test! {
    async fn errors_name_json_not_rust_types() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let item = app.item_of(restaurant);
        let menu = format!("/v1/restaurants/{restaurant}/menu");
        let place = format!("/v1/restaurants/{restaurant}");
        let cases: Vec<(Method, String, &User, serde_json::Value, &str)> = vec![
            (Method::PATCH, "/v1/me".into(), &customer, json!(["a"]), "expected a JSON object, found an array"),
            (Method::PATCH, "/v1/me".into(), &customer, json!({"name": 5}), "name: expected a string, found 5"),
            (POST, menu.clone(), &owner, json!({"items": [{"name": "x", "price_cents": 1.5}]}),
                "items[0].price_cents: expected an integer, found 1.5"),
            (POST, menu.clone(), &owner, json!({"items": {}}), "items: expected an array, found an object"),
            (Method::PATCH, place.clone(), &owner, json!({"delivery_radius_m": -1}),
                "delivery_radius_m: expected an integer from 0 to 4294967295, found -1"),
            (Method::PATCH, place.clone(), &owner,
                json!({"opening_hours": {"time_zone": "UTC", "weekly": {"mon": [["10:00"]]}}}),
                "opening_hours.weekly.mon[0]: expected an array of 2 items, found 1 item"),
            (Method::PATCH, place, &owner, json!({"accepting_orders": "yes"}),
                r#"accepting_orders: expected a boolean, found the string "yes""#),
            (POST, "/v1/cart/items".into(), &customer, json!({"menu_item_id": item, "quantity": "seven"}),
                r#"quantity: expected an integer, found the string "seven""#),
        ];
        for (method, uri, who, body, message) in cases {
            let r = app.call(method.clone(), &uri, who.token(), Some(body.clone())).await;
            r.assert_error(400, "invalid_body");
            assert_client_words(&r.body);
            assert_eq!(r.body["error"]["message"], message, "{method} {uri} {body}");
        }
    }
}
