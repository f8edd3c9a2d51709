//! The status vocabularies every crate shares: driver status, declared
//! availability and order status, with their stable wire names.

use serde::{Deserialize, Serialize};

/// What a driver is doing, as the matcher and the dispatchers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Available => "available",
            Self::Busy => "busy",
        }
    }
}

/// What a driver declared through the availability endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Available,
    Offline,
}

/// The order lifecycle of the public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Paid,
    Accepted,
    Preparing,
    ReadyForPickup,
    PickedUp,
    Delivered,
    Cancelled,
    Rejected,
    PaymentFailed,
}

impl OrderStatus {
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
}
