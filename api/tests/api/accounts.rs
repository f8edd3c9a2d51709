//! The account around the session: profile, saved addresses, logout, bans
//! by an admin, and login rate limits.

use auth::Role;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};

use crate::common::*;

dual_test! {
    async fn profile_and_addresses() {
        let app = TestApp::new().await;
        let ann = app.user(Role::Customer).await;
        let me = app.get("/v1/me", ann.token()).await;
        let body = me.assert_ok(200);
        assert_eq!(body["email"], ann.email);
        assert_eq!(body["role"], "customer");
        assert_eq!(body["phone"], Value::Null);

        let r = app
            .call(Method::PATCH, "/v1/me", ann.token(), Some(json!({"name": "Ann Andersson", "phone": "+46 70-123 45 67"})))
            .await;
        let body = r.assert_ok(200);
        assert_eq!((body["name"].as_str(), body["phone"].as_str()), (Some("Ann Andersson"), Some("+46 70-123 45 67")));
        // Absent keeps, null clears.
        let r = app.call(Method::PATCH, "/v1/me", ann.token(), Some(json!({"phone": null}))).await;
        let body = r.assert_ok(200);
        assert_eq!((body["name"].as_str(), &body["phone"]), (Some("Ann Andersson"), &Value::Null));
        for (patch, code) in [
            (json!({"phone": "call me"}), "invalid_phone"),
            (json!({"name": ""}), "invalid_name"),
            (json!({"role": "admin"}), "invalid_body"),
            (json!({"email": "x@y.z"}), "invalid_body"),
        ] {
            app.call(Method::PATCH, "/v1/me", ann.token(), Some(patch))
                .await
                .assert_error(400, code);
        }

        // Addresses: add, list, delete; other people's are not there.
        let r = app
            .post("/v1/me/addresses", ann.token(), json!({"label": "Home", "address": "Vasagatan 2", "location": {"lat": 57.7, "lng": 11.97}}))
            .await;
        let home = r.assert_ok(201)["address_id"].as_str().unwrap().to_owned();
        app.post("/v1/me/addresses", ann.token(), json!({"label": "Work", "address": "Avenyn 1", "location": {"lat": 57.69, "lng": 11.98}}))
            .await
            .assert_ok(201);
        let list = app.get("/v1/me/addresses", ann.token()).await;
        let labels: Vec<&str> = list.assert_ok(200)["addresses"].as_array().unwrap().iter().map(|a| a["label"].as_str().unwrap()).collect();
        assert_eq!(labels, ["Home", "Work"]);
        let bob = app.user(Role::Customer).await;
        assert_eq!(app.get("/v1/me/addresses", bob.token()).await.assert_ok(200)["addresses"], json!([]));
        app.call(Method::DELETE, &format!("/v1/me/addresses/{home}"), bob.token(), None)
            .await
            .assert_error(404, "not_found");
        let r = app.call(Method::DELETE, &format!("/v1/me/addresses/{home}"), ann.token(), None).await;
        assert_eq!(r.status.as_u16(), 204);
        app.call(Method::DELETE, &format!("/v1/me/addresses/{home}"), ann.token(), None)
            .await
            .assert_error(404, "not_found");
        for (body, code) in [
            (json!({"label": "", "address": "x", "location": {"lat": 1.0, "lng": 1.0}}), "invalid_label"),
            (json!({"label": "x", "address": "x", "location": {"lat": 91.0, "lng": 1.0}}), "invalid_location"),
            (json!({"label": "x", "address": "x"}), "invalid_body"),
        ] {
            app.post("/v1/me/addresses", ann.token(), body).await.assert_error(400, code);
        }
    }
}

