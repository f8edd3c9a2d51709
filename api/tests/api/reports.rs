//! The report routes' input: what the document's schema refuses is a 400,
//! what it allows but cannot be reported a 422, each with its reason
//! code. (The figures
//! themselves are checked end to end against a seeded scenario in the
//! workspace's `tests/reports.rs`.)

use auth::Role;

use crate::common::*;

dual_test! {
    async fn bad_periods_and_zones_say_why() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let owner = app.user(Role::Restaurant).await;
        for (query, status, code) in [
            ("from=2026-01-01", 400, "invalid_query"),
            ("from=yesterday&to=2026-01-02", 400, "invalid_period"),
            ("from=2026-01-01&to=2026-1-2", 400, "invalid_period"),
            ("from=2026-01-01&to=2026-02-30", 422, "invalid_period"),
            ("from=2026-01-01&to=2026-01-02&tz=Mars/Olympus", 422, "invalid_tz"),
            ("from=2026-01-01&to=2026-01-02&tz=EST5EDT,M3.2.0,M11.1.0", 422, "invalid_tz"),
            ("from=2026-01-01&to=2026-01-02&bucket=week", 400, "invalid_bucket"),
            ("from=2026-01-02&to=2026-01-01", 422, "empty_period"),
            ("from=2026-01-01T10:00&to=2026-01-02", 422, "unaligned_period"),
            ("from=2026-01-01T10:30&to=2026-01-02&bucket=hour", 422, "unaligned_period"),
            ("from=2024-01-01&to=2025-06-01", 422, "period_too_long"),
            ("from=2026-01-01&to=2026-03-01&bucket=hour", 422, "period_too_long"),
        ] {
            for route in ["orders", "restaurants", "drivers"] {
                app.get(&format!("/v1/admin/reports/{route}?{query}"), admin.token())
                    .await
                    .assert_error(status, code);
            }
            app.get(&format!("/v1/admin/reports/restaurants?{query}"), owner.token())
                .await
                .assert_error(status, code);
        }
        // A well-formed period over an empty projection: zeros, one bucket
        // per local day (a 23-hour day included), rates undefined.
        let r = app
            .get(
                "/v1/admin/reports/orders?from=2026-03-28&to=2026-03-31&tz=Europe/Stockholm",
                admin.token(),
            )
            .await;
        let body = r.assert_ok(200);
        let starts: Vec<&str> = body["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["start"].as_str().unwrap())
            .collect();
        assert_eq!(
            starts,
            ["2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]
        );
        assert_eq!(body["totals"]["placed"], 0);
        assert_eq!(body["cohort"]["cancellation_rate"], serde_json::Value::Null);
        assert_eq!(body["period"]["from"], "2026-03-28T00:00:00+01:00");
    }
}
