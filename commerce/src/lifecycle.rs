//! The order lifecycle rules, in one place and free of I/O: which steps
//! exist ([`STEPS`]), who may ask for which ([`Party`], [`decide`]), and
//! when an order wants a driver ([`awaits_driver`]).
//!
//! ```text
//! placed ─► paid ─► accepted ─► preparing ─► ready_for_pickup ─► picked_up ─► delivered
//!   │        │          └───────────────────────►┘   (needs a driver)
//!   │        └─► rejected            (restaurant; refunded)
//!   └─► payment_failed               (system, on a declined charge)
//! placed, paid ─► cancelled          (customer or admin; refunded)
//! any open status ─► cancelled       (admin; refunded)
//! ```
//!
//! `paid` and `payment_failed` are set by the payments saga only; the
//! restaurant accepts or rejects, marks preparing and ready; the assigned
//! driver picks up and delivers; the customer cancels before acceptance; an
//! admin may take any step a party could, and cancel anything still open.

use auth::{Principal, Role};
use engine::OrderStatus::{self, *};

use crate::store::Order;

/// Every legal step (from, to), whoever takes it.
pub const STEPS: &[(OrderStatus, OrderStatus)] = &[
    (Placed, Paid),
    (Placed, PaymentFailed),
    (Placed, Cancelled),
    (Paid, Accepted),
    (Paid, Rejected),
    (Paid, Cancelled),
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
    pub const ALL: [Party; 4] = [
        Party::Admin,
        Party::Customer,
        Party::RestaurantOwner,
        Party::Driver,
    ];

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

/// What a party asks of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `POST /v1/orders/{id}/status` with one of [`SETTABLE`].
    Set(OrderStatus),
    /// `POST /v1/orders/{id}/cancel`.
    Cancel,
}

impl Action {
    /// The status the action leads to.
    pub fn target(self) -> OrderStatus {
        match self {
            Self::Set(to) => to,
            Self::Cancel => Cancelled,
        }
    }
}

/// Why an action is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not this party's step, whatever the status (403).
    NotYours,
    /// (current, to) is not in [`STEPS`] (409).
    NoSuchStep,
    /// A pickup needs an assigned driver (409).
    NoDriver,
    /// A customer may cancel only before the restaurant accepts (409).
    TooLateToCancel,
}

impl Refusal {
    /// The explanation that goes with a 409, if there is more to say than
    /// "not from this status".
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::NotYours | Self::NoSuchStep => None,
            Self::NoDriver => Some("no driver is assigned yet"),
            Self::TooLateToCancel => {
                Some("a customer can cancel only before the restaurant accepts")
            }
        }
    }
}

/// Whether `party` may ever ask for `action` (the 403 check, independent of
/// the order's status).
pub fn may_ask(party: Party, action: Action) -> bool {
    match (party, action) {
        (Party::Admin, Action::Set(to)) => SETTABLE.contains(&to),
        (Party::Admin | Party::Customer, Action::Cancel) => true,
        (Party::RestaurantOwner, Action::Set(to)) => {
            matches!(to, Accepted | Rejected | Preparing | ReadyForPickup)
        }
        (Party::Driver, Action::Set(to)) => matches!(to, PickedUp | Delivered),
        _ => false,
    }
}

/// The whole decision: the status `action` by `party` moves `order` to, or
/// why not.
pub fn decide(party: Party, order: &Order, action: Action) -> Result<OrderStatus, Refusal> {
    if !may_ask(party, action) {
        return Err(Refusal::NotYours);
    }
    let to = action.target();
    if !STEPS.contains(&(order.status, to)) {
        return Err(Refusal::NoSuchStep);
    }
    if to == PickedUp && order.driver_id.is_none() {
        return Err(Refusal::NoDriver);
    }
    if action == Action::Cancel
        && party == Party::Customer
        && !matches!(order.status, Placed | Paid)
    {
        return Err(Refusal::TooLateToCancel);
    }
    Ok(to)
}

/// Whether the matcher should be looking for a driver for `order`: once the
/// restaurant accepted (which needs the payment through), until a driver
/// has it or it closes.
pub fn awaits_driver(order: &Order) -> bool {
    status_awaits_driver(order.status, order.driver_id.is_some())
}