dual_test! {
    async fn logout_revokes_refresh_tokens() {
        let app = TestApp::new().await;
        let user = app.user(Role::Customer).await;
        let r = app.post("/v1/auth/logout", user.token(), json!({"refresh_token": user.refresh_token})).await;
        assert_eq!(r.assert_ok(200)["revoked"], 1);
        app.post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh_token}))
            .await
            .assert_error(401, "invalid_refresh_token");
        // Logging out everywhere revokes every session's refresh token.
        let second = app.post("/v1/auth/login", None, json!({"email": user.email, "password": user.password})).await;
        let second = second.assert_ok(200);
        let access = second["access_token"].as_str().unwrap().to_owned();
        let second = second["refresh_token"].as_str().unwrap().to_owned();
        let third = app.post("/v1/auth/login", None, json!({"email": user.email, "password": user.password})).await;
        let third = third.assert_ok(200)["refresh_token"].as_str().unwrap().to_owned();
        let r = app.post("/v1/auth/logout", Some(&access), json!({"all": true})).await;
        assert_eq!(r.assert_ok(200)["revoked"], 2);
        for token in [second, third] {
            app.post("/v1/auth/refresh", None, json!({"refresh_token": token}))
                .await
                .assert_error(401, "invalid_refresh_token");
        }
        // Someone else's refresh token cannot be revoked by you.
        let other = app.user(Role::Customer).await;
        let fourth = app.post("/v1/auth/login", None, json!({"email": user.email, "password": user.password})).await;
        let access = fourth.assert_ok(200)["access_token"].as_str().unwrap().to_owned();
        app.post("/v1/auth/logout", Some(&access), json!({})).await.assert_error(400, "invalid_body");
        let r = app.post("/v1/auth/logout", Some(&access), json!({"refresh_token": other.refresh_token})).await;
        assert_eq!(r.assert_ok(200)["revoked"], 0);
        app.post("/v1/auth/refresh", None, json!({"refresh_token": other.refresh_token}))
            .await
            .assert_ok(200);
        app.post("/v1/auth/logout", None, json!({"all": true})).await.assert_error(401, "missing_token");
    }
}

