//! Quotes before ordering, and the one delivery fee rule.
//!
//! The fee is [`DeliveryFee`] on the distance [`Quoting::trips`] gives
//! (along the fastest road path where the road map covers the restaurant
//! and the door, the straight line otherwise): [`delivery_fee_cents`] is
//! the only place it is computed, for placement (`super::place`) and for
//! quotes alike, so the fee quoted for two points is the fee charged for
//! them (as long as the road speeds did not change in between).
//!
//! A [`Quote`]'s `eta_s` is the live ETA's formula (`engine::eta::Eta`) as
//! if the order were accepted now: the longer of the restaurant's
//! preparation estimate and the nearest available courier's drive to the
//! restaurant, then the drive to the door.
//!
//! Whether a restaurant delivers to a point stays a straight-line rule
//! ([`outside_delivery_area`]): the delivery radius is what restaurants
//! set and what search filters on.

use engine::eta::{Eta, Legs};
use engine::{LatLng, OrderStatus, RestaurantId, UserId};

use crate::ports::{Quoting, Trip};
use crate::store::{Cart, CartStore, Restaurant, RestaurantStore};
use crate::{Error, Result};

/// The delivery fee: a base plus a rate per started kilometre of the
/// delivery distance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryFee {
    /// Charged on every order.
    pub base_cents: i64,
    /// Charged per started kilometre.
    pub per_km_cents: i64,
}

impl DeliveryFee {
    /// The fee for `distance_m`.
    pub fn cents(&self, distance_m: f64) -> i64 {
        // Distances are at most a few times the 50 km radius cap: the cast
        // cannot overflow (and saturates if it did).
        let km = (distance_m / 1000.0).ceil().max(0.0) as i64;
        self.base_cents
            .saturating_add(self.per_km_cents.saturating_mul(km))
            .max(0)
    }
}

/// The fee for delivering from `from` to `door`: `fee` on the trip's
/// distance. Placement and quotes both call this.
pub fn delivery_fee_cents(
    roads: &dyn Quoting,
    fee: DeliveryFee,
    from: LatLng,
    door: LatLng,
) -> i64 {
    let trip = roads.trips(&[from], door).into_iter().next();
    fee.cents(trip.map_or_else(|| engine::haversine_m(from, door), |t| t.distance_m))
}

/// The refusal when `restaurant` does not deliver to `door` (beyond its
/// radius in a straight line), `None` when it does.
pub fn outside_delivery_area(restaurant: &Restaurant, door: LatLng) -> Option<Error> {
    let distance_m = engine::haversine_m(restaurant.location, door);
    (distance_m > f64::from(restaurant.delivery_radius_m)).then(|| {
        Error::invalid(
            "outside_delivery_area",
            format!(
                "the restaurant delivers within {} m; this address is {:.0} m away",
                restaurant.delivery_radius_m, distance_m
            ),
        )
    })
}

/// What a delivery from one restaurant to one door would cost and take if
/// ordered now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quote {
    /// Seconds from now to the door.
    pub eta_s: u32,
    /// The fee placing the order now would charge, cents.
    pub delivery_fee_cents: i64,
    /// The distance the fee counts, metres.
    pub distance_m: f64,
    /// Whether the distance and the drive to the door are on the roads.
    pub on_roads: bool,
    /// The restaurant's preparation estimate, seconds.
    pub prep_s: u32,
    /// The nearest available courier's drive to the restaurant, seconds.
    pub courier_s: u32,
    /// Whether `courier_s` is a real courier's (else the default).
    pub courier_found: bool,
    /// The drive from the restaurant to the door, seconds.
    pub to_door_s: u32,
}

/// Quotes for each restaurant (`(id, location)`) delivering to `door`.
pub fn quotes(
    roads: &dyn Quoting,
    fee: DeliveryFee,
    restaurants: &[(RestaurantId, LatLng)],
    door: LatLng,
) -> Vec<Quote> {
    let from: Vec<LatLng> = restaurants.iter().map(|r| r.1).collect();
    let trips = roads.trips(&from, door);
    let pickups = roads.pickups(restaurants);
    from.iter()
        .enumerate()
        .map(|(i, &at)| {
            let trip = trips.get(i).copied().unwrap_or_else(|| Trip {
                distance_m: engine::haversine_m(at, door),
                time_s: engine::eta::eta_s(at, door),
                on_roads: false,
            });
            let pickup = pickups.get(i).copied();
            let (prep_s, courier_s) = pickup.map_or((0, 0), |p| (p.prep_s, p.courier_s));
            let legs = Legs {
                to_pickup_s: courier_s,
                prep_left_s: prep_s,
                pickup_to_door_s: trip.time_s,
                to_door_s: 0,
            };
            // Accepted is not terminal: `of` always answers for it.
            let eta = Eta::of(OrderStatus::Accepted, legs).map_or(0, |e| e.door_s);
            Quote {
                eta_s: eta,
                delivery_fee_cents: fee.cents(trip.distance_m),
                distance_m: trip.distance_m,
                on_roads: trip.on_roads,
                prep_s,
                courier_s,
                courier_found: pickup.is_some_and(|p| p.courier_found),
                to_door_s: trip.time_s,
            }
        })
        .collect()
}

