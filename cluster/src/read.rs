//! [`StreamReader`]: one consumer group's reader of the event stream.
//!
//! Every entry a group receives goes to one reader of that group; a node
//! that must see every event reads through a group of its own (the
//! binary's per-node consumers). The reader hands each entry's event to
//! its [`Consumer`]s in stream (global id) order, skips ids it handled
//! already, and acknowledges (`XACK`) after the consumers returned, so an
//! entry whose reader died before that stays pending. Every
//! `claim_idle_ms` (and at start) a reader claims its group's entries
//! pending longer than that (`XAUTOCLAIM`), from a reader that died or
//! from this node's previous run under the same `node_id`.
//!
//! Redis going away (a restart, a network cut) is an outage, not an end:
//! the reader drops its connection, waits with doubling backoff up to
//! [`MAX_BACKOFF`], connects again and recreates its group if Redis lost
//! it (a restart without persistence), then from the stream's start.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use events::{Consumer, Event};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::codec;
use crate::metrics;
use crate::redis_conn::{Connection, Error, Redis};

/// The first wait after a failed Redis command.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts: how long after Redis
/// is back a reader may take to notice.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Event ids remembered as handled: more than a claim pass or a
/// redelivered batch brings again.
const REMEMBERED: usize = 8_192;
/// The wait between a consumer's tries of one entry (doubling).
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// A reader's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadConfig {
    /// Entries per read (`COUNT`).
    pub batch: u32,
    /// How long a read blocks waiting for entries.
    pub block_ms: u64,
    /// Entries pending this long are claimed; also the claim interval.
    pub claim_idle_ms: u64,
    /// How long one consumer call may take.
    pub handle_timeout_ms: u64,
    /// Tries of one entry per consumer before it is given up on.
    pub tries: u32,
}

/// Reads one group of the stream for a set of consumers (see the module
/// docs).
pub struct StreamReader {
    redis: Redis,
    key: String,
    group: String,
    consumer: String,
    /// Where the group starts when this reader creates it: after this id
    /// (`"0"` for the whole stream).
    start: String,
    consumers: Vec<Arc<dyn Consumer>>,
    config: ReadConfig,
    seen: Seen,
    /// Remove the group at a graceful stop (a node whose id is not kept
    /// across restarts: nobody will read it again).
    remove_group_at_stop: bool,
}

impl StreamReader {
    /// A reader of `group` on the stream `key`, named `consumer` in the
    /// group, delivering to `consumers`. A group this reader creates
    /// starts after event `start_after` (what the node's in-memory state
    /// was loaded from); an existing group goes on where it was.
    pub fn new(
        redis: Redis,
        key: String,
        group: String,
        consumer: String,
        start_after: i64,
        consumers: Vec<Arc<dyn Consumer>>,
        config: ReadConfig,
    ) -> Self {
        Self {
            redis,
            key,
            group,
            consumer,
            start: if start_after > 0 {
                codec::entry_id(start_after)
            } else {
                "0".to_owned()
            },
            consumers,
            config,
            seen: Seen::default(),
            remove_group_at_stop: false,
        }
    }

    /// Removes the group when the reader stops gracefully.
    pub fn removing_group_at_stop(mut self) -> Self {
        self.remove_group_at_stop = true;
        self
    }

