//! The dispatcher console's map and board (`GET /v1/admin/console/…`,
//! admins): the road map drawn from the server's own road graph, supply
//! and demand per H3 cell, and the live board of open orders with alerts
//! and counters. The browser console (`/console`) reads these; so may any
//! other dispatcher tool.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Position;
use crate::status::{DriverStatus, OrderStatus};

/// Coordinates of [`RoadMap::nodes`] are integers in units of
/// `1 / ROAD_COORD_SCALE` degree (about 1.1 m north–south): plenty for a
/// drawn street, and a third of the bytes of decimal degrees.
pub const ROAD_COORD_SCALE: u32 = 100_000;

/// The road graph as compact arrays for drawing (not GeoJSON: a city's
/// hundred thousand segments are a few hundred kilobytes this way).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoadMap {
    /// Units per degree of `nodes` ([`ROAD_COORD_SCALE`]).
    pub scale: u32,
    /// `[min_lng, min_lat, max_lng, max_lat]` of every node, in degrees:
    /// where a console starts its view; null when the server has no road
    /// graph (`matcher.roads` unset: `nodes` and `segments` are empty).
    pub bbox: Option<[f64; 4]>,
    /// Node positions, flat: `lng, lat, lng, lat, …` in `1 / scale`
    /// degree.
    pub nodes: Vec<i32>,
    /// Straight road pieces, flat triples `a, b, rank`: the node indices
    /// (into `nodes` pairs) of its ends and its rank, 0 for major roads
    /// (motorway, trunk, primary), 1 secondary and tertiary, 2 local
    /// streets, 3 service roads and links.
    pub segments: Vec<u32>,
}

/// Supply and demand per H3 cell (`GET /v1/admin/console/hexes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HexMap {
    /// The H3 resolution the cells are at (5 to 9).
    pub resolution: u8,
    /// When the counts were taken, Unix ms.
    pub at_ms: i64,
    /// Cells with any supply or demand, sorted by cell.
    pub cells: Vec<HexCell>,
}

/// One H3 cell's counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HexCell {
    /// The H3 index, as hexadecimal text (`"8708996b3ffffff"`).
    pub cell: String,
    /// Available couriers (online, free) in the cell.
    pub supply: u32,
    /// Open orders waiting for a courier with their pickup in the cell.
    pub demand: u32,
    /// The cell's corners in order, `[lng, lat]` (GeoJSON order).
    pub outline: Vec<[f64; 2]>,
}

/// The live board (`GET /v1/admin/console/board`): every open order with
/// its courier and ETA, what needs a dispatcher's attention, and counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Board {
    /// When the board was read, Unix ms (server clock).
    pub at_ms: i64,
    /// Open orders (paid, not yet delivered, cancelled or rejected), the
    /// longest in their status first.
    pub orders: Vec<BoardOrder>,
    /// What needs attention, the oldest first.
    pub alerts: Vec<Alert>,
    /// Totals since start and live counts.
    pub counters: Counters,
}

/// An open order as the console shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardOrder {
    /// The order.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub order_id: Uuid,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// When it was placed, Unix ms: its age is the board's `at_ms` minus
    /// this.
    pub placed_at_ms: i64,
    /// When it entered `status`, Unix ms.
    pub status_since_ms: i64,
    /// Its restaurant.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub restaurant_id: Uuid,
    /// Who ordered it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub customer_id: Uuid,
    /// Its courier; null while it has none.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub driver_id: Option<Uuid>,
    /// Its courier's live status; null without a courier.
    pub driver_status: Option<DriverStatus>,
    /// The restaurant.
    pub pickup: Position,
    /// The door.
    pub dropoff: Position,
    /// Seconds until the courier's next stop (the customer's ETA source);
    /// null without a courier or a fix.
    pub eta_s: Option<u32>,
    /// Seconds until the door; null as `eta_s`.
    pub delivery_eta_s: Option<u32>,
    /// The matcher's search for a courier; null when none runs.
    pub dispatch: Option<BoardDispatch>,
}

/// The matcher's search for an order's courier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardDispatch {
    /// An offer waits for a courier's answer.
    pub offered: bool,
    /// Offers that ended without an accept.
    pub attempts: u32,
    /// When the search started, Unix ms.
    pub since_ms: i64,
    /// When it was raised to dispatchers as unassigned; null if not.
    pub unassigned_at_ms: Option<i64>,
}

/// Something a dispatcher should look at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    pub kind: AlertKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub order_id: Uuid,
    /// The courier concerned (`courier_offline`); null otherwise.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub driver_id: Option<Uuid>,
    /// Since when, Unix ms: the search's start (`order_waiting`) or the
    /// courier's last ping (`courier_offline`; null if never heard).
    pub since_ms: Option<i64>,
    /// One line for a person.
    pub message: String,
}

/// The kinds of [`Alert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An order has waited for a courier longer than the console's
    /// threshold, or the matcher raised it as unassigned.
    OrderWaiting,
    /// A courier holding an order went offline (stopped pinging or set
    /// itself offline) before delivering it.
    CourierOffline,
}

/// Counters for the console's live figures. Totals count since the
/// process started: a client derives rates from two readings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counters {
    /// Pings applied to the engine since start.
    pub pings_applied_total: u64,
    /// Orders put on the live board (paid) since start.
    pub orders_opened_total: u64,
    /// Couriers online and free now.
    pub drivers_available: u64,
    /// Couriers carrying an order now.
    pub drivers_busy: u64,
    /// Couriers known but offline now.
    pub drivers_offline: u64,
    /// Open orders now.
    pub open_orders: u64,
}
