//! Measurements: HDR latency histograms (microseconds, 3 significant
//! digits, 1 µs to 10 minutes) and plain atomic counters.
//!
//! Latencies are recorded only while the measurement window is open
//! ([`Window`]), so connection set-up and warm-up never pollute them;
//! counters are read as differences between two snapshots.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

/// Highest trackable latency: 10 minutes in µs (values above saturate).
const MAX_US: u64 = 600_000_000;

/// A latency histogram in microseconds.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // The bounds are constants known to be valid (1 ≤ low, high ≥ 2·low,
        // 3 significant figures ≤ 5).
        match Histogram::new_with_bounds(1, MAX_US, 3) {
            Ok(h) => Self(h),
            Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
        }
    }

    /// Records one latency; negative values (clock skew) count as 0 µs.
    pub fn record_us(&mut self, us: i64) {
        self.0.saturating_record(us.max(0) as u64);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so `add` cannot fail; saturate anyway.
        let _ = self.0.add(&other.0);
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: self.0.len(),
            mean_ms: self.0.mean() / 1000.0,
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            p999_ms: ms(self.0.value_at_quantile(0.999)),
            max_ms: ms(self.0.max()),
        }
    }
}

/// What a report shows of a histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// A histogram many tasks record into. Each task batches its samples (a
/// frame, a tick) and takes the lock once per batch.
#[derive(Clone, Default)]
pub struct SharedLatency(Arc<Mutex<Latency>>);

impl SharedLatency {
    pub fn record_all(&self, samples_us: &[i64]) {
        if samples_us.is_empty() {
            return;
        }
        let mut h = self.0.lock();
        for &s in samples_us {
            h.record_us(s);
        }
    }

    pub fn merge(&self, other: &Latency) {
        self.0.lock().merge(other);
    }

    pub fn snapshot(&self) -> Latency {
        self.0.lock().clone()
    }
}

/// A monotonically increasing count shared between tasks.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether the measurement window is open: latencies are recorded only
/// inside it.
#[derive(Clone, Default)]
pub struct Window(Arc<AtomicBool>);

impl Window {
    pub fn open(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn close(&self) {
        self.0.store(false, Ordering::Release);
    }

    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = Latency::new();
        for us in 1..=100_000 {
            h.record_us(us);
        }
        let s = h.summary();
        assert_eq!(s.count, 100_000);
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.002;
        assert!(close(s.p50_ms, 50.0), "{s:?}");
        assert!(close(s.p99_ms, 99.0), "{s:?}");
        assert!(close(s.p999_ms, 99.9), "{s:?}");
        assert!(close(s.max_ms, 100.0), "{s:?}");
        assert!(close(s.mean_ms, 50.0), "{s:?}");
    }

    #[test]
    fn negative_and_huge_values_saturate() {
        let mut h = Latency::new();
        h.record_us(-5);
        h.record_us(i64::MAX);
        assert_eq!(h.len(), 2);
        assert!(h.summary().max_ms >= 599_000.0);
    }

    #[test]
    fn shared_merges() {
        let shared = SharedLatency::default();
        shared.record_all(&[1_000, 2_000]);
        let mut local = Latency::new();
        local.record_us(3_000);
        shared.merge(&local);
        assert_eq!(shared.snapshot().len(), 3);
    }
}
