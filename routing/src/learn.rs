//! Learning road speeds from driven legs: each delivered order's legs
//! (courier → restaurant, restaurant → door) were predicted on the graph's
//! nominal speeds; what they actually took corrects a time factor per road
//! class (actual ÷ nominal time), which [`crate::RoadGraph::with_time_factors`]
//! turns into a graph whose times predict the next legs better.
//!
//! The model: a leg's actual time ≈ Σ over classes of (its nominal time
//! on that class × the class's factor). Each observation moves the factors
//! by a normalised least-mean-squares step (the error spread over the
//! classes the leg used, in proportion to their time on it), scaled by
//! `rate` (smoothing: one odd leg moves them a little) and kept within
//! `[min_factor, max_factor]` (bounded: a broken GPS trace cannot make a
//! class absurdly slow or fast). Legs too short to say anything
//! (`min_leg_ms`) or absurdly off (beyond the bounds' ratio) are ignored.
//! Pure state: no clock, no I/O.

use crate::graph::CLASSES;

/// Settings of a [`SpeedLearner`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnConfig {
    /// Step size, 0 to 1: how far one leg moves the factors towards
    /// explaining it. 0.05: about the last few dozen legs count.
    pub rate: f64,
    /// Smallest time factor (faster than nominal at most 1 ÷ this).
    pub min_factor: f64,
    /// Largest time factor.
    pub max_factor: f64,
    /// Legs shorter than this (nominal) are ignored: GPS and handover
    /// noise dominate them.
    pub min_leg_ms: u64,
}

impl Default for LearnConfig {
    fn default() -> LearnConfig {
        LearnConfig {
            rate: 0.05,
            min_factor: 0.5,
            max_factor: 2.5,
            min_leg_ms: 30_000,
        }
    }
}

/// Per-class time factors learned from legs (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedLearner {
    config: LearnConfig,
    factors: [f64; CLASSES],
    observed: u64,
}

impl SpeedLearner {
    /// A learner at the nominal speeds (every factor 1).
    pub fn new(config: LearnConfig) -> SpeedLearner {
        SpeedLearner {
            config,
            factors: [1.0; CLASSES],
            observed: 0,
        }
    }

    /// The time factors now, by class code.
    pub fn time_factors(&self) -> [f64; CLASSES] {
        self.factors
    }

    /// Legs that moved the factors so far.
    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// The time a leg with `nominal_ms` per class should take now, ms.
    pub fn predict_ms(&self, nominal_ms: &[u64; CLASSES]) -> f64 {
        nominal_ms
            .iter()
            .zip(&self.factors)
            .map(|(&t, f)| t as f64 * f)
            .sum()
    }

    /// Learns from a leg whose nominal time per class was `nominal_ms` and
    /// that took `actual_ms`; whether it counted.
    pub fn observe(&mut self, nominal_ms: &[u64; CLASSES], actual_ms: u64) -> bool {
        let c = self.config;
        let total: u64 = nominal_ms.iter().sum();
        if total < c.min_leg_ms.max(1) {
            return false;
        }
        let ratio = actual_ms as f64 / total as f64;
        // Beyond what the bounds allow for any mix of classes: a broken
        // trace (a courier who stopped for lunch), not traffic.
        if !(c.min_factor / 2.0..=c.max_factor * 2.0).contains(&ratio) {
            return false;
        }
        let error = actual_ms as f64 - self.predict_ms(nominal_ms);
        let norm: f64 = nominal_ms.iter().map(|&t| (t as f64).powi(2)).sum();
        for (f, &t) in self.factors.iter_mut().zip(nominal_ms) {
            if t > 0 {
                let step = c.rate.clamp(0.0, 1.0) * error * t as f64 / norm;
                *f = (*f + step).clamp(c.min_factor, c.max_factor);
            }
        }
        self.observed += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Legs mixing a few classes at random, driven at hidden true factors:
    /// the learner finds the factors, and its predictions' error falls.
    #[test]
    fn learning_converges_on_synthetic_legs() {
        let truth: [f64; CLASSES] = std::array::from_fn(|c| 0.7 + 0.08 * c as f64);
        let mut rng = StdRng::seed_from_u64(11);
        let leg = |rng: &mut StdRng| {
            let mut nominal = [0u64; CLASSES];
            for _ in 0..3 {
                nominal[rng.random_range(0..CLASSES)] += rng.random_range(20_000..300_000);
            }
            let actual: f64 = nominal.iter().zip(&truth).map(|(&t, f)| t as f64 * f).sum();
            // ±5% noise per leg.
            let noisy = actual * rng.random_range(0.95..1.05);
            (nominal, noisy as u64)
        };
        let mut learner = SpeedLearner::new(LearnConfig::default());
        let mean_error = |learner: &SpeedLearner, rng: &mut StdRng| {
            let mut sum = 0.0;
            for _ in 0..500 {
                let (nominal, actual) = leg(rng);
                sum += (learner.predict_ms(&nominal) - actual as f64).abs() / actual as f64;
            }
            sum / 500.0
        };
        let before = mean_error(&learner, &mut StdRng::seed_from_u64(99));
        for _ in 0..20_000 {
            let (nominal, actual) = leg(&mut rng);
            assert!(learner.observe(&nominal, actual));
        }
        let after = mean_error(&learner, &mut StdRng::seed_from_u64(99));
        assert!(before > 0.15, "{before}");
        // Down to about the noise.
        assert!(after < 0.04, "before {before}, after {after}");
        for (c, (f, t)) in learner.time_factors().iter().zip(&truth).enumerate() {
            assert!((f - t).abs() < 0.05, "class {c}: learned {f}, true {t}");
        }
    }

    #[test]
    fn factors_stay_bounded_and_odd_legs_are_ignored() {
        let mut learner = SpeedLearner::new(LearnConfig::default());
        let mut nominal = [0u64; CLASSES];
        nominal[3] = 100_000;
        // Always 2.6× nominal: the factor climbs to the bound, not past it.
        for _ in 0..10_000 {
            learner.observe(&nominal, 260_000);
        }
        assert_eq!(learner.time_factors()[3], 2.5);
        // Untouched classes stay nominal.
        assert_eq!(learner.time_factors()[0], 1.0);
        let before = learner.clone();
        // Too short, or a leg 20× its prediction (a courier's break).
        let mut short = [0u64; CLASSES];
        short[3] = 5_000;
        assert!(!learner.observe(&short, 5_000));
        assert!(!learner.observe(&nominal, 2_000_000));
        assert_eq!(learner, before);
    }
}
