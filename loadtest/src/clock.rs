//! Wall-clock time: pings carry Unix milliseconds and watchers compare them
//! with their own receipt time (same machine, same clock).

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in microseconds.
pub fn now_us() -> i64 {
    // Before 1970 only on a broken clock; 0 then makes latencies absurd,
    // which the report shows plainly.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    now_us() / 1000
}

/// Open-loop schedules: how many of the requests sent at `rate_per_s`
/// from the start are due `elapsed_s` in. Request `k` (from 0) is due at
/// `k / rate`, so the first is due at once; counting `floor(t × rate)`
/// instead would send each request one interval late and measure that
/// interval as latency (100 ms at 10/s).
pub fn due_count(elapsed_s: f64, rate_per_s: f64) -> u64 {
    (elapsed_s * rate_per_s) as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_is_due_at_its_own_instant() {
        assert_eq!(due_count(0.0, 10.0), 1);
        assert_eq!(due_count(0.099, 10.0), 1);
        assert_eq!(due_count(0.1, 10.0), 2);
        assert_eq!(due_count(1.0, 1000.0), 1001);
    }
}
