//! `hexdash serve --demo` for a minute, as a newcomer runs it: the real
//! binary on port 0 with a temporary SQLite database (and PostgreSQL in a
//! schema of its own when `HEXDASH_TEST_DATABASE_URL` names one), a small
//! fast city (24 couriers at six times a moped's 25 km/h, 42 m/s, still
//! under the server's 60 m/s plausibility limit; 40 orders a minute; trips
//! of a few hundred metres) so orders go all the way round within the
//! minute.
//!
//! Checked:
//! - orders are placed and delivered (when none is delivered by the end of
//!   the minute, the test waits for the first, up to two minutes more);
//!   every order the server holds is
//!   `delivered` or still legitimately on its way (paid … picked up), none
//!   ended any other way (nothing in a healthy minute should cancel,
//!   reject or fail one), and no more are open than `max_in_flight`;
//! - the log (JSON) has no ERROR line at all, and the demo met no answer
//!   it did not expect (its `unexpected` counter is 0, no demo WARN line);
//! - memory is flat: the process's resident set (`VmRSS`) at the end is
//!   within 25 % (and at least 24 MiB) of what it was after a 20-second
//!   warm-up (start-up's road graphs, sessions and connections are made
//!   by then; what grows after is per order, which the retention limits
//!   bound);
//! - (SQLite) a restart on the same database reuses the demo's accounts
//!   and restaurants: the same six restaurants, no new ones.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Api, TempDir};
use serde_json::Value;

/// How long the demo runs.
const RUN: Duration = Duration::from_secs(60);
/// When the resident set is first read.
const WARM_UP: Duration = Duration::from_secs(20);
/// How long start-up (map, accounts) may take before the test gives up.
const START_LIMIT: Duration = Duration::from_secs(120);
/// The demo's in-flight limit in this test.
const MAX_IN_FLIGHT: usize = 30;
/// Restaurants in this test's city.
const RESTAURANTS: usize = 6;

/// A `hexdash serve --demo` process writing JSON logs to a file.
struct Demo {
    child: Child,
    log: PathBuf,
    api: Api,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// Starts the binary on `database_url` and waits for its start line.
    async fn start(dir: &Path, database_url: &str, log_name: &str) -> Demo {
        let log = dir.join(log_name);
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let city = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/gothenburg_roads_2016.hxroads"
        );
        let child = Command::new(env!("CARGO_BIN_EXE_hexdash"))
            .args(["serve", "--demo", "--demo-city", city])
            .args(["--demo-couriers", "24", "--demo-orders-per-min", "40"])
            .args(["--http-addr", "127.0.0.1:0", "--mqtt-addr", "127.0.0.1:0"])
            .current_dir(dir)
            .env_clear()
            .env("HEXDASH_DATABASE_URL", database_url)
            .env("HEXDASH_JWT_SECRET", "demo-test-secret")
            .env("HEXDASH_LOG", "info")
            .env("HEXDASH_LOG_FORMAT", "json")
            // Cheap password hashes: the city signs up 41 accounts.
            .env("HEXDASH_API__PASSWORD_MEMORY_KIB", "64")
            .env("HEXDASH_API__PASSWORD_PASSES", "1")
            // A small fast city: trips of a few hundred metres at six
            // times a moped's speed, kitchens of a few seconds.
            .env("HEXDASH_DEMO__RESTAURANTS", RESTAURANTS.to_string())
            .env("HEXDASH_DEMO__CUSTOMERS", "10")
            .env("HEXDASH_DEMO__MAX_IN_FLIGHT", MAX_IN_FLIGHT.to_string())
            .env("HEXDASH_DEMO__SPEED_FACTOR", "6")
            .env("HEXDASH_DEMO__PREP_MIN_S", "2")
            .env("HEXDASH_DEMO__PREP_MAX_S", "8")
            .env("HEXDASH_DEMO__POLL_INTERVAL_MS", "1000")
            .env("HEXDASH_DEMO__RESTAURANT_RADIUS_M", "800")
            .env("HEXDASH_DEMO__TRIP_MIN_M", "200")
            .env("HEXDASH_DEMO__TRIP_MAX_M", "700")
            // A declined order goes to the next courier at once, and back
            // to the first after a few seconds.
            .env("HEXDASH_MATCHER__OFFER_TIMEOUT_S", "10")
            .env("HEXDASH_MATCHER__REOFFER_COOLDOWN_S", "5")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        let mut demo = Demo {
            child,
            log,
            // Replaced by the address the start line names.
            api: Api::new(SocketAddr::from(([127, 0, 0, 1], 0))),
        };
        let started = demo
            .wait_for_line(|l| l["message"] == "hexdash started")
            .await;
        let http: SocketAddr = started["http"].as_str().unwrap().parse().unwrap();
        demo.api = Api::new(http);
        demo
    }

    /// The log's JSON lines so far.
    fn lines(&self) -> Vec<Value> {
        let file = std::fs::File::open(&self.log).unwrap();
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str(&l).unwrap_or(Value::String(l)))
            .collect()
    }

    /// Waits for a log line `found` picks (the process must stay up).
    async fn wait_for_line(&mut self, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            if let Some(line) = self.lines().into_iter().find(&found) {
                return line;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "hexdash exited ({status}) early:\n{}",
                    std::fs::read_to_string(&self.log).unwrap()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such log line in time:\n{}",
                std::fs::read_to_string(&self.log).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resident set size, KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// `SIGTERM`, and waits for a clean exit.
    async fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "hexdash exited with {status}");
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "hexdash did not stop"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every order, through the admin API (newest first, page by page).
    async fn all_orders(&self, token: &str) -> Vec<Value> {
        let mut orders = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/admin/orders?limit=100&cursor={c}"),
                None => "/v1/admin/orders?limit=100".to_owned(),
            };
            let (status, page) = self.api.get(&path, Some(token)).await;
            assert_eq!(status, 200, "{page}");
            orders.extend(page["orders"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return orders,
            }
        }
    }

    async fn restaurant_count(&self, token: &str) -> usize {
        let (status, page) = self
            .api
            .get("/v1/admin/restaurants?limit=100", Some(token))
            .await;
        assert_eq!(status, 200, "{page}");
        page["restaurants"].as_array().unwrap().len()
    }
}

