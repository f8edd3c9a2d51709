//! Answers a client can rely on: the menu is one document whether it was
//! just written or read, every history step after assignment names the
//! driver, and an availability answer says why the status is not what was
//! declared.

use auth::Role;
use axum::http::Method;
use serde_json::{Value, json};

use crate::common::*;

dual_test! {
    async fn posting_a_menu_answers_the_menu() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let uri = format!("/v1/restaurants/{restaurant}/menu");
        let r = app
            .post(
                &uri,
                owner.token(),
                json!({"items": [
                    {"name": "Margherita", "price_cents": 11_000, "category": "Pizza", "stock": 20},
                    {"name": "Tiramisu", "price_cents": 6_500, "category": "Dessert"},
                ]}),
            )
            .await;
        let posted = r.assert_ok(201).clone();
        let read = app.get(&uri, None).await.assert_ok(200).clone();
        // The same document as GET, plus what this request added.
        let mut without_added = posted.clone();
        let added = without_added
            .as_object_mut()
            .unwrap()
            .remove("items")
            .expect("the added items, as `items`");
        assert_eq!(without_added, read);
        let names: Vec<&Value> = added.as_array().unwrap().iter().map(|i| &i["name"]).collect();
        assert_eq!(names, [&json!("Margherita"), &json!("Tiramisu")]);
        // The README's `jq -r '.items[0].menu_item_id'` still finds the item.
        let id = posted["items"][0]["menu_item_id"].clone();
        let categories = read["categories"].as_array().unwrap();
        assert!(
            categories
                .iter()
                .flat_map(|c| c["items"].as_array().unwrap())
                .any(|i| i["menu_item_id"] == id),
            "{read}"
        );
    }
}

dual_test! {
    async fn history_steps_after_assignment_name_the_driver() {
        let app = TestApp::new().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let driver = app.user(Role::Driver).await;
        app.ping(driver.driver_id(), HERE.0, HERE.1);
        let order = app.place_order(&customer, restaurant).await;
        app.accept(&driver, &app.offer_of(order)).await.assert_ok(200);
        for (who, status) in [
            (&owner, "preparing"),
            (&owner, "ready_for_pickup"),
            (&driver, "picked_up"),
            (&driver, "delivered"),
        ] {
            app.post(&format!("/v1/orders/{order}/status"), who.token(), json!({"status": status}))
                .await
                .assert_ok(200);
        }
        let history = app.get(&format!("/v1/orders/{order}/history"), customer.token()).await;
        let events = history.assert_ok(200)["events"].as_array().unwrap().clone();
        let driver_of = |status: &str| {
            events
                .iter()
                .find(|e| e["kind"] == "status" && e["status"] == status)
                .unwrap_or_else(|| panic!("no {status} step: {events:?}"))["driver_id"]
                .clone()
        };
        for status in ["preparing", "ready_for_pickup", "picked_up", "delivered"] {
            assert_eq!(driver_of(status), json!(driver.id), "{status}");
        }
        // Before the assignment there was no driver to name.
        assert_eq!(driver_of("paid"), Value::Null);
        let assigned = events.iter().find(|e| e["kind"] == "assigned").unwrap();
        assert_eq!(assigned["driver_id"], json!(driver.id));
    }
}

dual_test! {
    async fn availability_says_why_the_status_differs() {
        let app = TestApp::new().await;
        let driver = app.user(Role::Driver).await;
        let uri = format!("/v1/drivers/{}/availability", driver.id);
        let put = |status: &'static str| {
            let (app, uri, token) = (&app, uri.clone(), driver.token.clone());
            async move {
                app.call(Method::PUT, &uri, Some(&token), Some(json!({"status": status})))
                    .await
                    .assert_ok(200)
                    .clone()
            }
        };
        // Declared available, never pinged: offline, and the answer says why
        // and what to do.
        let r = put("available").await;
        assert_eq!(r["declared"], "available");
        assert_eq!(r["status"], "offline");
        let reason = r["reason"].as_str().expect("a reason");
        assert!(reason.starts_with("no position yet"), "{reason}");
        assert!(reason.contains("ping"), "{reason}");
        // Pinging: available, nothing to explain.
        app.ping(driver.driver_id(), HERE.0, HERE.1);
        let r = put("available").await;
        assert_eq!(
            r,
            json!({"driver_id": driver.id, "declared": "available", "status": "available"})
        );
        let r = put("offline").await;
        assert_eq!(
            r,
            json!({"driver_id": driver.id, "declared": "offline", "status": "offline"})
        );
        // Silent past the presence timeout: offline for another reason.
        // (A day on: past any presence timeout.)
        app.state.engine.expire(now_ms() + 86_400_000);
        let r = put("available").await;
        assert_eq!(r["status"], "offline");
        assert!(r["reason"].as_str().unwrap().starts_with("no recent ping"), "{r}");
    }
}
