//! The ETA shown to customers (REST and WebSocket alike, so they agree): a
//! placeholder until a road-network ETA exists.

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
}
