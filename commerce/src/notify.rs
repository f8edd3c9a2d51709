//! Who is told of an event, and what they read: the pure rules of the
//! notification feed (`usecase::notify` stores what they decide).
//!
//! [`audience`] names the parties of an order an event concerns, by type
//! (the customer hears of every step of their order, the restaurant of new
//! paid orders and what happens to them after the kitchen, the courier of
//! what changes its run, admins of money that did not move). The one who
//! acted is never told of their own action, and an event copied from the
//! history kept before the stream existed (`backfilled`) tells no one.
//! [`text`] renders the sentence a party reads.

use events::EventType;

use engine::OrderStatus;

/// A party an event may concern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The customer who placed the order.
    Customer,
    /// The restaurant's owner.
    Restaurant,
    /// The order's driver after the event.
    Driver,
    /// `order.reassigned`: the driver the order was taken from.
    DriverFrom,
    /// Every admin.
    Admins,
}

/// The parties of the order an event of type `t` concerns; `status` is the
/// order's status after it (`order.paid` for an order closed meanwhile is
/// news for the customer's refund only, not a new order for the kitchen).
pub fn audience(t: EventType, status: Option<OrderStatus>) -> &'static [Party] {
    use Party::*;
    match t {
        EventType::OrderPaid if status == Some(OrderStatus::Paid) => &[Customer, Restaurant],
        EventType::OrderPaid => &[Customer],
        EventType::PaymentFailed => &[Customer, Admins],
        EventType::OrderAccepted | EventType::OrderPreparing => &[Customer],
        // The restaurant hears of a rejection it did not make itself (the
        // system's, of an order nobody accepted in time; an admin's).
        EventType::OrderRejected => &[Customer, Restaurant],
        EventType::OrderReadyForPickup => &[Customer, Driver],
        EventType::OrderAssigned | EventType::OrderPickedUp | EventType::OrderDelivered => {
            &[Customer, Restaurant]
        }
        EventType::OrderCancelled => &[Customer, Restaurant, Driver],
        EventType::OrderReassigned => &[Customer, Restaurant, Driver, DriverFrom],
        EventType::RefundSucceeded => &[Customer],
        EventType::RefundFailed => &[Customer, Admins],
        EventType::OrderArrivedAtRestaurant => &[Restaurant],
        EventType::OrderArrivedAtCustomer => &[Customer],
        EventType::OrderDispatchStalled => &[Admins],
        // Placed is followed at once by paid or payment.failed; offers go
        // to drivers on their own channel; the rest concern no order.
        _ => &[],
    }
}

/// Whether events of type `t` can concern anyone (what the consumer asks
/// the stream for).
pub fn wanted(t: EventType) -> bool {
    !audience(t, Some(OrderStatus::Paid)).is_empty()
}

/// A language notifications are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Language {
    /// English, the default.
    #[default]
    English,
}

