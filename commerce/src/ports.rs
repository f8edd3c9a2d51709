//! What the use-cases ask of the world outside the store: the live side
//! (the engine's order board and the matcher, behind [`LiveSide`]), the
//! matcher's offers ([`Offers`]), the live fleet as dispatchers act on it
//! ([`Fleet`]), the search catalog ([`CatalogSide`]) and the road map and
//! couriers a quote is made of ([`Quoting`]), and couriers' recent paths
//! ([`Trails`]).
//! `api` implements them over the engine, the matcher and its catalog;
//! tests can implement them with a few lines.
//!
//! Order of operations: the store commits first, then the live side hears
//! about it. The live side is a projection the REST layer rebuilds from the
//! store at start-up, so a crash between the two loses nothing.

use engine::{DriverId, DriverStatus, DriverView, Fence, LatLng, OfferId, OrderId, RestaurantId};

use crate::Result;
use crate::store::{MenuItem, Order, Restaurant, RoutePoint};

/// The live view of orders: told after the store committed a change.
pub trait LiveSide: Send + Sync {
    /// A new order was stored: show it (its customer can follow it from
    /// now on); it waits for a driver only once accepted. `version`: the
    /// order's version the store gave the change (its event stream's
    /// aggregate version; 0 when not known, which the board applies
    /// unconditionally).
    fn order_placed(&self, order: &Order, version: i64, now_ms: i64);
    /// An order's status changed in the store: update the board (which
    /// frees the driver on a closing status; an update older than what
    /// the board holds is ignored) and start or stop looking for a driver.
    /// `version` as for [`LiveSide::order_placed`].
    fn status_changed(&self, order: &Order, version: i64, now_ms: i64);
    /// The order (as stored) goes back on the board and, if it waits for a
    /// driver, back to the matcher: after an assignment was refused or
    /// undone.
    fn restore(&self, order: &Order, now_ms: i64);
    /// A dispatcher moved the order (as stored now, with its new version)
    /// from driver `from`: the matcher stops any offer of it, the board
    /// frees the old driver and binds the new one, or, without one, the
    /// matcher looks for a driver again (not `from` first).
    fn reassigned(&self, order: &Order, from: Option<DriverId>, now_ms: i64);
}

/// The live fleet, as dispatchers act on it: drivers' live state and
/// setting a driver offline.
pub trait Fleet: Send + Sync {
    /// The driver as the engine sees it now; `None` if it has not been
    /// heard from since the server started.
    fn driver(&self, driver_id: DriverId) -> Option<DriverView>;
    /// Declares the driver offline (as the driver itself can) and
    /// withdraws the offer it holds, if any, so that order moves on. The
    /// driver's status after, and the order whose offer was withdrawn.
    fn set_offline(&self, driver_id: DriverId, now_ms: i64) -> (DriverStatus, Option<OrderId>);
}

