//! hexdash's durable domain events: a transactional outbox, a relay that
//! sequences and publishes it, and consumers that get every event at least
//! once, in order.
//!
//! # Parts
//! - [`kind`]: [`EventType`] (`order.placed` …, the one list of names) and
//!   [`AggregateKind`]; [`model`]: [`NewEvent`], [`Event`], [`Actor`],
//!   [`Payload`] (`schema_version` + JSON body).
//! - [`append()`]: the outbox write, one statement in the caller's
//!   transaction (the aggregate's next version and the row; on SQLite its
//!   global id too).
//! - [`EventLog`]: the handle on the tables (pool, backend, SQLite's write
//!   gate, clock, [`Wake`]); [`admin`] adds its queries (list, history,
//!   dead letters, replay).
//! - [`run()`]: the relay (module `relay`) and one runner per [`Consumer`]
//!   (module `runner`) until shutdown; [`run_with`] the same over a
//!   [`Consumers`] handle, which adds and removes consumers while the
//!   stream runs (webhook endpoints; module `consumers` says where an
//!   added consumer starts and what removing one deletes). [`Config`] holds every limit;
//!   [`describe_metrics`] the metrics' HELP.
//! - [`presence`]: driver online/offline changes through a bounded queue
//!   and a batching writer (they have no business transaction).
//!
//! # Design
//! **Who numbers events.** `seq` is the event's global id ([`Event::id`]):
//! gapless, monotonic, and visible in order. On PostgreSQL the relay is the
//! sequencer: an appended row gets an insert id and no global id, because
//! insert ids are handed out at insert, not at commit, so a reader
//! following "id > last seen" would skip a lower id that commits late.
//! Nothing reads by insert id but the relay: holding the one cursor row
//! (`FOR UPDATE SKIP LOCKED`, so relays on several nodes take turns and
//! never wait on each other), it numbers the committed unsequenced rows in
//! insert-id order with the next `seq` values and commits; passes are
//! serial, and a late commit is numbered by a later pass. On SQLite there
//! is one writer at a time and an appending transaction holds the write
//! lock to its commit, so commit order is append order: [`append()`]
//! gives the row the cursor's next number itself (a trigger moves the
//! cursor, migration 0015), a rolled-back append takes its number back, and
//! the relay only reads what committed after the head it last published.
//! The numbering passes were most of what the outbox cost SQLite.
//!
//! **Per-aggregate order.** [`append()`] bumps the aggregate's version in
//! `event_aggregates` in the statement that inserts the row (PostgreSQL: an
//! upsert whose row lock lasts to the commit; SQLite: a trigger, under the
//! one write lock that also lasts to the commit), so a second transaction
//! on the same aggregate waits until the first has committed before it
//! gets its version and insert id. Versions are 1, 2,
//! 3 … without gaps, and a later version always has a higher `seq`.
//!
//! **At least once.** A consumer's runner reads `seq > position`, delivers
//! in order, records its position after every `checkpoint_every` events,
//! once it has been idle for a poll interval, and at shutdown; after a
//! crash it repeats what it handled but had not recorded. Runners that are
//! caught up read new events from memory (module `recent`: the rows the
//! relay's pass returned), not with a query each. Consumers deduplicate by [`Event::id`]. A
//! failing event is retried with doubling backoff; after `max_attempts` it
//! goes to that consumer's dead letters (with the position, in one
//! transaction) and the runner moves on. Each runner is its own task, and
//! every `handle` has a timeout, so one consumer never holds up another.
//! An admin replay delivers a dead letter once more, out of order.
//!
//! **Wake-ups.** Appenders call [`Wake::notify`] after their commit, which
//! wakes this node's relay. On PostgreSQL every relay pass that numbered
//! something also `NOTIFY hexdash_events` (delivered at its commit) for
//! the relays and runners of other nodes, which `LISTEN`. Appends do not
//! notify: a `NOTIFY` in every business transaction serialises their
//! commits on PostgreSQL's notification queue lock, and the appender's own
//! relay numbers the row anyway. Passes are at least
//! `relay_min_interval_ms` apart: under load one pass numbers the commits
//! of an interval (a pass per commit was most of the outbox's cost), while
//! a wake-up after a quiet spell passes at once. A relay that finds the cursor held by
//! another node's pass looks again shortly (`relay::BUSY_RETRY`). A poll
//! (`poll_interval_ms`) remains for what wake-ups miss (see
//! `relay::run`): it bounds delay, never delivery.
//!
//! **What a crash may lose: nothing committed.** Events are rows in the
//! business transaction; sequencing and positions are in the database.
//! Events appended outside business transactions (driver online/offline,
//! from the engine's presence changes) are as durable as the moment their
//! own transaction commits: what [`presence`]'s queue still holds (at most
//! its capacity plus the batch being written) is lost with the process.
//!
//! **One runner per consumer name.** Positions are per name; running the
//! same consumer on two nodes at once would deliver twice (still correct for
//! a deduplicating consumer, but wasted). Across nodes the binary runs the
//! consumers with durable effects on its `relay` nodes only, and those
//! whose state is a node's memory from the Redis stream (crate
//! `cluster`), not from here; a lease per consumer is not built yet.

