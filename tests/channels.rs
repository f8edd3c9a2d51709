//! Outside channels (push, email, SMS) on a real server, on SQLite and on
//! PostgreSQL: an order's life sends each party what their preferences
//! want on each channel, in their language; a channel turned off gets
//! nothing; a provider that keeps refusing makes the event a dead letter
//! after the configured tries, and its replay sends the message once; a
//! redelivered event sends nothing twice.

mod common;

use std::str::FromStr;

use common::*;
use serde_json::{Value, json};
use sqlx::AnyPool;
use sqlx::any::AnyConnectOptions;

/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_195.0;
/// The restaurant; every order's door is 600 m east of it.
const RESTAURANT: (f64, f64) = (57.7089, 11.9746);

/// A point `east_m` east of `p`.
fn east(p: (f64, f64), east_m: f64) -> (f64, f64) {
    (p.0, p.1 + east_m / (M_PER_DEG * p.0.to_radians().cos()))
}

/// Runs `$scenario(database_url)` as two tests: on SQLite (a file of its
/// own) and on PostgreSQL (a schema of its own; skipped without
/// `HEXDASH_TEST_DATABASE_URL`).
macro_rules! on_both {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(None).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(url) = postgres_schema_url().await else {
                    eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: skipped");
                    return;
                };
                super::$scenario(Some(url)).await;
            }
        }
    };
}

/// The test server's settings: arrival fences, quick channel retries,
/// and the database (a file in `dir` unless `url` names one).
fn settings(config: &mut hexdash::Config, url: Option<&str>) {
    config.matcher.arrival_radius_m = 40.0;
    config.channels.max_attempts = 3;
    config.channels.backoff_initial_ms = 10;
    config.channels.backoff_max_ms = 40;
    if let Some(url) = url {
        config.database_url = url.to_owned();
    }
}

async fn start(url: Option<&str>) -> TestApp {
    spawn_app_with(|c| settings(c, url)).await
}