/// A cart's quote for a delivery point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CartQuote {
    /// The quote from the cart's restaurant.
    pub quote: Quote,
    /// Whether the restaurant delivers to the point (placing the cart
    /// there would otherwise be refused as `outside_delivery_area`).
    pub deliverable: bool,
}

/// The customer's cart and, with a delivery point and a restaurant in
/// the cart, its quote (`None` for an empty cart, or without a point).
pub async fn cart(
    store: &(impl CartStore + RestaurantStore + ?Sized),
    roads: &dyn Quoting,
    fee: DeliveryFee,
    customer_id: UserId,
    door: Option<LatLng>,
) -> Result<(Cart, Option<CartQuote>)> {
    let cart = store.cart(customer_id).await?;
    let (Some(door), Some(restaurant_id)) = (door, cart.restaurant_id) else {
        return Ok((cart, None));
    };
    // The cart's restaurant was deleted meanwhile: no quote, as for an
    // empty cart (checkout answers `not_found`).
    let Some(restaurant) = store.restaurant(restaurant_id).await? else {
        return Ok((cart, None));
    };
    let quote = quotes(roads, fee, &[(restaurant.id, restaurant.location)], door)
        .into_iter()
        .next();
    Ok((
        cart,
        quote.map(|quote| CartQuote {
            quote,
            deliverable: outside_delivery_area(&restaurant, door).is_none(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{CrowFlyQuoting, PickupWait};

    #[test]
    fn the_fee_grows_per_started_kilometre() {
        let fee = DeliveryFee {
            base_cents: 290,
            per_km_cents: 100,
        };
        let check =
            |distance_m, expected| assert_eq!(fee.cents(distance_m), expected, "{distance_m} m");
        check(0.0, 290);
        check(1.0, 390);
        check(1000.0, 390);
        check(1000.1, 490);
        check(-5.0, 290);
    }

    /// Roads twice as long as the straight line, a courier 4 min away.
    struct Winding;

    impl Quoting for Winding {
        fn trips(&self, from: &[LatLng], door: LatLng) -> Vec<Trip> {
            from.iter()
                .map(|&f| Trip {
                    distance_m: 2.0 * engine::haversine_m(f, door),
                    time_s: 600,
                    on_roads: true,
                })
                .collect()
        }

        fn pickups(&self, restaurants: &[(RestaurantId, LatLng)]) -> Vec<PickupWait> {
            restaurants
                .iter()
                .map(|_| PickupWait {
                    prep_s: 900,
                    courier_s: 240,
                    courier_found: true,
                })
                .collect()
        }
    }

    #[test]
    fn the_fee_counts_the_trips_distance_and_quotes_charge_the_same() {
        let fee = DeliveryFee {
            base_cents: 290,
            per_km_cents: 100,
        };
        let at = LatLng::new(57.70, 11.97).unwrap();
        // About 1.1 km north.
        let door = LatLng::new(57.71, 11.97).unwrap();
        let straight = engine::haversine_m(at, door);
        assert!((1000.0..2000.0).contains(&straight));
        assert_eq!(
            delivery_fee_cents(
                &CrowFlyQuoting {
                    prep_s: 0,
                    courier_s: 0
                },
                fee,
                at,
                door
            ),
            490
        );
        // On the (winding) roads: 2.2 km, three started kilometres.
        assert_eq!(delivery_fee_cents(&Winding, fee, at, door), 590);
        let q = quotes(&Winding, fee, &[(RestaurantId::new(), at)], door)[0];
        assert_eq!(
            q.delivery_fee_cents,
            delivery_fee_cents(&Winding, fee, at, door)
        );
        assert_eq!(q.distance_m, 2.0 * straight);
        assert!(q.on_roads && q.courier_found);
        // The preparation (15 min) outlasts the courier's drive (4): then
        // the drive to the door.
        assert_eq!(q.eta_s, 900 + 600);
        assert_eq!((q.prep_s, q.courier_s, q.to_door_s), (900, 240, 600));
    }

    #[test]
    fn a_courier_farther_than_the_preparation_sets_the_eta() {
        let fee = DeliveryFee {
            base_cents: 0,
            per_km_cents: 0,
        };
        let at = LatLng::new(57.70, 11.97).unwrap();
        let door = LatLng::new(57.71, 11.97).unwrap();
        let roads = CrowFlyQuoting {
            prep_s: 300,
            courier_s: 700,
        };
        let q = quotes(&roads, fee, &[(RestaurantId::new(), at)], door)[0];
        assert_eq!(q.eta_s, 700 + engine::eta::eta_s(at, door));
        assert!(!q.on_roads && !q.courier_found);
    }
}
