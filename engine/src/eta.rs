//! The ETAs shown to customers (REST and WebSocket alike, so they agree).
//!
//! - [`eta_s`]: the crow-fly formula, the fallback wherever no road graph
//!   covers a point.
//! - [`Eta`] and [`EtaSource`]: an order's two ETAs for its courier at a
//!   position: to the next stop, and to the customer's door (courier →
//!   restaurant → door, waiting for the food before pickup). The matcher
//!   implements the source on road travel times (`matcher::eta`); the
//!   gateway and the api ask it. [`CrowFly`] is the source without roads.

use crate::geo::{LatLng, haversine_m};
use crate::orders::OrderTrack;
use crate::status::OrderStatus;

/// Average courier speed in city traffic, about 21.6 km/h.
pub const AVERAGE_SPEED_MPS: f64 = 6.0;
/// Streets are not straight lines: urban routes run about 1.3× the
/// straight-line distance (the usual "detour index").
pub const DETOUR_FACTOR: f64 = 1.3;

/// Seconds for a driver at `from` to reach `to`.
///
/// Placeholder: straight-line (haversine) distance × [`DETOUR_FACTOR`] ÷
/// [`AVERAGE_SPEED_MPS`], rounded to whole seconds. Replace with a
/// road-network ETA (routing engine or learned model) later; callers only
/// rely on "seconds, non-negative".
pub fn eta_s(from: LatLng, to: LatLng) -> u32 {
    let s = haversine_m(from, to) * DETOUR_FACTOR / AVERAGE_SPEED_MPS;
    // At most half the Earth's circumference away: far below u32::MAX s.
    s.round() as u32
}

/// Where the driver of `track` heads next: the restaurant until the food is
/// picked up, then the customer; nowhere once the order is closed.
pub fn next_stop(track: &OrderTrack) -> Option<LatLng> {
    next_stop_of(track.status, track.pickup, track.dropoff)
}

/// [`next_stop`] for an order known by its parts.
pub fn next_stop_of(status: OrderStatus, pickup: LatLng, dropoff: LatLng) -> Option<LatLng> {
    match status {
        OrderStatus::Placed
        | OrderStatus::Paid
        | OrderStatus::Accepted
        | OrderStatus::Preparing
        | OrderStatus::ReadyForPickup => Some(pickup),
        OrderStatus::PickedUp => Some(dropoff),
        OrderStatus::Delivered
        | OrderStatus::Cancelled
        | OrderStatus::Rejected
        | OrderStatus::PaymentFailed => None,
    }
}

/// The ETA to the order's next stop for a driver at `position`.
pub fn order_eta_s(track: &OrderTrack, position: LatLng) -> Option<u32> {
    next_stop(track).map(|stop| eta_s(position, stop))
}

/// An order's ETAs for its courier at one position, seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eta {
    /// To the next stop: the restaurant before pickup, the door after.
    pub next_stop_s: u32,
    /// To the customer's door: before pickup, the drive to the restaurant
    /// or the food's remaining preparation, whichever is longer, then the
    /// drive to the door; after pickup, the drive to the door.
    pub door_s: u32,
}

impl Eta {
    /// The ETAs from the parts: `to_pickup_s` (courier → restaurant, before
    /// pickup), `prep_left_s` (the food's remaining preparation, 0 once
    /// ready), `pickup_to_door_s`; after pickup only `to_door_s` counts.
    pub fn of(status: OrderStatus, legs: Legs) -> Option<Eta> {
        match status {
            OrderStatus::PickedUp => Some(Eta {
                next_stop_s: legs.to_door_s,
                door_s: legs.to_door_s,
            }),
            s if s.is_terminal() => None,
            _ => Some(Eta {
                next_stop_s: legs.to_pickup_s,
                door_s: legs
                    .to_pickup_s
                    .max(legs.prep_left_s)
                    .saturating_add(legs.pickup_to_door_s),
            }),
        }
    }
}

/// The legs an [`Eta`] adds up, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Legs {
    /// Courier → restaurant (before pickup).
    pub to_pickup_s: u32,
    /// The food's remaining preparation (before pickup; 0 once ready).
    pub prep_left_s: u32,
    /// Restaurant → door.
    pub pickup_to_door_s: u32,
    /// Courier → door (after pickup).
    pub to_door_s: u32,
}

/// Where customer ETAs come from: road travel times in the matcher, or
/// [`CrowFly`]. Called per courier fix of a watched order and per REST
/// read, so an implementation bounds its own cost (the matcher's
/// recomputes an order at most every few seconds); one that needs the
/// time (the food's remaining preparation) reads the app's clock itself,
/// so every caller gets the same answer.
pub trait EtaSource: Send + Sync {
    /// The ETAs of `track` for its courier at `position`, now; `None` once
    /// the order is closed.
    fn order_eta(&self, track: &OrderTrack, position: LatLng) -> Option<Eta>;
}

