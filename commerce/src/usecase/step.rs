//! Stepping an order (`accepted`, `preparing`, … by the party whose step
//! it is) and cancelling it. The lifecycle decides; the store applies the
//! step as a compare-and-set (a racing step makes this one a conflict) and,
//! for `cancelled` and `rejected`, gives the stock back and writes the
//! refund owed in the same transaction; then the live side hears of it and
//! the refund is sent in the background (the compensation).

use auth::Principal;

use crate::lifecycle::{self, Action, Party, Refusal};
use crate::payments::{self, Saga};
use crate::store::{Order, Payment, Transition, TransitionOutcome};
use crate::{Error, Result};

/// Order steps taken, by the `status` stepped to.
pub const ORDER_STEPS_TOTAL: &str = "hexdash_order_steps_total";

/// Takes `action` on `order` (as the caller read it, with its lines) for
/// `principal`, a `party` to it. The order after the step, with its lines,
/// and its charge.
pub async fn step(
    saga: &Saga,
    principal: &Principal,
    order: Order,
    party: Party,
    action: Action,
    now_ms: i64,
) -> Result<(Order, Option<Payment>)> {
    let to = match lifecycle::decide(party, &order, action) {
        Ok(to) => to,
        Err(Refusal::NotYours) => {
            return Err(match action {
                Action::Cancel => {
                    Error::forbidden("only the customer or an admin may cancel an order")
                }
                Action::Set(to) => {
                    Error::forbidden(format!("you may not set an order to {}", to.as_str()))
                }
            });
        }
        Err(refusal) => return Err(illegal(order.status, action.target(), refusal)),
    };
    apply(saga, order, to, Some(principal.user_id), now_ms).await
}

/// Rejects `order`, paid and not accepted in time, as the system
/// (`system:orders`): the restaurant's rejection without the restaurant
/// (`usecase::stuck` decides when). The same compare-and-set, stock given
/// back, refund and event as [`step`]; an order that moved meanwhile (the
/// restaurant accepted it a moment before) is an
/// [`Error::IllegalTransition`] and stays as it is.
pub async fn reject_as_system(
    saga: &Saga,
    order: Order,
    now_ms: i64,
) -> Result<(Order, Option<Payment>)> {
    let to = engine::OrderStatus::Rejected;
    if order.status != engine::OrderStatus::Paid {
        return Err(illegal(order.status, to, Refusal::NoSuchStep));
    }
    apply(saga, order, to, None, now_ms).await
}

/// Moves `order` from the status the caller read to `to` for `actor_id`
/// (`None`: the system) as a compare-and-set, with its compensations; the
/// live side hears of it and a refund it made owed is sent in the
/// background.
async fn apply(
    saga: &Saga,
    order: Order,
    to: engine::OrderStatus,
    actor_id: Option<engine::UserId>,
    now_ms: i64,
) -> Result<(Order, Option<Payment>)> {
    let transition = Transition {
        order_id: order.id,
        from: order.status,
        to,
        actor_id,
        at_ms: now_ms,
        refund_id: saga.ids.next(),
    };
    match saga.store.transition_order(&transition).await? {
        TransitionOutcome::Applied(updated, refund) => {
            metrics::counter!(ORDER_STEPS_TOTAL, "status" => to.as_str()).increment(1);
            // The outbox's outcome carries the version the change got; until
            // then 0 (unversioned: applied as before).
            saga.live.status_changed(&updated, updated.version, now_ms);
            if let Some(refund) = refund {
                payments::spawn_refund(saga.clone(), refund);
            }
            let charge = super::charge_of(saga.store.as_ref(), updated.id).await?;
            let updated = Order {
                lines: order.lines,
                ..updated
            };
            Ok((updated, charge))
        }
        TransitionOutcome::Stale(Some(current)) => Err(illegal(current, to, Refusal::NoSuchStep)),
        TransitionOutcome::Stale(None) => Err(Error::NotFound("order")),
    }
}

/// Cancels `order` for `principal` ([`step`] with [`Action::Cancel`]).
pub async fn cancel(
    saga: &Saga,
    principal: &Principal,
    order: Order,
    party: Party,
    now_ms: i64,
) -> Result<(Order, Option<Payment>)> {
    step(saga, principal, order, party, Action::Cancel, now_ms).await
}

fn illegal(current: engine::OrderStatus, target: engine::OrderStatus, refusal: Refusal) -> Error {
    Error::IllegalTransition {
        current,
        target,
        reason: refusal.reason(),
    }
}
