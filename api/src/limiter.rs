//! Fixed-window attempt counters, for login and signup rate limits (per
//! account and per client address).
//!
//! In memory, per node: behind a load balancer each node limits on its own,
//! so the effective limit is at most nodes × `max`; Redis would make it
//! global (scale-out work). The map is pruned of finished windows when it
//! grows, so a flood of distinct keys cannot grow it without bound.

use std::collections::HashMap;
use std::hash::Hash;

use parking_lot::Mutex;

/// Entries kept before finished windows are swept out.
const PRUNE_AT: usize = 100_000;

pub struct RateLimiter<K> {
    max: u32,
    window_ms: i64,
    windows: Mutex<HashMap<K, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started_ms: i64,
    count: u32,
}

impl<K: Eq + Hash> RateLimiter<K> {
    /// At most `max` hits per `window_s` seconds per key (`max` 0: no limit).
    pub fn new(max: u32, window_s: u64) -> Self {
        Self {
            max,
            window_ms: i64::try_from(window_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds until the window ends)` if `key` has used up its hits.
    pub fn check(&self, key: &K, now_ms: i64) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        match self.windows.lock().get(key) {
            Some(w) if now_ms - w.started_ms < self.window_ms && w.count >= self.max => {
                let left_ms = u64::try_from(self.window_ms - (now_ms - w.started_ms)).unwrap_or(1);
                Err(left_ms.div_ceil(1000).max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one hit for `key`.
    pub fn hit(&self, key: K, now_ms: i64) {
        if self.max == 0 {
            return;
        }
        let mut windows = self.windows.lock();
        if windows.len() >= PRUNE_AT {
            let window_ms = self.window_ms;
            windows.retain(|_, w| now_ms - w.started_ms < window_ms);
        }
        let w = windows.entry(key).or_insert(Window {
            started_ms: now_ms,
            count: 0,
        });
        if now_ms - w.started_ms >= self.window_ms {
            *w = Window {
                started_ms: now_ms,
                count: 0,
            };
        }
        w.count = w.count.saturating_add(1);
    }

    /// Forgets `key` (a successful login clears its failures).
    pub fn reset(&self, key: &K) {
        self.windows.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_within_a_window_and_recovers_after() {
        let limiter = RateLimiter::new(3, 60);
        for _ in 0..3 {
            assert!(limiter.check(&"a", 1_000).is_ok());
            limiter.hit("a", 1_000);
        }
        assert_eq!(limiter.check(&"a", 1_000), Err(60));
        assert_eq!(limiter.check(&"a", 31_000), Err(30));
        assert!(limiter.check(&"b", 1_000).is_ok(), "keys are apart");
        assert!(limiter.check(&"a", 61_000).is_ok(), "next window");
        limiter.hit("a", 61_000);
        assert!(limiter.check(&"a", 61_000).is_ok());
        limiter.reset(&"a");
        assert!(limiter.windows.lock().is_empty());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::new(0, 60);
        for _ in 0..10 {
            limiter.hit("a", 0);
        }
        assert!(limiter.check(&"a", 0).is_ok());
    }
}