    /// Reads until `shutdown`, through Redis outages.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut conn: Option<Connection> = None;
        let mut backoff = MIN_BACKOFF;
        let mut next_claim = Instant::now();
        let mut failing = false;
        loop {
            let step = self.step(&mut conn, &mut next_claim);
            let outcome = tokio::select! {
                () = shutdown.cancelled() => break,
                outcome = step => outcome,
            };
            match outcome {
                Ok(()) => {
                    if failing {
                        tracing::info!(group = %self.group, "event stream reader reconnected");
                    }
                    failing = false;
                    backoff = MIN_BACKOFF;
                }
                Err(e) => {
                    ::metrics::counter!(metrics::REDIS_ERRORS, "op" => "read").increment(1);
                    if e.code() == Some("NOGROUP") {
                        // Redis lost the group (a restart without its
                        // data): the new stream is all unread.
                        self.start = "0".to_owned();
                    } else if !failing {
                        tracing::warn!(group = %self.group, error = %e, "event stream reader failed; reconnecting");
                    }
                    failing = true;
                    conn = None;
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        if self.remove_group_at_stop {
            let mut cmd = redis::cmd("XGROUP");
            cmd.arg("DESTROY").arg(&self.key).arg(&self.group);
            if let Err(e) = self.redis.query::<i64>(&cmd).await {
                tracing::debug!(group = %self.group, error = %e, "could not remove the stream group");
            }
        }
    }

    /// Connects (and makes the group) if needed, claims when due, then
    /// reads and delivers one batch.
    async fn step(
        &mut self,
        conn: &mut Option<Connection>,
        next_claim: &mut Instant,
    ) -> Result<(), Error> {
        let conn = match conn {
            Some(conn) => conn,
            None => {
                let timeout = Duration::from_millis(self.config.block_ms) + Duration::from_secs(2);
                let mut fresh = self.redis.dedicated(timeout).await?;
                self.ensure_group(&mut fresh).await?;
                conn.insert(fresh)
            }
        };
        if Instant::now() >= *next_claim {
            self.claim(conn).await?;
            *next_claim = Instant::now() + Duration::from_millis(self.config.claim_idle_ms);
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.config.batch)
            .arg("BLOCK")
            .arg(self.config.block_ms)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">");
        let reply: Option<StreamReadReply> = conn.query(&cmd).await?;
        let entries: Vec<StreamId> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect();
        self.deliver(conn, &entries).await
    }

    /// `XGROUP CREATE … MKSTREAM`; an existing group is kept as it is.
    async fn ensure_group(&self, conn: &mut Connection) -> Result<(), Error> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(&self.key)
            .arg(&self.group)
            .arg(&self.start)
            .arg("MKSTREAM");
        match conn.query::<()>(&cmd).await {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Takes over the group's entries pending longer than `claim_idle_ms`
    /// and delivers them.
    async fn claim(&mut self, conn: &mut Connection) -> Result<(), Error> {
        let mut cursor = "0-0".to_owned();
        loop {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&self.key)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(self.config.claim_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(self.config.batch);
            let reply: StreamAutoClaimReply = conn.query(&cmd).await?;
            if !reply.claimed.is_empty() {
                ::metrics::counter!(metrics::STREAM_CLAIMED).increment(reply.claimed.len() as u64);
                tracing::info!(
                    group = %self.group,
                    entries = reply.claimed.len(),
                    "claimed event stream entries of a stopped reader"
                );
                self.deliver(conn, &reply.claimed).await?;
            }
            if reply.next_stream_id == "0-0" {
                return Ok(());
            }
            cursor = reply.next_stream_id;
        }
    }

    /// Hands each entry's event to the consumers, then acknowledges them
    /// all.
    async fn deliver(&mut self, conn: &mut Connection, entries: &[StreamId]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        for entry in entries {
            match codec::decode(&entry.id, &entry.map) {
                Ok(event) if self.seen.contains(event.id) => {
                    ::metrics::counter!(metrics::STREAM_DUPLICATES).increment(1);
                }
                Ok(event) => {
                    self.hand_out(&event).await;
                    self.seen.insert(event.id);
                    ::metrics::counter!(metrics::STREAM_DELIVERED).increment(1);
                }
                Err(e) => {
                    ::metrics::counter!(metrics::STREAM_UNREADABLE).increment(1);
                    tracing::warn!(error = %e, "unreadable event stream entry skipped");
                }
            }
        }
        let mut ack = redis::cmd("XACK");
        ack.arg(&self.key).arg(&self.group);
        for entry in entries {
            ack.arg(&entry.id);
        }
        conn.query::<i64>(&ack).await?;
        Ok(())
    }

    /// Gives `event` to every consumer that wants it, each with its tries.
    async fn hand_out(&self, event: &Event) {
        let timeout = Duration::from_millis(self.config.handle_timeout_ms);
        for consumer in self.consumers.iter().filter(|c| c.wants(event.event_type)) {
            let mut wait = RETRY_BACKOFF;
            for attempt in 1..=self.config.tries {
                let error = match tokio::time::timeout(timeout, consumer.handle(event)).await {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "timed out".to_owned(),
                };
                if attempt == self.config.tries {
                    ::metrics::counter!(metrics::STREAM_FAILED, "consumer" => consumer.metric_label().to_owned())
                        .increment(1);
                    tracing::error!(
                        consumer = consumer.name(),
                        event_id = event.id,
                        error,
                        "consumer failed on an event from the stream; skipped"
                    );
                } else {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }
}

/// The event ids handled lately, the oldest forgotten first.
#[derive(Default)]
struct Seen {
    ids: HashSet<i64>,
    order: VecDeque<i64>,
}

impl Seen {
    fn contains(&self, id: i64) -> bool {
        self.ids.contains(&id)
    }

    fn insert(&mut self, id: i64) {
        if self.ids.insert(id) {
            self.order.push_back(id);
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.ids.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_forgets_the_oldest_ids_only() {
        let mut seen = Seen::default();
        for id in 0..(REMEMBERED as i64 + 5) {
            seen.insert(id);
        }
        assert!(!seen.contains(4));
        assert!(seen.contains(5));
        assert!(seen.contains(REMEMBERED as i64 + 4));
    }
}
