//! Shared test harness: starts the real ingest (broker on a free port, HTTP
//! routes on port 0) around a fresh engine, with a metrics recorder of its
//! own so tests running in parallel never see each other's counters.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth::{Principal, Role, Tokens};
use engine::{DriverId, UserId};
use ingest::{BrokerHandle, Config, Ingest};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// How long any awaited event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub engine: engine::Handle,
    pub tokens: Tokens,
    pub ingest: Ingest,
    pub broker: BrokerHandle,
    pub http_addr: SocketAddr,
    pub metrics: TestRecorder,
    pub shutdown: CancellationToken,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(Config::default()).await
    }

    pub async fn start_with(config: Config) -> TestApp {
        Self::start_with_clock(config, Arc::new(clock::SystemClock)).await
    }

    /// Starts ingest reading `clock` (a `clock::ManualClock` holds the
    /// server's receive time still).
    pub async fn start_with_clock(config: Config, clock: Arc<dyn clock::Clock>) -> TestApp {
        let config = Config {
            mqtt_addr: "127.0.0.1:0".parse().unwrap(),
            max_connections: 1_000,
            ..config
        };
        let engine = engine::Handle::new(engine::Config::default());
        let tokens = Tokens::new(b"test-secret", 3600).with_clock(clock.clone());
        let metrics = TestRecorder::default();
        let ingest = metrics::with_local_recorder(&metrics, || {
            Ingest::new(config, engine.clone(), tokens.clone(), clock)
        });
        let shutdown = CancellationToken::new();
        let broker = ingest
            .start_broker(shutdown.clone())
            .await
            .expect("broker starts");
        assert!(broker.is_up());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = listener.local_addr().unwrap();
        let router = ingest.router();
        let serve_shutdown = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(serve_shutdown.cancelled_owned())
                .await
                .unwrap();
        });
        tokio::spawn(ingest.run(shutdown.clone()));
        TestApp {
            engine,
            tokens,
            ingest,
            broker,
            http_addr,
            metrics,
            shutdown,
        }
    }

    pub fn mqtt_port(&self) -> u16 {
        self.broker.local_addr().expect("embedded").port()
    }

    /// A new driver and a valid access token for it.
    pub fn driver(&self) -> (DriverId, String) {
        let user_id = UserId::new();
        (DriverId::from(user_id), self.token(user_id, Role::Driver))
    }

    pub fn token(&self, user_id: UserId, role: Role) -> String {
        self.tokens
            .issue(Principal { user_id, role }, self.tokens.now_s())
            .token
    }

    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.metrics.counter(name, labels)
    }

    pub fn rejected(&self, path: &str, reason: &str) -> u64 {
        self.counter(
            "hexdash_pings_rejected_total",
            &[("path", path), ("reason", reason)],
        )
    }

    /// The driver's last applied fix time, if any.
    pub fn fix_ts(&self, driver_id: DriverId) -> Option<i64> {
        self.engine
            .driver(driver_id)
            .and_then(|d| d.fix)
            .map(|f| f.recorded_at_ms)
    }

    /// Waits until the driver's last applied fix has time `ts`.
    pub async fn wait_for_fix(&self, driver_id: DriverId, ts: i64) {
        wait_until(
            &format!("driver {driver_id} to have the fix at {ts}"),
            || self.fix_ts(driver_id) == Some(ts),
        )
        .await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `cond` every few milliseconds until it holds; fails after [`WAIT`].
/// For effects that cross a socket and the broker's router thread, where
/// there is no event to await.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Awaits `fut` or fails after [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A valid ping at step `k` of a slow walk (1 s and about 10 m apart, so
/// never an implausible jump), starting ten minutes ago.
pub struct Walk {
    pub start_ms: i64,
}

impl Walk {
    pub fn new() -> Self {
        Self {
            start_ms: now_ms() - 600_000,
        }
    }

    pub fn ts(&self, k: i64) -> i64 {
        self.start_ms + k * 1000
    }

    pub fn ping(&self, k: i64) -> String {
        format!(
            r#"{{"lat":{},"lng":11.97,"ts":{},"speed":8.3}}"#,
            57.70 + k as f64 * 0.0001,
            self.ts(k)
        )
    }
}

/// A metrics recorder that keeps every counter and gauge in memory, keyed
/// by `name{label=value,...}` with labels sorted.
#[derive(Clone, Default)]
pub struct TestRecorder {
    cells: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
}

impl TestRecorder {
    fn cell(&self, key: &str) -> Arc<AtomicU64> {
        self.cells.lock().entry(key.to_owned()).or_default().clone()
    }

    fn key_of(key: &Key) -> String {
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        render(key.name(), &labels)
    }

    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.cell(&render(name, labels)).load(Ordering::Acquire)
    }

    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        f64::from_bits(self.cell(&render(name, labels)).load(Ordering::Acquire))
    }
}

fn render(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(&Self::key_of(key)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(&Self::key_of(key)))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
