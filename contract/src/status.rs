//! The status vocabularies every crate shares: driver status, declared
//! availability, order status and a courier's arrivals, with their stable
//! wire names.

use serde::{Deserialize, Serialize};

/// A driver's live status, what dispatch goes by:
///
/// - `available`: declared available and pinging; offers go to it.
/// - `busy`: holds an order (until it is delivered or cancelled); no offers.
/// - `offline`: declared offline, or silent for the presence timeout (30 s
///   by default), or never pinged since the server started; no offers. A
///   driver declared available becomes `available` with its next ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DriverStatus {
    /// Not pinging (for longer than the presence timeout) or off duty.
    Offline,
    /// On duty, pinging, and holding no order.
    Available,
    /// Holding an order.
    Busy,
}

impl DriverStatus {
    /// The wire name (`offline`, `available`, `busy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Available => "available",
            Self::Busy => "busy",
        }
    }
}

/// What a driver declares: `available` (ready for offers whenever it pings)
/// or `offline` (off duty).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Ready for offers whenever it pings.
    Available,
    /// Off duty.
    Offline,
}

/// The order lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, not yet paid.
    Placed,
    /// The charge succeeded; waiting for the restaurant.
    Paid,
    /// The restaurant took it.
    Accepted,
    /// The kitchen is on it.
    Preparing,
    /// Waiting for its driver at the restaurant.
    ReadyForPickup,
    /// On its way to the customer.
    PickedUp,
    /// Handed over (terminal).
    Delivered,
    /// Cancelled by the customer or an admin (terminal).
    Cancelled,
    /// Refused by the restaurant (terminal).
    Rejected,
    /// The charge failed (terminal).
    PaymentFailed,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OrderStatus; 10] = [
        Self::Placed,
        Self::Paid,
        Self::Accepted,
        Self::Preparing,
        Self::ReadyForPickup,
        Self::PickedUp,
        Self::Delivered,
        Self::Cancelled,
        Self::Rejected,
        Self::PaymentFailed,
    ];

    /// The wire name (`placed`, `ready_for_pickup`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Paid => "paid",
            Self::Accepted => "accepted",
            Self::Preparing => "preparing",
            Self::ReadyForPickup => "ready_for_pickup",
            Self::PickedUp => "picked_up",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
            Self::PaymentFailed => "payment_failed",
        }
    }

    /// The status named `s` on the wire, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No further step is possible from a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Cancelled | Self::Rejected | Self::PaymentFailed
        )
    }
}

/// A courier with an order reached one of its stops: told once per order
/// and stop (the `arrival` of a `status` message on the order's channel,
/// and the events `order.arrived_at_restaurant` /
/// `order.arrived_at_customer`). Not an order status: the order's status
/// moves only by its parties' steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// The courier came within the arrival radius of the restaurant
    /// (before pickup).
    ArrivedAtRestaurant,
    /// The courier came within the arrival radius of the customer's door
    /// (after pickup).
    ArrivedAtCustomer,
}

impl Arrival {
    /// Both, for tests and documentation.
    pub const ALL: [Arrival; 2] = [Arrival::ArrivedAtRestaurant, Arrival::ArrivedAtCustomer];

    /// The wire name (`arrived_at_restaurant`, `arrived_at_customer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ArrivedAtRestaurant => "arrived_at_restaurant",
            Self::ArrivedAtCustomer => "arrived_at_customer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_status_names_round_trip() {
        for st in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(st.as_str()), Some(st));
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
    }

    #[test]
    fn driver_status_names_are_the_serde_names() {
        for st in [
            DriverStatus::Offline,
            DriverStatus::Available,
            DriverStatus::Busy,
        ] {
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
    }

    #[test]
    fn arrival_names_are_the_serde_names() {
        for a in Arrival::ALL {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
    }
}
