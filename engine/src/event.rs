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
use crate::status::{Arrival, DriverStatus};

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
    /// A stacking courier's second order (`matcher.stacking`), whose
    /// customer is told too; `None` otherwise.
    pub stacked_order: Option<OrderId>,
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
    /// Made by another node's matcher and relayed here because the
    /// driver's connection is here: delivered, never recorded again.
    pub relayed: bool,
    /// Stacking: the order the driver already holds, not yet picked up,
    /// that this one rides along with (from the same restaurant, or from
    /// `pickup`, another restaurant on the way); `None` for a plain offer
    /// to a free driver.
    pub stacked_with: Option<OrderId>,
}

/// Why an offer stopped being answerable before the driver answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferEnd {
    Expired,
    Withdrawn,
}

/// An order waiting for a driver that nobody took, as dispatchers are told
/// (the matcher decides; see its `Config`): once when it is raised (so many
/// offers ended without an accept, or so long without a driver), once more
/// when it is resolved. The matcher keeps offering it in between.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unassigned {
    pub order_id: OrderId,
    /// Where the driver is needed, so dispatchers watching that area hear.
    pub pickup: LatLng,
    /// Offers of the order that ended without an accept (declined, lapsed).
    pub attempts: u32,
    /// When the matcher started looking for a driver, Unix ms.
    pub since_ms: i64,
    /// When this was raised, or resolved, Unix ms.
    pub at_ms: i64,
    /// False when raised; true once the order has a driver or needs none
    /// (cancelled, or assigned another way).
    pub resolved: bool,
}

/// A courier carrying an order reached one of its stops (the matcher's
/// arrival fences decide; once per order and stop).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrived {
    pub order_id: OrderId,
    pub driver_id: DriverId,
    /// The restaurant (before pickup) or the customer's door (after).
    pub arrival: Arrival,
    /// The fix that came within the fence.
    pub position: LatLng,
    /// That fix's device time, Unix ms.
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    DriverStatus {
        driver_id: DriverId,
        status: DriverStatus,
        order_id: Option<OrderId>,
        at_ms: i64,
        /// The driver pings another node (its latest fix is a replica):
        /// that node records its presence.
        remote: bool,
    },
    /// The order's tracking record after a change (status or driver).
    Order(OrderTrack),
    Offer(Arc<Offer>),
    OfferEnded {
        offer_id: OfferId,
        driver_id: DriverId,
        end: OfferEnd,
    },
    /// An order nobody took was raised to dispatchers, or resolved.
    Unassigned(Unassigned),
    /// A courier reached the restaurant or the customer's door.
    Arrived(Arrived),
}
