//! The domain events this crate appends, and the one source of their
//! payload shapes (documented for integrators in `docs/EVENTS.md`).
//!
//! Every state change the store makes appends its event in the same
//! transaction (`store::sql::tx::append`): the change and its event commit
//! together or not at all. Each payload is a typed struct here, written as
//! version 1 ([`events::Payload::v1`]); adding a field keeps the version,
//! changing or removing one bumps it.
//!
//! | type | aggregate | payload |
//! |------|-----------|---------|
//! | `order.placed`, `order.accepted`, `order.rejected`, `order.preparing`, `order.ready_for_pickup`, `order.assigned`, `order.picked_up`, `order.delivered`, `order.cancelled` | order | [`OrderChanged`] |
//! | `order.reassigned` | order | [`OrderChanged`] with `driver_from` |
//! | `order.paid`, `payment.failed` | order | [`OrderChanged`] with `payment` |
//! | `refund.succeeded`, `refund.failed` | order | [`RefundSettled`] |
//! | `review.created`, `review.updated`, `review.hidden`, `review.unhidden` | order | [`ReviewChanged`] |
//! | `restaurant.updated` | restaurant | [`RestaurantChanged`] |
//! | `menu.updated` | restaurant | [`MenuChanged`] |
//! | `user.banned`, `user.unbanned` | user | [`BanChanged`] |
//! | `user.logged_out` | user | [`LoggedOut`] |
//! | `order.arrived_at_restaurant`, `order.arrived_at_customer` | order | [`CourierArrived`] (written by `api`'s feed, outside business transactions) |
//! | `order.dispatch_stalled` | order | [`DispatchStalled`] (written by `api`'s feed, outside business transactions) |
//!
//! The per-order history (`GET /v1/orders/{id}/history`) is read from the
//! order's events ([`history_entry`]): the order's stream is its history.

use engine::{DriverId, MenuItemId, OrderId, OrderStatus, PaymentId, RestaurantId, UserId};
use events::{Actor, EventType, NewEvent, Payload};
use serde::{Deserialize, Serialize};

use crate::store::{EventKind, Order, OrderEvent, Payment, Result, StoreError};

/// The system actor of payment settlements (charges and refunds).
pub const ACTOR_PAYMENTS: &str = "payments";
/// The system actor of order steps taken by hexdash itself: the
/// rejection of a paid order nobody accepted in time
/// (`usecase::stuck`), `system:orders` in the stream.
pub const ACTOR_ORDERS: &str = "orders";

/// What happened to an order: every `order.*` event and the charge's
/// `order.paid` / `payment.failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderChanged {
    /// The order.
    pub order_id: OrderId,
    /// Its restaurant.
    pub restaurant_id: RestaurantId,
    /// The customer who placed it.
    pub customer_id: UserId,
    /// Its status before the change; `null` when placed. Equal to
    /// `status` when the change did not move it (an assignment, or a
    /// charge settled after the order was cancelled).
    pub status_from: Option<OrderStatus>,
    /// Its status after the change.
    pub status: OrderStatus,
    /// Its driver after the change, if any.
    pub driver_id: Option<DriverId>,
    /// What the order costs (charged), in cents.
    pub total_cents: i64,
    /// When it happened, Unix ms.
    pub at_ms: i64,
    /// `order.paid` / `payment.failed`: the charge as settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentInfo>,
    /// The refund this change made owed (a cancellation or rejection of a
    /// paid order, a charge that went through after a cancellation),
    /// written pending; its `refund.*` event follows when it settles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<PaymentInfo>,
    /// `order.reassigned`: the driver the order was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_from: Option<DriverId>,
    /// True only for events copied from the order history kept before the
    /// event stream existed (migration 0007): not news, consumers that
    /// notify people should skip them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backfilled: bool,
}

/// A charge or refund as an event tells it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentInfo {
    /// The payment's id (its idempotency key at the gateway).
    pub payment_id: PaymentId,
    /// How much, in cents.
    pub amount_cents: i64,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// The gateway's reference, once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ref: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Why it was made (refunds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&Payment> for PaymentInfo {
    fn from(p: &Payment) -> Self {
        Self {
            payment_id: p.id,
            amount_cents: p.amount_cents,
            status: p.status.as_str().to_owned(),
            gateway_ref: p.gateway_ref.clone(),
            failure: p.failure.clone(),
            reason: p.reason.clone(),
        }
    }
}

/// `review.created`, `review.updated`, `review.hidden`,
/// `review.unhidden`: the order's review as it is after the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewChanged {
    /// The review.
    pub review_id: uuid::Uuid,
    /// The order reviewed.
    pub order_id: OrderId,
    /// The restaurant rated.
    pub restaurant_id: RestaurantId,
    /// The driver who delivered the order.
    pub driver_id: Option<DriverId>,
    /// The restaurant's rating, 1 to 5.
    pub restaurant_stars: i64,
    /// The driver's rating, 1 to 5; `null`: not rated.
    pub driver_stars: Option<i64>,
    /// Whether it is hidden (does not count).
    pub hidden: bool,
    /// When, Unix ms.
    pub at_ms: i64,
}

