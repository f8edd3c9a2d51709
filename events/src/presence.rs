//! Driver presence (`driver.online` / `driver.offline`) into the stream.
//!
//! Presence changes come from the engine, not from a business transaction,
//! so they reach the log through a bounded queue and a writer task that
//! appends them in batches, one transaction per batch. The bound: a crash
//! loses what is queued and not yet committed, at most
//! [`PresenceConfig::capacity`] events plus the batch being written;
//! overflow drops the newest change (counted in
//! `hexdash_events_presence_dropped_total`), because presence is a
//! level, not a ledger: the driver's next change, or the engine's state at
//! start-up, says where it stands.
//!
//! Other events with no business transaction of their own (`order.offered`
//! and `order.arrived_at_*`, made by the matcher in memory) take the same queue
//! ([`PresenceRecorder::record_event`]), with the same bound and loss.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::append::append;
use crate::error::Result;
use crate::kind::EventType;
use crate::log::EventLog;
use crate::model::{Actor, NewEvent, Payload};

/// Presence changes dropped because the queue was full.
pub const DROPPED: &str = "hexdash_events_presence_dropped_total";

/// The queue's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Changes waiting to be written; what a crash may lose at most.
    pub capacity: usize,
    /// Changes per transaction.
    pub batch: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            capacity: 4_096,
            batch: 256,
        }
    }
}

/// One driver's change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceChange {
    /// The driver (their user id).
    pub driver_id: Uuid,
    /// Online (available) or offline.
    pub online: bool,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// Where presence changes are recorded from (cheap to clone).
#[derive(Clone, Debug)]
pub struct PresenceRecorder {
    tx: mpsc::Sender<Queued>,
}

/// What the queue holds.
#[derive(Debug)]
enum Queued {
    /// A driver's presence change.
    Presence(PresenceChange),
    /// Any other event made outside a business transaction.
    Event(NewEvent),
}

impl PresenceRecorder {
    /// Queues a change; false (and counted) when the queue is full.
    pub fn record(&self, change: PresenceChange) -> bool {
        self.queue(Queued::Presence(change))
    }

    /// Queues another event made outside a business transaction (an
    /// `order.offered`); false (and counted) when the queue is full.
    pub fn record_event(&self, event: NewEvent) -> bool {
        self.queue(Queued::Event(event))
    }

    fn queue(&self, item: Queued) -> bool {
        let queued = self.tx.try_send(item).is_ok();
        if !queued {
            metrics::counter!(DROPPED).increment(1);
        }
        queued
    }
}

/// A recorder and its writer; run the writer until shutdown.
pub fn presence(log: EventLog, config: PresenceConfig) -> (PresenceRecorder, PresenceWriter) {
    let (tx, rx) = mpsc::channel(config.capacity.max(1));
    (
        PresenceRecorder { tx },
        PresenceWriter {
            log,
            rx,
            batch: config.batch.max(1),
        },
    )
}

/// Appends queued presence changes, a batch per transaction.
pub struct PresenceWriter {
    log: EventLog,
    rx: mpsc::Receiver<Queued>,
    batch: usize,
}

impl PresenceWriter {
    /// Writes until `shutdown`, then writes what is already queued.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut changes = Vec::with_capacity(self.batch);
        loop {
            let got = tokio::select! {
                () = shutdown.cancelled() => {
                    self.rx.close();
                    while self.rx.recv_many(&mut changes, self.batch).await > 0 {
                        self.write_logged(&mut changes).await;
                    }
                    return;
                }
                got = self.rx.recv_many(&mut changes, self.batch) => got,
            };
            if got == 0 {
                return;
            }
            self.write_logged(&mut changes).await;
        }
    }

    async fn write_logged(&self, changes: &mut Vec<Queued>) {
        if let Err(e) = self.write(changes).await {
            // Presence is a level: the next change corrects it.
            tracing::warn!(error = %e, lost = changes.len(), "cannot record driver presence events");
        }
        changes.clear();
    }

    async fn write(&self, changes: &[Queued]) -> Result<()> {
        let (_gate, mut tx) = self.log.begin_write().await?;
        for queued in changes {
            let c = match queued {
                Queued::Presence(c) => c,
                Queued::Event(event) => {
                    append(&mut tx, event).await?;
                    continue;
                }
            };
            let event = NewEvent {
                event_type: if c.online {
                    EventType::DriverOnline
                } else {
                    EventType::DriverOffline
                },
                aggregate_id: c.driver_id.to_string(),
                at_ms: c.at_ms,
                actor: Actor::User(c.driver_id),
                payload: Payload::v1(serde_json::json!({ "driver_id": c.driver_id })),
            };
            append(&mut tx, &event).await?;
        }
        tx.commit().await?;
        self.log.wake.notify();
        Ok(())
    }
}