/// The sentence `party` reads of an event of type `t` about an order of
/// `total_cents` (0 when unknown), in `language`.
pub fn text(t: EventType, party: Party, total_cents: i64, language: Language) -> String {
    let Language::English = language;
    let money = format!("{}.{:02}", total_cents / 100, total_cents % 100);
    match (t, party) {
        (EventType::OrderPaid, Party::Restaurant) => {
            format!("New order ({money}): please accept it")
        }
        (EventType::OrderPaid, _) => {
            "Payment received: your order is on its way to the restaurant".into()
        }
        (EventType::PaymentFailed, Party::Admins) => format!("A payment of {money} failed"),
        (EventType::PaymentFailed, _) => "Your payment did not go through".into(),
        (EventType::OrderAccepted, _) => "The restaurant accepted your order".into(),
        (EventType::OrderRejected, Party::Restaurant) => {
            "An order was rejected without your answer; the customer is refunded".into()
        }
        (EventType::OrderRejected, _) => "The restaurant could not take your order".into(),
        (EventType::OrderPreparing, _) => "Your order is being prepared".into(),
        (EventType::OrderReadyForPickup, Party::Driver) => "The order is ready for pickup".into(),
        (EventType::OrderReadyForPickup, _) => {
            "Your order is ready and waits for its courier".into()
        }
        (EventType::OrderAssigned, Party::Restaurant) => {
            "A courier is on the way to pick up the order".into()
        }
        (EventType::OrderAssigned, _) => "A courier took your order".into(),
        (EventType::OrderPickedUp, Party::Restaurant) => "The courier picked up the order".into(),
        (EventType::OrderPickedUp, _) => "Your order is on its way".into(),
        (EventType::OrderDelivered, Party::Restaurant) => "The order was delivered".into(),
        (EventType::OrderDelivered, _) => "Your order was delivered. Enjoy!".into(),
        (EventType::OrderCancelled, Party::Customer) => "Your order was cancelled".into(),
        (EventType::OrderCancelled, _) => "An order was cancelled".into(),
        (EventType::OrderReassigned, Party::DriverFrom) => {
            "The order was taken from you by a dispatcher".into()
        }
        (EventType::OrderReassigned, Party::Driver) => "A dispatcher gave you an order".into(),
        (EventType::OrderReassigned, _) => "The order has a new courier".into(),
        (EventType::RefundSucceeded, _) => format!("You were refunded {money}"),
        (EventType::RefundFailed, Party::Admins) => format!("A refund of {money} failed"),
        (EventType::RefundFailed, _) => "Your refund could not be paid out; we are on it".into(),
        (EventType::OrderArrivedAtRestaurant, _) => "The courier is at the restaurant".into(),
        (EventType::OrderArrivedAtCustomer, _) => "Your courier is at the door".into(),
        (EventType::OrderDispatchStalled, _) => {
            "No courier has taken an order for too long: please find one".into()
        }
        (other, _) => other.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_hears_of_what() {
        use Party::*;
        let check = |t, status, expected: &[Party]| {
            assert_eq!(audience(t, status), expected, "{t} {status:?}");
        };
        check(EventType::OrderPlaced, Some(OrderStatus::Placed), &[]);
        check(
            EventType::OrderPaid,
            Some(OrderStatus::Paid),
            &[Customer, Restaurant],
        );
        check(
            EventType::OrderPaid,
            Some(OrderStatus::Cancelled),
            &[Customer],
        );
        check(
            EventType::PaymentFailed,
            Some(OrderStatus::PaymentFailed),
            &[Customer, Admins],
        );
        check(
            EventType::OrderCancelled,
            Some(OrderStatus::Cancelled),
            &[Customer, Restaurant, Driver],
        );
        check(
            EventType::OrderReassigned,
            Some(OrderStatus::Accepted),
            &[Customer, Restaurant, Driver, DriverFrom],
        );
        check(EventType::RefundFailed, None, &[Customer, Admins]);
        check(
            EventType::OrderRejected,
            Some(OrderStatus::Rejected),
            &[Customer, Restaurant],
        );
        check(EventType::OrderDispatchStalled, None, &[Admins]);
        check(EventType::OrderOffered, None, &[]);
        check(EventType::UserBanned, None, &[]);
        check(EventType::DriverOnline, None, &[]);
        assert!(wanted(EventType::OrderAccepted));
        assert!(!wanted(EventType::MenuUpdated));
    }

    #[test]
    fn every_wanted_type_has_its_own_words() {
        for &t in EventType::ALL {
            for &party in audience(t, Some(OrderStatus::Paid)) {
                let text = text(t, party, 1_250, Language::English);
                assert_ne!(text, t.as_str(), "{t} for {party:?}");
            }
        }
        assert_eq!(
            text(
                EventType::RefundSucceeded,
                Party::Customer,
                1_205,
                Language::English
            ),
            "You were refunded 12.05"
        );
    }
}