impl ReviewChanged {
    /// The change of `review` (as it is after it) at `at_ms`.
    pub fn of(review: &crate::store::Review, at_ms: i64) -> Self {
        Self {
            review_id: review.id,
            order_id: review.order_id,
            restaurant_id: review.restaurant_id,
            driver_id: review.driver_id,
            restaurant_stars: review.restaurant_stars,
            driver_stars: review.driver_stars,
            hidden: review.hidden_at_ms.is_some(),
            at_ms,
        }
    }
}

/// `refund.succeeded` / `refund.failed`: a refund of the order settled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefundSettled {
    /// The order refunded.
    pub order_id: OrderId,
    /// The refund as settled.
    pub refund: PaymentInfo,
    /// When it settled, Unix ms.
    pub at_ms: i64,
}

/// `restaurant.updated`: a restaurant was created or its profile changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestaurantChanged {
    /// The restaurant.
    pub restaurant_id: RestaurantId,
    /// Its owner.
    pub owner_id: UserId,
    /// Its name now.
    pub name: String,
    /// Whether it takes orders now (the owner's switch).
    pub accepting_orders: bool,
    /// True when this is its creation.
    pub created: bool,
    /// When, Unix ms.
    pub at_ms: i64,
}

/// `menu.updated`: menu items of a restaurant were added or changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MenuChanged {
    /// The restaurant whose menu changed.
    pub restaurant_id: RestaurantId,
    /// The items added or changed (read the menu for their state).
    pub menu_item_ids: Vec<MenuItemId>,
    /// True when the items were added, false when one was changed.
    pub added: bool,
    /// When, Unix ms.
    pub at_ms: i64,
}

/// `user.banned` / `user.unbanned`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BanChanged {
    /// The user.
    pub user_id: UserId,
    /// Their role (`customer`, `restaurant`, `driver`, `admin`).
    pub role: String,
    /// When the ban was set; `null` once lifted.
    pub banned_at_ms: Option<i64>,
    /// When the change was made, Unix ms.
    pub at_ms: i64,
}

/// `user.logged_out`: the user's access tokens issued before
/// `tokens_valid_from_ms` are refused from now on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedOut {
    /// The user.
    pub user_id: UserId,
    /// Every session (`true`), or the one whose refresh token was given.
    pub all: bool,
    /// Refresh tokens revoked by it.
    pub revoked: u64,
    /// Access tokens issued before this time (Unix ms) are refused.
    pub tokens_valid_from_ms: i64,
}

/// `order.arrived_at_restaurant` / `order.arrived_at_customer`: the
/// order's courier reached a stop (the matcher's arrival fences; once per
/// order and stop). Not a state change of the order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CourierArrived {
    /// The order.
    pub order_id: OrderId,
    /// Its courier.
    pub driver_id: DriverId,
    /// The fix that came within the fence: degrees north.
    pub lat: f64,
    /// The fix: degrees east.
    pub lng: f64,
    /// The fix's time, Unix ms.
    pub at_ms: i64,
}

/// `order.dispatch_stalled`: no driver has taken the order for too long
/// (the matcher raised it to dispatchers; it keeps offering). Not a state
/// change of the order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DispatchStalled {
    /// The order.
    pub order_id: OrderId,
    /// Offers of it that ended without an accept (declined or lapsed).
    pub attempts: u32,
    /// When the matcher started looking for a driver, Unix ms.
    pub waiting_since_ms: i64,
    /// Where the driver is needed (the pickup): degrees north.
    pub lat: f64,
    /// The pickup: degrees east.
    pub lng: f64,
    /// When it was raised, Unix ms.
    pub at_ms: i64,
}

/// The event type of a courier's `arrival`.
pub fn arrival_event_type(arrival: engine::Arrival) -> EventType {
    match arrival {
        engine::Arrival::ArrivedAtRestaurant => EventType::OrderArrivedAtRestaurant,
        engine::Arrival::ArrivedAtCustomer => EventType::OrderArrivedAtCustomer,
    }
}

/// The event of an order's status step to `to`.
pub fn step_event_type(to: OrderStatus) -> EventType {
    match to {
        OrderStatus::Placed => EventType::OrderPlaced,
        OrderStatus::Paid => EventType::OrderPaid,
        OrderStatus::PaymentFailed => EventType::PaymentFailed,
        OrderStatus::Accepted => EventType::OrderAccepted,
        OrderStatus::Rejected => EventType::OrderRejected,
        OrderStatus::Preparing => EventType::OrderPreparing,
        OrderStatus::ReadyForPickup => EventType::OrderReadyForPickup,
        OrderStatus::PickedUp => EventType::OrderPickedUp,
        OrderStatus::Delivered => EventType::OrderDelivered,
        OrderStatus::Cancelled => EventType::OrderCancelled,
    }
}

