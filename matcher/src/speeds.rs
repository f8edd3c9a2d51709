//! The road graph the matcher measures with, and its speeds learned from
//! driven legs (`matcher.learn_speeds`).
//!
//! [`Roads`] holds the nominal router (the `matcher.roads` file) and the
//! current one: the nominal graph with each road class's times multiplied
//! by the factors `routing::learn::SpeedLearner` learned. Every user of
//! road times (batches, prep-aware holds, customer ETAs, quotes) takes the
//! current router.
//!
//! A leg starts when a courier accepts an order (from their last fix to
//! the restaurant) and when they pick it up (restaurant → door), and ends
//! at the courier's arrival fence there (`crate::arrivals`: the time the
//! fix entered the fence, so waiting and handing over do not count). Its
//! nominal time by road class on the nominal graph (`Router::class_times_ms`,
//! a Dijkstra of a few milliseconds, on a blocking thread) and what it took
//! teach the learner; after every `speed_relearn_legs` legs a new router
//! is built with the factors (about a second for a city, on the blocking
//! thread) and swapped in. The factors are bounded and smoothed (see
//! `routing::learn`); they are kept in memory only: a restart starts again
//! from the nominal speeds (and `hexdash_matcher_road_time_factor` shows
//! them, so an operator can see what was learned).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use engine::{Arrival, LatLng, OrderId};
use parking_lot::{Mutex, RwLock};
use routing::learn::{LearnConfig, SpeedLearner};
use routing::{CLASSES, RoadClass, Router};
use rustc_hash::FxHashMap;

use crate::matcher::to_routing;

/// Legs started and not yet ended kept at most (orders whose courier
/// never reaches a fence are dropped with their order; this bounds the
/// rest).
const MAX_OPEN_LEGS: usize = 200_000;

/// The time factor learned per road class (gauge).
pub(crate) const ROAD_TIME_FACTOR: &str = "hexdash_matcher_road_time_factor";
/// Driven legs the speeds learned from (counter).
pub(crate) const SPEED_LEGS_TOTAL: &str = "hexdash_matcher_speed_legs_total";

/// A leg under way.
#[derive(Clone, Copy, Debug)]
struct Leg {
    from: LatLng,
    to: LatLng,
    start_ms: i64,
    /// The fence that ends it.
    stop: Arrival,
}

/// The nominal and the current (learned) routers (see the module docs).
pub struct Roads {
    nominal: Arc<Router>,
    current: RwLock<Arc<Router>>,
    /// Learning on (`matcher.learn_speeds`).
    learn: bool,
    relearn_every: usize,
    learner: Mutex<SpeedLearner>,
    open: Mutex<FxHashMap<OrderId, Leg>>,
    since_relearn: AtomicUsize,
    rebuilding: AtomicBool,
}

impl Roads {
    /// `router` at its nominal speeds; with `learn`, learning from legs
    /// and rebuilding after every `relearn_every` of them.
    pub fn new(router: Arc<Router>, learn: bool, relearn_every: usize) -> Roads {
        Roads {
            current: RwLock::new(router.clone()),
            nominal: router,
            learn,
            relearn_every: relearn_every.max(1),
            learner: Mutex::new(SpeedLearner::new(LearnConfig::default())),
            open: Mutex::new(FxHashMap::default()),
            since_relearn: AtomicUsize::new(0),
            rebuilding: AtomicBool::new(false),
        }
    }

    /// The router to measure with now.
    pub fn current(&self) -> Arc<Router> {
        self.current.read().clone()
    }

    /// The time factors learned so far, by road class code.
    pub fn time_factors(&self) -> [f64; CLASSES] {
        self.learner.lock().time_factors()
    }

    /// A courier set out on `order_id`'s leg from `from` to `to` at
    /// `start_ms`, ending at the `stop` fence (replaces the order's
    /// earlier leg).
    pub(crate) fn leg_started(
        &self,
        order_id: OrderId,
        from: LatLng,
        to: LatLng,
        start_ms: i64,
        stop: Arrival,
    ) {
        if !self.learn {
            return;
        }
        let mut open = self.open.lock();
        if open.len() >= MAX_OPEN_LEGS {
            open.clear();
        }
        open.insert(
            order_id,
            Leg {
                from,
                to,
                start_ms,
                stop,
            },
        );
    }

    /// The order is closed: its leg, if any, will not end.
    pub(crate) fn order_closed(&self, order_id: OrderId) {
        self.open.lock().remove(&order_id);
    }

    /// The courier of `order_id` entered the `stop` fence at `at_ms`: the
    /// leg that ends there teaches the speeds, on a blocking thread (the
    /// caller runs in tokio).
    pub(crate) fn arrived(self: &Arc<Self>, order_id: OrderId, stop: Arrival, at_ms: i64) {
        let leg = {
            let mut open = self.open.lock();
            match open.get(&order_id) {
                Some(l) if l.stop == stop => open.remove(&order_id),
                _ => None,
            }
        };
        let Some(leg) = leg else { return };
        let Ok(actual_ms) = u64::try_from(at_ms.saturating_sub(leg.start_ms)) else {
            return;
        };
        let roads = self.clone();
        tokio::task::spawn_blocking(move || roads.learn_from(leg.from, leg.to, actual_ms));
    }

    /// Learns from a leg from `from` to `to` that took `actual_ms`, and
    /// rebuilds the current router when due. Blocking (a Dijkstra, and
    /// sometimes a contraction).
    pub fn learn_from(&self, from: LatLng, to: LatLng, actual_ms: u64) {
        let Some(by_class) = self
            .nominal
            .class_times_ms(to_routing(from), to_routing(to))
        else {
            return;
        };
        let factors = {
            let mut learner = self.learner.lock();
            if !learner.observe(&by_class, actual_ms) {
                return;
            }
            learner.time_factors()
        };
        metrics::counter!(SPEED_LEGS_TOTAL).increment(1);
        let due = self.since_relearn.fetch_add(1, Ordering::Relaxed) + 1 >= self.relearn_every;
        if !due || self.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        self.since_relearn.store(0, Ordering::Relaxed);
        let router = Arc::new(self.nominal.with_time_factors(&factors));
        *self.current.write() = router;
        for class in RoadClass::ALL {
            metrics::gauge!(ROAD_TIME_FACTOR, "class" => class.as_str())
                .set(factors[class as usize]);
        }
        self.rebuilding.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
