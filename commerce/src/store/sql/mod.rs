//! [`Store`] on SQLite or PostgreSQL, with one set of statements.
//!
//! The pool is sqlx's `Any` pool, so one statement text runs on both
//! databases: `$n` placeholders (SQLite accepts them, PostgreSQL requires
//! them), TEXT ids, BIGINT/INTEGER times, cents and 0/1 flags, and
//! `CAST(… AS BIGINT)` where an aggregate would otherwise be NUMERIC on
//! PostgreSQL (the Any driver reads only integers, floats, text and blobs).
//! The schema differs only in type names, so each database has its own
//! migration files under `commerce/migrations/`, applied by sqlx's migrator.
//!
//! Write transactions start with [`SqlStore::begin_write`]: on SQLite they
//! queue on an in-process gate (one writer at a time, as SQLite allows
//! anyway, without its sleeping busy handler) and begin `IMMEDIATE`, so a
//! transaction that reads before it writes holds the write lock from the
//! start; on PostgreSQL row locks (a conditional `UPDATE` first, rows in id
//! order) serialise what must be serialised.
//!
//! One module per area: [`accounts`], [`restaurants`], [`cart`],
//! [`orders`], [`payments`], [`gateway_ledger`] (the simulated gateway's
//! own tables); [`rows`] turns rows into records.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, SqlSafeStr};

use super::{Result, Store, StoreError};

mod accounts;
mod cart;
mod channels;
mod gateway_ledger;
mod listings;
mod notifications;
mod orders;
mod payments;
mod reports;
mod restaurants;
mod reviews;
mod routes;
mod rows;
mod tx;

/// Which database a [`SqlStore`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The same database, as the event stream names it.
    pub fn events(self) -> events::Backend {
        match self {
            Backend::Sqlite => events::Backend::Sqlite,
            Backend::Postgres => events::Backend::Postgres,
        }
    }
}

/// Connections in a file-backed SQLite pool. SQLite serialises writers (WAL
/// lets readers run beside the one writer); a few connections cover two
/// cores' worth of requests waiting on I/O without piling up writers.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// Connections to PostgreSQL: enough to keep both cores busy while
/// requests wait on the network, far under the server's default 100.
const POSTGRES_MAX_CONNECTIONS: u32 = 32;
/// How long a SQLite writer waits for the write lock before failing.
const BUSY_TIMEOUT_MS: u32 = 5_000;
/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Migrations per database, in order. Never edit an applied one.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "commerce",
        include_str!("../../../migrations/sqlite/0002_commerce.sql"),
    ),
    (
        3,
        "simulated gateway",
        include_str!("../../../migrations/sqlite/0003_simulated_gateway.sql"),
    ),
    (
        4,
        "refund retries",
        include_str!("../../../migrations/sqlite/0004_refund_retries.sql"),
    ),
    (
        5,
        "events",
        include_str!("../../../migrations/sqlite/0005_events.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../../../migrations/sqlite/0006_webhooks.sql"),
    ),
    (
        7,
        "order history into events",
        include_str!("../../../migrations/sqlite/0007_history_events.sql"),
    ),
    (
        8,
        "preparation times",
        include_str!("../../../migrations/sqlite/0008_prep_times.sql"),
    ),
    (
        9,
        "notifications",
        include_str!("../../../migrations/sqlite/0009_notifications.sql"),
    ),
    (
        10,
        "channels",
        include_str!("../../../migrations/sqlite/0010_channels.sql"),
    ),
    (
        11,
        "admin lists",
        include_str!("../../../migrations/sqlite/0011_admin_lists.sql"),
    ),
    (
        12,
        "reviews",
        include_str!("../../../migrations/sqlite/0012_reviews.sql"),
    ),
    (
        13,
        "routes and stuck orders",
        include_str!("../../../migrations/sqlite/0013_routes_and_stuck_orders.sql"),
    ),
    (
        14,
        "reports",
        include_str!("../../../migrations/sqlite/0014_reports.sql"),
    ),
    (
        15,
        "one-statement event append",
        include_str!("../../../migrations/sqlite/0015_events_one_statement_append.sql"),
    ),
    (
        16,
        "lease epochs",
        include_str!("../../../migrations/sqlite/0016_lease_epochs.sql"),
    ),
    (
        17,
        "access cutoffs",
        include_str!("../../../migrations/sqlite/0017_access_cutoffs.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "commerce",
        include_str!("../../../migrations/postgres/0002_commerce.sql"),
    ),
    (
        3,
        "simulated gateway",
        include_str!("../../../migrations/postgres/0003_simulated_gateway.sql"),
    ),
    (
        4,
        "refund retries",
        include_str!("../../../migrations/postgres/0004_refund_retries.sql"),
    ),
    (
        5,
        "events",
        include_str!("../../../migrations/postgres/0005_events.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../../../migrations/postgres/0006_webhooks.sql"),
    ),
    (
        7,
        "order history into events",
        include_str!("../../../migrations/postgres/0007_history_events.sql"),
    ),
    (
        8,
        "preparation times",
        include_str!("../../../migrations/postgres/0008_prep_times.sql"),
    ),
    (
        9,
        "notifications",
        include_str!("../../../migrations/postgres/0009_notifications.sql"),
    ),
    (
        10,
        "channels",
        include_str!("../../../migrations/postgres/0010_channels.sql"),
    ),
    (
        11,
        "admin lists",
        include_str!("../../../migrations/postgres/0011_admin_lists.sql"),
    ),
    (
        12,
        "reviews",
        include_str!("../../../migrations/postgres/0012_reviews.sql"),
    ),
    (
        13,
        "routes and stuck orders",
        include_str!("../../../migrations/postgres/0013_routes_and_stuck_orders.sql"),
    ),
    (
        14,
        "reports",
        include_str!("../../../migrations/postgres/0014_reports.sql"),
    ),
    (
        15,
        "one-statement event append",
        include_str!("../../../migrations/postgres/0015_events_one_statement_append.sql"),
    ),
    (
        16,
        "lease epochs",
        include_str!("../../../migrations/postgres/0016_lease_epochs.sql"),
    ),
    (
        17,
        "access cutoffs",
        include_str!("../../../migrations/postgres/0017_access_cutoffs.sql"),
    ),
];