impl OrderChanged {
    /// The change of `order` (as it is after it) from `status_from`.
    pub fn of(order: &Order, status_from: Option<OrderStatus>, at_ms: i64) -> Self {
        Self {
            order_id: order.id,
            restaurant_id: order.restaurant_id,
            customer_id: order.customer_id,
            status_from,
            status: order.status,
            driver_id: order.driver_id,
            total_cents: order.total_cents,
            at_ms,
            payment: None,
            refund: None,
            driver_from: None,
            backfilled: false,
        }
    }
}

/// The actor for an optional user: the user, or the system part `system`.
pub fn actor(user: Option<UserId>, system: &str) -> Actor {
    match user {
        Some(id) => Actor::User(id.as_uuid()),
        None => Actor::System(system.to_owned()),
    }
}

/// An event of `event_type` about `aggregate_id` with `body` as its
/// version-1 payload.
pub fn new_event<B: Serialize>(
    event_type: EventType,
    aggregate_id: impl ToString,
    actor: Actor,
    at_ms: i64,
    body: &B,
) -> Result<NewEvent> {
    // Plain structs with string keys: serialising cannot fail.
    let body = serde_json::to_value(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(NewEvent {
        event_type,
        aggregate_id: aggregate_id.to_string(),
        at_ms,
        actor,
        payload: Payload::v1(body),
    })
}

/// The history entry an order event makes, if it makes one: a status step
/// (the order moved) or an assignment. Payment events that did not move
/// the order and refund events are in the stream but not in the history.
pub fn history_entry(
    order_id: OrderId,
    event_type: EventType,
    actor: &Actor,
    at_ms: i64,
    body: &serde_json::Value,
) -> Result<Option<OrderEvent>> {
    let kind = match event_type {
        EventType::OrderAssigned => EventKind::Assigned,
        EventType::OrderReassigned => EventKind::Reassigned,
        EventType::OrderPlaced
        | EventType::OrderPaid
        | EventType::PaymentFailed
        | EventType::OrderAccepted
        | EventType::OrderRejected
        | EventType::OrderPreparing
        | EventType::OrderReadyForPickup
        | EventType::OrderPickedUp
        | EventType::OrderDelivered
        | EventType::OrderCancelled => EventKind::Status,
        _ => return Ok(None),
    };
    let change: OrderChanged = serde_json::from_value(body.clone())
        .map_err(|e| StoreError::Corrupt(format!("{event_type} payload: {e}")))?;
    if kind == EventKind::Status && change.status_from == Some(change.status) {
        return Ok(None);
    }
    Ok(Some(OrderEvent {
        order_id,
        kind,
        status: change.status,
        driver_id: change.driver_id,
        actor_id: match actor {
            Actor::User(id) => Some(UserId::from(*id)),
            Actor::System(_) => None,
        },
        at_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_status_has_its_step_event_on_the_order() {
        for status in OrderStatus::ALL {
            let t = step_event_type(status);
            assert_eq!(t.aggregate_kind(), events::AggregateKind::Order, "{t}");
        }
        assert_eq!(
            step_event_type(OrderStatus::ReadyForPickup).as_str(),
            "order.ready_for_pickup"
        );
    }

    #[test]
    fn an_order_payload_has_its_documented_fields() {
        let order_id = OrderId::new();
        let body = OrderChanged {
            order_id,
            restaurant_id: RestaurantId::new(),
            customer_id: UserId::new(),
            status_from: Some(OrderStatus::Placed),
            status: OrderStatus::Paid,
            driver_id: None,
            total_cents: 990,
            at_ms: 5,
            payment: None,
            refund: None,
            driver_from: None,
            backfilled: false,
        };
        let json = serde_json::to_value(&body).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "at_ms",
                "customer_id",
                "driver_id",
                "order_id",
                "restaurant_id",
                "status",
                "status_from",
                "total_cents"
            ]
        );
        assert_eq!(json["status_from"], "placed");
        // A step makes a history entry; a settlement that did not move the
        // order does not.
        let actor = Actor::System(ACTOR_PAYMENTS.to_owned());
        let entry = history_entry(order_id, EventType::OrderPaid, &actor, 5, &json).unwrap();
        assert_eq!(
            entry.map(|e| (e.kind, e.status, e.actor_id)),
            Some((EventKind::Status, OrderStatus::Paid, None))
        );
        let mut still = json.clone();
        still["status_from"] = "paid".into();
        assert_eq!(
            history_entry(order_id, EventType::OrderPaid, &actor, 5, &still).unwrap(),
            None
        );
        assert_eq!(
            history_entry(order_id, EventType::RefundFailed, &actor, 5, &json).unwrap(),
            None
        );
    }
}
