//! Arrival geofences: a circle around the restaurant and one around the
//! customer's door for every assigned order, held in an R-tree so a ping
//! is checked against thousands of active fences in well under a
//! microsecond. Pure state: no clock, no I/O.
//!
//! - [`Fences`]: put up the fence an order needs now
//!   ([`Fences::set_fence`]: the restaurant's before pickup, the door's
//!   after; the live path, `crate::arrivals`), or both at once
//!   ([`Fences::add_order`], tools and benches); check a driver's ping
//!   ([`Fences::check`]); drop them when the order ends
//!   ([`Fences::remove_order`]).
//! - [`Arrival`]: what a check reports, at most once per (order, fence).
//!
//! A fence is entered when the driver comes within its radius and left
//! only beyond radius + [`Fences::margin_m`] (hysteresis, so GPS jitter at
//! the edge is one visit, not many); and whatever the visits, a fence
//! fires once per order.

use engine::{DriverId, LatLng, OrderId};
use rstar::{AABB, RTree, RTreeObject};
use rustc_hash::FxHashMap;

/// Which of an order's two fences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FenceKind {
    /// Around the restaurant: `arrived_at_restaurant`.
    Restaurant,
    /// Around the customer's door: `arrived_at_customer`.
    Customer,
}

impl FenceKind {
    /// The arrival's wire name (`arrival` of the order channel's `status`).
    pub fn as_str(self) -> &'static str {
        self.arrival().as_str()
    }

    /// The arrival this fence raises, in the contract's words.
    pub fn arrival(self) -> engine::Arrival {
        match self {
            Self::Restaurant => engine::Arrival::ArrivedAtRestaurant,
            Self::Customer => engine::Arrival::ArrivedAtCustomer,
        }
    }
}

/// A driver entered one of their order's fences for the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The order whose fence it is.
    pub order_id: OrderId,
    /// Restaurant or door.
    pub kind: FenceKind,
}

/// Radius of both fences by default, metres: a courier parks within a
/// block of the door, and GPS in a city is good to 10–30 m.
pub const DEFAULT_RADIUS_M: f64 = 50.0;
/// Default hysteresis margin, metres: beyond GPS jitter.
pub const DEFAULT_MARGIN_M: f64 = 30.0;
/// Metres per degree of latitude (mean Earth radius).
const M_PER_DEG_LAT: f64 = routing::geo::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// One fence in the R-tree: its bounding box (radius + margin, in
/// degrees) and where its state sits.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    envelope: AABB<[f64; 2]>,
    order_id: OrderId,
    kind: FenceKind,
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// A fence's geometry and its state.
#[derive(Clone, Copy, Debug)]
struct Fence {
    entry: Entry,
    center: LatLng,
    radius_m: f64,
    driver_id: DriverId,
    /// Within the radius and not yet beyond radius + margin since.
    inside: bool,
    /// It has raised its arrival (never again for this order).
    fired: bool,
}

/// Active fences of assigned orders.
#[derive(Debug)]
pub struct Fences {
    tree: RTree<Entry>,
    fences: FxHashMap<(OrderId, FenceKind), Fence>,
    /// The fences each driver is inside, checked on every ping of theirs
    /// even beyond the R-tree boxes, so a driver who jumps far away (a GPS
    /// gap) has left too. Few per driver.
    inside: FxHashMap<DriverId, Vec<(OrderId, FenceKind)>>,
    /// Fences per driver: a ping of a driver with none (and inside none)
    /// costs one hash lookup, no R-tree search.
    per_driver: FxHashMap<DriverId, u32>,
    /// Radius of new fences, metres.
    pub radius_m: f64,
    /// How far beyond the radius a driver must go to have left, metres.
    pub margin_m: f64,
}

impl Default for Fences {
    fn default() -> Fences {
        Fences::new(DEFAULT_RADIUS_M, DEFAULT_MARGIN_M)
    }
}

impl Fences {
    /// No fences; new ones get `radius_m` and `margin_m`.
    pub fn new(radius_m: f64, margin_m: f64) -> Fences {
        Fences {
            tree: RTree::new(),
            fences: FxHashMap::default(),
            inside: FxHashMap::default(),
            per_driver: FxHashMap::default(),
            radius_m,
            margin_m,
        }
    }

    /// Active fences.
    pub fn len(&self) -> usize {
        self.fences.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fences.is_empty()
    }

    /// Fences `order_id`, carried by `driver_id`, at its restaurant and at
    /// the customer's door at once (replacing fences it had, e.g. on
    /// reassignment: the new driver's arrivals count afresh). The live
    /// path puts up one at a time ([`Fences::set_fence`]), so a door passed
    /// on the way to the restaurant is no arrival.
    pub fn add_order(
        &mut self,
        order_id: OrderId,
        driver_id: DriverId,
        restaurant: LatLng,
        door: LatLng,
    ) {
        self.remove_order(order_id);
        self.insert(order_id, driver_id, FenceKind::Restaurant, restaurant);
        self.insert(order_id, driver_id, FenceKind::Customer, door);
    }