/// [`awaits_driver`] from an order's status and whether it has a driver
/// (what the live board holds of it).
pub fn status_awaits_driver(status: OrderStatus, has_driver: bool) -> bool {
    !has_driver && matches!(status, Accepted | Preparing | ReadyForPickup)
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
            subtotal_cents: 0,
            delivery_fee_cents: 0,
            total_cents: 0,
            lines: Vec::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
            accepted_at_ms: None,
            ready_at_ms: None,
            version: 0,
        }
    }

    fn actions() -> Vec<Action> {
        let mut all: Vec<Action> = SETTABLE.iter().map(|&s| Action::Set(s)).collect();
        all.push(Action::Cancel);
        all
    }

    fn party_code(p: Party) -> &'static str {
        match p {
            Party::Admin => "A",
            Party::Customer => "C",
            Party::RestaurantOwner => "R",
            Party::Driver => "D",
        }
    }

    /// The expected outcome of every (status, party, action) pair, as a
    /// table: one row per status, one column per action (in [`actions`]
    /// order: accepted, rejected, preparing, ready_for_pickup, picked_up,
    /// delivered, cancel), each cell the parties it succeeds for. Every
    /// other pair is refused: 403 if [`may_ask`] says no, else 409. Orders
    /// here have a driver once ready for pickup (`with_driver` below).
    const EXPECTED: &[(OrderStatus, [&str; 7])] = &[
        //                 acc    rej   prep   ready  pick   deliv  cancel
        (Placed, ["", "", "", "", "", "", "AC"]),
        (Paid, ["AR", "AR", "", "", "", "", "AC"]),
        (Accepted, ["", "", "AR", "AR", "", "", "A"]),
        (Preparing, ["", "", "", "AR", "", "", "A"]),
        (ReadyForPickup, ["", "", "", "", "AD", "", "A"]),
        (PickedUp, ["", "", "", "", "", "AD", "A"]),
        (Delivered, ["", "", "", "", "", "", ""]),
        (Cancelled, ["", "", "", "", "", "", ""]),
        (Rejected, ["", "", "", "", "", "", ""]),
        (PaymentFailed, ["", "", "", "", "", "", ""]),
    ];

    #[test]
    fn every_status_party_action_pair() {
        assert_eq!(EXPECTED.len(), OrderStatus::ALL.len());
        for &(status, row) in EXPECTED {
            let with_driver = matches!(status, ReadyForPickup | PickedUp | Delivered);
            let o = order(status, with_driver);
            for (action, allowed) in actions().into_iter().zip(row) {
                for party in Party::ALL {
                    let got = decide(party, &o, action);
                    let want_ok = allowed.contains(party_code(party));
                    match got {
                        Ok(to) => {
                            assert!(want_ok, "{status:?} {party:?} {action:?}: allowed");
                            assert_eq!(to, action.target());
                        }
                        Err(refusal) => {
                            assert!(!want_ok, "{status:?} {party:?} {action:?}: {refusal:?}");
                            let expected_kind = if may_ask(party, action) {
                                refusal != Refusal::NotYours
                            } else {
                                refusal == Refusal::NotYours
                            };
                            assert!(
                                expected_kind,
                                "{status:?} {party:?} {action:?}: {refusal:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn terminal_statuses_have_no_steps_out() {
        for &(from, to) in STEPS {
            assert!(!from.is_terminal(), "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn pickup_needs_a_driver() {
        assert_eq!(
            decide(
                Party::Admin,
                &order(ReadyForPickup, false),
                Action::Set(PickedUp)
            ),
            Err(Refusal::NoDriver)
        );
    }

    #[test]
    fn customer_cancels_only_before_acceptance() {
        let o = order(Accepted, false);
        assert_eq!(
            decide(Party::Customer, &o, Action::Cancel),
            Err(Refusal::TooLateToCancel)
        );
        assert_eq!(decide(Party::Admin, &o, Action::Cancel), Ok(Cancelled));
    }

    #[test]
    fn drivers_are_wanted_from_acceptance_until_assigned() {
        for status in OrderStatus::ALL {
            let wanted = matches!(status, Accepted | Preparing | ReadyForPickup);
            assert_eq!(awaits_driver(&order(status, false)), wanted, "{status:?}");
            assert!(!awaits_driver(&order(status, true)), "{status:?}");
        }
    }
}
