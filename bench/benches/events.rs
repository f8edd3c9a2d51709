//! The event stream's end-to-end throughput: append (one event per
//! transaction, as business changes do) → relay → one consumer, on SQLite
//! (a WAL file in a temporary directory) and, when
//! `HEXDASH_BENCH_DATABASE_URL` names one, PostgreSQL (a schema of its own).
//!
//! `events/append_relay_deliver/{sqlite,postgres}/batch=N`: N events
//! appended by 4 concurrent appenders, one transaction each, the time until
//! the consumer has handled the last; throughput in events (bound by the
//! databases' commits).
//! `events/relay_deliver/{sqlite,postgres}/backlog=N`: N events appended in
//! one transaction (untimed), then the time from its commit until the
//! consumer has handled the last: the relay's and runner's own throughput.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use events::{
    Actor, Backend, Config, Consumer, Event, EventLog, EventType, HandleError, NewEvent, Payload,
    WriteGate,
};
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The event tables; on SQLite with the trigger `append` relies on.
const SQLITE_SCHEMA: &str = concat!(
    include_str!("../../commerce/migrations/sqlite/0005_events.sql"),
    include_str!("../../commerce/migrations/sqlite/0015_events_one_statement_append.sql"),
);
const POSTGRES_SCHEMA: &str = include_str!("../../commerce/migrations/postgres/0005_events.sql");
/// Events per measured round.
const BATCH: usize = 2_000;
/// Events in the relay-only round's one transaction.
const BACKLOG: usize = 5_000;
/// Concurrent appenders.
const APPENDERS: usize = 4;

/// Counts handled events.
struct Counter(watch::Sender<usize>);

#[async_trait]
impl Consumer for Counter {
    fn name(&self) -> &str {
        "bench"
    }
    async fn handle(&self, _: &Event) -> Result<(), HandleError> {
        self.0.send_modify(|n| *n += 1);
        Ok(())
    }
}

struct Setup {
    log: EventLog,
    pool: AnyPool,
    backend: Backend,
    gate: Option<WriteGate>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/events.db?mode=rwc", dir.path().display());
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(|conn, _| {
            Box::pin(async move {
                for p in [
                    "PRAGMA busy_timeout = 5000",
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                ] {
                    sqlx::query(p).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect_with(AnyConnectOptions::from_str(&url).expect("url"))
        .await
        .expect("sqlite");
    sqlx::raw_sql(SQLITE_SCHEMA)
        .execute(&pool)
        .await
        .expect("schema");
    let gate: WriteGate = Arc::new(tokio::sync::Mutex::new(()));
    Setup {
        log: EventLog::new(pool.clone(), Backend::Sqlite).with_write_gate(gate.clone()),
        pool,
        backend: Backend::Sqlite,
        gate: Some(gate),
        _dir: Some(dir),
    }
}

async fn postgres(base: &str) -> Setup {
    let schema = format!("bench_events_{}", uuid::Uuid::new_v4().simple());
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(base)
        .await
        .expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .connect(&url)
        .await
        .expect("postgres");
    sqlx::raw_sql(POSTGRES_SCHEMA)
        .execute(&pool)
        .await
        .expect("schema");
    Setup {
        log: EventLog::new(pool.clone(), Backend::Postgres).with_listen_url(url),
        pool,
        backend: Backend::Postgres,
        gate: None,
        _dir: None,
    }
}

/// A typical small event.
fn order_placed(round: usize, i: usize) -> NewEvent {
    NewEvent {
        event_type: EventType::OrderPlaced,
        aggregate_id: format!("order-{round}-{i}"),
        at_ms: 0,
        actor: Actor::System("bench".to_owned()),
        payload: Payload::v1(serde_json::json!({"total_cents": 1990, "items": 2})),
    }
}

/// Appends `n` events from [`APPENDERS`] tasks, one transaction each.
async fn append_all(setup: &Arc<Setup>, n: usize, round: usize) {
    let mut tasks = Vec::new();
    for a in 0..APPENDERS {
        let setup = setup.clone();
        tasks.push(tokio::spawn(async move {
            for i in (a..n).step_by(APPENDERS) {
                let _guard = match &setup.gate {
                    Some(g) => Some(g.clone().lock_owned().await),
                    None => None,
                };
                let mut tx = match setup.backend {
                    Backend::Sqlite => setup.pool.begin_with("BEGIN IMMEDIATE").await,
                    Backend::Postgres => setup.pool.begin().await,
                }
                .expect("begin");
                events::append(&mut tx, &order_placed(round, i))
                    .await
                    .expect("append");
                tx.commit().await.expect("commit");
                setup.log.wake().notify();
            }
        }));
    }
    for t in tasks {
        t.await.expect("appender");
    }
}

fn bench_backend(c: &mut Criterion, name: &str, make: impl std::future::Future<Output = Setup>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let setup = Arc::new(rt.block_on(make));
    let (count, _) = watch::channel(0usize);
    let shutdown = CancellationToken::new();
    let config = Config {
        poll_interval_ms: 1_000,
        ..Config::default()
    };
    rt.spawn(events::run(
        setup.log.clone(),
        vec![Arc::new(Counter(count.clone())) as Arc<dyn Consumer>],
        config,
        shutdown.clone(),
    ));
    let mut group = c.benchmark_group("events/append_relay_deliver");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut round = 0;
    group.bench_function(format!("{name}/batch={BATCH}"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let target = *count.borrow() + BATCH;
                    let mut rx = count.subscribe();
                    let start = Instant::now();
                    append_all(&setup, BATCH, round).await;
                    rx.wait_for(|n| *n >= target).await.expect("counter");
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("events/relay_deliver");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(BACKLOG as u64));
    group.bench_function(format!("{name}/backlog={BACKLOG}"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let target = *count.borrow() + BACKLOG;
                    let mut rx = count.subscribe();
                    let _guard = match &setup.gate {
                        Some(g) => Some(g.clone().lock_owned().await),
                        None => None,
                    };
                    let mut tx = match setup.backend {
                        Backend::Sqlite => setup.pool.begin_with("BEGIN IMMEDIATE").await,
                        Backend::Postgres => setup.pool.begin().await,
                    }
                    .expect("begin");
                    for i in 0..BACKLOG {
                        events::append(&mut tx, &order_placed(round, i))
                            .await
                            .expect("append");
                    }
                    let start = Instant::now();
                    tx.commit().await.expect("commit");
                    drop(_guard);
                    setup.log.wake().notify();
                    rx.wait_for(|n| *n >= target).await.expect("counter");
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    shutdown.cancel();
}

fn events_benches(c: &mut Criterion) {
    sqlx::any::install_default_drivers();
    bench_backend(c, "sqlite", sqlite());
    if let Ok(url) = std::env::var("HEXDASH_BENCH_DATABASE_URL") {
        bench_backend(c, "postgres", postgres(&url));
    }
}

criterion_group!(benches, events_benches);
criterion_main!(benches);
