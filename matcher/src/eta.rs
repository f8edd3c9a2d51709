//! Customer ETAs on the road graph: [`RoadEta`] implements
//! `engine::eta::EtaSource` with the matcher's road travel times
//! (`matcher.roads`; crow-fly where the map does not reach, or the engine's
//! crow-fly formula without a graph) and the ready times the matcher knows
//! (`Matcher::dispatch_ready_at`, `Matcher::expect_ready`), so before
//! pickup the door ETA waits for the food.
//!
//! Cost: an order's ETA is computed (two or one road queries) at most
//! every `eta_interval_s` per order and when its status changes; in
//! between, the last one counts down. The gateway asks per courier fix of
//! a watched order, REST per read.

use std::sync::Arc;

use engine::eta::{Eta, EtaSource, Legs};
use engine::{LatLng, OrderId, OrderStatus, OrderTrack};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

/// Cached ETAs kept at most; beyond it, stale ones are dropped (the ETA of
/// an order nobody asks about any more). Far above the open orders of a
/// city.
const MAX_CACHED: usize = 200_000;

/// When each order's food is expected ready (Unix ms), as the matcher
/// knows it; shared by the matcher (which writes) and [`RoadEta`].
pub(crate) type ReadyTimes = Arc<Mutex<FxHashMap<OrderId, i64>>>;

/// One order's last computed ETA.
#[derive(Clone, Copy, Debug)]
struct Cached {
    /// The status it was computed for: a new status recomputes.
    status: OrderStatus,
    /// When, Unix ms.
    at_ms: i64,
    eta: Eta,
}

/// ETAs on road travel times (see the module docs).
pub struct RoadEta {
    roads: Option<Arc<crate::speeds::Roads>>,
    /// The app's clock: the remaining preparation and the cache's ages
    /// count from it.
    clock: Arc<dyn clock::Clock>,
    ready: ReadyTimes,
    interval_ms: i64,
    cache: Mutex<FxHashMap<OrderId, Cached>>,
}

impl RoadEta {
    /// ETAs on `router`'s roads (crow-fly without), with the food's ready
    /// times from `ready`, recomputed at most every `interval_ms`.
    pub(crate) fn new(
        roads: Option<Arc<crate::speeds::Roads>>,
        clock: Arc<dyn clock::Clock>,
        ready: ReadyTimes,
        interval_ms: i64,
    ) -> RoadEta {
        RoadEta {
            roads,
            clock,
            ready,
            interval_ms: interval_ms.max(0),
            cache: Mutex::new(FxHashMap::default()),
        }
    }

    /// Driving time from `from` to `to`, whole seconds.
    fn travel_s(&self, from: LatLng, to: LatLng) -> u32 {
        match self.roads.as_ref().map(|r| r.current()) {
            Some(router) => {
                let ms = router.travel_time_or_crow_fly_ms(to_routing(from), to_routing(to));
                ms.div_ceil(1000)
            }
            None => engine::eta::eta_s(from, to),
        }
    }

    /// The ETA from scratch.
    fn compute(&self, track: &OrderTrack, position: LatLng, now_ms: i64) -> Option<Eta> {
        let legs = match track.status {
            OrderStatus::PickedUp => Legs {
                to_door_s: self.travel_s(position, track.dropoff),
                ..Legs::default()
            },
            s if s.is_terminal() => return None,
            status => {
                let cooking = status != OrderStatus::ReadyForPickup;
                let ready_at = cooking
                    .then(|| self.ready.lock().get(&track.order_id).copied())
                    .flatten();
                let prep_left_ms = ready_at.map_or(0, |r| r.saturating_sub(now_ms).max(0));
                Legs {
                    to_pickup_s: self.travel_s(position, track.pickup),
                    prep_left_s: u32::try_from(prep_left_ms / 1000).unwrap_or(u32::MAX),
                    pickup_to_door_s: self.travel_s(track.pickup, track.dropoff),
                    to_door_s: 0,
                }
            }
        };
        Eta::of(track.status, legs)
    }
}

impl EtaSource for RoadEta {
    fn order_eta(&self, track: &OrderTrack, position: LatLng) -> Option<Eta> {
        self.order_eta_at(track, position, self.clock.now_ms())
    }
}

impl RoadEta {
    /// [`EtaSource::order_eta`] at `now_ms`.
    pub(crate) fn order_eta_at(
        &self,
        track: &OrderTrack,
        position: LatLng,
        now_ms: i64,
    ) -> Option<Eta> {
        if track.status.is_terminal() {
            self.cache.lock().remove(&track.order_id);
            return None;
        }
        if let Some(c) = self.cache.lock().get(&track.order_id).copied() {
            let age_ms = now_ms.saturating_sub(c.at_ms);
            if c.status == track.status && (0..self.interval_ms).contains(&age_ms) {
                // Counts down between recomputations.
                let gone = u32::try_from(age_ms / 1000).unwrap_or(u32::MAX);
                return Some(Eta {
                    next_stop_s: c.eta.next_stop_s.saturating_sub(gone),
                    door_s: c.eta.door_s.saturating_sub(gone),
                });
            }
        }
        // Computed outside the cache's lock: road queries take a while.
        let eta = self.compute(track, position, now_ms)?;
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED {
            let keep_ms = self.interval_ms.saturating_mul(2);
            cache.retain(|_, c| now_ms.saturating_sub(c.at_ms) < keep_ms);
        }
        cache.insert(
            track.order_id,
            Cached {
                status: track.status,
                at_ms: now_ms,
                eta,
            },
        );
        Some(eta)
    }
}

/// The engine's position type as the routing crate's.
fn to_routing(p: LatLng) -> routing::LatLng {
    routing::LatLng {
        lat: p.lat,
        lng: p.lng,
    }
}

#[cfg(test)]
mod tests;
