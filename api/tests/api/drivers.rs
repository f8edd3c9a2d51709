//! Availability, the driver view, and the nearby query.

use auth::Role;
use axum::http::Method;
use engine::DriverId;
use serde_json::{Value, json};

use crate::common::*;

dual_test! {
    async fn availability_by_the_driver_or_an_admin() {
        let app = TestApp::new().await;
        let driver = app.user(Role::Driver).await;
        let uri = format!("/v1/drivers/{}/availability", driver.id);
        let put = |token: Option<String>, status: &'static str| {
            let (app, uri) = (&app, uri.clone());
            async move {
                app.call(
                    Method::PUT,
                    &uri,
                    token.as_deref(),
                    Some(json!({"status": status})),
                )
                .await
            }
        };

        // Not pinging yet: declared available, but offline until a ping.
        let r = put(Some(driver.token.clone()), "available").await;
        let r = r.assert_ok(200);
        assert_eq!((&r["declared"], &r["status"]), (&json!("available"), &json!("offline")));
        assert!(r["reason"].is_string(), "{r}");
        app.ping(driver.driver_id(), HERE.0, HERE.1);
        let r = put(Some(driver.token.clone()), "available").await;
        assert_eq!(r.assert_ok(200)["status"], "available");
        let r = put(Some(driver.token.clone()), "offline").await;
        assert_eq!(r.assert_ok(200)["status"], "offline");

        let admin = app.admin().await;
        let r = put(Some(admin.token.clone()), "available").await;
        assert_eq!(r.assert_ok(200)["status"], "available");

        // Another driver, a customer: forbidden. No token: 401. Bad value: 400.
        let other = app.user(Role::Driver).await;
        put(Some(other.token.clone()), "offline")
            .await
            .assert_error(403, "forbidden");
        let customer = app.user(Role::Customer).await;
        put(Some(customer.token.clone()), "offline")
            .await
            .assert_error(403, "forbidden");
        put(None, "offline")
            .await
            .assert_error(401, "missing_token");
        put(Some(driver.token.clone()), "busy")
            .await
            .assert_error(400, "invalid_body");
        put(Some(driver.token.clone()), "sleeping")
            .await
            .assert_error(400, "invalid_body");
        // An admin naming a non-driver account or nobody: 404.
        let r = app
            .call(
                Method::PUT,
                &format!("/v1/drivers/{}/availability", customer.id),
                admin.token(),
                Some(json!({"status": "offline"})),
            )
            .await;
        r.assert_error(404, "not_found");
        let r = app
            .call(
                Method::PUT,
                &format!("/v1/drivers/{}/availability", DriverId::new()),
                admin.token(),
                Some(json!({"status": "offline"})),
            )
            .await;
        r.assert_error(404, "not_found");
    }
}

dual_test! {
    async fn driver_view() {
        let app = TestApp::new().await;
        let driver = app.user(Role::Driver).await;
        let admin = app.admin().await;
        let uri = format!("/v1/drivers/{}", driver.id);

        // Known account, never pinged: offline, no position.
        let r = app.get(&uri, driver.token()).await;
        let body = r.assert_ok(200);
        assert_eq!(body["status"], "offline");
        assert_eq!(body["lat"], Value::Null);
        assert_eq!(body["current_order"], Value::Null);

        app.ping(driver.driver_id(), 57.70, 11.97);
        let r = app.get(&uri, admin.token()).await;
        let body = r.assert_ok(200);
        assert_eq!(body["driver_id"], driver.id.to_string());
        assert_eq!(body["status"], "available");
        assert_eq!(
            (body["lat"].as_f64(), body["lng"].as_f64()),
            (Some(57.70), Some(11.97))
        );
        assert_eq!(body["heading"], 90.0);
        assert_eq!(body["speed"], 5.0);
        assert!(body["updated_at"].as_i64().is_some());

        let other = app.user(Role::Driver).await;
        app.get(&uri, other.token())
            .await
            .assert_error(403, "forbidden");
        let customer = app.user(Role::Customer).await;
        app.get(&uri, customer.token())
            .await
            .assert_error(403, "forbidden");
        app.get(&format!("/v1/drivers/{}", DriverId::new()), admin.token())
            .await
            .assert_error(404, "not_found");
        app.get("/v1/drivers/not-a-uuid", admin.token())
            .await
            .assert_error(400, "invalid_path");
    }
}

