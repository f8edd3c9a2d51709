//! Quotes before ordering: the legs a delivery from a restaurant to a door
//! would take if ordered now, for the cart and the search results
//! (`commerce::usecase::quote` turns them into the fee and `eta_s`).
//!
//! - [`Matcher::routes_to`]: restaurant → door, road time and the road
//!   length of that fastest path on `matcher.roads` (crow-fly where the
//!   map does not cover an end, or without a graph). The delivery fee
//!   counts this distance, at placement as in the quote, so both agree.
//! - [`Matcher::pickup_legs`]: the restaurant's preparation estimate
//!   (declared, or learned from its history: the same [`PrepEstimator`]
//!   the prep-aware dispatch uses) and the nearest available courier's
//!   road time to it; `quote_courier_default_s` when no courier is
//!   available within `max_radius_m`.
//!
//! The times come from the same places as the live ETAs (`crate::eta`):
//! road travel times with a graph, the engine's crow-fly formula without.
//!
//! [`PrepEstimator`]: crate::prep::PrepEstimator

use engine::{DriverStatus, LatLng, RestaurantId, StatusFilter};

use crate::Matcher;
use crate::assign::{RoadTimes, TravelTimes};
use crate::matcher::to_routing;

/// Nearest available couriers (by air) whose road time to a restaurant is
/// compared: the nearest by air is not always the nearest by road (a
/// river, a one-way), and the best by road is almost always among the
/// first few (the batched policy's tuning found 4 enough).
const QUOTE_CANDIDATES: usize = 3;

/// What a delivery from one restaurant would wait for before the food
/// leaves it, seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PickupLegs {
    /// The restaurant's expected preparation time (from the order's
    /// acceptance; before ordering that is all of it).
    pub prep_s: u32,
    /// The nearest available courier's travel time to the restaurant, or
    /// `quote_courier_default_s` when none is available near.
    pub courier_s: u32,
    /// Whether `courier_s` is a real courier's (false: the default).
    pub courier_found: bool,
}

impl Matcher {
    /// Trips from each of `from` to `door`: the time and the distance
    /// (road distance of the fastest path when the graph covers both ends,
    /// great-circle distance otherwise). The delivery fee's distance.
    pub fn routes_to(&self, from: &[LatLng], door: LatLng) -> Vec<routing::Route> {
        match self.router() {
            Some(router) => {
                let from: Vec<routing::LatLng> = from.iter().map(|&p| to_routing(p)).collect();
                router.routes_to(&from, to_routing(door))
            }
            // Without a graph, the live ETAs' crow-fly formula.
            None => from
                .iter()
                .map(|&p| routing::Route {
                    time_ms: engine::eta::eta_s(p, door).saturating_mul(1000),
                    distance_m: engine::haversine_m(p, door),
                    on_roads: false,
                })
                .collect(),
        }
    }

    /// The preparation estimate and the nearest available courier's
    /// travel time for each restaurant (`(id, location)`).
    pub fn pickup_legs(&self, restaurants: &[(RestaurantId, LatLng)]) -> Vec<PickupLegs> {
        let config = &self.inner.config;
        let mut drivers: Vec<routing::LatLng> = Vec::new();
        let mut index: rustc_hash::FxHashMap<engine::DriverId, usize> = Default::default();
        let candidates: Vec<Vec<usize>> = restaurants
            .iter()
            .map(|&(_, at)| {
                self.inner
                    .engine
                    .nearest(
                        at,
                        config.max_radius_m,
                        QUOTE_CANDIDATES,
                        StatusFilter::Only(DriverStatus::Available),
                    )
                    .into_iter()
                    .map(|n| {
                        *index.entry(n.driver_id).or_insert_with(|| {
                            drivers.push(to_routing(n.position));
                            drivers.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let pickups: Vec<routing::LatLng> =
            restaurants.iter().map(|&(_, at)| to_routing(at)).collect();
        let times: Vec<Vec<u32>> = match self.router() {
            Some(router) => RoadTimes {
                router: router.as_ref(),
            }
            .times_ms(&drivers, &pickups, &candidates),
            // Without a graph, the live ETAs' crow-fly formula.
            None => candidates
                .iter()
                .zip(restaurants)
                .map(|(cands, &(_, at))| {
                    cands
                        .iter()
                        .map(|&d| {
                            let p = engine::LatLng {
                                lat: drivers[d].lat,
                                lng: drivers[d].lng,
                            };
                            engine::eta::eta_s(p, at).saturating_mul(1000)
                        })
                        .collect()
                })
                .collect(),
        };
        let default_s = u32::try_from(config.quote_courier_default_s).unwrap_or(u32::MAX);
        let prep = self.inner.prep.lock();
        restaurants
            .iter()
            .zip(times)
            .map(|(&(id, _), row)| {
                let best = row.into_iter().filter(|&t| t != routing::UNREACHABLE).min();
                PickupLegs {
                    prep_s: u32::try_from(prep.estimate_ms(id).div_ceil(1000)).unwrap_or(u32::MAX),
                    courier_s: best.map_or(default_s, |ms| ms.div_ceil(1000)),
                    courier_found: best.is_some(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
