//! Signup, login, refresh and the admin bootstrap.

use auth::{Principal, Role};
use axum::http::Method;
use serde_json::json;

use crate::common::*;

dual_test! {
    async fn signup_then_login_then_use_the_token() {
        let app = TestApp::new().await;
        let email = format!("Ann-{}@Example.com", uuid::Uuid::new_v4().simple());
        let r = app
            .post("/v1/auth/signup", None, json!({"email": email, "password": "hunter2hunter2", "name": "Ann", "role": "customer"}))
            .await;
        let body = r.assert_ok(201);
        assert_eq!(body["email"], email.to_lowercase());
        assert_eq!(body["role"], "customer");
        let user_id = body["user_id"].as_str().unwrap().to_owned();

        // Email is case-insensitive at login too.
        let r = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email.to_uppercase(), "password": "hunter2hunter2"}),
            )
            .await;
        let body = r.assert_ok(200);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], ACCESS_TTL_S);
        assert_eq!(body["refresh_token"].as_str().unwrap().len(), 64);
        let token = body["access_token"].as_str().unwrap();
        let principal = app.state.tokens.verify(token).unwrap();
        assert_eq!(principal.user_id.to_string(), user_id);
        assert_eq!(principal.role, Role::Customer);
        // And it opens a protected route.
        app.get("/v1/orders", Some(token)).await.assert_ok(200);
    }
}

dual_test! {
    async fn signup_errors() {
        let app = TestApp::new().await;
        let existing = app.user(Role::Driver).await;
        let check = |email: String,
                     password: &'static str,
                     name: &'static str,
                     role: &'static str,
                     status: u16,
                     code: &'static str| {
            let app = &app;
            async move {
                let r = app
                    .post(
                        "/v1/auth/signup",
                        None,
                        json!({"email": email, "password": password, "name": name, "role": role}),
                    )
                    .await;
                assert_eq!(
                    r.status.as_u16(),
                    status,
                    "{email} {password:?} {name:?} {role}: {}",
                    r.body
                );
                if status >= 400 {
                    r.assert_error(status, code);
                }
            }
        };
        let fresh = || format!("x-{}@example.com", uuid::Uuid::new_v4().simple());
        check(fresh(), "longenough", "Bo", "customer", 201, "").await;
        check(fresh(), "longenough", "Bo", "restaurant", 201, "").await;
        check(fresh(), "longenough", "Bo", "driver", 201, "").await;
        check(
            existing.email.clone(),
            "longenough",
            "Bo",
            "customer",
            409,
            "email_taken",
        )
        .await;
        check(
            existing.email.to_uppercase(),
            "longenough",
            "Bo",
            "customer",
            409,
            "email_taken",
        )
        .await;
        check(fresh(), "longenough", "Bo", "admin", 400, "invalid_role").await;
        check(
            fresh(),
            "longenough",
            "Bo",
            "dispatcher",
            400,
            "invalid_role",
        )
        .await;
        check(fresh(), "short", "Bo", "customer", 400, "weak_password").await;
        check(fresh(), "", "Bo", "customer", 400, "weak_password").await;
        check(
            "not-an-email".into(),
            "longenough",
            "Bo",
            "customer",
            400,
            "invalid_email",
        )
        .await;
        check(
            "".into(),
            "longenough",
            "Bo",
            "customer",
            400,
            "invalid_email",
        )
        .await;
        check(fresh(), "longenough", "", "customer", 400, "invalid_name").await;
        check(
            fresh(),
            "longenough",
            "   ",
            "customer",
            400,
            "invalid_name",
        )
        .await;
    }
}

dual_test! {
    async fn login_refuses_alike_for_unknown_email_and_wrong_password() {
        let app = TestApp::new().await;
        let user = app.user(Role::Customer).await;
        let wrong = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": user.email, "password": "not the password"}),
            )
            .await;
        wrong.assert_error(401, "invalid_credentials");
        let unknown = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": "nobody@example.com", "password": "whatever1"}),
            )
            .await;
        unknown.assert_error(401, "invalid_credentials");
        assert_eq!(wrong.body, unknown.body);
    }
}

