//! [`EventLog`]: the handle on the event tables that the relay, the
//! consumer runners and the admin queries share, with the write gate and
//! the wake-ups they need.

use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::sync::{Notify, watch};

use crate::error::{Error, Result};
use crate::kind::{AggregateKind, EventType};
use crate::model::{Actor, Aggregate, Event, Payload};
use crate::recent::Recent;

/// Which database the event tables live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one writer at a time; wake-ups are in-process only.
    Sqlite,
    /// PostgreSQL: row locks, LISTEN/NOTIFY between nodes.
    Postgres,
}

/// The PostgreSQL channel appends and sequencing runs notify on.
pub(crate) const CHANNEL: &str = "hexdash_events";

pub use clock::{Clock, SystemClock};

/// Wakes the relay after a commit that appended events. Cheap to clone;
/// hand one to whoever appends and call [`Wake::notify`] **after** the
/// commit (before it, the relay may look too early and the event waits for
/// the fallback poll).
#[derive(Clone, Debug, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// Tells the relay there is something to sequence. Wake-ups coalesce:
    /// one pending wake-up covers any number of commits.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    pub(crate) async fn notified(&self) {
        self.0.notified().await;
    }
}

/// SQLite's in-process write gate, shared with the store so the relay's and
/// consumers' small writes queue with the business transactions instead of
/// in SQLite's sleeping busy handler.
pub type WriteGate = Arc<tokio::sync::Mutex<()>>;

/// The event tables on one database, with what the relay, the runners and
/// the admin queries share. Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) gate: Option<WriteGate>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wake: Wake,
    /// PostgreSQL only: where the relay's listener connects.
    pub(crate) listen_url: Option<String>,
    /// Bumped when an admin asks for a replay, so idle runners look.
    pub(crate) replays: Arc<watch::Sender<u64>>,
    /// What this node's relay sequenced last, for the runners' reads.
    pub(crate) recent: Recent,
}

impl EventLog {
    /// The event tables in `pool` (migrated by the store's migrations).
    pub fn new(pool: AnyPool, backend: Backend) -> Self {
        Self {
            pool,
            backend,
            gate: None,
            clock: Arc::new(SystemClock),
            wake: Wake::default(),
            listen_url: None,
            replays: Arc::new(watch::Sender::new(0)),
            recent: Recent::default(),
        }
    }

    /// SQLite: the store's write gate, taken around every write here.
    pub fn with_write_gate(mut self, gate: WriteGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// The application's clock (default: the system clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// PostgreSQL: the database url the relay LISTENs on (the pool's url).
    /// Without it the relay wakes in-process and by its poll only.
    pub fn with_listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(url.into());
        self
    }

    /// The wake-up to hand to appenders (see [`Wake`]).
    pub fn wake(&self) -> Wake {
        self.wake.clone()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The write gate (SQLite) and a write transaction: on SQLite it
    /// begins `IMMEDIATE`, holding the write lock from the start.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<(
        Option<tokio::sync::OwnedMutexGuard<()>>,
        Transaction<'static, Any>,
    )> {
        let guard = self.lock_gate().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok((guard, tx))
    }

    /// The write gate alone, for single-statement writes.
    pub(crate) async fn lock_gate(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }

    /// The last global id given (0 before the first event).
    pub async fn head(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT last_seq FROM event_relay WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// `consumer`'s stored position (the last id it handled), if it has one.
    pub async fn position(&self, consumer: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT position FROM event_consumers WHERE name = $1")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores `position` for `consumer` unless it has one (where a
    /// consumer added at runtime starts: see [`crate::Consumers`]).
    pub(crate) async fn init_position(&self, consumer: &str, position: i64) -> Result<()> {
        let _gate = self.lock_gate().await;
        sqlx::query(
            "INSERT INTO event_consumers (name, position, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(consumer)
        .bind(position)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes `consumer`'s position and dead letters, in one transaction
    /// (a removed consumer: see [`crate::Consumers::remove`]).
    pub(crate) async fn forget_consumer(&self, consumer: &str) -> Result<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        sqlx::query("DELETE FROM event_dead_letters WHERE consumer = $1")
            .bind(consumer)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM event_consumers WHERE name = $1")
            .bind(consumer)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` sequenced events after `position`, in id order: from
    /// the relay's recent events when they hold the next one, else from the
    /// log.
    pub(crate) async fn read_after(&self, position: i64, limit: u32) -> Result<Vec<Event>> {
        let limit_len = usize::try_from(limit).unwrap_or(usize::MAX);
        if let Some(events) = self.recent.after(position, limit_len) {
            ::metrics::counter!(crate::metrics::READS, "from" => "memory").increment(1);
            return Ok(events);
        }
        ::metrics::counter!(crate::metrics::READS, "from" => "log").increment(1);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
        )))
        .bind(position)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

/// The columns [`event_from_row`] reads, in its order.
pub(crate) const EVENT_COLUMNS: &str = "seq, event_type, aggregate_kind, aggregate_id, \
     aggregate_version, at_ms, actor, schema_version, payload_json";

/// An event from a row of [`EVENT_COLUMNS`] (sequenced rows only).
pub(crate) fn event_from_row(row: &AnyRow) -> Result<Event> {
    let event_type: String = row.try_get("event_type")?;
    let kind: String = row.try_get("aggregate_kind")?;
    let actor: String = row.try_get("actor")?;
    let schema_version: i64 = row.try_get("schema_version")?;
    let payload: String = row.try_get("payload_json")?;
    Ok(Event {
        id: row.try_get("seq")?,
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| Error::Corrupt(format!("event type {event_type:?}")))?,
        aggregate: Aggregate {
            kind: AggregateKind::parse(&kind)
                .ok_or_else(|| Error::Corrupt(format!("aggregate kind {kind:?}")))?,
            id: row.try_get("aggregate_id")?,
        },
        version: row.try_get("aggregate_version")?,
        at_ms: row.try_get("at_ms")?,
        actor: Actor::parse(&actor).ok_or_else(|| Error::Corrupt(format!("actor {actor:?}")))?,
        payload: Payload {
            schema_version: u32::try_from(schema_version)
                .map_err(|_| Error::Corrupt(format!("schema version {schema_version}")))?,
            body: serde_json::from_str(&payload)?,
        },
    })
}
