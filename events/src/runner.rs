//! One consumer's runner: reads after its position, delivers with retries
//! and backoff, dead-letters what keeps failing, records its position, and
//! delivers replayed dead letters.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::consumer::Consumer;
use crate::error::Result;
use crate::log::{EVENT_COLUMNS, EventLog, event_from_row};
use crate::metrics;
use crate::model::Event;

/// The longest error text kept in a dead letter.
const MAX_ERROR_CHARS: usize = 1_000;

/// How one event's delivery ended.
enum Delivery {
    /// Handled (or not wanted).
    Done,
    /// Every try failed; the last error.
    Exhausted { attempts: u32, error: String },
    /// Shutdown came first.
    Cancelled,
}

/// Runs `consumer` until `shutdown`. `head` carries the last id the relay
/// published on this node.
pub(crate) async fn run(
    log: EventLog,
    consumer: Arc<dyn Consumer>,
    config: Config,
    mut head: watch::Receiver<i64>,
    mut gate: Option<watch::Receiver<bool>>,
    shutdown: CancellationToken,
) {
    let name = consumer.name().to_owned();
    let poll = Duration::from_millis(config.poll_interval_ms);
    let mut replays = log.replays.subscribe();
    let position = loop {
        match log.position(&name).await {
            Ok(p) => break p.unwrap_or(0),
            Err(e) => {
                tracing::warn!(consumer = %name, error = %e, "cannot read consumer position; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    };
    let mut progress = Progress {
        position,
        unrecorded: 0,
    };
    // Dead letters are looked for at start, when an admin asks on this
    // node, and at least every poll interval (a replay asked on another
    // node), not on every pass: under load that would be a query per
    // runner per relay pass.
    let mut replay_asked = true;
    let mut replays_checked_at = tokio::time::Instant::now();
    let mut read_anyway = false;
    loop {
        let closed = gate.as_mut().is_some_and(|g| !*g.borrow_and_update());
        if closed {
            // Another node runs this consumer now (see `Consumers::gated`).
            progress.flush(&log, consumer.as_ref()).await;
            let gone = tokio::select! {
                () = shutdown.cancelled() => return,
                gone = gate_opened(&mut gate) => gone,
            };
            if gone {
                // The gate's owner is gone: the node is stopping.
                shutdown.cancelled().await;
                return;
            }
            match log.position(&name).await {
                Ok(stored) => progress.position = progress.position.max(stored.unwrap_or(0)),
                Err(e) => {
                    tracing::warn!(consumer = %name, error = %e, "cannot read consumer position after the gate opened");
                }
            }
            continue;
        }
        // Marked seen before looking, so a change from here on wakes the
        // wait below.
        let known_head = *head.borrow_and_update();
        replay_asked |= replays.has_changed().unwrap_or(false);
        replays.mark_unchanged();
        if replay_asked || replays_checked_at.elapsed() >= poll {
            replay_asked = false;
            replays_checked_at = tokio::time::Instant::now();
            if let Err(e) = replay_round(&log, consumer.as_ref(), &config, &shutdown).await {
                tracing::warn!(consumer = %name, error = %e, "dead-letter replay round failed");
            }
        }
        if shutdown.is_cancelled() {
            progress.flush(&log, consumer.as_ref()).await;
            return;
        }
        let batch = if read_anyway || known_head > progress.position || known_head == 0 {
            read(&log, &name, progress.position, &config).await
        } else {
            Vec::new()
        };
        read_anyway = false;
        if !batch.is_empty() {
            if !deliver_batch(
                &log,
                consumer.as_ref(),
                &config,
                &shutdown,
                &mut progress,
                batch,
            )
            .await
            {
                return;
            }
            continue;
        }
        let idle = tokio::select! {
            () = shutdown.cancelled() => {
                progress.flush(&log, consumer.as_ref()).await;
                return;
            }
            _ = head.changed() => false,
            // Closed (or gone): the top of the loop waits.
            _ = gate_changed(&mut gate) => false,
            _ = replays.changed() => {
                replay_asked = true;
                false
            }
            () = tokio::time::sleep(poll) => true,
        };
        if idle {
            // Idle for a poll interval: record what was handled since the
            // last checkpoint, and read once regardless of the head (a
            // relay on another node may have published without our head
            // knowing).
            progress.flush(&log, consumer.as_ref()).await;
            read_anyway = true;
        }
    }
}

/// Waits until the gate is open; whether its owner went away instead.
async fn gate_opened(gate: &mut Option<watch::Receiver<bool>>) -> bool {
    match gate {
        Some(gate) => gate.wait_for(|open| *open).await.is_err(),
        None => false,
    }
}

/// Resolves when the gate changes; never without a gate (or once its
/// owner is gone).
async fn gate_changed(gate: &mut Option<watch::Receiver<bool>>) {
    let changed = match gate {
        Some(gate) => gate.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}

/// The next batch after `position`; empty (logged) when the read failed,
/// so the runner retries at its next wake-up.
async fn read(log: &EventLog, name: &str, position: i64, config: &Config) -> Vec<Event> {
    match log.read_after(position, config.consumer_batch).await {
        Ok(batch) => batch,
        Err(e) => {
            tracing::warn!(consumer = %name, error = %e, "cannot read events; retrying");
            Vec::new()
        }
    }
}

/// Where a runner is, and how much of it the stored position lacks.
struct Progress {
    /// The last id handled (or dead-lettered).
    position: i64,
    /// Events handled since the position was last recorded.
    unrecorded: u32,
}

impl Progress {
    /// One more event handled; records the position when `checkpoint_every`
    /// events went unrecorded.
    async fn handled(&mut self, log: &EventLog, consumer: &dyn Consumer, id: i64, every: u32) {
        self.position = id;
        self.unrecorded += 1;
        if self.unrecorded >= every {
            self.flush(log, consumer).await;
        }
    }

    /// `count` more events handled, the last `id`; records the position
    /// when `checkpoint_every` events went unrecorded.
    async fn handled_through(
        &mut self,
        log: &EventLog,
        consumer: &dyn Consumer,
        id: i64,
        count: usize,
        every: u32,
    ) {
        self.position = id;
        self.unrecorded = self
            .unrecorded
            .saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
        if self.unrecorded >= every {
            self.flush(log, consumer).await;
        }
    }

    /// Records the position if anything since the last record lacks it.
    async fn flush(&mut self, log: &EventLog, consumer: &dyn Consumer) {
        if self.unrecorded > 0 {
            record(log, consumer.name(), consumer.metric_label(), self.position).await;
            self.unrecorded = 0;
        }
    }
}

/// Delivers `batch` in order, recording the position every
/// `checkpoint_every` events (the runner records the rest when it goes
/// idle or stops: a busy stream is not slowed by a write per batch); false
/// when shutdown stopped it (after recording what was handled). A
/// consumer that [handles many](Consumer::handles_many) gets the batch's
/// wanted events in one call first; only if that fails are they delivered
/// one at a time.
async fn deliver_batch(
    log: &EventLog,
    consumer: &dyn Consumer,
    config: &Config,
    shutdown: &CancellationToken,
    progress: &mut Progress,
    batch: Vec<Event>,
) -> bool {
    let name = consumer.name();
    if consumer.handles_many() {
        match deliver_together(consumer, &batch, config, shutdown, log).await {
            Together::Done => {
                if let Some(last) = batch.last() {
                    progress
                        .handled_through(
                            log,
                            consumer,
                            last.id,
                            batch.len(),
                            config.checkpoint_every,
                        )
                        .await;
                }
                return true;
            }
            Together::Cancelled => {
                progress.flush(log, consumer).await;
                return false;
            }
            Together::OneAtATime => {}
        }
    }
    for event in batch {
        match deliver(consumer, &event, config, shutdown, Some(log)).await {
            Delivery::Done => {
                progress
                    .handled(log, consumer, event.id, config.checkpoint_every)
                    .await;
            }
            Delivery::Exhausted { attempts, error } => {
                // The dead letter and the position move together, so the
                // event is neither lost nor retried forever.
                loop {
                    match dead_letter(log, name, consumer.metric_label(), &event, attempts, &error)
                        .await
                    {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(consumer = %name, event = event.id, error = %e, "cannot write dead letter; retrying");
                            tokio::select! {
                                () = shutdown.cancelled() => {
                                    progress.flush(log, consumer).await;
                                    return false;
                                }
                                () = tokio::time::sleep(Duration::from_millis(config.poll_interval_ms)) => {}
                            }
                        }
                    }
                }
                progress.position = event.id;
                progress.unrecorded = 0;
            }
            Delivery::Cancelled => {
                progress.flush(log, consumer).await;
                return false;
            }
        }
    }
    true
}

/// How a batch handed over in one call ended.
enum Together {
    /// Every wanted event handled (or none was wanted).
    Done,
    /// The call failed: deliver one at a time.
    OneAtATime,
    /// Shutdown came first.
    Cancelled,
}

/// Hands the wanted events of `batch` to `consumer` in one
/// [`Consumer::handle_many`] call, once (a lone wanted event goes through
/// [`deliver`] as usual).
async fn deliver_together(
    consumer: &dyn Consumer,
    batch: &[Event],
    config: &Config,
    shutdown: &CancellationToken,
    log: &EventLog,
) -> Together {
    let wanted: Vec<Event> = batch
        .iter()
        .filter(|e| consumer.wants(e.event_type))
        .cloned()
        .collect();
    if wanted.len() < 2 {
        return Together::OneAtATime;
    }
    let label = consumer.metric_label();
    let timeout = Duration::from_millis(config.handle_timeout_ms);
    let handled = AssertUnwindSafe(consumer.handle_many(&wanted)).catch_unwind();
    let tried = tokio::select! {
        () = shutdown.cancelled() => return Together::Cancelled,
        tried = tokio::time::timeout(timeout, handled) => tried,
    };
    let error = match tried {
        Ok(Ok(Ok(()))) => {
            ::metrics::counter!(metrics::DELIVERED, "consumer" => label.to_owned())
                .increment(wanted.len() as u64);
            let now = log.clock.now_ms();
            let histogram =
                ::metrics::histogram!(metrics::DELIVERY_LATENCY, "consumer" => label.to_owned());
            for event in &wanted {
                histogram.record(now.saturating_sub(event.at_ms).max(0) as f64 / 1000.0);
            }
            return Together::Done;
        }
        Ok(Err(panic)) => format!("panicked: {}", panic_text(panic.as_ref())),
        Ok(Ok(Err(e))) => e.to_string(),
        Err(_) => format!("timed out after {} ms", config.handle_timeout_ms),
    };
    ::metrics::counter!(metrics::FAILURES, "consumer" => label.to_owned()).increment(1);
    tracing::warn!(
        consumer = %consumer.name(),
        first = wanted[0].id,
        events = wanted.len(),
        error = %error,
        "consumer failed a batch; delivering its events one at a time"
    );
    Together::OneAtATime
}

/// Tries `event` up to `max_attempts` times with doubling backoff. With
/// `latency_from`, a handled event's age on that log's clock goes to the
/// delivery latency metric (not for replays: their age is the outage's).
async fn deliver(
    consumer: &dyn Consumer,
    event: &Event,
    config: &Config,
    shutdown: &CancellationToken,
    latency_from: Option<&EventLog>,
) -> Delivery {
    if !consumer.wants(event.event_type) {
        return Delivery::Done;
    }
    let name = consumer.name();
    let label = consumer.metric_label();
    let timeout = Duration::from_millis(config.handle_timeout_ms);
    let mut backoff_ms = config.backoff_initial_ms;
    let mut error = String::new();
    for attempt in 1..=config.max_attempts {
        // A panic in `handle` is a failed try like an error: the runner
        // (and every other consumer) goes on.
        let handled = AssertUnwindSafe(consumer.handle(event)).catch_unwind();
        let tried = tokio::select! {
            () = shutdown.cancelled() => return Delivery::Cancelled,
            tried = tokio::time::timeout(timeout, handled) => tried,
        };
        match tried {
            Ok(Err(panic)) => error = format!("panicked: {}", panic_text(panic.as_ref())),
            Ok(Ok(Ok(()))) => {
                ::metrics::counter!(metrics::DELIVERED, "consumer" => label.to_owned())
                    .increment(1);
                if let Some(log) = latency_from {
                    let waited_ms = log.clock.now_ms().saturating_sub(event.at_ms).max(0);
                    ::metrics::histogram!(metrics::DELIVERY_LATENCY, "consumer" => label.to_owned())
                        .record(waited_ms as f64 / 1000.0);
                }
                return Delivery::Done;
            }
            Ok(Ok(Err(e))) => error = e.to_string(),
            Err(_) => error = format!("timed out after {} ms", config.handle_timeout_ms),
        }
        ::metrics::counter!(metrics::FAILURES, "consumer" => label.to_owned()).increment(1);
        tracing::warn!(consumer = %name, event = event.id, attempt, error = %error, "consumer failed an event");
        if attempt == config.max_attempts {
            break;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Delivery::Cancelled,
            () = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
        }
        backoff_ms = backoff_ms.saturating_mul(2).min(config.backoff_max_ms);
    }
    error.truncate(error.floor_char_boundary(MAX_ERROR_CHARS));
    Delivery::Exhausted {
        attempts: config.max_attempts,
        error,
    }
}

/// What a panic said, when it said it with a string.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload")
}

/// Records `position` for `consumer` (never moving it back). A failure is
/// logged: the next record catches up, and meanwhile a restart would only
/// deliver some events again.
async fn record(log: &EventLog, consumer: &str, label: &str, position: i64) {
    let _gate = log.lock_gate().await;
    let done = sqlx::query(
        "INSERT INTO event_consumers (name, position, updated_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
         updated_at_ms = excluded.updated_at_ms WHERE event_consumers.position < excluded.position",
    )
    .bind(consumer)
    .bind(position)
    .bind(log.clock.now_ms())
    .execute(&log.pool)
    .await;
    match done {
        Ok(_) => {
            ::metrics::gauge!(metrics::POSITION, "consumer" => label.to_owned())
                .set(position as f64);
        }
        Err(e) => tracing::warn!(consumer, position, error = %e, "cannot record consumer position"),
    }
}

/// Writes `event` to `consumer`'s dead letters and moves its position past
/// it, in one transaction.
async fn dead_letter(
    log: &EventLog,
    consumer: &str,
    label: &str,
    event: &Event,
    attempts: u32,
    error: &str,
) -> Result<()> {
    let now = log.clock.now_ms();
    let (_gate, mut tx) = log.begin_write().await?;
    sqlx::query(
        "INSERT INTO event_dead_letters (consumer, seq, attempts, last_error, state, failed_at_ms) \
         VALUES ($1, $2, $3, $4, 'dead', $5) ON CONFLICT (consumer, seq) DO UPDATE SET \
         attempts = event_dead_letters.attempts + excluded.attempts, last_error = excluded.last_error, \
         state = 'dead', failed_at_ms = excluded.failed_at_ms",
    )
    .bind(consumer)
    .bind(event.id)
    .bind(i64::from(attempts))
    .bind(error)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO event_consumers (name, position, updated_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
         updated_at_ms = excluded.updated_at_ms WHERE event_consumers.position < excluded.position",
    )
    .bind(consumer)
    .bind(event.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    ::metrics::counter!(metrics::DEAD_LETTERED, "consumer" => label.to_owned()).increment(1);
    tracing::error!(consumer, event = event.id, event_type = %event.event_type, attempts, error, "event dead-lettered");
    Ok(())
}

/// Delivers the dead letters an admin asked to replay for this consumer
/// (up to `replay_batch`), marking each `replayed` once handled, or `dead`
/// again when every try fails.
async fn replay_round(
    log: &EventLog,
    consumer: &dyn Consumer,
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<()> {
    let name = consumer.name();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT d.id AS dead_letter_id, {columns} FROM event_dead_letters d \
         JOIN events e ON e.seq = d.seq \
         WHERE d.consumer = $1 AND d.state = 'replaying' ORDER BY d.seq LIMIT $2",
        columns = EVENT_COLUMNS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(name)
    .bind(i64::from(config.replay_batch))
    .fetch_all(&log.pool)
    .await?;
    for row in rows {
        let id: i64 = row.try_get("dead_letter_id")?;
        let event = event_from_row(&row)?;
        let now = log.clock.now_ms();
        match deliver(consumer, &event, config, shutdown, None).await {
            Delivery::Done => {
                let _gate = log.lock_gate().await;
                sqlx::query(
                    "UPDATE event_dead_letters SET state = 'replayed', replayed_at_ms = $2 \
                     WHERE id = $1 AND state = 'replaying'",
                )
                .bind(id)
                .bind(now)
                .execute(&log.pool)
                .await?;
            }
            Delivery::Exhausted { attempts, error } => {
                let _gate = log.lock_gate().await;
                sqlx::query(
                    "UPDATE event_dead_letters SET state = 'dead', attempts = attempts + $2, \
                     last_error = $3, failed_at_ms = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(i64::from(attempts))
                .bind(error)
                .bind(now)
                .execute(&log.pool)
                .await?;
                ::metrics::counter!(metrics::DEAD_LETTERED, "consumer" => consumer.metric_label().to_owned())
                    .increment(1);
            }
            Delivery::Cancelled => return Ok(()),
        }
    }
    Ok(())
}