    /// Makes `kind` at `center`, carried by `driver_id`, the one fence of
    /// `order_id`: the other kind is dropped; the same fence already up
    /// for the same driver is kept as it is (so a later status change of
    /// the order does not make it fire again); one for another driver or
    /// another place is replaced (a reassigned order's new driver arrives
    /// afresh). Whether a fence was put up.
    pub fn set_fence(
        &mut self,
        order_id: OrderId,
        driver_id: DriverId,
        kind: FenceKind,
        center: LatLng,
    ) -> bool {
        let other = match kind {
            FenceKind::Restaurant => FenceKind::Customer,
            FenceKind::Customer => FenceKind::Restaurant,
        };
        self.remove(order_id, other);
        if let Some(f) = self.fences.get(&(order_id, kind))
            && f.driver_id == driver_id
            && f.center == center
        {
            return false;
        }
        self.remove(order_id, kind);
        self.insert(order_id, driver_id, kind, center);
        true
    }

    /// Drops the fences of an order (delivered, cancelled, reassigned).
    pub fn remove_order(&mut self, order_id: OrderId) {
        for kind in [FenceKind::Restaurant, FenceKind::Customer] {
            self.remove(order_id, kind);
        }
    }

    /// Whether `driver_id` has a fence up (the cheap test before a check).
    pub fn watches(&self, driver_id: DriverId) -> bool {
        self.per_driver.contains_key(&driver_id) || self.inside.contains_key(&driver_id)
    }

    fn insert(&mut self, order_id: OrderId, driver_id: DriverId, kind: FenceKind, center: LatLng) {
        let entry = Entry {
            envelope: envelope(center, self.radius_m + self.margin_m),
            order_id,
            kind,
        };
        self.tree.insert(entry);
        self.fences.insert(
            (order_id, kind),
            Fence {
                entry,
                center,
                radius_m: self.radius_m,
                driver_id,
                inside: false,
                fired: false,
            },
        );
        *self.per_driver.entry(driver_id).or_default() += 1;
    }

    fn remove(&mut self, order_id: OrderId, kind: FenceKind) {
        let Some(f) = self.fences.remove(&(order_id, kind)) else {
            return;
        };
        self.tree.remove(&f.entry);
        if let Some(n) = self.per_driver.get_mut(&f.driver_id) {
            *n -= 1;
            if *n == 0 {
                self.per_driver.remove(&f.driver_id);
            }
        }
    }

    /// Applies `driver_id`'s ping at `position` to the fences around it:
    /// the arrivals it raises, at most one per (order, fence) ever.
    /// Allocates only when there is an arrival; a driver with no fence up
    /// costs a hash lookup ([`Fences::watches`]).
    pub fn check(&mut self, driver_id: DriverId, position: LatLng) -> Vec<Arrival> {
        if !self.watches(driver_id) {
            return Vec::new();
        }
        let Fences {
            tree,
            fences,
            inside,
            margin_m,
            ..
        } = self;
        let mut arrivals = Vec::new();
        let here = AABB::from_point([position.lng, position.lat]);
        for entry in tree.locate_in_envelope_intersecting(&here) {
            let key = (entry.order_id, entry.kind);
            let Some(fence) = fences.get_mut(&key) else {
                continue;
            };
            if fence.driver_id != driver_id
                || fence.inside
                || distance_m(position, fence.center) > fence.radius_m
            {
                continue;
            }
            fence.inside = true;
            inside.entry(driver_id).or_default().push(key);
            if !fence.fired {
                fence.fired = true;
                arrivals.push(Arrival {
                    order_id: entry.order_id,
                    kind: entry.kind,
                });
            }
        }
        // Leaving: only beyond radius + margin (hysteresis).
        if let Some(keys) = inside.get_mut(&driver_id) {
            keys.retain(|key| {
                let Some(fence) = fences.get_mut(key).filter(|f| f.driver_id == driver_id) else {
                    return false; // removed with its order, or given to another driver
                };
                if distance_m(position, fence.center) > fence.radius_m + *margin_m {
                    fence.inside = false;
                    return false;
                }
                true
            });
            if keys.is_empty() {
                inside.remove(&driver_id);
            }
        }
        arrivals
    }
}

/// The bounding box, in degrees, of a circle of `radius_m` around `c`.
fn envelope(c: LatLng, radius_m: f64) -> AABB<[f64; 2]> {
    let dlat = radius_m / M_PER_DEG_LAT;
    let dlng = radius_m / (M_PER_DEG_LAT * c.lat.to_radians().cos().max(1e-6));
    AABB::from_corners([c.lng - dlng, c.lat - dlat], [c.lng + dlng, c.lat + dlat])
}

/// Equirectangular distance, metres: exact to well under a metre at fence
/// sizes, and cheaper than the haversine on the per-ping path.
fn distance_m(a: LatLng, b: LatLng) -> f64 {
    let y = (a.lat - b.lat) * M_PER_DEG_LAT;
    let x = (a.lng - b.lng) * M_PER_DEG_LAT * ((a.lat + b.lat) / 2.0).to_radians().cos();
    (x * x + y * y).sqrt()
}

#[cfg(test)]
mod tests;
