//! Infrastructure faults under load: PostgreSQL going away mid-load for
//! 7 s and coming back (a proxy the test cuts: every connection reset, new
//! ones refused, as in a restart). `/readyz` tells the truth meanwhile, clients
//! get `503 database_unavailable` with `Retry-After` (never a 500),
//! reads served from memory go on at their pace, and once the database is
//! back hexdash recovers without a restart and without losing anything
//! committed: every order answered 201 is there once, with its events.
//! (The payment gateway's faults are in `tests/payments.rs`, Redis's in
//! `tests/cluster.rs`.)

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::proxy::Proxy;
use common::*;
use serde_json::{Value, json};

/// The `host:port` of a `postgres://user@host:port/db?…` URL.
fn server_of(url: &str) -> SocketAddr {
    let rest = url.split_once('@').expect("a user in the test URL").1;
    let host_port = rest.split(['/', '?']).next().unwrap();
    host_port.parse().expect("an IP:port in the test URL")
}

/// One placement's outcome: its key, the status, the order id if 201.
struct Placed {
    key: String,
    status: u16,
    order: Option<String>,
    code: Option<String>,
    /// The error's message, for a failure's report.
    message: String,
}

async fn place(app: &TestApp, customer: &User, restaurant: &str, dish: &str, key: &str) -> Placed {
    let resp = app
        .client
        .post(app.url("/v1/orders"))
        .bearer_auth(&customer.token)
        .header("idempotency-key", key)
        .json(&json!({"restaurant_id": restaurant,
                      "items": [{"menu_item_id": dish, "quantity": 1}],
                      "delivery": {"lat": 57.69, "lng": 11.97, "address": "Avenyn 10"},
                      "payment": {"method": "card", "token": "tok_ok"}}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    if status == 503 {
        let retry_after = resp.headers().get("retry-after").cloned();
        assert!(retry_after.is_some(), "a 503 without Retry-After");
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    Placed {
        key: key.to_owned(),
        status,
        order: body["order_id"].as_str().map(str::to_owned),
        code: body["error"]["code"].as_str().map(str::to_owned),
        message: body["error"]["message"].to_string(),
    }
}

/// How many orders `customer` has, through every page of the listing.
async fn stored_orders(app: &TestApp, customer: &User) -> usize {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/v1/orders?limit=100&cursor={c}"),
            None => "/v1/orders?limit=100".to_owned(),
        };
        let (status, page) = app.get(&uri, Some(&customer.token)).await;
        assert_eq!(status, 200, "{page}");
        count += page["orders"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return count,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_mid_load_loses_nothing_committed() {
    let Some(url) = postgres_schema_url().await else {
        eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// URL: skipped");
        return;
    };
    let server = server_of(&url);
    let proxy = Proxy::start(server).await;
    let through_proxy = url.replacen(&server.to_string(), &proxy.addr().to_string(), 1);
    let app = spawn_app_with(|c| {
        c.database_url = through_proxy;
        // The load is one customer as fast as it can go.
        c.api.requests_per_account_per_s = 0;
    })
    .await;
    let (_owner, restaurant, dish) = app.open_soup_kitchen("Fault Soup", (57.70, 11.97)).await;
    let customer = app.signup("patient", "customer").await;

    // The load: orders one after another, each with its own key.
    let app = Arc::new(app);
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (app, stop) = (app.clone(), stop.clone());
        let customer = User {
            id: customer.id.clone(),
            token: customer.token.clone(),
        };
        let (restaurant, dish) = (restaurant.clone(), dish.clone());
        tokio::spawn(async move {
            let mut placed = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("fault-{i}");
                placed.push(place(&app, &customer, &restaurant, &dish, &key).await);
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            placed
        })
    };
    // A client of what the database is not needed for: restaurant search
    // (the catalog in memory).
    let search = app.url("/v1/restaurants?lat=57.70&lng=11.97");
    let well_behaved = || async {
        let r = app.client.get(&search).send().await.unwrap();
        assert_eq!(r.status(), 200);
    };
    let gap = Duration::from_millis(10);
    let quiet = common::beside::sample(100, gap, well_behaved).await;

    // The database goes away, for longer than a request waits for a
    // connection (5 s), so the load meets refusals whatever its timing.
    proxy.cut();
    let cut_at = tokio::time::Instant::now();
    let (status, ready) = eventually(async || {
        let (status, body) = app.get("/readyz", None).await;
        (status == 503).then_some((status, body))
    })
    .await;
    assert_eq!(status, 503);
    assert_eq!(ready["checks"]["database"], false, "{ready}");
    let during = common::beside::sample(100, gap, well_behaved).await;
    tokio::time::sleep_until(cut_at + Duration::from_millis(7_000)).await;

    // It comes back: hexdash recovers by itself.
    proxy.restore().await;
    eventually(async || {
        let (status, _) = app.get("/readyz", None).await;
        (status == 200).then_some(())
    })
    .await;
    // Orders go through again.
    eventually(async || {
        let placed = place(
            &app,
            &customer,
            &restaurant,
            &dish,
            &uuid::Uuid::new_v4().to_string(),
        )
        .await;
        (placed.status == 201).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let placed = load.await.unwrap();

    // Refused ones were refused clearly; nothing was a 500.
    let refused: Vec<&Placed> = placed.iter().filter(|p| p.status != 201).collect();
    assert!(!refused.is_empty(), "the outage refused nothing");
    for p in &refused {
        assert_eq!(
            (p.status, p.code.as_deref()),
            (503, Some("database_unavailable")),
            "{}",
            p.key
        );
    }
    // A refused placement retried with its key: placed now, or the one
    // placed before the connection broke.
    let mut orders: Vec<String> = placed.iter().filter_map(|p| p.order.clone()).collect();
    for p in &refused {
        let again = place(&app, &customer, &restaurant, &dish, &p.key).await;
        assert_eq!(again.status, 201, "{}: {:?}", p.key, again.code);
        orders.push(again.order.unwrap());
    }
    orders.sort();
    orders.dedup();
    // Every acknowledged order is stored once, paid, and its placement is
    // in the event stream (the relay caught up after the outage).
    let admin = app.admin_token().await;
    for order in &orders {
        let (status, body) = app
            .get(&format!("/v1/orders/{order}"), Some(&customer.token))
            .await;
        assert_eq!(status, 200, "{order}: {body}");
        // Paid; or, where the connection broke between the placement's
        // commit and its charge's settlement, still `placed` with its
        // charge pending (not lost, not doubled). Known gap: a pending
        // charge is collected again at start-up, not by a replay of its
        // key (docs/RELIABILITY.md, "Not yet shown").
        let pending = body["status"] == "placed" && body["payment"]["status"] == "pending";
        assert!(body["status"] == "paid" || pending, "{order}: {body}");
    }
    let stored = stored_orders(&app, &customer).await;
    // The load's orders and the one the recovery check placed.
    assert_eq!(stored, orders.len() + 1, "orders stored twice or lost");
    eventually(async || {
        let (_, events) = app
            .get("/v1/admin/events?type=order.placed&limit=500", Some(&admin))
            .await;
        // Fewer than 500 orders in a run of seconds: one page.
        (events["events"].as_array()?.len() == stored).then_some(())
    })
    .await;
    common::beside::assert_within_twice("PostgreSQL away", &quiet, &during);
    Arc::into_inner(app).unwrap().stop().await;
}

/// A tmpfs of `size` mounted at `dir` (unmounted when dropped); `None`
/// where this process may not mount (no CAP_SYS_ADMIN).
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Option<SmallDisk> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_sqlite_is_a_503_and_recovered_from_when_space_returns() {
    let dir = TempDir::create();
    let Some(_disk) = SmallDisk::mount(&dir.0, "32m") else {
        eprintln!("cannot mount a tmpfs here (needs CAP_SYS_ADMIN): skipped");
        return;
    };
    let app = spawn_app_in(&dir.0, |c| c.api.requests_per_account_per_s = 0).await;
    let (_owner, restaurant, dish) = app.open_soup_kitchen("Full Soup", (57.70, 11.97)).await;
    let customer = app.signup("filler", "customer").await;
    let first = place(&app, &customer, &restaurant, &dish, "before-full").await;
    assert_eq!(first.status, 201, "{:?}", first.code);

    // Everything left on the disk taken by one file.
    let filler = dir.0.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let mut refused = Vec::new();
    for i in 0..50 {
        let key = format!("full-{i}");
        let placed = place(&app, &customer, &restaurant, &dish, &key).await;
        match placed.status {
            201 => {}
            503 => {
                assert_eq!(
                    placed.code.as_deref(),
                    Some("database_unavailable"),
                    "{key}"
                );
                refused.push(key);
                break;
            }
            other => panic!("{key}: {other} {:?} {}", placed.code, placed.message),
        }
    }
    assert!(!refused.is_empty(), "no write failed on a full disk");
    // Reads go on.
    let (status, _) = app
        .get(
            &format!("/v1/orders/{}", first.order.clone().unwrap()),
            Some(&customer.token),
        )
        .await;
    assert_eq!(status, 200);

    // Space returns: writes go through again, no restart.
    std::fs::remove_file(&filler).unwrap();
    for key in &refused {
        let again = eventually(async || {
            let placed = place(&app, &customer, &restaurant, &dish, key).await;
            (placed.status == 201).then_some(placed)
        })
        .await;
        assert!(again.order.is_some());
    }
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    app.stop().await;
}
