//! A dispatcher's (admin's) interventions in the order's life: force-cancel
//! an order at any open stage, with its refund; reassign an order to a
//! chosen driver or back to the matcher; set a driver offline.
//!
//! **Force-cancel.** One store transaction cancels the order from
//! whatever open status it is in (no lifecycle step is needed: an admin
//! may close anything still open), gives the stock back, and writes the
//! refund of whatever was paid and not yet refunded, pending, with the
//! admin's reason; the payments saga sends it. A retried force-cancel
//! finds the order cancelled and answers with it, writing nothing: the
//! refund is owed once, whatever retries (and a concurrent admin refund
//! is counted, the order row being locked while the amount is read).
//!
//! **Reassign.** One guard decides: a conditional `UPDATE` of the order's
//! driver from the driver the dispatcher saw (the store's
//! [`crate::store::OrderStore::reassign_driver`]). A driver's accept of the
//! order's offer is the same kind of update (`driver_id IS NULL`), so of a
//! reassignment and an accept racing, one changes the row and the other
//! finds it changed: never two drivers on one order. The live side follows
//! the store ([`LiveSide::reassigned`]): the matcher ends any offer of the
//! order, the engine frees the old driver and binds the new one by the
//! reassignment's version. The store appends `order.reassigned`
//! (`driver_from` the old driver) in the same transaction; the
//! notifications consumer tells the old driver from it.

use engine::{DriverId, DriverStatus, OrderId, OrderStatus, UserId};

use crate::payments::{self, Saga};
use crate::ports::{Fleet, LiveSide};
use crate::store::{
    ForceCancel, ForceCancelOutcome, Order, Payment, ReassignOutcome, Reassignment, Store,
};
use crate::{Error, Result};

/// Counter: dispatcher interventions, by `action` (`force_cancel`,
/// `reassign`, `set_offline`).
pub const DISPATCHER_ACTIONS_TOTAL: &str = "hexdash_dispatcher_actions_total";

/// What a force-cancel did.
#[derive(Clone, Debug, PartialEq)]
pub struct ForceCancelled {
    /// The order as it is now, with its lines.
    pub order: Order,
    /// The status it was cancelled from; `None` when it was already
    /// cancelled (a retry: nothing was written).
    pub from: Option<OrderStatus>,
    /// The refund the cancellation made owed, as it is after its first
    /// round with the gateway (succeeded, failed, or pending a retry);
    /// `None` when nothing was paid or the order was already cancelled.
    pub refund: Option<Payment>,
}

/// Cancels `order_id` for `admin`, whatever its open status, refunding
/// what was paid (see the module docs). `reason` is kept on the refund.
/// An order already cancelled answers as it is; one closed otherwise
/// (delivered, rejected, payment failed) is an illegal transition.
pub async fn force_cancel(
    saga: &Saga,
    admin: UserId,
    order_id: OrderId,
    reason: &str,
    now_ms: i64,
) -> Result<ForceCancelled> {
    let cancel = ForceCancel {
        order_id,
        actor_id: admin,
        reason: format!("cancelled by an admin: {reason}"),
        refund_id: saga.ids.next(),
        at_ms: now_ms,
    };
    let store = saga.store.as_ref();
    match store.force_cancel_order(&cancel).await? {
        ForceCancelOutcome::Cancelled {
            order: cancelled,
            from,
            refund,
        } => {
            metrics::counter!(DISPATCHER_ACTIONS_TOTAL, "action" => "force_cancel").increment(1);
            metrics::counter!(super::step::ORDER_STEPS_TOTAL, "status" => "cancelled").increment(1);
            tracing::info!(%order_id, %admin, from = from.as_str(), "order force-cancelled");
            saga.live
                .status_changed(&cancelled, cancelled.version, now_ms);
            let refund = match refund {
                Some(pending) => {
                    let id = pending.id;
                    // In its own task: a client hanging up must not abandon
                    // a refund.
                    match payments::run_detached(payments::refund(saga.clone(), pending)).await? {
                        Some(settled) => Some(settled),
                        None => store.payment(id).await?,
                    }
                }
                None => None,
            };
            let order = store
                .order(order_id)
                .await?
                .ok_or(Error::NotFound("order"))?;
            Ok(ForceCancelled {
                order,
                from: Some(from),
                refund,
            })
        }
        ForceCancelOutcome::Closed(order) if order.status == OrderStatus::Cancelled => {
            Ok(ForceCancelled {
                order,
                from: None,
                refund: None,
            })
        }
        ForceCancelOutcome::Closed(order) => Err(Error::IllegalTransition {
            current: order.status,
            target: OrderStatus::Cancelled,
            reason: Some("the order is closed; refund it with POST /v1/orders/{order_id}/refund"),
        }),
        ForceCancelOutcome::UnknownOrder => Err(Error::NotFound("order")),
    }
}

/// What a reassignment did.
#[derive(Clone, Debug, PartialEq)]
pub struct Reassigned {
    /// The order as it is now, with its lines.
    pub order: Order,
    /// The driver it was taken from, if it had one.
    pub from: Option<DriverId>,
}

/// Whether an order in `status` can change drivers: accepted and not yet
/// picked up (after pickup the food is with the driver).
pub fn reassignable(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Accepted | OrderStatus::Preparing | OrderStatus::ReadyForPickup
    )
}

