//! The order lifecycle rules, in one place and free of I/O: which steps
//! exist ([`STEPS`]), who may ask for which ([`Party`], [`may_set`],
//! [`may_cancel`]), their preconditions ([`check_step`]), and when an order
//! wants a driver ([`awaits_driver`]).
//!
//! The steps:
//!
//! ```text
//! placed ──► accepted ──► preparing ──► ready_for_pickup ──► picked_up ──► delivered
//!   │  │        │                          ▲   (needs a driver)
//!   │  │        └──────────────────────────┘
//!   │  └─► ready_for_pickup   (foundation shortcut, see below)
//!   └────► rejected
//! any open status ──► cancelled   (customer: only from placed; admin: any)
//! ```
//!
//! Foundation shortcut: `placed → ready_for_pickup` is allowed, because
//! restaurants in the walk-through skip acceptance and preparation. The
//! Commerce issue (payments, `placed → paid`) revisits it.

use auth::{Principal, Role};
use engine::OrderStatus::{self, *};

use crate::store::Order;

/// Every legal step (from, to).
pub const STEPS: &[(OrderStatus, OrderStatus)] = &[
    (Placed, Accepted),
    (Placed, Rejected),
    (Placed, ReadyForPickup), // foundation shortcut
    (Placed, Cancelled),
    (Accepted, Preparing),
    (Accepted, ReadyForPickup),
    (Accepted, Cancelled),
    (Preparing, ReadyForPickup),
    (Preparing, Cancelled),
    (ReadyForPickup, PickedUp),
    (ReadyForPickup, Cancelled),
    (PickedUp, Delivered),
    (PickedUp, Cancelled),
];

/// The statuses `POST /v1/orders/{id}/status` can set. Cancelling has its
/// own endpoint; `placed` and the payment statuses are set by the system.
pub const SETTABLE: &[OrderStatus] = &[
    Accepted,
    Rejected,
    Preparing,
    ReadyForPickup,
    PickedUp,
    Delivered,
];

/// How the caller relates to one order. `None` from [`Party::of`] means the
/// caller may not even know the order exists (the api answers 404).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    Admin,
    Customer,
    RestaurantOwner,
    /// The driver the order is assigned to.
    Driver,
}

impl Party {
    pub fn of(principal: &Principal, order: &Order) -> Option<Self> {
        let me = principal.user_id;
        match principal.role {
            Role::Admin => Some(Self::Admin),
            Role::Customer => (order.customer_id == me).then_some(Self::Customer),
            Role::Restaurant => (order.restaurant_owner_id == me).then_some(Self::RestaurantOwner),
            Role::Driver => (order.driver_id.map(Into::into) == Some(me)).then_some(Self::Driver),
        }
    }
}

/// Whether `party` may ask for `to` through the status endpoint (whatever
/// the order's current status).
pub fn may_set(party: Party, to: OrderStatus) -> bool {
    match party {
        Party::Admin => SETTABLE.contains(&to),
        Party::RestaurantOwner => matches!(to, Accepted | Rejected | Preparing | ReadyForPickup),
        Party::Driver => matches!(to, PickedUp | Delivered),
        Party::Customer => false,
    }
}

/// Whether `party` may cancel at all (the customer only while placed, see
/// [`check_cancel`]).
pub fn may_cancel(party: Party) -> bool {
    matches!(party, Party::Admin | Party::Customer)
}

/// Why a step that exists in principle cannot be taken now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// (current, to) is not in [`STEPS`].
    NoSuchStep,
    /// A pickup needs an assigned driver.
    NoDriver,
    /// A customer may cancel only before the restaurant accepts.
    TooLateToCancel,
}

impl Refusal {
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::NoSuchStep => None,
            Self::NoDriver => Some("no driver is assigned yet"),
            Self::TooLateToCancel => Some("a customer can cancel only while the order is placed"),
        }
    }
}