/// The matcher's side of an offer's answer.
pub trait Offers: Send + Sync {
    /// Records that `driver_id` accepts `offer_id` (the live side binds
    /// the driver to the order); the order it was for. Refusals are
    /// [`crate::Error::NotFound`] (`"offer"`), [`crate::Error::Forbidden`] (another
    /// driver's offer) or [`crate::Error::Conflict`] (`offer_not_pending` with
    /// `offer_state`, `driver_busy`, `order_unavailable`).
    /// With it, the fencing token of the node whose matcher made the
    /// offer (its region's epoch then; `None` without leases): the store
    /// records the assignment only while that is still the region's epoch.
    fn accept(
        &self,
        offer_id: OfferId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<(OrderId, Option<Fence>)>;
    /// Records that `driver_id` declines `offer_id`; refusals as
    /// [`Offers::accept`].
    fn decline(&self, offer_id: OfferId, driver_id: DriverId, now_ms: i64) -> Result<()>;
    /// Compensation: the store refused the accepted assignment (or failed
    /// to record it), so the live side forgets it and `driver_id` is free.
    /// Only `driver_id`'s hold is undone: an order a dispatcher gave
    /// another driver meanwhile stays with that driver.
    fn undo_assignment(&self, order_id: OrderId, driver_id: DriverId, now_ms: i64);
    /// Looks for a driver for the order again (after an assignment the
    /// store failed to record).
    fn redispatch(&self, order_id: OrderId, now_ms: i64);
    /// Whether the live side bound `order_id` to `driver_id` as a second
    /// order (a stacked offer, `matcher.stacking`): the store then records
    /// it with the stacking guard ([`crate::store::OrderStore::assign_stacked_driver`]).
    /// `false` by default: no stacking.
    fn stacked(&self, order_id: OrderId, driver_id: DriverId) -> bool {
        let _ = (order_id, driver_id);
        false
    }
}

/// The search catalog: told after the store committed a change to a
/// restaurant or a menu item, so a search right after the change finds it
/// (the event stream's catalog consumer catches up with the rest).
pub trait CatalogSide: Send + Sync {
    /// A restaurant was created or changed (as stored now).
    fn restaurant_changed(&self, restaurant: &Restaurant);
    /// A menu item was added or changed (as stored now).
    fn item_changed(&self, item: &MenuItem);
}

/// Couriers' recent paths as kept in memory (`api`'s breadcrumbs): what a
/// delivered order's route is made of.
pub trait Trails: Send + Sync {
    /// `driver_id`'s kept fixes recorded from `from_ms` to `to_ms`
    /// (inclusive, device times), oldest first; empty when none are kept
    /// (never heard from, forgotten, or kept no longer).
    fn between(&self, driver_id: DriverId, from_ms: i64, to_ms: i64) -> Vec<RoutePoint>;
}

/// A drive from a restaurant to a door ([`Quoting::trips`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trip {
    /// Metres: along the fastest road path where the road map covers both
    /// ends, the straight line otherwise. The delivery fee counts it.
    pub distance_m: f64,
    /// Driving time, seconds.
    pub time_s: u32,
    /// Whether both ends were on the road map.
    pub on_roads: bool,
}

/// What the food would wait for before leaving a restaurant if ordered
/// now ([`Quoting::pickups`]), seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PickupWait {
    /// The restaurant's expected preparation time.
    pub prep_s: u32,
    /// The nearest available courier's drive to the restaurant (a default
    /// when none is near).
    pub courier_s: u32,
    /// Whether `courier_s` is a real courier's.
    pub courier_found: bool,
}

/// The road map, the preparation estimates and the couriers, as quotes
/// and the delivery fee need them (the matcher in `api`).
pub trait Quoting: Send + Sync {
    /// The trip from each of `from` to `door`.
    fn trips(&self, from: &[LatLng], door: LatLng) -> Vec<Trip>;
    /// The wait before pickup at each restaurant (`(id, location)`).
    fn pickups(&self, restaurants: &[(RestaurantId, LatLng)]) -> Vec<PickupWait>;
}

/// [`Quoting`] without a road map or couriers: straight lines at the
/// engine's crow-fly ETA speed, a fixed preparation and courier time.
/// For tests and tools that run the use-cases without the live side.
#[derive(Clone, Copy, Debug)]
pub struct CrowFlyQuoting {
    /// Every restaurant's preparation, seconds.
    pub prep_s: u32,
    /// Every courier's drive to the restaurant, seconds.
    pub courier_s: u32,
}

impl Quoting for CrowFlyQuoting {
    fn trips(&self, from: &[LatLng], door: LatLng) -> Vec<Trip> {
        from.iter()
            .map(|&f| Trip {
                distance_m: engine::haversine_m(f, door),
                time_s: engine::eta::eta_s(f, door),
                on_roads: false,
            })
            .collect()
    }

    fn pickups(&self, restaurants: &[(RestaurantId, LatLng)]) -> Vec<PickupWait> {
        restaurants
            .iter()
            .map(|_| PickupWait {
                prep_s: self.prep_s,
                courier_s: self.courier_s,
                courier_found: false,
            })
            .collect()
    }
}
