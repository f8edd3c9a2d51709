//! A token bucket as GCRA (the generic cell rate algorithm): the whole
//! state of a bucket is one timestamp, the "theoretical arrival time",
//! which runs ahead of the clock by one emission interval per event taken
//! and may lead it by at most the burst. A timestamp in the past (or 0) is
//! a full bucket. The engine keeps one per driver for its pings
//! ([`crate::Config::max_pings_per_s`]); the REST API keeps one per client
//! address and per account.

/// A sustained rate and a burst, as GCRA's interval and tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Microseconds one event uses of the bucket.
    interval_us: i64,
    /// How far a timestamp may lead the clock: the burst less one event.
    tolerance_us: i64,
}

impl Rate {
    /// `per_s` events a second sustained and `burst` at once from a full
    /// bucket (at least one); `None` when `per_s` is 0 (no limit). Rates
    /// above a million a second are taken as a million.
    pub fn new(per_s: u32, burst: u32) -> Option<Self> {
        if per_s == 0 {
            return None;
        }
        let interval_us = 1_000_000 / i64::from(per_s).min(1_000_000);
        Some(Self {
            interval_us,
            tolerance_us: interval_us * (i64::from(burst.max(1)) - 1),
        })
    }

    /// Takes one event from the bucket whose timestamp is `tat_us` at
    /// `now_us`: `Ok(the bucket's new timestamp)`, or `Err(microseconds
    /// until it has room)` (the bucket unchanged: a refused event uses no
    /// room).
    #[inline]
    pub fn take(self, tat_us: i64, now_us: i64) -> Result<i64, i64> {
        let tat_us = tat_us.max(now_us);
        let ahead = tat_us - now_us;
        if ahead > self.tolerance_us {
            Err(ahead - self.tolerance_us)
        } else {
            Ok(tat_us + self.interval_us)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes from one bucket, keeping its timestamp.
    fn take(rate: Rate, tat: &mut i64, now_ms: i64) -> Result<(), i64> {
        rate.take(*tat, now_ms * 1000).map(|t| *tat = t)
    }

    #[test]
    fn a_full_bucket_takes_the_burst_then_the_rate() {
        let rate = Rate::new(10, 5).unwrap();
        let mut tat = 0;
        for _ in 0..5 {
            assert_eq!(take(rate, &mut tat, 1_000), Ok(()));
        }
        // The sixth waits one interval (100 ms at 10/s).
        assert_eq!(take(rate, &mut tat, 1_000), Err(100_000));
        // 100 ms later one event has room, not two.
        assert_eq!(take(rate, &mut tat, 1_100), Ok(()));
        assert_eq!(take(rate, &mut tat, 1_100), Err(100_000));
        // A refused event does not use up room.
        assert_eq!(take(rate, &mut tat, 1_150), Err(50_000));
        assert_eq!(take(rate, &mut tat, 1_200), Ok(()));
    }

    #[test]
    fn events_at_the_rate_are_never_refused() {
        let rate = Rate::new(50, 1).unwrap();
        let mut tat = 0;
        for i in 0..1_000 {
            assert_eq!(take(rate, &mut tat, i * 20), Ok(()), "event {i}");
        }
        assert!(take(rate, &mut tat, 999 * 20).is_err());
    }

    #[test]
    fn an_idle_bucket_refills_to_the_burst_only() {
        let rate = Rate::new(1, 3).unwrap();
        let mut tat = 0;
        for _ in 0..3 {
            take(rate, &mut tat, 0).unwrap();
        }
        // An hour idle: the burst again, not 3,600 events.
        for _ in 0..3 {
            assert_eq!(take(rate, &mut tat, 3_600_000), Ok(()));
        }
        assert_eq!(take(rate, &mut tat, 3_600_000), Err(1_000_000));
    }

    #[test]
    fn rate_zero_is_no_limit_and_huge_rates_are_capped() {
        assert_eq!(Rate::new(0, 10), None);
        let capped = Rate::new(u32::MAX, 1).unwrap();
        assert_eq!(capped.interval_us, 1);
    }
}
