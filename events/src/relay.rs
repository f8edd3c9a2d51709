//! The relay: the sequencer of the event log on PostgreSQL, and the
//! wake-up of the consumers on this node.
//!
//! **SQLite**: an append numbers its row itself (see [`crate::append()`]),
//! so a pass only reads the rows committed after the head this node last
//! published, puts them in the recent events and publishes the new head: a
//! read on any pooled connection, no write and no write gate.
//!
//! **PostgreSQL**: appended rows carry an insert id and no `seq`. A relay pass locks the
//! single cursor row (`FOR UPDATE SKIP LOCKED` on PostgreSQL: a relay on
//! another node that holds it makes this pass a no-op instead of a wait),
//! gives the next numbers to the committed unsequenced rows in insert-id
//! order, moves the cursor and commits. Consumers read `seq > position`.
//! A row that commits after a higher insert id was already sequenced is
//! simply sequenced by a later pass, with a higher `seq`: nothing is
//! skipped, because nothing reads by insert id. The numbering statement
//! returns the rows, which go to the node's recent events after the
//! commit, so caught-up runners need not query for them.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Result;
use crate::log::{Backend, CHANNEL, EVENT_COLUMNS, EventLog, event_from_row};
use crate::metrics;

/// The cursor row, locked for the pass (PostgreSQL).
const LOCK_CURSOR: &str = "SELECT last_seq FROM event_relay WHERE id = 1 FOR UPDATE SKIP LOCKED";

/// Numbers up to `$2` committed unsequenced rows after `$1`, in insert-id
/// order, and returns them (PostgreSQL; the columns are [`EVENT_COLUMNS`],
/// which only `events` has). Built once.
static SEQUENCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE events SET seq = $1 + n.rn FROM ( \
         SELECT insert_id, ROW_NUMBER() OVER (ORDER BY insert_id) AS rn FROM events \
         WHERE seq IS NULL ORDER BY insert_id LIMIT $2) AS n \
         WHERE events.insert_id = n.insert_id RETURNING {EVENT_COLUMNS}"
    )
});

/// How soon a relay that found the cursor held by another node's pass looks
/// again: that pass may have started before our rows committed. (Appends
/// do not `NOTIFY`, so nothing else would wake us before the poll.)
pub(crate) const BUSY_RETRY: Duration = Duration::from_millis(20);

/// SQLite: up to `$2` events after the published head `$1`, in id order.
static COMMITTED_AFTER: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
});

/// The outcome of one pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    /// This relay held the cursor and numbered `count` events; the last
    /// global id is now `head`.
    Sequenced { count: u64, head: i64 },
    /// Another relay holds the cursor.
    Busy,
}

/// One pass: sequences (PostgreSQL) or reads (SQLite) up to `limit`
/// committed events after `published`, the head this node published last.
pub(crate) async fn sequence_once(log: &EventLog, published: i64, limit: u32) -> Result<Pass> {
    if log.backend == Backend::Sqlite {
        return read_committed(log, published, limit).await;
    }
    let (_gate, mut tx) = log.begin_write().await?;
    let Some(last): Option<i64> = sqlx::query_scalar(LOCK_CURSOR)
        .fetch_optional(&mut *tx)
        .await?
    else {
        tx.rollback().await?;
        return Ok(Pass::Busy);
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(SEQUENCE.as_str()))
        .bind(last)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(Pass::Sequenced {
            count: 0,
            head: last,
        });
    }
    let sequenced = rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>>>()?;
    let count = sequenced.len() as u64;
    let head = last + i64::try_from(count).unwrap_or(i64::MAX);
    sqlx::query("UPDATE event_relay SET last_seq = $1 WHERE id = 1")
        .bind(head)
        .execute(&mut *tx)
        .await?;
    // The oldest event of the pass says how far behind the relay runs.
    let oldest_ms = sequenced.iter().map(|e| e.at_ms).min();
    // Wakes the consumers of relays on other nodes, at commit.
    sqlx::query(sqlx::AssertSqlSafe(format!("NOTIFY {CHANNEL}")))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    published_pass(log, sequenced, oldest_ms, count, head);
    Ok(Pass::Sequenced { count, head })
}

