//! The harness: a fresh database per test (SQLite in a file of a temporary
//! directory, or a PostgreSQL schema of its own), the schema from the
//! migration files, and a recording consumer.

#![allow(dead_code)]

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use async_trait::async_trait;
use events::{
    Actor, Backend, Config, Consumer, Event, EventLog, EventType, HandleError, NewEvent, Payload,
    WriteGate,
};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

// The lead moves these files with the store's migrations; update the paths then.
pub const SQLITE_SCHEMA: &str = concat!(
    include_str!("../../../commerce/migrations/sqlite/0005_events.sql"),
    include_str!("../../../commerce/migrations/sqlite/0015_events_one_statement_append.sql"),
);
pub const POSTGRES_SCHEMA: &str =
    include_str!("../../../commerce/migrations/postgres/0005_events.sql");

/// The longest any test waits for a condition before it fails (a bound on
/// a hang, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Declares `<name>::sqlite` and `<name>::postgres`: the same body on each
/// database. With `HEXDASH_TEST_DATABASE_URL` unset the PostgreSQL run says
/// so and passes; set, it must run there (an unreachable server fails).
macro_rules! dual_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: $crate::common::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body($crate::common::sqlite_db().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::common::postgres_db().await else {
                    eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: skipped");
                    return;
                };
                body(db).await
            }
        }
    };
}
pub(crate) use dual_test;

/// A database with the event tables, and its handles.
pub struct TestDb {
    pub log: EventLog,
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite's write gate, shared by the test's appenders and the log.
    pub gate: Option<WriteGate>,
    /// Kept so the SQLite file lives as long as the test.
    _dir: Option<tempfile::TempDir>,
}

static DRIVERS: Once = Once::new();

