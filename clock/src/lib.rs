//! Time for the whole application, injected: one [`Clock`] is built by the
//! binary ([`SystemClock`]) or by a test ([`ManualClock`]) and handed to
//! every subsystem, so nothing else reads the system clock and a test can
//! hold time still or move it forward without sleeping.
//!
//! - [`Clock`]: the wall clock, in Unix milliseconds. Wall-clock stamps
//!   (created/updated times, token expiry, offer expiry) come from it;
//!   durations and timers stay on tokio's time, which tests pause.
//! - [`SystemClock`]: the real clock.
//! - [`ManualClock`]: a clock a test sets and advances.
//! - [`Ids`]: UUIDv7 ids stamped from a clock, unique and ordered even when
//!   many are made in the same millisecond. Ids are made at the edge (api,
//!   ingest, matcher, the binary), never inside `engine`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use uuid::{ContextV7, Timestamp, Uuid};

/// Reads the application's wall clock. Time is injected so tests can hold
/// it still; `Send + Sync + 'static` so one `Arc<dyn Clock>` is shared by
/// every task.
pub trait Clock: Send + Sync + 'static {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system clock: the one place (with the tests' own fixtures) that reads
/// `SystemTime`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        // A clock before 1970 reads as 0 rather than failing: stamps only
        // need to be ordered, and such a host is misconfigured anyway.
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told to. Clones share the same time, so a
/// test keeps one clone and hands another to the application.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    /// Now, in Unix milliseconds; shared by all clones.
    ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start_ms` (Unix milliseconds).
    pub fn new(start_ms: i64) -> Self {
        Self {
            ms: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    /// Sets the time to `ms` (Unix milliseconds), forwards or back.
    pub fn set(&self, ms: i64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `by_ms` milliseconds and returns the new
    /// time.
    pub fn advance(&self, by_ms: i64) -> i64 {
        self.ms.fetch_add(by_ms, Ordering::SeqCst) + by_ms
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// Makes UUIDv7 ids stamped with a [`Clock`]'s time. Ids made in the same
/// millisecond stay unique and ordered: uuid's [`ContextV7`] keeps a counter
/// that is reseeded with random bits each new millisecond and incremented
/// within one (as `Uuid::now_v7` does with the system clock). A clock that
/// goes back does not make ids go back: the context keeps the latest time.
pub struct Ids {
    /// Where the time part comes from.
    clock: Arc<dyn Clock>,
    /// The counter; `ContextV7` uses unsynchronised cells, hence the mutex.
    context: Mutex<ContextV7>,
}

impl std::fmt::Debug for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ids(now_ms={})", self.clock.now_ms())
    }
}

impl Ids {
    /// Ids stamped from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            context: Mutex::new(ContextV7::new()),
        }
    }

    /// A fresh UUIDv7 stamped with the clock's now.
    pub fn uuid(&self) -> Uuid {
        // Before 1970 counts as 1970 (see `SystemClock`).
        let ms = u64::try_from(self.clock.now_ms()).unwrap_or(0);
        // A poisoned lock only means another thread panicked while holding
        // it; the counter inside is still a valid counter.
        let context = self.context.lock().unwrap_or_else(PoisonError::into_inner);
        let ts = Timestamp::from_unix(&*context, ms / 1000, (ms % 1000) as u32 * 1_000_000);
        Uuid::new_v7(ts)
    }

    /// A fresh typed id (`OrderId`, `UserId` …) made from [`Ids::uuid`].
    pub fn next<T: From<Uuid>>(&self) -> T {
        T::from(self.uuid())
    }
}

/// The Unix ms a UUIDv7 was stamped with (what [`Ids::uuid`] put in it:
/// an id made at an order's placement tells when it was placed); `None`
/// for another version of UUID.
pub fn stamp_ms(id: Uuid) -> Option<i64> {
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    i64::try_from(secs.checked_mul(1000)? + u64::from(nanos / 1_000_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_tells_when_it_was_made() {
        let clock = ManualClock::new(1_796_647_819_269);
        let ids = Ids::new(Arc::new(clock.clone()));
        assert_eq!(stamp_ms(ids.uuid()), Some(1_796_647_819_269));
        clock.advance(61_001);
        assert_eq!(stamp_ms(ids.uuid()), Some(1_796_647_880_270));
        assert_eq!(stamp_ms(Uuid::new_v4()), None);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(1_000);
        let shared = clock.clone();
        assert_eq!(shared.now_ms(), 1_000);
        assert_eq!(clock.advance(250), 1_250);
        assert_eq!(shared.now_ms(), 1_250);
        clock.set(10);
        assert_eq!(shared.now_ms(), 10);
    }

    #[test]
    fn the_system_clock_reads_a_time_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }

    #[test]
    fn ids_carry_the_clocks_millisecond() {
        let clock = ManualClock::new(1_765_000_000_123);
        let ids = Ids::new(Arc::new(clock.clone()));
        let id = ids.uuid();
        assert_eq!(id.get_version_num(), 7);
        let (s, ns) = id.get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert_eq!(s * 1000 + u64::from(ns / 1_000_000), 1_765_000_000_123);
    }

    #[test]
    fn ids_made_in_one_millisecond_are_unique_and_ordered() {
        let clock = ManualClock::new(1_765_000_000_000);
        let ids = Ids::new(Arc::new(clock.clone()));
        let made: Vec<Uuid> = (0..10_000).map(|_| ids.uuid()).collect();
        assert!(
            made.windows(2).all(|w| w[0] < w[1]),
            "not strictly increasing"
        );
        clock.advance(1);
        let later = ids.uuid();
        assert!(made.iter().all(|id| *id < later));
    }

    #[test]
    fn a_clock_set_back_does_not_make_ids_go_back() {
        let clock = ManualClock::new(1_765_000_000_000);
        let ids = Ids::new(Arc::new(clock.clone()));
        let first = ids.uuid();
        clock.set(1_700_000_000_000);
        assert!(ids.uuid() > first);
    }

    #[test]
    fn ids_are_typed_by_the_caller() {
        #[derive(Debug, PartialEq)]
        struct OrderId(Uuid);
        impl From<Uuid> for OrderId {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
        let ids = Ids::new(Arc::new(ManualClock::new(5)));
        let OrderId(u) = ids.next::<OrderId>();
        assert_eq!(u.get_version_num(), 7);
    }
}