pub mod admin;
mod append;
pub mod config;
pub mod consumer;
mod consumers;
pub mod error;
pub mod kind;
mod log;
pub mod metrics;
pub mod model;
pub mod presence;
mod recent;
mod relay;
mod runner;

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use crate::metrics::describe_metrics;
pub use admin::{DeadLetter, EventFilter, EventPage, MAX_PAGE, ReplayOutcome};
pub use append::{Appended, append};
pub use config::Config;
pub use consumer::{Consumer, HandleError};
pub use consumers::Consumers;
pub use error::{Error, Result};
pub use kind::{AggregateKind, EventType};
pub use log::{Backend, Clock, EventLog, SystemClock, Wake, WriteGate};
pub use model::{Actor, Aggregate, Event, NewEvent, Payload};
pub use presence::{PresenceChange, PresenceConfig, PresenceRecorder, PresenceWriter, presence};

/// Runs the relay and one runner per consumer until `shutdown`; returns
/// when all have stopped. Fails at once on a bad [`Config`] or two
/// consumers with one name. Each consumer starts at its stored position
/// or at the beginning of the log.
pub async fn run(
    log: EventLog,
    consumers: Vec<Arc<dyn Consumer>>,
    config: Config,
    shutdown: CancellationToken,
) -> Result<()> {
    config.validate()?;
    run_with(log, Consumers::from_list(consumers)?, config, shutdown).await
}

/// [`run()`] over a [`Consumers`] handle: its consumers start with the
/// stream, and consumers added or removed through the handle while it runs
/// start and stop at once. Returns when shutdown stopped the relay and
/// every runner. Fails at once on a bad [`Config`], or when the handle
/// already ran a stream.
pub async fn run_with(
    log: EventLog,
    consumers: Consumers,
    config: Config,
    shutdown: CancellationToken,
) -> Result<()> {
    config.validate()?;
    // The runners' start: whatever is published already.
    // Kept here as well as in the relay, so the runners' receivers never
    // see it closed (a closed watch would wake them in a busy loop).
    let head = Arc::new(watch::Sender::new(log.head().await.unwrap_or(0)));
    // The stream's own token: a failed start stops what it started without
    // cancelling the caller's.
    let stop = shutdown.child_token();
    let relay = tokio::spawn(relay::run(
        log.clone(),
        config.clone(),
        head.clone(),
        stop.clone(),
    ));
    let started = consumers
        .start(log, config, head.clone(), stop.clone())
        .await;
    if started.is_err() {
        stop.cancel();
    }
    if let Err(e) = relay.await {
        tracing::error!(error = %e, "the event relay ended abnormally");
    }
    // The relay ends with shutdown; the runners end with it too.
    stop.cancelled().await;
    consumers.join_all().await;
    drop(head);
    started
}
