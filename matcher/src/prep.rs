//! How long each restaurant takes to prepare an order, learned from what
//! it did before. Pure state: no clock, no I/O.
//!
//! The prep-aware matcher (`matcher.prep_aware`) holds an order's offer
//! until its best courier would reach the restaurant about when the food
//! is ready; when the dispatch request does not say when that is, the
//! estimate here does: the median of the restaurant's last
//! `prep_window` observed durations (accepted → ready for pickup) once it
//! has `prep_min_samples` of them; before that, the preparation time the
//! restaurant declared (its `avg_prep_time_s`), or a fixed default for a
//! restaurant that declared none.

use std::collections::VecDeque;

use engine::RestaurantId;
use rustc_hash::FxHashMap;

/// Settings of a [`PrepEstimator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepConfig {
    /// The estimate for a restaurant with too little history, ms.
    pub default_ms: u64,
    /// Observations a restaurant needs before its own history is used.
    pub min_samples: usize,
    /// How many of its latest observations count (older ones are
    /// dropped, so a kitchen that got faster is followed).
    pub window: usize,
}

/// Preparation-time estimates per restaurant.
#[derive(Debug, Clone)]
pub struct PrepEstimator {
    config: PrepConfig,
    /// The latest durations of each restaurant, ms, oldest first.
    history: FxHashMap<RestaurantId, VecDeque<u64>>,
    /// What each restaurant says it takes, ms: the estimate until its
    /// history is long enough.
    declared: FxHashMap<RestaurantId, u64>,
}

impl PrepEstimator {
    /// An estimator with no history.
    pub fn new(config: PrepConfig) -> PrepEstimator {
        PrepEstimator {
            config,
            history: FxHashMap::default(),
            declared: FxHashMap::default(),
        }
    }

    /// Records what `restaurant` says its preparation takes (replacing
    /// what it said before).
    pub fn declare(&mut self, restaurant: RestaurantId, prep_ms: u64) {
        self.declared.insert(restaurant, prep_ms);
    }

    /// Records that an order of `restaurant` took `prep_ms` from accepted
    /// to ready for pickup.
    pub fn observe(&mut self, restaurant: RestaurantId, prep_ms: u64) {
        let window = self.config.window.max(1);
        let h = self.history.entry(restaurant).or_default();
        h.push_back(prep_ms);
        while h.len() > window {
            h.pop_front();
        }
    }

    /// Observations of `restaurant` that count now.
    pub fn samples(&self, restaurant: RestaurantId) -> usize {
        self.history.get(&restaurant).map_or(0, VecDeque::len)
    }

    /// The expected preparation time of `restaurant`'s next order, ms:
    /// the median of its window once it has enough observations (the
    /// median, not the mean: one forgotten order at the pass must not move
    /// every later estimate), else what it declared, else the default.
    pub fn estimate_ms(&self, restaurant: RestaurantId) -> u64 {
        let before_history = || {
            self.declared
                .get(&restaurant)
                .copied()
                .unwrap_or(self.config.default_ms)
        };
        let Some(h) = self.history.get(&restaurant) else {
            return before_history();
        };
        if h.len() < self.config.min_samples.max(1) {
            return before_history();
        }
        let mut sorted: Vec<u64> = h.iter().copied().collect();
        sorted.sort_unstable();
        let mid = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            sorted[mid - 1] / 2 + sorted[mid] / 2 + (sorted[mid - 1] % 2 + sorted[mid] % 2) / 2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimator() -> PrepEstimator {
        PrepEstimator::new(PrepConfig {
            default_ms: 600_000,
            min_samples: 3,
            window: 5,
        })
    }

    #[test]
    fn the_default_until_there_is_enough_history() {
        let mut e = estimator();
        let r = RestaurantId::new();
        assert_eq!(e.estimate_ms(r), 600_000);
        e.observe(r, 300_000);
        e.observe(r, 320_000);
        assert_eq!(e.estimate_ms(r), 600_000);
        e.observe(r, 2_000_000);
        // The median: one outlier does not move it.
        assert_eq!(e.estimate_ms(r), 320_000);
        assert_eq!(e.estimate_ms(RestaurantId::new()), 600_000);
    }

    #[test]
    fn what_a_restaurant_declared_until_its_history_is_long_enough() {
        let mut e = estimator();
        let r = RestaurantId::new();
        e.declare(r, 1_200_000);
        assert_eq!(e.estimate_ms(r), 1_200_000);
        e.declare(r, 900_000);
        assert_eq!(e.estimate_ms(r), 900_000, "the latest declaration");
        e.observe(r, 300_000);
        e.observe(r, 300_000);
        assert_eq!(e.estimate_ms(r), 900_000, "two samples are too few");
        e.observe(r, 300_000);
        assert_eq!(e.estimate_ms(r), 300_000, "history wins");
        assert_eq!(e.estimate_ms(RestaurantId::new()), 600_000);
    }

    #[test]
    fn only_the_latest_window_counts() {
        let mut e = estimator();
        let r = RestaurantId::new();
        for _ in 0..5 {
            e.observe(r, 900_000);
        }
        for _ in 0..3 {
            e.observe(r, 400_000);
        }
        assert_eq!(e.samples(r), 5);
        assert_eq!(e.estimate_ms(r), 400_000);
        e.observe(r, 500_000);
        // 900, 400, 400, 400, 500 → 400 after the oldest 900s left.
        assert_eq!(e.estimate_ms(r), 400_000);
    }

    #[test]
    fn even_windows_take_the_middle_pair() {
        let mut e = estimator();
        let r = RestaurantId::new();
        for ms in [100, 201, 300, 400] {
            e.observe(r, ms);
        }
        assert_eq!(e.estimate_ms(r), 250);
    }
}