/// Whether `order` can move to `to` now.
pub fn check_step(order: &Order, to: OrderStatus) -> Result<(), Refusal> {
    if !STEPS.contains(&(order.status, to)) {
        return Err(Refusal::NoSuchStep);
    }
    if to == PickedUp && order.driver_id.is_none() {
        return Err(Refusal::NoDriver);
    }
    Ok(())
}

/// Whether `party` (already allowed by [`may_cancel`]) can cancel `order` now.
pub fn check_cancel(party: Party, order: &Order) -> Result<(), Refusal> {
    check_step(order, Cancelled)?;
    if party == Party::Customer && order.status != Placed {
        return Err(Refusal::TooLateToCancel);
    }
    Ok(())
}

/// Whether the matcher should be looking for a driver for `order`.
///
/// Foundation: every open order without a driver, from the moment it is
/// placed. This is the one place the Commerce issue changes to "once the
/// restaurant accepted (and payment cleared)".
pub fn awaits_driver(order: &Order) -> bool {
    order.driver_id.is_none() && !order.status.is_terminal()
}

#[cfg(test)]
mod tests {
    use engine::{DriverId, LatLng, OrderId, RestaurantId, UserId};

    use super::*;

    fn order(status: OrderStatus, with_driver: bool) -> Order {
        let here = LatLng::new(57.7, 11.97).unwrap();
        Order {
            id: OrderId::new(),
            customer_id: UserId::new(),
            restaurant_id: RestaurantId::new(),
            restaurant_owner_id: UserId::new(),
            status,
            driver_id: with_driver.then(DriverId::new),
            pickup: here,
            dropoff: here,
            delivery_address: "x".into(),
            total_cents: 0,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn terminal_statuses_have_no_steps_out() {
        for &(from, to) in STEPS {
            assert!(!from.is_terminal(), "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn step_table() {
        let check =
            |from: OrderStatus, to: OrderStatus, driver: bool, expected: Result<(), Refusal>| {
                assert_eq!(
                    check_step(&order(from, driver), to),
                    expected,
                    "{from:?} -> {to:?} (driver: {driver})"
                );
            };
        check(Placed, Accepted, false, Ok(()));
        check(Placed, ReadyForPickup, false, Ok(()));
        check(Placed, Preparing, false, Err(Refusal::NoSuchStep));
        check(Placed, PickedUp, true, Err(Refusal::NoSuchStep));
        check(Accepted, Accepted, false, Err(Refusal::NoSuchStep));
        check(Preparing, Accepted, false, Err(Refusal::NoSuchStep));
        check(ReadyForPickup, PickedUp, false, Err(Refusal::NoDriver));
        check(ReadyForPickup, PickedUp, true, Ok(()));
        check(PickedUp, Delivered, true, Ok(()));
        check(Delivered, Cancelled, true, Err(Refusal::NoSuchStep));
        check(Rejected, Accepted, false, Err(Refusal::NoSuchStep));
    }

    #[test]
    fn who_may_set_what() {
        for to in OrderStatus::ALL {
            assert_eq!(may_set(Party::Admin, to), SETTABLE.contains(&to));
            assert!(!may_set(Party::Customer, to));
        }
        assert!(may_set(Party::RestaurantOwner, Accepted));
        assert!(!may_set(Party::RestaurantOwner, PickedUp));
        assert!(may_set(Party::Driver, Delivered));
        assert!(!may_set(Party::Driver, ReadyForPickup));
    }

    #[test]
    fn cancellation() {
        assert_eq!(check_cancel(Party::Customer, &order(Placed, false)), Ok(()));
        assert_eq!(
            check_cancel(Party::Customer, &order(Accepted, false)),
            Err(Refusal::TooLateToCancel)
        );
        assert_eq!(check_cancel(Party::Admin, &order(PickedUp, true)), Ok(()));
        assert_eq!(
            check_cancel(Party::Admin, &order(Delivered, true)),
            Err(Refusal::NoSuchStep)
        );
        assert!(!may_cancel(Party::Driver));
        assert!(!may_cancel(Party::RestaurantOwner));
    }
}
