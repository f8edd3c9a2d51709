//! A quote before ordering: what a delivery from a restaurant to the
//! caller's delivery point would cost and how long it would take if
//! ordered now (on the cart, `GET /v1/cart?lat=&lng=`, and on every search
//! result, `GET /v1/restaurants?lat=&lng=`).

use serde::{Deserialize, Serialize};

/// The quote for one restaurant and one delivery point.
///
/// `delivery_fee_cents` is exactly what placing the order for the same
/// points charges now (one rule, on the same distance). `eta_s` counts
/// from now: the longer of the food's preparation and the nearest free
/// courier's drive to the restaurant, then the drive to the door (the
/// same formula as an order's live `delivery_eta_s`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"eta_s": 1380,
    "delivery_fee_cents": 590, "distance_m": 2431.7, "on_roads": true, "prep_s": 900,
    "courier_to_restaurant_s": 240, "courier_found": true, "restaurant_to_door_s": 480})))]
pub struct Quote {
    /// Seconds from now to the door.
    pub eta_s: u32,
    /// The delivery fee, cents.
    pub delivery_fee_cents: i64,
    /// The distance the fee counts, metres: along the fastest road path
    /// when the road map covers both the restaurant and the door, else the
    /// straight line.
    pub distance_m: f64,
    /// Whether `distance_m` and the drive to the door are on the roads.
    pub on_roads: bool,
    /// The restaurant's expected preparation time, seconds (what it
    /// declared, or learned from its recent orders).
    pub prep_s: u32,
    /// The nearest available courier's drive to the restaurant, seconds
    /// (a configured default when none is available near).
    pub courier_to_restaurant_s: u32,
    /// Whether `courier_to_restaurant_s` is a real courier's.
    pub courier_found: bool,
    /// The drive from the restaurant to the door, seconds.
    pub restaurant_to_door_s: u32,
}
