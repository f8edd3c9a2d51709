//! What the demo did, counted: orders by outcome, offers by answer, and the
//! unexpected answers it met. Logged as one summary line at a fixed
//! interval (the integration test reads the last one).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the summary line is logged.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(15);

/// Counters shared by every actor.
#[derive(Debug, Default)]
pub struct Stats {
    /// Orders the customers placed.
    pub placed: AtomicU64,
    /// Orders the stream skipped because `max_in_flight` were open.
    pub skipped: AtomicU64,
    /// Orders that reached `delivered`.
    pub delivered: AtomicU64,
    /// Orders that ended otherwise (cancelled, rejected, payment failed).
    pub ended_otherwise: AtomicU64,
    /// Offers couriers received.
    pub offers: AtomicU64,
    /// Offers couriers accepted (and the server confirmed).
    pub accepted: AtomicU64,
    /// Offers couriers declined.
    pub declined: AtomicU64,
    /// Pings sent over MQTT.
    pub pings: AtomicU64,
    /// Answers the demo did not expect (each also logged at WARN): a
    /// healthy server keeps this at 0.
    pub unexpected: AtomicU64,
}

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Orders placed and not yet finished.
    pub fn in_flight(&self) -> u64 {
        let done =
            self.delivered.load(Ordering::Relaxed) + self.ended_otherwise.load(Ordering::Relaxed);
        self.placed.load(Ordering::Relaxed).saturating_sub(done)
    }

    /// Logs the summary line.
    pub fn log(&self) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        tracing::info!(
            placed = get(&self.placed),
            delivered = get(&self.delivered),
            ended_otherwise = get(&self.ended_otherwise),
            in_flight = self.in_flight(),
            skipped = get(&self.skipped),
            offers = get(&self.offers),
            accepted = get(&self.accepted),
            declined = get(&self.declined),
            pings = get(&self.pings),
            unexpected = get(&self.unexpected),
            "demo city"
        );
    }

    /// Logs the summary every [`SUMMARY_INTERVAL`] until shutdown.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(SUMMARY_INTERVAL);
        every.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => self.log(),
            }
        }
    }
}
