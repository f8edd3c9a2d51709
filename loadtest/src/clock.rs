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