/// Moves `order_id` from its driver (or from the matcher) to `to`, or back
/// to the matcher (`to` = `None`), for `admin` (see the module docs). The
/// new driver must be a driver account, not banned, online and free.
pub async fn reassign(
    store: &dyn Store,
    live: &dyn LiveSide,
    fleet: &dyn Fleet,
    admin: UserId,
    order_id: OrderId,
    to: Option<DriverId>,
    now_ms: i64,
) -> Result<Reassigned> {
    let order = store
        .order(order_id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    if !reassignable(order.status) {
        return Err(Error::Conflict {
            code: "not_reassignable",
            reason: format!(
                "only an order accepted and not yet picked up can be reassigned (it is {})",
                order.status.as_str()
            ),
            detail: Some(("current_status", order.status.as_str().to_owned())),
        });
    }
    let from = order.driver_id;
    match (from, to) {
        (Some(a), Some(b)) if a == b => {
            return Err(Error::conflict(
                "already_assigned",
                "the order is already this driver's",
            ));
        }
        (None, None) => {
            return Err(Error::conflict(
                "not_assigned",
                "the order has no driver: the matcher is already looking for one",
            ));
        }
        _ => {}
    }
    if let Some(driver_id) = to {
        check_new_driver(store, fleet, driver_id, order_id).await?;
    }
    let reassignment = Reassignment {
        order_id,
        from,
        to,
        actor_id: admin,
        at_ms: now_ms,
    };
    match store.reassign_driver(&reassignment).await? {
        ReassignOutcome::Applied(updated) => {
            metrics::counter!(DISPATCHER_ACTIONS_TOTAL, "action" => "reassign").increment(1);
            tracing::info!(
                %order_id, %admin,
                from = ?from.map(|d| d.to_string()),
                to = ?to.map(|d| d.to_string()),
                "order reassigned"
            );
            live.reassigned(&updated, from, now_ms);
            Ok(Reassigned {
                order: Order {
                    lines: order.lines,
                    ..updated
                },
                from,
            })
        }
        ReassignOutcome::Stale(None) => Err(Error::NotFound("order")),
        ReassignOutcome::Stale(Some(current)) if !reassignable(current.status) => {
            Err(Error::Conflict {
                code: "not_reassignable",
                reason: format!(
                    "the order moved on meanwhile (it is {})",
                    current.status.as_str()
                ),
                detail: Some(("current_status", current.status.as_str().to_owned())),
            })
        }
        ReassignOutcome::Stale(Some(current)) => Err(Error::Conflict {
            code: "driver_changed",
            reason: "the order's driver changed meanwhile (a driver accepted it, or another \
                     dispatcher moved it): read the order and try again"
                .to_owned(),
            detail: Some((
                "current_driver_id",
                current.driver_id.map(|d| d.to_string()).unwrap_or_default(),
            )),
        }),
        ReassignOutcome::DriverBusy(held) => Err(driver_busy(held)),
    }
}

/// The new driver must be a driver account, not banned, online (the
/// engine has heard from it within the presence timeout and it has not
/// declared itself offline) and hold no other order.
async fn check_new_driver(
    store: &dyn Store,
    fleet: &dyn Fleet,
    driver_id: DriverId,
    order_id: OrderId,
) -> Result<()> {
    let user = store
        .user(driver_id.into())
        .await?
        .filter(|u| u.role == auth::Role::Driver)
        .ok_or(Error::NotFound("driver"))?;
    if user.banned_at_ms.is_some() {
        return Err(Error::conflict("driver_banned", "the driver is banned"));
    }
    let view = fleet.driver(driver_id);
    if let Some(held) = view.and_then(|v| v.current_order)
        && held != order_id
    {
        return Err(driver_busy(held));
    }
    if view.is_none_or(|v| v.status == DriverStatus::Offline) {
        return Err(Error::conflict(
            "driver_offline",
            "the driver is offline: only a driver online (pinging, declared available) can be given an order",
        ));
    }
    Ok(())
}

fn driver_busy(held: OrderId) -> Error {
    Error::Conflict {
        code: "driver_busy",
        reason: "the driver holds another order".to_owned(),
        detail: Some(("held_order_id", held.to_string())),
    }
}

/// What setting a driver offline did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverOffline {
    /// The driver's live status now: `offline`, or `busy` while it still
    /// holds an order (reassign the order to free it).
    pub status: DriverStatus,
    /// The order whose pending offer to the driver was withdrawn (it moves
    /// on to another driver).
    pub withdrawn_offer_order: Option<OrderId>,
    /// The order the driver still holds, if any.
    pub current_order: Option<OrderId>,
}

/// Sets `driver_id` offline for an admin: the driver is declared offline
/// (until it declares itself available again) and its pending offer, if
/// any, is withdrawn. An order it holds stays its own (reassign it to take
/// it away).
pub async fn set_driver_offline(
    store: &dyn Store,
    fleet: &dyn Fleet,
    driver_id: DriverId,
    now_ms: i64,
) -> Result<DriverOffline> {
    store
        .user(driver_id.into())
        .await?
        .filter(|u| u.role == auth::Role::Driver)
        .ok_or(Error::NotFound("driver"))?;
    let (status, withdrawn_offer_order) = fleet.set_offline(driver_id, now_ms);
    metrics::counter!(DISPATCHER_ACTIONS_TOTAL, "action" => "set_offline").increment(1);
    Ok(DriverOffline {
        status,
        withdrawn_offer_order,
        current_order: fleet.driver(driver_id).and_then(|v| v.current_order),
    })
}