/// SQLite's pass: the events committed after `published`, read, not
/// written (their appends numbered them).
async fn read_committed(log: &EventLog, published: i64, limit: u32) -> Result<Pass> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(COMMITTED_AFTER.as_str()))
        .bind(published)
        .bind(i64::from(limit))
        .fetch_all(log.pool())
        .await?;
    let committed = rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>>>()?;
    let count = committed.len() as u64;
    let head = committed.last().map_or(published, |e| e.id);
    let oldest_ms = committed.iter().map(|e| e.at_ms).min();
    published_pass(log, committed, oldest_ms, count, head);
    Ok(Pass::Sequenced { count, head })
}

/// Hands a pass's events to the recent window and records its metrics.
fn published_pass(
    log: &EventLog,
    events: Vec<crate::model::Event>,
    oldest_ms: Option<i64>,
    count: u64,
    head: i64,
) {
    if count == 0 {
        return;
    }
    log.recent.extend(events);
    ::metrics::counter!(metrics::PUBLISHED).increment(count);
    ::metrics::gauge!(metrics::HEAD).set(head as f64);
    if let Some(oldest_ms) = oldest_ms {
        let lag_ms = log.clock.now_ms().saturating_sub(oldest_ms).max(0);
        ::metrics::gauge!(metrics::RELAY_LAG).set(lag_ms as f64 / 1000.0);
    }
}

/// Sequences until nothing committed is left (or another relay holds the
/// cursor), then publishes the head to this node's runners. `Busy` when
/// another relay held the cursor.
pub(crate) async fn drain(
    log: &EventLog,
    config: &Config,
    head: &watch::Sender<i64>,
) -> Result<Pass> {
    loop {
        let published = *head.borrow();
        match sequence_once(log, published, config.relay_batch).await? {
            Pass::Sequenced { count, head: now } => {
                publish_head(head, now);
                if count < u64::from(config.relay_batch) {
                    return Ok(Pass::Sequenced { count, head: now });
                }
            }
            Pass::Busy => {
                // The other relay numbers what it sees; publish what is
                // committed so far and look again soon for the rest.
                publish_head(head, log.head().await?);
                return Ok(Pass::Busy);
            }
        }
    }
}

fn publish_head(head: &watch::Sender<i64>, now: i64) {
    head.send_if_modified(|h| {
        let newer = now > *h;
        if newer {
            *h = now;
        }
        newer
    });
}

/// The relay loop: a pass at start, then one after every wake-up: an
/// in-process [`crate::Wake`], a PostgreSQL notification, or the poll.
///
/// The poll stays even with both wake-ups, as the safety net for what they
/// cannot see: a NOTIFY sent while the listener was reconnecting, an
/// appender that crashed or forgot between its commit and its wake, a
/// pass that failed (a lost connection) and left rows unsequenced, writes
/// by another process on SQLite, and (PostgreSQL) a relay on another node
/// that stopped while holding work. Its interval bounds the delay any of
/// those can add, never what is delivered.
pub(crate) async fn run(
    log: EventLog,
    config: Config,
    head: Arc<watch::Sender<i64>>,
    shutdown: CancellationToken,
) {
    let poll = Duration::from_millis(config.poll_interval_ms);
    let min_interval = Duration::from_millis(config.relay_min_interval_ms);
    let mut listener = None;
    loop {
        if listener.is_none() {
            listener = listen(&log).await;
        }
        let last_pass = tokio::time::Instant::now();
        let wait = match drain(&log, &config, &head).await {
            Ok(Pass::Busy) => BUSY_RETRY,
            Ok(Pass::Sequenced { .. }) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "event relay pass failed; retrying at the next wake-up");
                poll
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = log.wake.notified() => {
                // Under load, let the commits of one interval gather into
                // one pass; after a quiet spell the pass runs at once.
                let due = last_pass + min_interval;
                if tokio::time::Instant::now() < due {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            ok = next_notification(&mut listener) => {
                if !ok {
                    listener = None;
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// A listener on [`CHANNEL`] (PostgreSQL with a url), or none.
async fn listen(log: &EventLog) -> Option<PgListener> {
    let url = log
        .listen_url
        .as_deref()
        .filter(|_| log.backend == Backend::Postgres)?;
    let connected = async {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match connected.await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "event relay cannot LISTEN; polling until it can");
            None
        }
    }
}

/// The next notification: true when one came, false when the listener
/// failed; never returns without a listener.
async fn next_notification(listener: &mut Option<PgListener>) -> bool {
    match listener {
        Some(l) => match l.recv().await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "event relay listener failed; reconnecting");
                false
            }
        },
        None => std::future::pending().await,
    }
}