/// ETAs by the crow-fly formula ([`eta_s`]), not knowing when the food is
/// ready (it is taken as ready when the courier arrives).
#[derive(Clone, Copy, Debug, Default)]
pub struct CrowFly;

impl EtaSource for CrowFly {
    fn order_eta(&self, track: &OrderTrack, position: LatLng) -> Option<Eta> {
        let legs = match track.status {
            OrderStatus::PickedUp => Legs {
                to_door_s: eta_s(position, track.dropoff),
                ..Legs::default()
            },
            _ => Legs {
                to_pickup_s: eta_s(position, track.pickup),
                pickup_to_door_s: eta_s(track.pickup, track.dropoff),
                ..Legs::default()
            },
        };
        Eta::of(track.status, legs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OrderId, RestaurantId, UserId};

    fn ll(lat: f64, lng: f64) -> LatLng {
        LatLng::new(lat, lng).unwrap()
    }

    #[test]
    fn eta_formula() {
        let check = |from: LatLng, to: LatLng, expected: u32| {
            assert_eq!(eta_s(from, to), expected, "{from:?} → {to:?}");
        };
        check(ll(57.7, 11.97), ll(57.7, 11.97), 0);
        // One degree of latitude ≈ 111,195 m → ×1.3 ÷ 6 ≈ 24,092 s.
        check(ll(0.0, 0.0), ll(1.0, 0.0), 24_092);
        // 1 km north ≈ 216.7 s.
        check(ll(57.7, 11.97), ll(57.7 + 1_000.0 / 111_195.0, 11.97), 217);
    }

    #[test]
    fn next_stop_follows_the_status() {
        let mut track = OrderTrack {
            order_id: OrderId::new(),
            customer_id: UserId::new(),
            restaurant_id: RestaurantId::new(),
            restaurant_owner_id: UserId::new(),
            status: OrderStatus::Placed,
            driver_id: None,
            pickup: ll(57.70, 11.97),
            dropoff: ll(57.71, 11.99),
            updated_at_ms: 0,
            version: 0,
        };
        for status in OrderStatus::ALL {
            track.status = status;
            let expected = match status {
                OrderStatus::PickedUp => Some(track.dropoff),
                s if s.is_terminal() => None,
                _ => Some(track.pickup),
            };
            assert_eq!(next_stop(&track), expected, "{status:?}");
        }
        track.status = OrderStatus::PickedUp;
        assert_eq!(order_eta_s(&track, track.dropoff), Some(0));
        track.status = OrderStatus::Delivered;
        assert_eq!(order_eta_s(&track, track.pickup), None);
    }

    #[test]
    fn the_door_eta_waits_for_the_food_before_pickup() {
        let legs = Legs {
            to_pickup_s: 300,
            prep_left_s: 500,
            pickup_to_door_s: 400,
            to_door_s: 700,
        };
        // The food is the longer wait.
        assert_eq!(
            Eta::of(OrderStatus::Preparing, legs),
            Some(Eta {
                next_stop_s: 300,
                door_s: 900
            })
        );
        // The courier is.
        let ready = Legs {
            prep_left_s: 0,
            ..legs
        };
        assert_eq!(
            Eta::of(OrderStatus::ReadyForPickup, ready).unwrap().door_s,
            700
        );
        assert_eq!(
            Eta::of(OrderStatus::PickedUp, legs),
            Some(Eta {
                next_stop_s: 700,
                door_s: 700
            })
        );
        assert_eq!(Eta::of(OrderStatus::Delivered, legs), None);
    }

    #[test]
    fn crow_fly_adds_the_legs() {
        let track = OrderTrack {
            order_id: OrderId::new(),
            customer_id: UserId::new(),
            restaurant_id: RestaurantId::new(),
            restaurant_owner_id: UserId::new(),
            status: OrderStatus::Accepted,
            driver_id: None,
            pickup: ll(57.70, 11.97),
            dropoff: ll(57.71, 11.97),
            updated_at_ms: 0,
            version: 0,
        };
        let here = ll(57.69, 11.97);
        let eta = CrowFly.order_eta(&track, here).unwrap();
        assert_eq!(eta.next_stop_s, eta_s(here, track.pickup));
        assert_eq!(
            eta.door_s,
            eta_s(here, track.pickup) + eta_s(track.pickup, track.dropoff)
        );
    }
}
