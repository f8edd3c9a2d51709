//! Customer ETAs on the road graph: [`RoadEta`] implements
//! `engine::eta::EtaSource` with the matcher's road travel times
//! (`matcher.roads`; crow-fly where the map does not reach, or the engine's
//! crow-fly formula without a graph) and the ready times the matcher knows
//! (`Matcher::dispatch_ready_at`, `Matcher::expect_ready`), so before
//! pickup the door ETA waits for the food.
//!
//! A stacking courier (two orders, `matcher.stacking`) drives one round
//! for both: the pickups still to make (the same restaurant, or two, in
//! the order that reaches the first door soonest, waiting for each food),
//! the first customer's door, then the second's (`crate::stack::remaining`,
//! the stacking rule's own route). Both customers' ETAs follow that round:
//! the second's door ETA counts the first delivery, the first's the
//! detour and the wait for the second food.
//!
//! Cost: an order's ETA is computed (two or one road queries; up to seven
//! for a stacking courier's, plus a look at the engine's board) at most
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
    /// The engine, to find a stacking courier's other order; `None`: every
    /// order is taken as its courier's only one.
    engine: Option<engine::Handle>,
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
            engine: None,
        }
    }

    /// Drops `order_id`'s cached ETA: the next one is computed afresh (a
    /// stack changed its courier's round).
    pub(crate) fn forget(&self, order_id: OrderId) {
        self.cache.lock().remove(&order_id);
    }

    /// The same source, finding a stacking courier's other order on
    /// `engine`'s board (the matcher's own engine).
    pub(crate) fn with_engine(mut self, engine: engine::Handle) -> RoadEta {
        self.engine = Some(engine);
        self
    }

    /// Driving time from `from` to `to`, ms (the crow-fly formula's whole
    /// seconds without roads).
    fn travel_ms(&self, from: LatLng, to: LatLng) -> u64 {
        match self.roads.as_ref().map(|r| r.current()) {
            Some(router) => {
                u64::from(router.travel_time_or_crow_fly_ms(to_routing(from), to_routing(to)))
            }
            None => u64::from(engine::eta::eta_s(from, to)) * 1000,
        }
    }

    /// When `track`'s food is expected ready (Unix ms, at least `now_ms`);
    /// `None` once picked up.
    fn ready_ms(&self, track: &OrderTrack, now_ms: i64) -> Option<u64> {
        if track.status == OrderStatus::PickedUp {
            return None;
        }
        let cooking = track.status != OrderStatus::ReadyForPickup;
        let at = cooking
            .then(|| self.ready.lock().get(&track.order_id).copied())
            .flatten()
            .unwrap_or(now_ms)
            .max(now_ms);
        Some(u64::try_from(at).unwrap_or(0))
    }

    /// The ETA of `track` when its courier carries another open order
    /// too (stacking): both on one round (see the module docs). `None`
    /// when the courier carries only this one.
    fn stacked(&self, track: &OrderTrack, position: LatLng, now_ms: i64) -> Option<Eta> {
        let engine = self.engine.as_ref()?;
        let view = engine.driver(track.driver_id?)?;
        let (first_id, second_id) = (view.current_order?, view.stacked_order?);
        let other_id = if track.order_id == first_id {
            second_id
        } else if track.order_id == second_id {
            first_id
        } else {
            return None;
        };
        let other = engine.order(other_id).filter(|o| !o.status.is_terminal())?;
        let (first, second) = if track.order_id == first_id {
            (track, &other)
        } else {
            (&other, track)
        };
        let now = u64::try_from(now_ms).unwrap_or(0);
        let (first_ready_ms, second_ready_ms) =
            (self.ready_ms(first, now_ms), self.ready_ms(second, now_ms));
        let t = |from: LatLng, to: LatLng, needed: bool| {
            if needed { self.travel_ms(from, to) } else { 0 }
        };
        let (r1, r2) = (first_ready_ms.is_some(), second_ready_ms.is_some());
        let same_place = first.pickup == second.pickup;
        let both = r1 && r2 && !same_place;
        let courier_first_ms = t(position, first.pickup, r1);
        let first_door_ms = t(first.pickup, first.dropoff, r1);
        let legs = crate::stack::Legs {
            courier_first_ms,
            courier_second_ms: if r1 && r2 && same_place {
                courier_first_ms
            } else {
                t(position, second.pickup, r2)
            },
            first_second_ms: t(first.pickup, second.pickup, both),
            second_first_ms: t(second.pickup, first.pickup, both),
            first_door_ms,
            second_first_door_ms: if r1 && r2 && same_place {
                first_door_ms
            } else {
                t(second.pickup, first.dropoff, r2)
            },
            doors_ms: self.travel_ms(first.dropoff, second.dropoff),
            second_door_ms: 0,
        };
        let round = crate::stack::Round {
            now_ms: now,
            first_ready_ms,
            second_ready_ms,
            legs,
            courier_first_door_ms: t(position, first.dropoff, !r1 && !r2),
        };
        let (at_first, at_second, first_door, second_door) = crate::stack::remaining(&round);
        let secs =
            |at: u64| u32::try_from(at.saturating_sub(now).div_ceil(1000)).unwrap_or(u32::MAX);
        let (next_stop, door) = if track.order_id == first_id {
            (at_first.unwrap_or(first_door), first_door)
        } else {
            (at_second.unwrap_or(second_door), second_door)
        };
        Some(Eta {
            next_stop_s: secs(next_stop),
            door_s: secs(door),
        })
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
        if !track.status.is_terminal()
            && let Some(eta) = self.stacked(track, position, now_ms)
        {
            return Some(eta);
        }
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