dual_test! {
    async fn logout_ends_the_access_tokens_in_hand_and_no_others() {
        let app = TestApp::new().await;
        let user = app.user(Role::Customer).await;
        let other = app.user(Role::Customer).await;
        // A second device of the same user, logged in before the logout.
        let phone = app.post("/v1/auth/login", None, json!({"email": user.email, "password": user.password})).await;
        let phone = phone.assert_ok(200);
        let phone_access = phone["access_token"].as_str().unwrap().to_owned();
        let phone_refresh = phone["refresh_token"].as_str().unwrap().to_owned();
        app.get("/v1/me", user.token()).await.assert_ok(200);

        let r = app.post("/v1/auth/logout", user.token(), json!({"refresh_token": user.refresh_token})).await;
        assert_eq!(r.assert_ok(200)["revoked"], 1);
        // Replayed after the logout: refused, on this device and the other.
        app.get("/v1/me", user.token()).await.assert_error(401, "token_revoked");
        app.get("/v1/me", Some(&phone_access)).await.assert_error(401, "token_revoked");
        // Someone else is not touched.
        app.get("/v1/me", other.token()).await.assert_ok(200);
        // The phone's refresh token was not revoked: it gets a new access
        // token, which works.
        let fresh = app.post("/v1/auth/refresh", None, json!({"refresh_token": phone_refresh})).await;
        let fresh = fresh.assert_ok(200)["access_token"].as_str().unwrap().to_owned();
        app.get("/v1/me", Some(&fresh)).await.assert_ok(200);
        // So does a new login.
        let again = app.post("/v1/auth/login", None, json!({"email": user.email, "password": user.password})).await;
        let again = again.assert_ok(200)["access_token"].as_str().unwrap().to_owned();
        app.get("/v1/me", Some(&again)).await.assert_ok(200);

        // The logout is an event, by the user.
        let admin = app.admin().await;
        let uri = format!("/v1/admin/events?type=user.logged_out&aggregate_kind=user&aggregate_id={}", user.id);
        let listed = app.get(&uri, admin.token()).await;
        let listed = listed.assert_ok(200);
        let events = listed["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["payload"]["body"]["all"], false);
        assert_eq!(events[0]["payload"]["body"]["revoked"], 1);
    }
}

dual_test! {
    async fn admins_ban_and_unban() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let driver = app.user(Role::Driver).await;
        let ban = format!("/v1/admin/users/{}/ban", driver.id);
        // Only admins ban; admins cannot be banned.
        let customer = app.user(Role::Customer).await;
        app.post(&ban, customer.token(), json!({})).await.assert_error(403, "forbidden");
        app.post(&format!("/v1/admin/users/{}/ban", admin.id), admin.token(), json!({}))
            .await
            .assert_error(403, "forbidden");
        app.post(&format!("/v1/admin/users/{}/ban", uuid::Uuid::new_v4()), admin.token(), json!({}))
            .await
            .assert_error(404, "not_found");

        let r = app.post(&ban, admin.token(), json!({})).await;
        assert_eq!(r.assert_ok(200)["banned"], true);
        // Every token stops working: access (REST; the same check guards
        // WebSocket and MQTT connects), refresh, and new logins.
        app.get("/v1/me", driver.token()).await.assert_error(401, "banned");
        app.post("/v1/auth/refresh", None, json!({"refresh_token": driver.refresh_token}))
            .await
            .assert_error(401, "invalid_refresh_token");
        app.post("/v1/auth/login", None, json!({"email": driver.email, "password": driver.password}))
            .await
            .assert_error(401, "banned");
        assert!(app.state.tokens.verify(&driver.token).is_err());
        // The ban is stored: a restarted node loads it.
        let restarted = TestApp::with_store(app.state.store.clone()).await;
        api::restore_live_state(&restarted.state).await.unwrap();
        assert!(restarted.state.tokens.is_banned(driver.id));

        let r = app.post(&format!("/v1/admin/users/{}/unban", driver.id), admin.token(), json!({})).await;
        assert_eq!(r.assert_ok(200)["banned"], false);
        app.get("/v1/me", driver.token()).await.assert_ok(200);
        app.post("/v1/auth/login", None, json!({"email": driver.email, "password": driver.password}))
            .await
            .assert_ok(200);
    }
}

/// A login request from `addr`, as the binary's connect info would show it.
fn login_from(addr: [u8; 4], email: &str, password: &str) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"email": email, "password": password}).to_string(),
        ))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((addr, 40_000))));
    req
}

dual_test! {
    async fn logins_are_rate_limited_per_account_and_per_address() {
        let app = TestApp::new().await;
        let user = app.user(Role::Customer).await;
        // Ten failures on one account, from different addresses: the next
        // attempt is refused before the password is even checked, right
        // password included, with Retry-After.
        for i in 0..10 {
            app.send(login_from([10, 0, 0, i], &user.email, "wrong password"))
                .await
                .assert_error(401, "invalid_credentials");
        }
        let r = app.send(login_from([10, 0, 1, 1], &user.email, &user.password)).await;
        r.assert_error(429, "rate_limited");
        assert!(r.body["error"]["retry_after_s"].as_str().unwrap().parse::<u64>().unwrap() > 0);
        // Other accounts are not affected.
        let other = app.user(Role::Customer).await;
        app.send(login_from([10, 0, 1, 2], &other.email, &other.password))
            .await
            .assert_ok(200);

        // Sixty attempts from one address, whatever the accounts: the next
        // is refused.
        for i in 0..59 {
            let email = format!("nobody-{i}@example.com");
            app.send(login_from([192, 0, 2, 7], &email, "whatever1"))
                .await
                .assert_error(401, "invalid_credentials");
        }
        app.send(login_from([192, 0, 2, 8], &other.email, &other.password))
            .await
            .assert_ok(200);
        app.send(login_from([192, 0, 2, 7], &other.email, &other.password))
            .await
            .assert_ok(200);
        app.send(login_from([192, 0, 2, 7], &other.email, &other.password))
            .await
            .assert_error(429, "rate_limited");
    }
}
