//! Payments: the gateway interface ([`gateway`]), the built-in simulated
//! gateway ([`simulated`]), and the saga that moves an order's money.
//!
//! The saga, step by step:
//! 1. Placing an order writes the order and its charge (pending) in one
//!    transaction (`OrderStore::place_order`).
//! 2. [`collect`] calls the gateway with the charge's id as idempotency
//!    key, retrying transient failures with exponential backoff, and
//!    settles the charge: the order becomes `paid`, or `payment_failed`
//!    with its stock given back (`PaymentStore::settle_charge`).
//! 3. Compensation: a step to `cancelled` or `rejected`, or a charge that
//!    succeeded for an order cancelled meanwhile, writes a pending refund in
//!    the same transaction; [`refund`] sends it.
//!
//! Gateway calls run in their own task ([`run_detached`]), so a client that
//! hangs up cannot abandon a payment halfway; a crash can, and
//! [`resume_pending`] picks those up at start-up (safe because every call
//! repeats its idempotency key). A charge whose retries run out fails the
//! order; a refund whose retries run out is marked failed, and its amount
//! becomes refundable again for an admin to retry.

use std::future::Future;
use std::time::Duration;

use crate::store::{
    self, Order, Payment, PaymentKind, PaymentStatus, SettleOutcome, Settlement, StoreError,
};
use crate::{AppState, live, now_ms};

pub mod gateway;
pub mod simulated;

pub use gateway::{ChargeCall, GatewayError, PaymentGateway, RefundCall};
pub use simulated::{GatewayTotals, SimulatedGateway};

/// Pending payments resumed per page at start-up.
const RESUME_PAGE: u32 = 500;

/// Runs `work` in its own task and waits for it, so that dropping the
/// caller (a client hanging up mid-request) does not cancel it.
pub(crate) async fn run_detached<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(result) => result,
        // Only a panic in `work` (tasks are never aborted): report it as a
        // failure rather than unwinding through the handler.
        Err(e) => Err(StoreError::Corrupt(format!("payment task failed: {e}"))),
    }
}

/// Calls `attempt` until it succeeds, declines, or `attempts` transient
/// failures have happened, sleeping `backoff`, 2×, 4×… in between. The
/// settlement and the number of calls made.
async fn with_retries<F, Fut>(
    state: &AppState,
    payment: &Payment,
    mut attempt: F,
) -> (Settlement, i64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, GatewayError>>,
{
    let attempts = state.config.payment_attempts.max(1);
    let mut backoff = Duration::from_millis(state.config.payment_backoff_ms);
    let mut made = 0;
    loop {
        made += 1;
        match attempt().await {
            Ok(gateway_ref) => return (Settlement::Succeeded { gateway_ref }, made),
            Err(GatewayError::Declined(why)) => return (Settlement::Failed { failure: why }, made),
            Err(GatewayError::Transient(why)) if made >= i64::from(attempts) => {
                let failure = format!("gateway unavailable after {attempts} attempts: {why}");
                return (Settlement::Failed { failure }, made);
            }
            Err(GatewayError::Transient(why)) => {
                metrics::counter!("hexdash_payment_retries_total").increment(1);
                tracing::debug!(payment_id = %payment.id, attempt = made, %why, "retrying payment");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
    }
}

/// Step 2 of the saga for one pending charge of `order` (as placed):
/// charge, settle, tell the live side, and send any refund the settlement
/// made owed. The settlement, and the order as it is after it.
pub async fn collect(
    state: AppState,
    charge: Payment,
    mut order: Order,
) -> Result<(SettleOutcome, Order), StoreError> {
    let call = ChargeCall {
        idempotency_key: charge.id,
        amount_cents: charge.amount_cents,
        method: charge.method.clone(),
        token: charge.token.clone().unwrap_or_default(),
    };
    let gateway = state.gateway.clone();
    let (settlement, attempts) = with_retries(&state, &charge, || gateway.charge(&call)).await;
    let now = now_ms();
    let outcome = state
        .store
        .settle_charge(charge.id, &settlement, attempts, now)
        .await?;
    match &outcome {
        SettleOutcome::Settled {
            order_status,
            moved,
            refund,
            ..
        } => {
            let label = match settlement {
                Settlement::Succeeded { .. } => "succeeded",
                Settlement::Failed { .. } => "failed",
            };
            metrics::counter!("hexdash_charges_total", "outcome" => label).increment(1);
            order.status = *order_status;
            if *moved {
                order.updated_at_ms = now;
                live::on_status_changed(&state, &order, now);
            }
            if let Some(refund) = refund.clone() {
                spawn_refund(state.clone(), refund);
            }
        }
        // Settled by someone else: the order as stored.
        SettleOutcome::NotPending(_) => {
            if let Some(stored) = state.store.order(order.id).await? {
                order = stored;
            }
        }
    }
    Ok((outcome, order))
}

/// Step 3: sends a pending refund to the gateway and settles it.
pub async fn refund(state: AppState, refund: Payment) -> Result<Option<Payment>, StoreError> {
    let charge_ref = state
        .store
        .payments(refund.order_id)
        .await?
        .into_iter()
        .find(|p| p.kind == PaymentKind::Charge && p.status == PaymentStatus::Succeeded)
        .and_then(|p| p.gateway_ref);
    let (settlement, attempts) = match charge_ref {
        Some(charge_ref) => {
            let call = RefundCall {
                idempotency_key: refund.id,
                charge_ref,
                amount_cents: refund.amount_cents,
            };
            let gateway = state.gateway.clone();
            with_retries(&state, &refund, || gateway.refund(&call)).await
        }
        // The store only writes refunds against succeeded charges.
        None => {
            let failure = "no succeeded charge to refund".to_owned();
            (Settlement::Failed { failure }, 0)
        }
    };
    let label = match settlement {
        Settlement::Succeeded { .. } => "succeeded",
        Settlement::Failed { .. } => "failed",
    };
    metrics::counter!("hexdash_refunds_total", "outcome" => label).increment(1);
    state
        .store
        .settle_refund(refund.id, &settlement, attempts, now_ms())
        .await
}

/// Sends a refund in the background (compensations nobody waits for).
pub(crate) fn spawn_refund(state: AppState, payment: Payment) {
    tokio::spawn(async move {
        let id = payment.id;
        if let Err(e) = refund(state, payment).await {
            tracing::error!(payment_id = %id, error = %e, "refund could not be settled");
        }
    });
}

/// Resumes every payment a crash left pending: charges are collected
/// (settling their orders), refunds sent. Call once at start-up; the
/// payments run in the background. How many were resumed.
pub async fn resume_pending(state: &AppState) -> Result<usize, StoreError> {
    store::for_each_page(
        RESUME_PAGE,
        |after, limit| state.store.pending_payments(after, limit),
        |p| p.id,
        |page| {
            for payment in page {
                tokio::spawn(resume(state.clone(), payment));
            }
        },
    )
    .await
}

/// Resumes one payment in the background.
async fn resume(state: AppState, payment: Payment) {
    let id = payment.id;
    let result = match payment.kind {
        PaymentKind::Charge => match state.store.order(payment.order_id).await {
            Ok(Some(order)) => collect(state, payment, order).await.map(|_| ()),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        },
        PaymentKind::Refund => refund(state, payment).await.map(|_| ()),
    };
    if let Err(e) = result {
        tracing::error!(payment_id = %id, error = %e, "resumed payment failed");
    }
}
