//! An admin's refund of an order: written pending if what was paid and not
//! yet refunded covers it (the store serialises refunds per order), then
//! sent to the gateway by the payments saga, waiting for its first round.

use engine::{OrderId, UserId};

use crate::payments::{self, Saga, run_detached};
use crate::store::{Payment, RefundOutcome, RefundRequest};
use crate::{Error, Result};

/// A refund an admin asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundAsk {
    /// The order to refund.
    pub order_id: OrderId,
    /// How much; `None`: everything still refundable.
    pub amount_cents: Option<i64>,
    /// Why (kept on the refund).
    pub reason: String,
    /// Who asks.
    pub actor_id: UserId,
}

/// Writes and sends the refund; the refund as it is after its first round
/// (succeeded, failed, or pending a background retry).
pub async fn refund(saga: &Saga, ask: RefundAsk, now_ms: i64) -> Result<Payment> {
    let store = saga.store.as_ref();
    let request = |amount_cents| RefundRequest {
        id: saga.ids.next(),
        order_id: ask.order_id,
        amount_cents,
        reason: ask.reason.clone(),
        actor_id: Some(ask.actor_id),
        at_ms: now_ms,
    };
    let mut outcome = store
        .request_refund(&request(ask.amount_cents.unwrap_or(i64::MAX)))
        .await?;
    // "Everything left": ask again for exactly what the store said is left.
    if ask.amount_cents.is_none()
        && let RefundOutcome::Exceeds { refundable_cents } = outcome
        && refundable_cents > 0
    {
        outcome = store.request_refund(&request(refundable_cents)).await?;
    }
    let pending = match outcome {
        RefundOutcome::Created(refund) => refund,
        RefundOutcome::Exceeds { refundable_cents } => {
            return Err(Error::Invalid {
                code: "refund_exceeds_paid",
                reason: format!("at most {refundable_cents} cents can be refunded"),
                detail: Some(("refundable_cents", refundable_cents.to_string())),
            });
        }
        RefundOutcome::UnknownOrder => return Err(Error::NotFound("order")),
    };
    let id = pending.id;
    // In its own task: a client hanging up must not abandon a refund.
    let settled = run_detached(payments::refund(saga.clone(), pending)).await?;
    match settled {
        Some(refund) => Ok(refund),
        None => store.payment(id).await?.ok_or(Error::NotFound("payment")),
    }
}
