//! What the engine tells the rest of the system. Two streams, because they
//! need different overflow policies:
//! - `Moved` (hot, one per applied ping): a receiver that falls behind loses
//!   the oldest moves and gets `Overflowed(n)`; positions are superseded by
//!   the next ping anyway, so a lagging map catches up instead of replaying.
//! - `Change` (cold: status, orders, offers): large buffer; a receiver that
//!   still overflows must resynchronise from the engine's current state.

use std::sync::Arc;

use crate::cells::Cell;
use crate::geo::LatLng;
use crate::ids::{DriverId, OfferId, OrderId};
use crate::orders::OrderTrack;
use crate::status::DriverStatus;

/// A driver's position changed (one applied ping).
#[derive(Clone, Debug, PartialEq)]
pub struct Moved {
    pub driver_id: DriverId,
    pub position: LatLng,
    /// The position before this ping, so area watchers see a driver leave.
    pub previous: Option<LatLng>,
    pub cell: Cell,
    pub previous_cell: Option<Cell>,
    pub recorded_at_ms: i64,
    pub heading_deg: Option<f32>,
    pub speed_mps: Option<f32>,
    pub status: DriverStatus,
    /// The order the driver is carrying, so its customer can be told.
    pub order_id: Option<OrderId>,
}

/// An offer of an order to one driver, as the driver receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    pub offer_id: OfferId,
    pub order_id: OrderId,
    pub driver_id: DriverId,
    pub pickup: LatLng,
    pub dropoff: LatLng,
    /// Wall-clock Unix ms after which silence counts as a decline.
    pub expires_at_ms: i64,
}

/// Why an offer stopped being answerable before the driver answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferEnd {
    Expired,
    Withdrawn,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    DriverStatus {
        driver_id: DriverId,
        status: DriverStatus,
        order_id: Option<OrderId>,
        at_ms: i64,
    },
    /// The order's tracking record after a change (status or driver).
    Order(OrderTrack),
    Offer(Arc<Offer>),
    OfferEnded {
        offer_id: OfferId,
        driver_id: DriverId,
        end: OfferEnd,
    },
}