/// Runs the demo on `database_url` for [`RUN`] and checks it; with
/// `restart`, starts it again on the same database and checks that it
/// found its city.
async fn a_minute_of_demo(database_url: &str, restart: bool) {
    let dir = TempDir::create();
    let mut demo = Demo::start(&dir.0, database_url, "first.log").await;
    let started = tokio::time::Instant::now();
    tokio::time::sleep(WARM_UP).await;
    let warm_kib = demo.rss_kib();
    tokio::time::sleep(RUN - WARM_UP).await;
    let end_kib = demo.rss_kib();
    // A loaded CI machine may take longer for the first delivery: waited
    // for (a summary line counting one), not assumed.
    demo.wait_for_line(|l| {
        l["message"] == "demo city" && l["delivered"].as_u64().is_some_and(|d| d > 0)
    })
    .await;
    let ran_s = started.elapsed().as_secs();

    let token = demo
        .api
        .login(demo_city::ADMIN_EMAIL, demo_city::ADMIN_PASSWORD)
        .await;
    let orders = demo.all_orders(&token).await;
    demo.stop().await;

    let mut by_status = std::collections::BTreeMap::<String, usize>::new();
    for o in &orders {
        *by_status
            .entry(o["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    eprintln!(
        "demo ran {ran_s} s on {}: {} orders {by_status:?}; RSS {warm_kib} KiB after warm-up, {end_kib} KiB at the end",
        database_url.split(':').next().unwrap_or_default(),
        orders.len(),
    );
    let delivered = by_status.get("delivered").copied().unwrap_or(0);
    assert!(delivered > 0, "no order was delivered: {by_status:?}");
    let on_the_way = [
        "paid",
        "accepted",
        "preparing",
        "ready_for_pickup",
        "picked_up",
    ];
    let open: usize = on_the_way
        .iter()
        .map(|s| by_status.get(*s).copied().unwrap_or(0))
        .sum();
    assert_eq!(
        delivered + open,
        orders.len(),
        "orders ended otherwise: {by_status:?}"
    );
    assert!(open <= MAX_IN_FLIGHT, "{open} open orders: {by_status:?}");

    let lines = demo.lines();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
    let demo_warnings: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["level"] == "WARN" && l["message"].as_str().is_some_and(|m| m.starts_with("demo"))
        })
        .collect();
    assert!(
        demo_warnings.is_empty(),
        "demo warnings: {demo_warnings:#?}"
    );
    let summary = lines
        .iter()
        .rev()
        .find(|l| l["message"] == "demo city")
        .expect("a demo summary line");
    let field = |name: &str| summary[name].as_u64().unwrap();
    assert_eq!(field("unexpected"), 0, "{summary}");
    assert!(field("placed") > 0 && field("delivered") > 0, "{summary}");
    assert!(field("pings") > 0 && field("accepted") > 0, "{summary}");
    assert!(field("in_flight") <= MAX_IN_FLIGHT as u64, "{summary}");

    let slack_kib = (warm_kib / 4).max(24 * 1024);
    assert!(
        end_kib <= warm_kib + slack_kib,
        "memory grew: {warm_kib} KiB after warm-up, {end_kib} KiB at the end"
    );

    if restart {
        let mut again = Demo::start(&dir.0, database_url, "second.log").await;
        again
            .wait_for_line(|l| l["message"] == "demo: customers ordering")
            .await;
        let token = again
            .api
            .login(demo_city::ADMIN_EMAIL, demo_city::ADMIN_PASSWORD)
            .await;
        assert_eq!(again.restaurant_count(&token).await, RESTAURANTS);
        again.stop().await;
        let errors: Vec<Value> = again
            .lines()
            .into_iter()
            .filter(|l| l["level"] == "ERROR")
            .collect();
        assert!(
            errors.is_empty(),
            "ERROR lines after the restart: {errors:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_city_lives_for_a_minute_on_sqlite() {
    let dir = TempDir::create();
    let url = format!("sqlite://{}/demo.db", dir.0.display());
    a_minute_of_demo(&url, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_city_lives_for_a_minute_on_postgres() {
    let Some(url) = common::postgres_schema_url().await else {
        eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: skipped");
        return;
    };
    a_minute_of_demo(&url, false).await;
}