dual_test! {
    async fn nearby_sorted_by_distance_admin_only() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        // Drivers north of the centre at growing distances (0.001° ≈ 111 m),
        // pinged in shuffled order; one 60 km away.
        let center = (57.70, 11.97);
        let offsets = [3.0, 1.0, 4.0, 2.0, 5.0];
        let mut drivers: Vec<(f64, DriverId)> = Vec::new();
        for k in offsets {
            let d = DriverId::new();
            app.ping(d, center.0 + k * 0.001, center.1);
            drivers.push((k, d));
        }
        let far = DriverId::new();
        app.ping(far, center.0 + 0.54, center.1);
        drivers.sort_by(|a, b| a.0.total_cmp(&b.0));
        let expected: Vec<String> = drivers.iter().map(|(_, d)| d.to_string()).collect();

        let ids = |body: &Value| -> Vec<String> {
            body["drivers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["driver_id"].as_str().unwrap().to_owned())
                .collect()
        };
        let r = app
            .get(
                "/v1/drivers/nearby?lat=57.70&lng=11.97&radius_m=3000&limit=10&status=available",
                admin.token(),
            )
            .await;
        let body = r.assert_ok(200).clone();
        assert_eq!(ids(&body), expected);
        let distances: Vec<f64> = body["drivers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["distance_m"].as_f64().unwrap())
            .collect();
        assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
        assert!((distances[0] - 111.2).abs() < 1.0, "{distances:?}");
        let first = &body["drivers"][0];
        assert_eq!(first["status"], "available");
        assert!(first["lat"].is_f64() && first["lng"].is_f64() && first["updated_at"].is_i64());

        // Defaults (3 km, 10, any status), a limit, a radius that reaches the far one.
        let r = app
            .get("/v1/drivers/nearby?lat=57.70&lng=11.97", admin.token())
            .await;
        assert_eq!(ids(r.assert_ok(200)), expected);
        let r = app
            .get(
                "/v1/drivers/nearby?lat=57.70&lng=11.97&limit=2",
                admin.token(),
            )
            .await;
        assert_eq!(ids(r.assert_ok(200)), expected[..2]);
        let r = app
            .get(
                "/v1/drivers/nearby?lat=57.70&lng=11.97&radius_m=50000",
                admin.token(),
            )
            .await;
        assert_eq!(ids(r.assert_ok(200)).len(), 5);
        let r = app
            .get(
                "/v1/drivers/nearby?lat=58.24&lng=11.97&radius_m=50000&limit=1",
                admin.token(),
            )
            .await;
        assert_eq!(ids(r.assert_ok(200)), [far.to_string()]);

        // Status filter: one goes offline.
        app.state
            .engine
            .set_availability(drivers[0].1, engine::Availability::Offline, now_ms());
        let r = app
            .get(
                "/v1/drivers/nearby?lat=57.70&lng=11.97&status=available",
                admin.token(),
            )
            .await;
        assert_eq!(ids(r.assert_ok(200)), expected[1..]);
        let r = app
            .get(
                "/v1/drivers/nearby?lat=57.70&lng=11.97&status=offline",
                admin.token(),
            )
            .await;
        assert_eq!(ids(r.assert_ok(200)), expected[..1]);
        let r = app
            .get(
                "/v1/drivers/nearby?lat=57.70&lng=11.97&status=busy",
                admin.token(),
            )
            .await;
        assert_eq!(ids(r.assert_ok(200)), Vec::<String>::new());

        // Admin only.
        for role in [Role::Customer, Role::Restaurant, Role::Driver] {
            let u = app.user(role).await;
            app.get("/v1/drivers/nearby?lat=57.70&lng=11.97", u.token())
                .await
                .assert_error(403, "forbidden");
        }
        app.get("/v1/drivers/nearby?lat=57.70&lng=11.97", None)
            .await
            .assert_error(401, "missing_token");

        // Validation.
        for (query, code) in [
            ("lng=11.97", "missing_coordinates"),
            ("lat=57.7", "missing_coordinates"),
            ("", "missing_coordinates"),
            ("lat=91&lng=0", "invalid_location"),
            ("lat=-91&lng=0", "invalid_location"),
            ("lat=0&lng=-181", "invalid_location"),
            ("lat=NaN&lng=0", "invalid_location"),
            ("lat=inf&lng=0", "invalid_location"),
            ("lat=abc&lng=0", "invalid_query"),
            ("lat=0&lng=0&radius_m=0", "invalid_radius"),
            ("lat=0&lng=0&radius_m=-5", "invalid_radius"),
            ("lat=0&lng=0&radius_m=50001", "invalid_radius"),
            ("lat=0&lng=0&radius_m=NaN", "invalid_radius"),
            ("lat=0&lng=0&limit=0", "invalid_limit"),
            ("lat=0&lng=0&limit=101", "invalid_limit"),
            ("lat=0&lng=0&limit=-1", "invalid_query"),
            ("lat=0&lng=0&status=asleep", "invalid_status"),
        ] {
            let r = app
                .get(&format!("/v1/drivers/nearby?{query}"), admin.token())
                .await;
            r.assert_error(400, code);
        }
    }
}
