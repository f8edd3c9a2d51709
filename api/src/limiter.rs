//! Fixed-window attempt limits, for login and signup (per account and per
//! client address).
//!
//! Each [`Limit`] counts in this node's memory ([`RateLimiter`]) and, in a
//! cluster, also in windows every node shares ([`SharedWindows`], Redis):
//! behind a load balancer the shared count is what decides, so the limit
//! holds for the cluster rather than per node. When the shared windows
//! cannot be reached the node's own count decides (a limit per node, never
//! none) and `hexdash_rate_limit_shared_failures_total` counts the
//! fallback. The local map is pruned of finished windows when it grows, so
//! a flood of distinct keys cannot grow it without bound.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

/// Entries kept before finished windows are swept out.
const PRUNE_AT: usize = 100_000;

/// Counter: shared-window calls that failed, so the node's own count
/// decided.
pub const SHARED_FAILURES_TOTAL: &str = "hexdash_rate_limit_shared_failures_total";

/// Hits per key in fixed windows, in this node's memory.
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
    pub fn check<Q>(&self, key: &Q, now_ms: i64) -> Result<(), u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.max == 0 {
            return Ok(());
        }
        match self.windows.lock().get(key) {
            Some(w) if now_ms - w.started_ms < self.window_ms && w.count >= self.max => {
                let left_ms = u64::try_from(self.window_ms - (now_ms - w.started_ms)).unwrap_or(1);
                Err(seconds(left_ms))
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
    pub fn reset<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.windows.lock().remove(key);
    }
}

/// Whole seconds covering `ms`, at least one (a `Retry-After` of 0 would
/// invite an immediate retry that fails again).
fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// The shared windows could not be reached (the node's own count decides).
#[derive(Debug, thiserror::Error)]
#[error("shared rate-limit windows unavailable: {0}")]
pub struct Unavailable(pub String);

/// A window's state: hits counted in it and milliseconds until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// Hits so far in the current window (0: no window open).
    pub hits: u64,
    /// Milliseconds until the window ends.
    pub left_ms: u64,
}

/// Fixed windows every node sees (Redis in a cluster; the binary wires
/// `cluster::Windows` in). A window opens at a key's first hit and lasts
/// the given length; keys name the limit and the subject.
#[async_trait]
pub trait SharedWindows: Send + Sync {
    /// Counts one hit on `key` (opening a window of `window_ms` if none is
    /// open) and returns the window after it.
    async fn hit(&self, key: &str, window_ms: u64) -> Result<WindowState, Unavailable>;
    /// The window of `key` without counting.
    async fn peek(&self, key: &str) -> Result<WindowState, Unavailable>;
    /// Closes `key`'s window.
    async fn clear(&self, key: &str) -> Result<(), Unavailable>;
}

/// One limit: at most `max` hits per window per subject, counted locally
/// and, when set, in the shared windows (see the module docs).
pub struct Limit {
    /// Names the limit in shared keys (`login:account`, …).
    name: &'static str,
    max: u32,
    window_ms: u64,
    local: RateLimiter<String>,
    shared: Option<Arc<dyn SharedWindows>>,
}

impl Limit {
    /// `max` hits per `window_s` seconds per subject (`max` 0: no limit),
    /// counted in this node only until [`Limit::shared`].
    pub fn new(name: &'static str, max: u32, window_s: u64) -> Self {
        Self {
            name,
            max,
            window_ms: window_s.saturating_mul(1000),
            local: RateLimiter::new(max, window_s),
            shared: None,
        }
    }

    /// The same limit decided by `shared` windows (the cluster's).
    pub fn shared(mut self, shared: Arc<dyn SharedWindows>) -> Self {
        self.shared = Some(shared);
        self
    }

    fn key(&self, subject: &str) -> String {
        format!("{}:{subject}", self.name)
    }