/// A restaurant with one dish; its id and the dish's.
async fn restaurant(app: &TestApp, owner: &User) -> (String, String) {
    let (status, r) = app
        .post(
            "/v1/restaurants",
            Some(&owner.token),
            json!({"name": "Kanalen", "location": {"lat": RESTAURANT.0, "lng": RESTAURANT.1}, "address": "Kanalgatan 1"}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let id = r["restaurant_id"].as_str().unwrap().to_owned();
    let (status, menu) = app
        .post(
            &format!("/v1/restaurants/{id}/menu"),
            Some(&owner.token),
            json!({"items": [{"name": "Räksmörgås", "price_cents": 14_500}]}),
        )
        .await;
    assert_eq!(status, 201, "{menu}");
    let dish = menu["items"][0]["menu_item_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, dish)
}

/// Places and pays an order to the door 600 m east; its id.
async fn order(app: &TestApp, customer: &User, restaurant: &str, dish: &str) -> String {
    let door = east(RESTAURANT, 600.0);
    let (status, o) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant,
                   "items": [{"menu_item_id": dish, "quantity": 1}],
                   "delivery": {"lat": door.0, "lng": door.1, "address": "Dörren 2"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{o}");
    assert_eq!(o["status"], "paid");
    o["order_id"].as_str().unwrap().to_owned()
}

async fn patch_me(app: &TestApp, who: &User, body: Value) -> Value {
    let (status, profile) = app.patch("/v1/me", &who.token, body).await;
    assert_eq!(status, 200, "{profile}");
    profile
}

async fn set_prefs(app: &TestApp, who: &User, body: Value) -> Value {
    let (status, prefs) = app
        .put("/v1/me/notification-preferences", &who.token, body)
        .await;
    assert_eq!(status, 200, "{prefs}");
    prefs
}

/// Every message sent to `user`, oldest first, read page by page through
/// the admin's listing.
async fn sent_to(app: &TestApp, admin: &str, user: &User) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/admin/notifications/sent?user_id={}&limit=3", user.id);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(&path, Some(admin)).await;
        assert_eq!(status, 200, "{page}");
        all.extend(page["messages"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    all.reverse();
    all
}

/// (channel, event type) of each message, sorted.
fn kinds(messages: &[Value]) -> Vec<(String, String)> {
    let mut kinds: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m["channel"].as_str().unwrap().to_owned(),
                m["event_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    kinds
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
        .collect();
    v.sort();
    v
}

/// Waits until `user` has exactly `expected` messages and returns them.
async fn sent_exactly(
    app: &TestApp,
    admin: &str,
    user: &User,
    expected: &[(&str, &str)],
) -> Vec<Value> {
    let expected = pairs(expected);
    eventually(async || {
        let sent = sent_to(app, admin, user).await;
        let got = kinds(&sent);
        assert!(
            got.len() <= expected.len(),
            "more messages than expected: {got:?}"
        );
        (got == expected).then_some(sent)
    })
    .await
}

/// The message of `channel` and `event_type` among `messages`.
fn find<'a>(messages: &'a [Value], channel: &str, event_type: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["channel"] == channel && m["event_type"] == event_type)
        .unwrap_or_else(|| panic!("no {channel} {event_type} in {messages:?}"))
}

async fn life(url: Option<String>) {
    let app = start(url.as_deref()).await;
    let admin = app.admin_token().await;
    let owner = app.signup("owner", "restaurant").await;
    let customer = app.signup("customer", "customer").await;
    let courier = app.signup("courier", "driver").await;
    let marker = app.signup("marker", "customer").await;

    // The customer keeps the defaults and gives a phone; the owner reads
    // Swedish and wants no email; the courier asks for an SMS when the
    // food is ready; the marker for an SMS when paid.
    let profile = patch_me(&app, &customer, json!({"phone": "+46 70 111 22 33"})).await;
    assert_eq!(profile["language"], Value::Null, "{profile}");
    let profile = patch_me(&app, &owner, json!({"language": "sv"})).await;
    assert_eq!(profile["language"], "sv");
    let (status, body) = app
        .patch("/v1/me", &owner.token, json!({"language": "de"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_language");
    let (_, me) = app.get("/v1/me", Some(&owner.token)).await;
    assert_eq!(me["language"], "sv", "a refused change changes nothing");
    let prefs = set_prefs(&app, &owner, json!({"email": {"enabled": false}})).await;
    assert_eq!(prefs["email"]["enabled"], false);
    assert_eq!(prefs["push"]["enabled"], true);
    patch_me(&app, &courier, json!({"phone": "+46 70 444 55 66"})).await;
    set_prefs(
        &app,
        &courier,
        json!({"sms": {"events": {"order.ready_for_pickup": true}}}),
    )
    .await;
    patch_me(&app, &marker, json!({"phone": "+46 70 777 88 99"})).await;
    set_prefs(
        &app,
        &marker,
        json!({"sms": {"events": {"order.paid": true}}}),
    )
    .await;
    let (status, body) = app
        .put(
            "/v1/me/notification-preferences",
            &customer.token,
            json!({"sms": {"events": {"order.teleported": true}}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "unknown_event_type");
    let (status, body) = app
        .put(
            "/v1/me/notification-preferences",
            &customer.token,
            json!({"fax": {"enabled": true}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, prefs) = app
        .get("/v1/me/notification-preferences", Some(&customer.token))
        .await;
    assert_eq!(prefs["sms"]["events"]["order.arrived_at_customer"], true);
    assert_eq!(prefs["sms"]["events"]["order.paid"], false);
    assert_eq!(prefs["email"]["events"]["order.delivered"], true);

    // The courier waits at the restaurant.
    let (restaurant, dish) = restaurant(&app, &owner).await;
    let mut driver = MqttDriver::connect(&app, &courier).await;
    let mut ts = now_ms() - 30 * 60 * 1000;
    driver.ping(RESTAURANT.0, RESTAURANT.1, ts).await;
    let nearby = format!(
        "/v1/drivers/nearby?lat={}&lng={}&radius_m=5000&status=available",
        RESTAURANT.0, RESTAURANT.1
    );
    eventually(async || {
        let (_, body) = app.get(&nearby, Some(&admin)).await;
        (body["drivers"].as_array()?.len() == 1).then_some(())
    })
    .await;

    // The order's life: paid, accepted, taken by the courier, ready,
    // picked up, the courier at the door, delivered.
    let order_id = order(&app, &customer, &restaurant, &dish).await;
    app.step(&owner, &order_id, "accepted").await;
    let offer = driver.next_offer().await;
    let (code, body) = app
        .post(
            &format!("/v1/offers/{}/accept", offer["offer_id"].as_str().unwrap()),
            Some(&courier.token),
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    app.step(&owner, &order_id, "ready_for_pickup").await;
    app.step(&courier, &order_id, "picked_up").await;
    for i in 1..=40 {
        let p = east(RESTAURANT, 15.0 * f64::from(i));
        ts += 1_000;
        driver.ping(p.0, p.1, ts).await;
    }
    let arrived = format!(
        "/v1/admin/events?type=order.arrived_at_customer&aggregate_kind=order&aggregate_id={order_id}"
    );
    eventually(async || {
        let (_, body) = app.get(&arrived, Some(&admin)).await;
        (!body["events"].as_array()?.is_empty()).then_some(())
    })
    .await;
    app.step(&courier, &order_id, "delivered").await;

    // Then the marker's order: once its messages are out on every channel,
    // every channel has handled everything before it.
    let marker_order = order(&app, &marker, &restaurant, &dish).await;
    sent_exactly(
        &app,
        &admin,
        &marker,
        &[
            ("push", "order.paid"),
            ("email", "order.paid"),
            ("sms", "order.paid"),
        ],
    )
    .await;

    let to_customer = sent_exactly(
        &app,
        &admin,
        &customer,
        &[
            ("push", "order.paid"),
            ("push", "order.accepted"),
            ("push", "order.assigned"),
            ("push", "order.ready_for_pickup"),
            ("push", "order.picked_up"),
            ("push", "order.arrived_at_customer"),
            ("push", "order.delivered"),
            ("email", "order.paid"),
            ("email", "order.delivered"),
            ("sms", "order.arrived_at_customer"),
        ],
    )
    .await;
    // The owner: push only (email off, no phone), in Swedish; the marker's
    // order is news for the kitchen too.
    let to_owner = sent_exactly(
        &app,
        &admin,
        &owner,
        &[
            ("push", "order.paid"),
            ("push", "order.paid"),
            ("push", "order.assigned"),
            ("push", "order.arrived_at_restaurant"),
            ("push", "order.picked_up"),
            ("push", "order.delivered"),
        ],
    )
    .await;
    let to_courier = sent_exactly(
        &app,
        &admin,
        &courier,
        &[
            ("push", "order.ready_for_pickup"),
            ("sms", "order.ready_for_pickup"),
        ],
    )
    .await;

    // What was sent, in English for the customer.
    let sms = find(&to_customer, "sms", "order.arrived_at_customer");
    assert_eq!(sms["to"], "+46 70 111 22 33");
    assert_eq!(sms["body"], "hexdash: Your courier is at the door");
    assert_eq!(sms["language"], "en");
    assert_eq!(sms["status"], "sent");
    assert_eq!(sms["attempts"], 1);
    assert_eq!(sms["order_id"], order_id.as_str());
    assert!(sms.get("subject").is_none(), "{sms}");
    let email = find(&to_customer, "email", "order.delivered");
    assert_eq!(email["subject"], "hexdash: Order delivered");
    assert!(
        email["to"].as_str().unwrap().starts_with("customer-"),
        "{email}"
    );
    assert!(
        email["body"]
            .as_str()
            .unwrap()
            .contains("Your order was delivered. Enjoy!"),
        "{email}"
    );
    let push = find(&to_customer, "push", "order.accepted");
    assert_eq!(push["to"], format!("user:{}", customer.id));
    assert_eq!(push["subject"], "Order accepted");
    assert_eq!(push["body"], "The restaurant accepted your order");
    assert_eq!(push["party"], "customer");
    assert!(push["provider_id"].is_string(), "{push}");
    assert!(push["sent_at_ms"].is_i64(), "{push}");

    // In Swedish for the owner, on every channel and in the feed.
    assert!(
        to_owner.iter().all(|m| m["language"] == "sv"),
        "{to_owner:?}"
    );
    let first = &to_owner[0];
    assert_eq!(first["event_type"], "order.paid");
    assert_eq!(first["subject"], "Ny beställning");
    let (_, placed) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&owner.token))
        .await;
    let total = placed["total_cents"].as_i64().unwrap();
    assert_eq!(
        first["body"],
        format!(
            "Ny beställning ({},{:02} kr): var vänlig acceptera den",
            total / 100,
            total % 100
        )
    );
    let delivered = find(&to_owner, "push", "order.delivered");
    assert_eq!(delivered["body"], "Beställningen har levererats");
    let (_, feed) = app.get("/v1/notifications", Some(&owner.token)).await;
    let texts: Vec<&str> = feed["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"Beställningen har levererats"), "{texts:?}");
    let courier_sms = find(&to_courier, "sms", "order.ready_for_pickup");
    assert_eq!(
        courier_sms["body"],
        "hexdash: The order is ready for pickup"
    );
    assert_eq!(courier_sms["party"], "driver");

    // Each user sees their own messages and only those; the log is the
    // admins'.
    let (status, mine) = app
        .get("/v1/notifications/sent?channel=sms", Some(&customer.token))
        .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(
        kinds(mine["messages"].as_array().unwrap()),
        pairs(&[("sms", "order.arrived_at_customer")])
    );
    let (status, _) = app
        .get("/v1/admin/notifications/sent", Some(&customer.token))
        .await;
    assert_eq!(status, 403);
    let (status, page) = app
        .get(
            "/v1/admin/notifications/sent?channel=sms&status=sent&limit=100",
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"].as_array().unwrap().len(), 3, "{page}");
    for (query, code) in [
        ("channel=fax", "invalid_channel"),
        ("status=lost", "invalid_status"),
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("cursor=abc", "invalid_cursor"),
        ("user_id=nobody", "invalid_query"),
    ] {
        let (status, body) = app
            .get(
                &format!("/v1/admin/notifications/sent?{query}"),
                Some(&admin),
            )
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    let _ = marker_order;
    app.stop().await;
}

on_both!(life);

async fn email_of(app: &TestApp, user: &User) -> String {
    let (_, me) = app.get("/v1/me", Some(&user.token)).await;
    me["email"].as_str().unwrap().to_owned()
}

async fn dead_letters(app: &TestApp, admin: &str, consumer: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!("/v1/admin/dead-letters?consumer={consumer}"),
            Some(admin),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["dead_letters"].as_array().unwrap().clone()
}

async fn failing_then_replayed(url: Option<String>) {
    let app = start(url.as_deref()).await;
    let admin = app.admin_token().await;
    let owner = app.signup("owner", "restaurant").await;
    let customer = app.signup("customer", "customer").await;
    let (restaurant, dish) = restaurant(&app, &owner).await;

    // The customer's mailbox does not answer; they want an SMS of the
    // payment but have no phone.
    set_prefs(
        &app,
        &customer,
        json!({"sms": {"events": {"order.paid": true}}}),
    )
    .await;
    let address = email_of(&app, &customer).await;
    let rules = json!({"push_failure_rate": 0.0, "email_failure_rate": 0.0,
                       "sms_failure_rate": 0.0, "fail_to": [address.to_uppercase()]});
    let (status, body) = app
        .put("/v1/admin/notifications/simulator", &admin, rules.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, now) = app
        .get("/v1/admin/notifications/simulator", Some(&admin))
        .await;
    assert_eq!(now, rules);
    for (bad, status_code, code) in [
        (
            json!({"push_failure_rate": 1.5, "email_failure_rate": 0.0, "sms_failure_rate": 0.0, "fail_to": []}),
            400,
            "invalid_rules",
        ),
        (
            json!({"push_failure_rate": 0.0, "email_failure_rate": 0.0, "sms_failure_rate": 0.0, "fail_to": [" "]}),
            422,
            "invalid_address",
        ),
    ] {
        let (status, body) = app
            .put("/v1/admin/notifications/simulator", &admin, bad)
            .await;
        assert_eq!(status, status_code, "{body}");
        assert_eq!(body["error"]["code"], code);
    }
    let (status, _) = app
        .put("/v1/admin/notifications/simulator", &customer.token, rules)
        .await;
    assert_eq!(status, 403);

    // The payment's email fails three times (the configured tries) and is
    // a dead letter of the email channel; the kitchen's email of the same
    // event went out on the first try and was not sent again by the
    // retries; push is not held up.
    let order_id = order(&app, &customer, &restaurant, &dish).await;
    let dead = eventually(async || {
        let dead = dead_letters(&app, &admin, "channel:email").await;
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["attempts"], 3);
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("does not answer"),
        "{dead:?}"
    );
    let to_customer = sent_exactly(
        &app,
        &admin,
        &customer,
        &[
            ("push", "order.paid"),
            ("email", "order.paid"),
            ("sms", "order.paid"),
        ],
    )
    .await;
    let sms = find(&to_customer, "sms", "order.paid");
    assert_eq!(sms["status"], "skipped");
    assert_eq!(sms["attempts"], 0);
    assert!(sms.get("to").is_none(), "{sms}");
    assert_eq!(sms["last_error"], "no address for sms");
    let failed = find(&to_customer, "email", "order.paid");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempts"], 3);
    assert_eq!(failed["order_id"], order_id.as_str());
    assert!(failed.get("sent_at_ms").is_none(), "{failed}");
    assert_eq!(find(&to_customer, "push", "order.paid")["status"], "sent");
    let to_owner = sent_exactly(
        &app,
        &admin,
        &owner,
        &[("push", "order.paid"), ("email", "order.paid")],
    )
    .await;
    let kitchen_email = find(&to_owner, "email", "order.paid").clone();
    assert_eq!(kitchen_email["status"], "sent");
    assert_eq!(kitchen_email["attempts"], 1);
    let (_, failures) = app
        .get("/v1/admin/notifications/sent?status=failed", Some(&admin))
        .await;
    assert_eq!(
        failures["messages"].as_array().unwrap().len(),
        1,
        "{failures}"
    );

    // The mailbox answers again; the replay sends the one message that
    // had not gone out, once.
    let clear = json!({"push_failure_rate": 0.0, "email_failure_rate": 0.0,
                       "sms_failure_rate": 0.0, "fail_to": []});
    let (status, _) = app
        .put("/v1/admin/notifications/simulator", &admin, clear)
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            &format!("/v1/admin/dead-letters/{}/replay", dead[0]["id"]),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let replayed = eventually(async || {
        let sent = sent_to(&app, &admin, &customer).await;
        let email = find(&sent, "email", "order.paid").clone();
        (email["status"] == "sent").then_some(sent)
    })
    .await;
    assert_eq!(
        kinds(&replayed),
        pairs(&[
            ("push", "order.paid"),
            ("email", "order.paid"),
            ("sms", "order.paid")
        ])
    );
    let email = find(&replayed, "email", "order.paid");
    assert_eq!(email["attempts"], 4);
    assert_eq!(email["id"], failed["id"], "the same message, not a new one");
    assert!(email.get("last_error").is_none(), "{email}");
    let to_owner = sent_to(&app, &admin, &owner).await;
    assert_eq!(find(&to_owner, "email", "order.paid"), &kitchen_email);
    eventually(async || {
        let dead = dead_letters(&app, &admin, "channel:email").await;
        (dead[0]["state"] == "replayed").then_some(())
    })
    .await;
    app.stop().await;
}

on_both!(failing_then_replayed);

/// The database beside the server, for the test's own statements.
async fn open_pool(database_url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .connect_with(AnyConnectOptions::from_str(database_url).unwrap())
        .await
        .unwrap()
}

async fn redelivered(url: Option<String>) {
    let dir = TempDir::create();
    let database_url = url
        .clone()
        .unwrap_or_else(|| test_config(&dir.0).database_url);
    let app = spawn_app_in(&dir.0, |c| settings(c, url.as_deref())).await;
    let admin = app.admin_token().await;
    let owner = app.signup("owner", "restaurant").await;
    let customer = app.signup("customer", "customer").await;
    let (restaurant, dish) = restaurant(&app, &owner).await;

    // The owner wants nothing outside at first; the customer gets the
    // defaults.
    set_prefs(
        &app,
        &owner,
        json!({"push": {"enabled": false}, "email": {"enabled": false}}),
    )
    .await;
    let order_id = order(&app, &customer, &restaurant, &dish).await;
    app.step(&owner, &order_id, "accepted").await;
    let before = sent_exactly(
        &app,
        &admin,
        &customer,
        &[
            ("push", "order.paid"),
            ("push", "order.accepted"),
            ("email", "order.paid"),
        ],
    )
    .await;
    assert!(sent_to(&app, &admin, &owner).await.is_empty());

    // Now the owner wants every channel, and the channels' consumers start
    // over from the first event after a restart, as after a crash before
    // any position was recorded.
    patch_me(&app, &owner, json!({"phone": "+46 31 123 456"})).await;
    set_prefs(
        &app,
        &owner,
        json!({"sms": {"events": {"order.paid": true}}}),
    )
    .await;
    app.stop().await;
    let pool = open_pool(&database_url).await;
    let reset = sqlx::query("UPDATE event_consumers SET position = 0 WHERE name LIKE 'channel:%'")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(reset, 3, "one position per channel");
    pool.close().await;
    let app = spawn_app_in(&dir.0, |c| settings(c, url.as_deref())).await;

    // Every channel handled the old events again: the owner, who wants
    // them now, gets the payment on each; the customer's messages were not
    // sent a second time (the same rows, one try each).
    app.step(&owner, &order_id, "preparing").await;
    sent_exactly(
        &app,
        &admin,
        &owner,
        &[
            ("push", "order.paid"),
            ("email", "order.paid"),
            ("sms", "order.paid"),
        ],
    )
    .await;
    let after = sent_exactly(
        &app,
        &admin,
        &customer,
        &[
            ("push", "order.paid"),
            ("push", "order.accepted"),
            ("push", "order.preparing"),
            ("email", "order.paid"),
        ],
    )
    .await;
    for old in &before {
        let now = find(
            &after,
            old["channel"].as_str().unwrap(),
            old["event_type"].as_str().unwrap(),
        );
        assert_eq!(now, old, "sent again");
        assert_eq!(now["attempts"], 1);
    }
    app.stop().await;
}

on_both!(redelivered);
