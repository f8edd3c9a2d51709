//! No secret reaches the logs, with every log level on: the real binary
//! runs at `trace` while clients sign up, log in (once with a wrong
//! password), refresh, open WebSockets with the token in the query, connect
//! over MQTT with the token as password, register a webhook and order;
//! then its whole output is searched for each secret it was handed or
//! made. On SQLite and, with `HEXDASH_TEST_DATABASE_URL`, on PostgreSQL
//! through a URL that carries a password.

mod common;

use common::process::ServerProcess;
use common::*;
use serde_json::json;

/// Secrets of the run: what the operator configured.
const JWT_SECRET: &str = "jwt-secret-never-in-logs-8d1f";
const ADMIN_PASSWORD_HERE: &str = "admin-pass-never-in-logs-5c2e";
const DB_PASSWORD: &str = "db-pass-never-in-logs-a71b";
/// What users typed.
const USER_PASSWORD: &str = "user-pass-never-in-logs-93aa";
const WRONG_PASSWORD: &str = "wrong-pass-never-in-logs-02fd";

#[tokio::test]
async fn secrets_never_reach_the_logs_at_trace() {
    let dir = TempDir::create();
    run(
        &dir,
        &format!("sqlite://{}/hexdash.db", dir.0.display()),
        None,
    )
    .await;
    if let Some(url) = postgres_schema_url().await {
        let dir = TempDir::create();
        // Trust authentication takes any password: the URL carries one
        // for the logs to leak.
        let (url, password) = with_password(&url);
        run(&dir, &url, Some(&password)).await;
    }
}

/// `url` with [`DB_PASSWORD`] as its password unless it has one; the URL
/// and the password.
fn with_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.split_once('@').expect("a user in the test URL");
    match userinfo.split_once(':') {
        Some((_, password)) => (url.to_owned(), password.to_owned()),
        None => (
            format!("{scheme}://{userinfo}:{DB_PASSWORD}@{host}"),
            DB_PASSWORD.to_owned(),
        ),
    }
}

async fn run(dir: &TempDir, database_url: &str, db_password: Option<&str>) {
    let log = dir.0.join("server.log");
    let server = ServerProcess::start_logging_to(
        dir,
        database_url,
        &[
            ("HEXDASH_LOG", "trace"),
            ("HEXDASH_JWT_SECRET", JWT_SECRET),
            ("HEXDASH_ADMIN_PASSWORD", ADMIN_PASSWORD_HERE),
        ],
        &log,
    )
    .await;
    let api = &server.api;
    let mut secrets: Vec<String> = [
        JWT_SECRET,
        ADMIN_PASSWORD_HERE,
        USER_PASSWORD,
        WRONG_PASSWORD,
    ]
    .map(str::to_owned)
    .into();
    secrets.extend(db_password.map(str::to_owned));

    // Accounts: signup, a failed login, logins, a refresh.
    let admin = api.login(ADMIN_EMAIL, ADMIN_PASSWORD_HERE).await;
    let email = format!("leak-{}@hexdash.test", uuid::Uuid::new_v4().simple());
    let (status, body) = api
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": email, "password": USER_PASSWORD, "name": "Leak", "role": "customer"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": WRONG_PASSWORD}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, login) = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let refresh_token = login["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh_token}),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let customer = refreshed["access_token"].as_str().unwrap().to_owned();
    secrets.extend([
        admin.clone(),
        login["access_token"].as_str().unwrap().to_owned(),
        refresh_token,
        refreshed["refresh_token"].as_str().unwrap().to_owned(),
        customer.clone(),
    ]);

    // The token in a query (a browser's WebSocket), and a bad one.
    let mut watcher = Watcher::connect_to(api, &customer).await;
    watcher
        .send(json!({"op": "subscribe", "channel": "me"}))
        .await;
    let bad = tokio_tungstenite::connect_async(api.ws_url("/v1/ws?token=not-a-token")).await;
    assert!(bad.is_err(), "a bad token opened a WebSocket");

    // A driver over MQTT: the token is the password.
    let driver = api.signup("leakydriver", "driver").await;
    secrets.push(driver.token.clone());
    let mqtt = MqttDriver::connect_at(server.mqtt, &driver).await;
    mqtt.ping(57.70, 11.97, now_ms()).await;

    // A webhook: the signing secret is made here and shown once.
    let (status, hook) = api
        .post(
            "/v1/admin/webhooks",
            Some(&admin),
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["order.placed"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    secrets.push(hook["secret"].as_str().unwrap().to_owned());

    // An order: the placement, the payment, the events.
    let (_owner, restaurant, dish) = api.open_soup_kitchen("Leak Soup", (57.70, 11.97)).await;
    let (status, order) = api
        .post(
            "/v1/orders",
            Some(&customer),
            json!({
                "restaurant_id": restaurant,
                "items": [{"menu_item_id": dish, "quantity": 1}],
                "delivery": {"lat": 57.701, "lng": 11.971, "address": "Avenyn 1"},
                "payment": {"method": "card", "token": "tok_ok"},
            }),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(watcher);
    drop(mqtt);
    server.kill();

    let text = std::fs::read_to_string(&log).unwrap();
    // The logs were on: the run is in them.
    assert!(text.contains("/v1/auth/login"), "no request lines logged");
    assert!(
        text.lines().count() > 50,
        "only {} lines",
        text.lines().count()
    );
    // As written, and hex-encoded as the WebSocket library's trace prints
    // frame payloads.
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let forms: Vec<String> = secrets.iter().flat_map(|s| [s.clone(), hex(s)]).collect();
    for secret in &forms {
        let at = text.find(secret.as_str());
        assert!(
            at.is_none(),
            "a secret ({}…) is in the log: …{}…",
            &secret[..6.min(secret.len())],
            &text[at.unwrap().saturating_sub(200)..(at.unwrap() + 40).min(text.len())]
        );
    }
}