dual_test! {
    async fn banned_users_cannot_log_in_or_refresh() {
        let app = TestApp::new().await;
        let user = app.user(Role::Customer).await;
        app.state.tokens.ban(user.id);
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": user.email, "password": user.password}),
        )
        .await
        .assert_error(401, "banned");
        app.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": user.refresh_token}),
        )
        .await
        .assert_error(401, "banned");
        app.get("/v1/orders", user.token())
            .await
            .assert_error(401, "banned");
    }
}

dual_test! {
    async fn refresh_rotates_the_token() {
        let app = TestApp::new().await;
        let user = app.user(Role::Driver).await;
        let r = app
            .post(
                "/v1/auth/refresh",
                None,
                json!({"refresh_token": user.refresh_token}),
            )
            .await;
        let body = r.assert_ok(200).clone();
        let new_refresh = body["refresh_token"].as_str().unwrap();
        assert_ne!(new_refresh, user.refresh_token);
        let principal = app
            .state
            .tokens
            .verify(body["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            principal,
            Principal {
                user_id: user.id,
                role: Role::Driver
            }
        );

        // The old one was revoked by the rotation.
        app.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": user.refresh_token}),
        )
        .await
        .assert_error(401, "invalid_refresh_token");
        // The new one works once.
        app.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": new_refresh}),
        )
        .await
        .assert_ok(200);
        app.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": new_refresh}),
        )
        .await
        .assert_error(401, "invalid_refresh_token");
        // Garbage, empty and huge tokens.
        for junk in ["nope".to_owned(), String::new(), "x".repeat(10_000)] {
            app.post("/v1/auth/refresh", None, json!({"refresh_token": junk}))
                .await
                .assert_error(401, "invalid_refresh_token");
        }
    }
}

dual_test! {
    async fn concurrent_refreshes_of_one_token_win_once() {
        let app = TestApp::new().await;
        let user = app.user(Role::Customer).await;
        let refresh = || {
            request(
                Method::POST,
                "/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": user.refresh_token})),
            )
        };
        let mut ok = 0;
        for r in app.concurrently((0..8).map(|_| refresh()).collect()).await {
            match r.status.as_u16() {
                200 => ok += 1,
                _ => r.assert_error(401, "invalid_refresh_token"),
            }
        }
        assert_eq!(ok, 1);
    }
}

dual_test! {
    async fn expired_refresh_tokens_are_refused() {
        let store = test_store().await;
        let mut app = TestApp::with_store(store).await;
        app.state.config.refresh_ttl_s = 0;
        app.router = api::router(app.state.clone());
        let user = app.user(Role::Customer).await;
        app.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": user.refresh_token}),
        )
        .await
        .assert_error(401, "invalid_refresh_token");
    }
}

dual_test! {
    async fn admin_bootstrap_creates_once_and_never_promotes() {
        let app = TestApp::new().await;
        let email = format!("Root-{}@example.com", uuid::Uuid::new_v4().simple());
        let created = api::bootstrap_admin(&app.state, &email, "admin password")
            .await
            .unwrap();
        let api::AdminBootstrap::Created(id) = created else {
            panic!("{created:?}")
        };
        // Idempotent, and the password is left alone.
        let again = api::bootstrap_admin(&app.state, &email.to_lowercase(), "another password")
            .await
            .unwrap();
        assert_eq!(again, api::AdminBootstrap::AlreadyExists(id));
        let r = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": "admin password"}),
            )
            .await;
        let token = r.assert_ok(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(app.state.tokens.verify(&token).unwrap().role, Role::Admin);

        // An email someone signed up with is not promoted.
        let customer = app.user(Role::Customer).await;
        let err = api::bootstrap_admin(&app.state, &customer.email, "admin password")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "email_taken");
        // Weak bootstrap passwords are refused too.
        let err = api::bootstrap_admin(&app.state, "root2@example.com", "short")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "weak_password");
    }
}