    /// Counts an attempt by `subject`: `Err(seconds to wait)` if it is over
    /// the limit (an attempt refused locally is not counted locally; the
    /// shared window counts every attempt, which cannot stretch a fixed
    /// window).
    pub async fn attempt(&self, subject: &str, now_ms: i64) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        let local = self.local.check(subject, now_ms);
        if local.is_ok() {
            self.local.hit(subject.to_owned(), now_ms);
        }
        if let Some(shared) = &self.shared {
            match shared.hit(&self.key(subject), self.window_ms).await {
                Ok(w) => return self.decide(w),
                Err(e) => fell_back(&e),
            }
        }
        local
    }

    /// `Err(seconds to wait)` if `subject` has used up its hits, without
    /// counting one.
    pub async fn check(&self, subject: &str, now_ms: i64) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        if let Some(shared) = &self.shared {
            match shared.peek(&self.key(subject)).await {
                Ok(w) if w.hits >= u64::from(self.max) => return Err(seconds(w.left_ms)),
                Ok(_) => return Ok(()),
                Err(e) => fell_back(&e),
            }
        }
        self.local.check(subject, now_ms)
    }

    /// Counts a hit on `subject` (a failed login).
    pub async fn hit(&self, subject: &str, now_ms: i64) {
        if self.max == 0 {
            return;
        }
        self.local.hit(subject.to_owned(), now_ms);
        if let Some(shared) = &self.shared
            && let Err(e) = shared.hit(&self.key(subject), self.window_ms).await
        {
            fell_back(&e);
        }
    }

    /// Forgets `subject`'s hits (a successful login clears its failures).
    pub async fn reset(&self, subject: &str) {
        self.local.reset(subject);
        if let Some(shared) = &self.shared
            && let Err(e) = shared.clear(&self.key(subject)).await
        {
            fell_back(&e);
        }
    }

    /// The shared window after a counted hit: over `max` is refused.
    fn decide(&self, w: WindowState) -> Result<(), u64> {
        if w.hits > u64::from(self.max) {
            Err(seconds(w.left_ms))
        } else {
            Ok(())
        }
    }
}

fn fell_back(e: &Unavailable) {
    metrics::counter!(SHARED_FAILURES_TOTAL).increment(1);
    tracing::debug!(error = %e, "rate limit decided by this node's own count");
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

    /// Shared windows in a map, as another node would see them; `down`
    /// makes every call fail.
    #[derive(Default)]
    struct FakeShared {
        windows: Mutex<HashMap<String, u64>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl FakeShared {
        fn fail_if_down(&self) -> Result<(), Unavailable> {
            if self.down.load(std::sync::atomic::Ordering::Relaxed) {
                Err(Unavailable("down".to_owned()))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait]
    impl SharedWindows for FakeShared {
        async fn hit(&self, key: &str, window_ms: u64) -> Result<WindowState, Unavailable> {
            self.fail_if_down()?;
            let mut windows = self.windows.lock();
            let hits = windows.entry(key.to_owned()).or_default();
            *hits += 1;
            Ok(WindowState {
                hits: *hits,
                left_ms: window_ms,
            })
        }
        async fn peek(&self, key: &str) -> Result<WindowState, Unavailable> {
            self.fail_if_down()?;
            Ok(WindowState {
                hits: self.windows.lock().get(key).copied().unwrap_or(0),
                left_ms: 1_500,
            })
        }
        async fn clear(&self, key: &str) -> Result<(), Unavailable> {
            self.fail_if_down()?;
            self.windows.lock().remove(key);
            Ok(())
        }
    }

    /// Two nodes sharing windows: together they allow `max`, not twice
    /// `max`; with the windows down each node's own count still limits.
    #[tokio::test]
    async fn nodes_sharing_windows_limit_together_and_fall_back_alone() {
        let shared = Arc::new(FakeShared::default());
        let a = Limit::new("signup:addr", 4, 60).shared(shared.clone());
        let b = Limit::new("signup:addr", 4, 60).shared(shared.clone());
        for node in [&a, &b, &a, &b] {
            assert_eq!(node.attempt("10.0.0.1", 0).await, Ok(()));
        }
        assert_eq!(b.attempt("10.0.0.1", 0).await, Err(60));
        assert_eq!(a.attempt("10.0.0.1", 0).await, Err(60));
        assert_eq!(a.attempt("10.0.0.2", 0).await, Ok(()), "subjects are apart");

        shared
            .down
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // Node a counted three attempts of its own for 10.0.0.1 (the
        // shared windows refused the third, its own count had allowed
        // it): one more, then its own limit.
        assert_eq!(a.attempt("10.0.0.1", 0).await, Ok(()));
        assert_eq!(a.attempt("10.0.0.1", 0).await, Err(60));
    }

    /// Failures counted on one node refuse the account on another; a
    /// success anywhere clears them.
    #[tokio::test]
    async fn failures_on_one_node_count_on_another_until_reset() {
        let shared = Arc::new(FakeShared::default());
        let a = Limit::new("login:account", 2, 60).shared(shared.clone());
        let b = Limit::new("login:account", 2, 60).shared(shared.clone());
        a.hit("x@example.com", 0).await;
        assert_eq!(b.check("x@example.com", 0).await, Ok(()));
        a.hit("x@example.com", 0).await;
        assert_eq!(
            b.check("x@example.com", 0).await,
            Err(2),
            "the shared window's time left"
        );
        b.reset("x@example.com").await;
        assert_eq!(a.check("x@example.com", 0).await, Ok(()));
    }
}