/// The statuses `OrderStatus::is_terminal` calls terminal, as an SQL list
/// (a macro so it can be spliced into `concat!`; checked by a unit test).
macro_rules! terminal_statuses {
    () => {
        "('delivered', 'cancelled', 'rejected', 'payment_failed')"
    };
}
pub(crate) use terminal_statuses;

#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: write transactions queue here, in process, instead of
    /// in SQLite's busy handler, which sleeps (1, 2, 5 … 100 ms) between
    /// tries and turns contention into latency spikes.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// The event stream on the same pool, made once at connect: its
    /// [`events::Wake`] is the one the store notifies after each commit
    /// that appended, and what [`Store::event_log`] hands out.
    log: events::EventLog,
}

impl SqlStore {
    /// Opens and migrates the database at `url`: `sqlite://path` (created,
    /// with its directory, if missing), `sqlite::memory:`, or
    /// `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Unsupported(
                "expected a sqlite:// or postgres:// url".to_owned(),
            ));
        };
        let pool = match backend {
            Backend::Sqlite => connect_sqlite(url).await?,
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)?;
                // One direct connection first: a refused connection, an
                // unknown host or a wrong password then fails at once with
                // its own cause, where the pool retries until its acquire
                // timeout and reports only that it timed out.
                AnyConnection::connect_with(&options).await?.close().await?;
                AnyPoolOptions::new()
                    .max_connections(POSTGRES_MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?
            }
        };
        let migrations = match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        migrator(migrations).run(&pool).await?;
        let write_gate =
            (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        let listen_url = (backend == Backend::Postgres).then_some(url);
        Ok(Self::from_parts(pool, backend, write_gate, listen_url))
    }

    /// The store over a migrated `pool`, with its event log.
    fn from_parts(
        pool: AnyPool,
        backend: Backend,
        write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
        listen_url: Option<&str>,
    ) -> Self {
        let mut log = events::EventLog::new(pool.clone(), backend.events());
        if let Some(gate) = &write_gate {
            log = log.with_write_gate(gate.clone());
        }
        if let Some(url) = listen_url {
            log = log.with_listen_url(url);
        }
        Self {
            pool,
            backend,
            write_gate,
            log,
        }
    }

    /// The pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

async fn connect_sqlite(url: &str) -> Result<AnyPool> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if in_memory {
        // Every connection to a private memory database is a new, empty
        // database: one connection, kept forever.
        let options = AnyConnectOptions::from_str(url)?;
        return Ok(AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn, false).await }))
            .connect_with(options)
            .await?);
    }
    // `sqlite://dir/file.db[?…]`: create the directory, and the file
    // (`mode=rwc`) unless the url says otherwise.
    let rest = url_path(url);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    }
    let url = match query {
        Some(q) if q.contains("mode=") => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    };
    let options = AnyConnectOptions::from_str(&url)?;
    Ok(AnyPoolOptions::new()
        .max_connections(SQLITE_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn, true).await }))
        // A connection that comes back still counted as inside a
        // transaction is closed, not reused: when a write meets a full disk
        // (SQLITE_FULL, SQLITE_IOERR) SQLite rolls the transaction back by
        // itself, so the ROLLBACK sqlx sends for the dropped transaction
        // fails and sqlx's count of open transactions on that connection
        // never returns to zero: every later BEGIN on it would be refused
        // ("begin_with at non-zero transaction depth") long after the disk
        // has room again. Only connections whose transaction was dropped
        // rather than committed or rolled back (error paths) are counted
        // so at release; the pool opens a fresh one in their place.
        .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
        .connect_with(options)
        .await?)
}

