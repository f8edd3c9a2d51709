//! [`Config`]: the stream's limits and timings.

use crate::error::{Error, Result};

/// The event stream's settings. Every batch and retry is bounded here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Events one relay pass numbers; a pass that fills it runs again at
    /// once. Bounds the relay's transaction.
    pub relay_batch: u32,
    /// The shortest time from one relay pass to the next. A wake-up after
    /// a quiet spell passes at once; under load the commits of one interval
    /// gather into one pass (one transaction) instead of a pass each, which
    /// is what keeps the outbox cheap. Adds at most this much to delivery
    /// latency under load; 0 passes on every wake-up.
    pub relay_min_interval_ms: u64,
    /// The safety-net poll of the relay and of idle runners (see
    /// `relay::run` for what it catches): the longest any missed wake-up
    /// delays an event.
    pub poll_interval_ms: u64,
    /// Events a runner reads per query: bounds its memory.
    pub consumer_batch: u32,
    /// A runner records its position after this many handled events, when
    /// it has been idle for `poll_interval_ms`, and at shutdown: after a
    /// crash, at most this many handled events (or one poll interval's
    /// worth, if fewer) are delivered again.
    pub checkpoint_every: u32,
    /// How long one `handle` call may take before it counts as failed.
    pub handle_timeout_ms: u64,
    /// Tries of one event before it goes to the consumer's dead letters.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub backoff_initial_ms: u64,
    /// The longest wait between tries.
    pub backoff_max_ms: u64,
    /// Replayed dead letters a runner takes per round.
    pub replay_batch: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            relay_batch: 1_000,
            relay_min_interval_ms: 20,
            poll_interval_ms: 1_000,
            consumer_batch: 256,
            checkpoint_every: 64,
            handle_timeout_ms: 10_000,
            max_attempts: 5,
            backoff_initial_ms: 100,
            backoff_max_ms: 30_000,
            replay_batch: 16,
        }
    }
}

impl Config {
    /// Refuses settings that would stall the stream (a zero batch or try
    /// count).
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("relay_batch", u64::from(self.relay_batch)),
            ("poll_interval_ms", self.poll_interval_ms),
            ("consumer_batch", u64::from(self.consumer_batch)),
            ("checkpoint_every", u64::from(self.checkpoint_every)),
            ("handle_timeout_ms", self.handle_timeout_ms),
            ("max_attempts", u64::from(self.max_attempts)),
            ("replay_batch", u64::from(self.replay_batch)),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(Error::Config(format!("{name} must be positive"))),
            None => Ok(()),
        }
    }
}