pub async fn sqlite_db() -> TestDb {
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/events.db?mode=rwc", dir.path().display());
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(|conn, _| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA foreign_keys = ON",
                    "PRAGMA busy_timeout = 5000",
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                ] {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect_with(AnyConnectOptions::from_str(&url).expect("sqlite url"))
        .await
        .expect("open sqlite");
    sqlx::raw_sql(SQLITE_SCHEMA)
        .execute(&pool)
        .await
        .expect("sqlite schema");
    let gate: WriteGate = Arc::new(tokio::sync::Mutex::new(()));
    TestDb {
        log: EventLog::new(pool.clone(), Backend::Sqlite).with_write_gate(gate.clone()),
        pool,
        backend: Backend::Sqlite,
        gate: Some(gate),
        _dir: Some(dir),
    }
}

pub fn postgres_url() -> Option<String> {
    std::env::var("HEXDASH_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// A new schema `t_<unix s>_<random>` (named like the api harness's, whose
/// sweep drops it an hour later), or none without a PostgreSQL url.
pub async fn postgres_db() -> Option<TestDb> {
    let base = postgres_url()?;
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .expect("connect to HEXDASH_TEST_DATABASE_URL");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!("t_{now_s}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("create test schema");
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let pool = AnyPoolOptions::new()
        .max_connections(24)
        .connect(&url)
        .await
        .expect("connect the test schema");
    sqlx::raw_sql(POSTGRES_SCHEMA)
        .execute(&pool)
        .await
        .expect("postgres schema");
    Some(TestDb {
        log: EventLog::new(pool.clone(), Backend::Postgres).with_listen_url(url),
        pool,
        backend: Backend::Postgres,
        gate: None,
        _dir: None,
    })
}

impl TestDb {
    /// A write transaction as the store begins one, with its gate.
    pub async fn begin(
        &self,
    ) -> (
        Option<tokio::sync::OwnedMutexGuard<()>>,
        Transaction<'static, Any>,
    ) {
        let guard = match &self.gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .expect("begin");
        (guard, tx)
    }

    /// Appends one event in a transaction of its own, commits and wakes
    /// the relay; its insert id.
    pub async fn append_one(&self, event_type: EventType, aggregate: &str) -> i64 {
        let (_gate, mut tx) = self.begin().await;
        let appended = events::append(&mut tx, &new_event(event_type, aggregate))
            .await
            .expect("append");
        tx.commit().await.expect("commit");
        self.log.wake().notify();
        appended.insert_id
    }
}

pub fn new_event(event_type: EventType, aggregate: &str) -> NewEvent {
    NewEvent {
        event_type,
        aggregate_id: aggregate.to_owned(),
        at_ms: 1_000,
        actor: Actor::System("test".to_owned()),
        payload: Payload::v1(serde_json::json!({ "aggregate": aggregate })),
    }
}

/// Settings for tests: quick retries, a short safety poll.
pub fn test_config() -> Config {
    Config {
        poll_interval_ms: 200,
        backoff_initial_ms: 1,
        backoff_max_ms: 4,
        max_attempts: 3,
        ..Config::default()
    }
}

/// What a [`Recorder`] does with a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Records it.
    Record,
    /// Fails it.
    Fail,
    /// Panics.
    Panic,
}

/// A consumer that records what it handled (and every try), optionally
/// failing, or blocking on one event id until released.
pub struct Recorder {
    name: String,
    pub mode: Mutex<Mode>,
    /// Handled events, in delivery order.
    handled: Mutex<Vec<Event>>,
    /// Tries per event id.
    tries: Mutex<HashMap<i64, u32>>,
    /// The number of handled events and of tries, for waiting on.
    count: watch::Sender<(usize, usize)>,
    /// An event id whose delivery blocks until `release` is cancelled.
    pub block_on: Mutex<Option<i64>>,
    pub release: CancellationToken,
}

impl Recorder {
    pub fn new(name: &str, mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            mode: Mutex::new(mode),
            handled: Mutex::new(Vec::new()),
            tries: Mutex::new(HashMap::new()),
            count: watch::Sender::new((0, 0)),
            block_on: Mutex::new(None),
            release: CancellationToken::new(),
        })
    }

    pub fn handled(&self) -> Vec<Event> {
        self.handled.lock().unwrap().clone()
    }

    pub fn handled_ids(&self) -> Vec<i64> {
        self.handled().iter().map(|e| e.id).collect()
    }

    pub fn tries(&self, id: i64) -> u32 {
        self.tries.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    pub fn total_tries(&self) -> usize {
        self.count.borrow().1
    }

    /// Waits until `handled` reaches `n` (fails after [`PATIENCE`]).
    pub async fn wait_handled(&self, n: usize) {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(PATIENCE, rx.wait_for(|c| c.0 >= n))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: {} handled, waited for {n}",
                    self.name,
                    self.count.borrow().0
                )
            })
            .expect("recorder alive");
    }

    /// Waits until `tries` reaches `n`.
    pub async fn wait_tries(&self, n: usize) {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(PATIENCE, rx.wait_for(|c| c.1 >= n))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: {} tries, waited for {n}",
                    self.name,
                    self.count.borrow().1
                )
            })
            .expect("recorder alive");
    }
}

#[async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        *self.tries.lock().unwrap().entry(event.id).or_default() += 1;
        self.count.send_modify(|c| c.1 += 1);
        let blocked = *self.block_on.lock().unwrap() == Some(event.id);
        if blocked {
            self.release.cancelled().await;
        }
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Fail => Err(format!("refusing event {}", event.id).into()),
            Mode::Panic => panic!("consumer bug on event {}", event.id),
            Mode::Record => {
                self.handled.lock().unwrap().push(event.clone());
                self.count.send_modify(|c| c.0 += 1);
                Ok(())
            }
        }
    }
}

/// Starts the stream with `consumers`; the returned token stops it and the
/// handle ends when it has (aborting it is a crash: nothing more is written).
pub fn start(
    db: &TestDb,
    consumers: Vec<Arc<dyn Consumer>>,
    config: Config,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<events::Result<()>>,
) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(events::run(
        db.log.clone(),
        consumers,
        config,
        shutdown.clone(),
    ));
    (shutdown, task)
}

/// Stops a stream started by [`start`] and waits for it.
pub async fn stop(
    stream: (
        CancellationToken,
        tokio::task::JoinHandle<events::Result<()>>,
    ),
) {
    stream.0.cancel();
    stream.1.await.expect("stream task").expect("stream ran");
}

/// Polls `check` until it holds (fails after [`PATIENCE`]); only for
/// conditions that have no signal (rows written after a consumer's call).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
