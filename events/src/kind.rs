//! Event type and aggregate kind names: the one source of the wire names
//! (`order.placed` …) and of which aggregate each type belongs to.

use serde::{Serialize, Serializer};

/// What an event is about: its aggregate's kind. Versions count per
/// aggregate (kind + id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggregateKind {
    /// An order, with its payments and refunds (their events are the
    /// order's, so the order's history is one versioned stream).
    Order,
    /// A restaurant, with its menu.
    Restaurant,
    /// A user account.
    User,
    /// A driver's presence.
    Driver,
}

impl AggregateKind {
    /// Every kind, for tests and documentation.
    pub const ALL: [AggregateKind; 4] = [
        AggregateKind::Order,
        AggregateKind::Restaurant,
        AggregateKind::User,
        AggregateKind::Driver,
    ];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Order => "order",
            AggregateKind::Restaurant => "restaurant",
            AggregateKind::User => "user",
            AggregateKind::Driver => "driver",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Declares [`EventType`] from one table: variant, wire name, aggregate.
macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident = $name:literal on $kind:ident,)*) => {
        /// The type of an event, `noun.past_verb`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($(#[$doc])* $variant,)*
        }

        impl EventType {
            /// Every type, in declaration order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The stored and wire name (`order.placed`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            /// The kind of aggregate events of this type belong to.
            pub const fn aggregate_kind(self) -> AggregateKind {
                match self {
                    $(EventType::$variant => AggregateKind::$kind,)*
                }
            }
        }
    };
}

event_types! {
    /// A customer placed an order (its charge is pending).
    OrderPlaced = "order.placed" on Order,
    /// The order's charge succeeded.
    OrderPaid = "order.paid" on Order,
    /// The order's charge was declined or failed for good.
    PaymentFailed = "payment.failed" on Order,
    /// The restaurant accepted the order.
    OrderAccepted = "order.accepted" on Order,
    /// The restaurant rejected the order.
    OrderRejected = "order.rejected" on Order,
    /// The restaurant started preparing the order.
    OrderPreparing = "order.preparing" on Order,
    /// The order waits at the restaurant for its driver.
    OrderReadyForPickup = "order.ready_for_pickup" on Order,
    /// The order was offered to a driver.
    OrderOffered = "order.offered" on Order,
    /// A driver accepted the order.
    OrderAssigned = "order.assigned" on Order,
    /// The driver picked the order up.
    OrderPickedUp = "order.picked_up" on Order,
    /// The driver delivered the order.
    OrderDelivered = "order.delivered" on Order,
    /// The order's courier came within the arrival radius of the
    /// restaurant (before pickup). Not a state change: written outside
    /// business transactions, like presence.
    OrderArrivedAtRestaurant = "order.arrived_at_restaurant" on Order,
    /// The order's courier came within the arrival radius of the
    /// customer's door (after pickup). Written like
    /// `order.arrived_at_restaurant`.
    OrderArrivedAtCustomer = "order.arrived_at_customer" on Order,
    /// The order was cancelled.
    OrderCancelled = "order.cancelled" on Order,
    /// A dispatcher took the order from its driver: to another driver, or
    /// back to the matcher (the payload's `driver_from` is the driver it
    /// was taken from, `driver_id` the new one or `null`).
    OrderReassigned = "order.reassigned" on Order,
    /// No driver has taken the order for too long (the matcher raised it
    /// after `matcher.unassigned_after_s` or `unassigned_after_offers`
    /// lapsed offers; it keeps offering). Not a state change: written
    /// outside business transactions, like `order.offered`; admins are
    /// told once per order.
    OrderDispatchStalled = "order.dispatch_stalled" on Order,
    /// The order's customer reviewed it (rated its restaurant and,
    /// optionally, its driver).
    ReviewCreated = "review.created" on Order,
    /// The customer edited the order's review (within the edit window).
    ReviewUpdated = "review.updated" on Order,
    /// An admin hid the order's review (it stops counting).
    ReviewHidden = "review.hidden" on Order,
    /// An admin showed the order's hidden review again.
    ReviewUnhidden = "review.unhidden" on Order,
    /// A refund of the order's charge went through.
    RefundSucceeded = "refund.succeeded" on Order,
    /// A refund of the order's charge was declined for good.
    RefundFailed = "refund.failed" on Order,
    /// A restaurant's profile changed.
    RestaurantUpdated = "restaurant.updated" on Restaurant,
    /// A restaurant's menu changed.
    MenuUpdated = "menu.updated" on Restaurant,
    /// An admin banned a user.
    UserBanned = "user.banned" on User,
    /// An admin lifted a user's ban.
    UserUnbanned = "user.unbanned" on User,
    /// The user logged out: their access tokens issued before it are
    /// refused on every node (one session's refresh token, or every one,
    /// revoked with it).
    UserLoggedOut = "user.logged_out" on User,
    /// A driver went online (available).
    DriverOnline = "driver.online" on Driver,
    /// A driver went offline.
    DriverOffline = "driver.offline" on Driver,
}

impl EventType {
    /// The type named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for AggregateKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for &t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert!(seen.insert(t.as_str()), "{t} twice");
            let (noun, verb) = t.as_str().split_once('.').expect("noun.past_verb");
            assert!(!noun.is_empty() && !verb.is_empty());
        }
        assert_eq!(EventType::ALL.len(), 29);
        assert_eq!(EventType::parse("order.teleported"), None);
        for k in AggregateKind::ALL {
            assert_eq!(AggregateKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn order_payments_and_refunds_share_the_order_stream() {
        let check = |t: EventType, kind: AggregateKind| assert_eq!(t.aggregate_kind(), kind, "{t}");
        check(EventType::OrderPlaced, AggregateKind::Order);
        check(EventType::PaymentFailed, AggregateKind::Order);
        check(EventType::RefundFailed, AggregateKind::Order);
        check(EventType::MenuUpdated, AggregateKind::Restaurant);
        check(EventType::UserBanned, AggregateKind::User);
        check(EventType::DriverOffline, AggregateKind::Driver);
    }
}