/// The path part of a `sqlite:` url without a query.
fn url_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
}

/// Per-connection settings the Any options cannot carry: foreign keys on, a
/// busy timeout, and for files WAL (readers beside the writer) with
/// `synchronous = NORMAL` (durable at checkpoints; WAL keeps it consistent).
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection, file: bool) -> sqlx::Result<()> {
    let busy = format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}");
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(busy))
        .execute(&mut *conn)
        .await?;
    if file {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn migrator(migrations: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = migrations
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> super::Backend {
        self.backend
    }

    fn event_log(&self) -> events::EventLog {
        self.log.clone()
    }
}

/// A database error that is a unique-key violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use engine::OrderStatus;

    use super::*;

    #[test]
    fn terminal_list_matches_the_engine() {
        let listed: Vec<&str> = terminal_statuses!()
            .trim_matches(|c| c == '(' || c == ')')
            .split(", ")
            .map(|s| s.trim_matches('\''))
            .collect();
        for status in OrderStatus::ALL {
            assert_eq!(
                listed.contains(&status.as_str()),
                status.is_terminal(),
                "{status:?}"
            );
        }
    }

    /// Charges and refunds made while the simulated gateway's ledger was
    /// in memory are copied into it by its migration, so an order paid
    /// before the upgrade can be refunded after it. On SQLite.
    #[tokio::test]
    async fn the_ledger_migration_remembers_earlier_charges() {
        ledger_migration_case(unchecked_sqlite().await, Backend::Sqlite, SQLITE_MIGRATIONS).await;
    }

    /// The same on PostgreSQL (see `on_unchecked_postgres`).
    #[tokio::test]
    async fn the_ledger_migration_remembers_earlier_charges_on_postgres() {
        on_unchecked_postgres(|pool| {
            ledger_migration_case(pool, Backend::Postgres, POSTGRES_MIGRATIONS)
        })
        .await;
    }

    /// Runs the migrations before the ledger's on `pool` (foreign keys
    /// off), writes payments as the in-memory gateway left them, runs the
    /// rest, and checks the ledger remembers them.
    async fn ledger_migration_case(
        pool: AnyPool,
        backend: Backend,
        migrations: &'static [(i64, &'static str, &'static str)],
    ) {
        use crate::store::{ChargeAnswer, GatewayLedger, RefundVerdict};

        let (before_ledger, _) = migrations.split_at(2);
        migrator(before_ledger).run(&pool).await.unwrap();
        let (charge, refunded, failed) = (
            engine::PaymentId::new(),
            engine::PaymentId::new(),
            engine::PaymentId::new(),
        );
        let rows = [
            (
                charge,
                "o1",
                "charge",
                1_000i64,
                "succeeded",
                Some("ch_1"),
                Some("tok_ok"),
            ),
            (
                refunded,
                "o1",
                "refund",
                300,
                "succeeded",
                Some("re_1"),
                None,
            ),
            (failed, "o1", "refund", 500, "failed", None, None),
            (
                engine::PaymentId::new(),
                "o2",
                "charge",
                700,
                "failed",
                None,
                Some("tok_declined"),
            ),
        ];
        for (id, order, kind, amount, status, gateway_ref, token) in rows {
            sqlx::query(
                "INSERT INTO payments (id, order_id, kind, amount_cents, status, method, token, \
                 gateway_ref, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, 'card', $6, $7, 1, 1)",
            )
            .bind(id.to_string())
            .bind(order)
            .bind(kind)
            .bind(amount)
            .bind(status)
            .bind(token)
            .bind(gateway_ref)
            .execute(&pool)
            .await
            .unwrap();
        }
        migrator(migrations).run(&pool).await.unwrap();

        let write_gate =
            (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        let store = SqlStore::from_parts(pool, backend, write_gate, None);
        let recorded = store.ledger_charge(charge).await.unwrap().unwrap();
        assert_eq!(
            recorded.answer,
            ChargeAnswer::Charged {
                reference: "ch_1".to_owned()
            }
        );
        assert_eq!(
            (
                recorded.amount_cents,
                recorded.refunded_cents,
                recorded.token.as_str()
            ),
            (1_000, 300, "tok_ok")
        );
        assert_eq!(
            store.ledger_refund(refunded).await.unwrap(),
            Some(RefundVerdict::Refunded)
        );
        assert_eq!(store.ledger_refund(failed).await.unwrap(), None);
        let totals = store.ledger_totals().await.unwrap();
        assert_eq!(
            (totals.charges, totals.refunds, totals.refunded_cents),
            (1, 1, 300)
        );
        // What is left of the charge can still be refunded, and no more.
        let more = engine::PaymentId::new();
        assert_eq!(
            store.record_refund(more, "ch_1", 701, 2).await.unwrap(),
            RefundVerdict::ExceedsCharge
        );
        assert_eq!(
            store
                .record_refund(engine::PaymentId::new(), "ch_1", 700, 2)
                .await
                .unwrap(),
            RefundVerdict::Refunded
        );
    }

    static DRIVERS_FOR_TESTS: std::sync::Once = std::sync::Once::new();

    /// A one-connection SQLite database in memory (every connection to
    /// `:memory:` is a new database) with foreign keys off, so a migration
    /// test can write rows without their parents.
    async fn unchecked_sqlite() -> AnyPool {
        DRIVERS_FOR_TESTS.call_once(sqlx::any::install_default_drivers);
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    /// Runs `case` on PostgreSQL when HEXDASH_TEST_DATABASE_URL names one,
    /// in a schema of its own (named like the api test harness's, so its
    /// sweep drops it if the test does not get to) with foreign keys not
    /// enforced (`session_replication_role = replica`; the test user is a
    /// superuser).
    async fn on_unchecked_postgres<F, Fut>(case: F)
    where
        F: FnOnce(AnyPool) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let Some(base) = std::env::var("HEXDASH_TEST_DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
        else {
            eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: skipped");
            return;
        };
        DRIVERS_FOR_TESTS.call_once(sqlx::any::install_default_drivers);
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap();
        let now_s = clock::Clock::now_ms(&clock::SystemClock) / 1000;
        let schema = format!("t_{now_s}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!(
            "{base}{sep}options=-c%20search_path%3D{schema}%20-c%20session_replication_role%3Dreplica"
        );
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        case(pool.clone()).await;
        pool.close().await;
        let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&admin)
            .await
            .unwrap();
    }

    /// The order history kept before the event stream (`order_events`)
    /// becomes each order's events: versions 1, 2, 3 … in the rows' order,
    /// sequenced, the history endpoint's answer unchanged. On SQLite.
    #[tokio::test]
    async fn the_history_migration_moves_history_into_events() {
        history_migration_case(unchecked_sqlite().await, Backend::Sqlite, SQLITE_MIGRATIONS).await;
    }

    /// The same on PostgreSQL (see `on_unchecked_postgres`).
    #[tokio::test]
    async fn the_history_migration_moves_history_into_events_on_postgres() {
        on_unchecked_postgres(|pool| {
            history_migration_case(pool, Backend::Postgres, POSTGRES_MIGRATIONS)
        })
        .await;
    }

    async fn history_migration_case(
        pool: AnyPool,
        backend: Backend,
        migrations: &'static [(i64, &'static str, &'static str)],
    ) {
        use crate::store::{EventKind, OrderEvent, OrderStore};
        use engine::{DriverId, OrderId, UserId};
        use sqlx::Row;

        let (before, _) = migrations.split_at(6);
        migrator(before).run(&pool).await.unwrap();
        let (o1, o2) = (OrderId::new(), OrderId::new());
        let (customer, owner) = (UserId::new(), UserId::new());
        let driver = DriverId::new();
        for o in [o1, o2] {
            sqlx::query(
                "INSERT INTO orders (id, customer_id, restaurant_id, status, pickup_lat, pickup_lng, \
                 dropoff_lat, dropoff_lng, delivery_address, total_cents, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, 'placed', 1.0, 1.0, 1.0, 1.0, 'a', 990, 1, 1)",
            )
            .bind(o.to_string())
            .bind(customer.to_string())
            .bind(engine::RestaurantId::new().to_string())
            .execute(&pool)
            .await
            .unwrap();
        }
        let row = |order_id,
                   kind,
                   status,
                   driver_id: Option<DriverId>,
                   actor_id: Option<UserId>,
                   at_ms| OrderEvent {
            order_id,
            kind,
            status,
            driver_id,
            actor_id,
            at_ms,
        };
        use EventKind::{Assigned, Status};
        use OrderStatus::*;
        // Interleaved, as two orders' rows are.
        let rows = [
            row(o1, Status, Placed, None, Some(customer), 10),
            row(o2, Status, Placed, None, Some(customer), 11),
            row(o1, Status, Paid, None, None, 12),
            row(o2, Status, PaymentFailed, None, None, 13),
            row(o1, Status, Accepted, None, Some(owner), 14),
            row(
                o1,
                Assigned,
                Accepted,
                Some(driver),
                Some(driver.as_uuid().into()),
                15,
            ),
            row(o1, Status, Preparing, Some(driver), Some(owner), 16),
        ];
        for r in &rows {
            sqlx::query(
                "INSERT INTO order_events (order_id, kind, status, driver_id, actor_id, at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(r.order_id.to_string())
            .bind(r.kind.as_str())
            .bind(r.status.as_str())
            .bind(r.driver_id.map(|d| d.to_string()))
            .bind(r.actor_id.map(|a| a.to_string()))
            .bind(r.at_ms)
            .execute(&pool)
            .await
            .unwrap();
        }
        migrator(migrations).run(&pool).await.unwrap();

        let write_gate =
            (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        let store = SqlStore::from_parts(pool.clone(), backend, write_gate, None);
        // The history reads as it did, from the events.
        for o in [o1, o2] {
            let expected: Vec<OrderEvent> =
                rows.iter().filter(|r| r.order_id == o).cloned().collect();
            assert_eq!(store.order_events(o).await.unwrap(), expected);
        }
        // Sequenced already, in the rows' order, with gapless versions.
        let log = store.event_log();
        assert_eq!(log.head().await.unwrap(), 7);
        let events = log
            .aggregate_events(events::AggregateKind::Order, &o1.to_string(), 0, 100)
            .await
            .unwrap();
        let got: Vec<(i64, i64, &str, String)> = events
            .iter()
            .map(|e| (e.id, e.version, e.event_type.as_str(), e.actor.to_stored()))
            .collect();
        assert_eq!(
            got,
            [
                (1, 1, "order.placed", format!("user:{customer}")),
                (3, 2, "order.paid", "system:payments".to_owned()),
                (5, 3, "order.accepted", format!("user:{owner}")),
                (6, 4, "order.assigned", format!("user:{driver}")),
                (7, 5, "order.preparing", format!("user:{owner}")),
            ]
        );
        let body = &events[1].payload.body;
        assert_eq!(body["status_from"], "placed");
        assert_eq!(body["total_cents"], 990);
        assert_eq!(body["backfilled"], true);
        assert_eq!(body["customer_id"], customer.to_string());
        // The next change continues the order's versions.
        let v: i64 = sqlx::query_scalar(
            "SELECT version FROM event_aggregates WHERE aggregate_kind = 'order' AND aggregate_id = $1",
        )
        .bind(o2.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(v, 2);
        // Migration 0008 stamped the acceptance from the events (no order
        // was ready yet).
        let stamps: Vec<(String, Option<i64>, Option<i64>)> =
            sqlx::query("SELECT id, accepted_at_ms, ready_at_ms FROM orders ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get("id"), r.get("accepted_at_ms"), r.get("ready_at_ms")))
                .collect();
        let mut expected = vec![
            (o1.to_string(), Some(14), None),
            (o2.to_string(), None, None),
        ];
        expected.sort();
        assert_eq!(stamps, expected);
        // And the old table is gone.
        assert!(
            sqlx::query("SELECT 1 FROM order_events")
                .fetch_all(&pool)
                .await
                .is_err()
        );
    }

    #[test]
    fn migrations_come_in_pairs() {
        let versions = |m: &[(i64, &str, &str)]| -> Vec<(i64, String)> {
            m.iter().map(|&(v, d, _)| (v, d.to_owned())).collect()
        };
        assert_eq!(
            versions(super::SQLITE_MIGRATIONS),
            versions(super::POSTGRES_MIGRATIONS)
        );
        // And every file in `commerce/migrations/{sqlite,postgres}` is in
        // its list (a file added but not listed would never run).
        for (dir, listed) in [
            ("sqlite", super::SQLITE_MIGRATIONS),
            ("postgres", super::POSTGRES_MIGRATIONS),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files.len(), listed.len(), "{}: {files:?}", path.display());
            for (file, &(version, _, sql)) in files.iter().zip(listed) {
                assert!(file.starts_with(&format!("{version:04}_")), "{dir}/{file}");
                assert_eq!(
                    std::fs::read_to_string(path.join(file)).unwrap(),
                    sql,
                    "{dir}/{file}"
                );
            }
        }
    }
}
