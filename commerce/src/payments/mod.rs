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
//! order.
//!
//! Refunds that fail, and which failures are retried:
//! - A decline (the gateway's final no: unknown charge, refund exceeds the
//!   charge) is final: the refund is marked `failed`, its amount becomes
//!   refundable again, and it is logged at ERROR and counted
//!   (`hexdash_refunds_total{outcome="failed"}`).
//! - A transient failure (no answer: timeout, processor unavailable) that
//!   outlasts one round of `payment_attempts` calls is retried in the
//!   background: the refund stays `pending` (its amount still owed), with
//!   the failure, the rounds so far and the next round's time on its row
//!   ([`PaymentStore::defer_refund`]); it is logged at WARN and counted
//!   (`outcome="retried"`). Rounds wait `refund_retry_backoff_ms`, doubling,
//!   at most `refund_retry_max_backoff_ms`; after `refund_retry_rounds`
//!   rounds the refund fails for good as above. The round's timer lives in
//!   memory (one sleeping task per refund owed, no more: a round settles
//!   the refund or, if it is the one that deferred it, starts the next
//!   timer) and ends when the app's shutdown token is cancelled; the row is
//!   durable, so after a restart [`resume_pending`] waits out what is left
//!   of it. Waits are at least `MIN_REFUND_RETRY_WAIT`.
//! - A refund that cannot be settled because the store failed stays
//!   `pending` and is sent again (same key) after the longest backoff.
//!
//! [`PaymentStore::defer_refund`]: crate::store::PaymentStore::defer_refund

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use engine::PaymentId;
use tokio_util::sync::CancellationToken;

use crate::ports::LiveSide;
use crate::store::{
    self, Order, Payment, PaymentKind, PaymentStatus, SettleOutcome, Settlement, Store, StoreError,
};

pub mod breaker;
pub mod gateway;
pub mod simulated;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use gateway::{ChargeCall, GatewayError, PaymentGateway, RefundCall};
pub use simulated::{GatewayTotals, SimulatedGateway};

/// Pending payments resumed per page at start-up.
const RESUME_PAGE: u32 = 500;
/// The shortest wait before a refund is sent again, whatever the backoff
/// settings say: with a backoff of 0 and the database down, a retry would
/// otherwise start the next one at once, forever.
const MIN_REFUND_RETRY_WAIT: Duration = Duration::from_millis(100);

/// How hard the saga tries: gateway calls per round and the waits between
/// them, and the background rounds of a refund the gateway could not be
/// reached for. (The REST layer's `Config` carries the same fields, under
/// the same names with a `payment_` prefix where shown.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Gateway calls per payment before a transient failure is final
    /// (`payment_attempts`; 0 counts as 1).
    pub attempts: u32,
    /// Wait before the first retry within a round; doubles each time
    /// (`payment_backoff_ms`).
    pub backoff_ms: u64,
    /// Background rounds for a refund the gateway could not be reached
    /// for, before it fails for good.
    pub refund_retry_rounds: u32,
    /// Wait before a refund's first background round; doubles each round.
    pub refund_retry_backoff_ms: u64,
    /// Longest wait between two background rounds (and before a refund the
    /// store failed for is tried again).
    pub refund_retry_max_backoff_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff_ms: 50,
            refund_retry_rounds: 10,
            refund_retry_backoff_ms: 30_000,
            refund_retry_max_backoff_ms: 30 * 60_000,
        }
    }
}

/// What the saga works with: the store, the gateway, the live side to tell
/// of a settled order, its settings, and the app's shutdown token (refund
/// retry timers end with it instead of keeping the store alive and sending
/// rounds for an app that is gone). Cheap to clone (`Arc`s).
#[derive(Clone)]
pub struct Saga {
    /// Orders and payments (the source of truth).
    pub store: Arc<dyn Store>,
    /// The card processor.
    pub gateway: Arc<dyn PaymentGateway>,
    /// Told when a settlement moves an order.
    pub live: Arc<dyn LiveSide>,
    /// Retries and backoff.
    pub config: Config,
    /// Cancelled when the app stops.
    pub shutdown: CancellationToken,
    /// The app's injected clock: the saga's background rounds stamp
    /// payments and schedule retries from it.
    pub clock: Arc<dyn clock::Clock>,
    /// Makes the ids of new orders and payments (UUIDv7 from the same
    /// clock), so the use-cases that carry the saga make them at the edge.
    pub ids: Arc<clock::Ids>,
}

/// Charges settled, by `outcome`.
pub const CHARGES_TOTAL: &str = "hexdash_charges_total";
/// Refund outcomes, by `outcome` (see [`outcome`]).
pub const REFUNDS_TOTAL: &str = "hexdash_refunds_total";
/// Gateway calls repeated within one round after a transient failure.
pub const PAYMENT_RETRIES_TOTAL: &str = "hexdash_payment_retries_total";

/// The `outcome` label values of [`CHARGES_TOTAL`] and [`REFUNDS_TOTAL`].
pub mod outcome {
    /// The money moved.
    pub const SUCCEEDED: &str = "succeeded";
    /// For good: declined, or (refunds) out of background retries.
    pub const FAILED: &str = "failed";
    /// Refunds only: the gateway could not be reached; a background retry
    /// is scheduled.
    pub const RETRIED: &str = "retried";
}

/// HELP text for the payment metrics, and their series at zero so that a
/// rate of failures can be graphed before the first one. Call once the
/// metrics recorder is installed (the REST layer's `describe_metrics` does).
pub fn describe_metrics() {
    metrics::describe_counter!(
        CHARGES_TOTAL,
        "Charges settled, by outcome (succeeded, failed)"
    );
    metrics::describe_counter!(
        REFUNDS_TOTAL,
        "Refund outcomes: succeeded; failed (declined, or out of background retries; the amount is refundable again); retried (gateway unreachable, a background retry is scheduled)"
    );
    metrics::describe_counter!(
        PAYMENT_RETRIES_TOTAL,
        "Gateway calls repeated after a transient failure, within one round of a payment"
    );
    for label in [outcome::SUCCEEDED, outcome::FAILED] {
        metrics::counter!(CHARGES_TOTAL, "outcome" => label).increment(0);
    }
    for label in [outcome::SUCCEEDED, outcome::FAILED, outcome::RETRIED] {
        metrics::counter!(REFUNDS_TOTAL, "outcome" => label).increment(0);
    }
    metrics::counter!(PAYMENT_RETRIES_TOTAL).increment(0);
    metrics::describe_gauge!(
        breaker::STATE,
        "The payment circuit breaker: 0 closed, 1 open (no gateway calls, new orders refused), 2 half-open (one trial call out)"
    );
    metrics::describe_counter!(
        breaker::OPENED_TOTAL,
        "Times the payment circuit breaker opened"
    );
    metrics::describe_counter!(
        breaker::REFUSED_TOTAL,
        "Payment gateway calls not made because the circuit breaker was open"
    );
    metrics::counter!(breaker::OPENED_TOTAL).increment(0);
    metrics::counter!(breaker::REFUSED_TOTAL).increment(0);
}

/// Runs `work` in its own task and waits for it, so that dropping the
/// caller (a client hanging up mid-request) does not cancel it.
pub async fn run_detached<T, F>(work: F) -> Result<T, StoreError>
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
/// failures have happened, sleeping `backoff`, 2×, 4×… in between: one
/// round. The last answer (a transient failure only once they ran out) and
/// the number of calls made.
async fn with_retries<F, Fut>(
    config: &Config,
    payment: &Payment,
    mut attempt: F,
) -> (Result<String, GatewayError>, i64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, GatewayError>>,
{
    let attempts = config.attempts.max(1);
    let mut backoff = Duration::from_millis(config.backoff_ms);
    let mut made = 0;
    loop {
        made += 1;
        match attempt().await {
            Err(GatewayError::Transient(why)) if made < i64::from(attempts) => {
                metrics::counter!(PAYMENT_RETRIES_TOTAL).increment(1);
                tracing::debug!(payment_id = %payment.id, attempt = made, %why, "retrying payment");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            answer => return (answer, made),
        }
    }
}

/// Why a round of `attempts` calls that only failed transiently failed.
fn unreachable_failure(attempts: i64, why: &str) -> String {
    format!("gateway unavailable after {attempts} attempts: {why}")
}

/// Step 2 of the saga for one pending charge of `order` (as placed):
/// charge, settle, tell the live side, and send any refund the settlement
/// made owed. The settlement, and the order as it is after it.
pub async fn collect(
    state: Saga,
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
    let (answer, attempts) = with_retries(&state.config, &charge, || gateway.charge(&call)).await;
    let settlement = match answer {
        Ok(gateway_ref) => Settlement::Succeeded { gateway_ref },
        Err(GatewayError::Declined(failure)) => Settlement::Failed { failure },
        Err(GatewayError::Transient(why)) => Settlement::Failed {
            failure: unreachable_failure(attempts, &why),
        },
        Err(GatewayError::Unavailable(why)) => Settlement::Failed { failure: why },
    };
    let now = state.clock.now_ms();
    let outcome = state
        .store
        .settle_charge(charge.id, &settlement, attempts, state.ids.next(), now)
        .await?;
    match &outcome {
        SettleOutcome::Settled {
            order_status,
            moved,
            refund,
            version,
            ..
        } => {
            let label = match settlement {
                Settlement::Succeeded { .. } => outcome::SUCCEEDED,
                Settlement::Failed { .. } => outcome::FAILED,
            };
            metrics::counter!(CHARGES_TOTAL, "outcome" => label).increment(1);
            order.status = *order_status;
            order.version = *version;
            if *moved {
                order.updated_at_ms = now;
                // The settlement's version, so the board never takes it
                // over a newer step.
                state.live.status_changed(&order, order.version, now);
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

/// Step 3: sends a pending refund to the gateway (one round of calls) and
/// settles it, or puts it off for a background retry (see the module
/// docs). The refund as it is now, `None` if it was no longer pending.
pub async fn refund(state: Saga, refund: Payment) -> Result<Option<Payment>, StoreError> {
    let charge_ref = state
        .store
        .payments(refund.order_id)
        .await?
        .into_iter()
        .find(|p| p.kind == PaymentKind::Charge && p.status == PaymentStatus::Succeeded)
        .and_then(|p| p.gateway_ref);
    let (answer, attempts) = match charge_ref {
        Some(charge_ref) => {
            let call = RefundCall {
                idempotency_key: refund.id,
                charge_ref,
                amount_cents: refund.amount_cents,
            };
            let gateway = state.gateway.clone();
            with_retries(&state.config, &refund, || gateway.refund(&call)).await
        }
        // The store only writes refunds against succeeded charges.
        None => {
            let why = "no succeeded charge to refund".to_owned();
            (Err(GatewayError::Declined(why)), 0)
        }
    };
    let now = state.clock.now_ms();
    let failure = match answer {
        Ok(gateway_ref) => {
            let settlement = Settlement::Succeeded { gateway_ref };
            let settled = state
                .store
                .settle_refund(refund.id, &settlement, attempts, now)
                .await?;
            // Counted once: `None` means someone else settled it.
            if settled.is_some() {
                metrics::counter!(REFUNDS_TOTAL, "outcome" => outcome::SUCCEEDED).increment(1);
                if refund.retries > 0 {
                    tracing::info!(
                        order_id = %refund.order_id,
                        payment_id = %refund.id,
                        retries = refund.retries,
                        "refund went through on a background retry"
                    );
                }
            }
            return Ok(settled);
        }
        Err(GatewayError::Declined(why)) => why,
        Err(GatewayError::Transient(why) | GatewayError::Unavailable(why)) => {
            let failure = unreachable_failure(attempts, &why);
            let rounds = u32::try_from(refund.retries).unwrap_or(u32::MAX);
            if rounds >= state.config.refund_retry_rounds {
                format!("{failure} (and {rounds} background retries)")
            } else {
                return defer(state, refund, rounds, &failure, attempts, now).await;
            }
        }
    };
    let settlement = Settlement::Failed {
        failure: failure.clone(),
    };
    let settled = state
        .store
        .settle_refund(refund.id, &settlement, attempts, now)
        .await?;
    if settled.is_some() {
        metrics::counter!(REFUNDS_TOTAL, "outcome" => outcome::FAILED).increment(1);
        tracing::error!(
            order_id = %refund.order_id,
            payment_id = %refund.id,
            amount_cents = refund.amount_cents,
            reason = %failure,
            "refund failed for good; its amount is refundable again"
        );
    }
    Ok(settled)
}

/// Puts a refund the gateway could not be reached for (after `rounds`
/// background rounds) off until its next round, and starts that round's
/// timer; only if this round is the one that deferred it (see
/// [`PaymentStore::defer_refund`]), so each refund has one timer.
///
/// [`PaymentStore::defer_refund`]: crate::store::PaymentStore::defer_refund
async fn defer(
    state: Saga,
    refund: Payment,
    rounds: u32,
    failure: &str,
    attempts: i64,
    now: i64,
) -> Result<Option<Payment>, StoreError> {
    let delay = retry_delay(&state.config, rounds);
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    let deferred = state
        .store
        .defer_refund(
            refund.id,
            refund.retries,
            failure,
            attempts,
            now.saturating_add(delay_ms),
            now,
        )
        .await?;
    if deferred.is_some() {
        metrics::counter!(REFUNDS_TOTAL, "outcome" => outcome::RETRIED).increment(1);
        tracing::warn!(
            order_id = %refund.order_id,
            payment_id = %refund.id,
            reason = %failure,
            round = rounds + 1,
            of = state.config.refund_retry_rounds,
            retry_in_ms = delay_ms,
            "refund failed; retrying in the background"
        );
        retry_later(state, refund.id, delay);
    }
    Ok(deferred)
}

/// The wait before background round `rounds + 1` of a refund:
/// `refund_retry_backoff_ms` doubled per round already made, at most
/// `refund_retry_max_backoff_ms`, at least [`MIN_REFUND_RETRY_WAIT`].
fn retry_delay(config: &Config, rounds: u32) -> Duration {
    let factor = 1u64.checked_shl(rounds).unwrap_or(u64::MAX);
    let ms = config
        .refund_retry_backoff_ms
        .saturating_mul(factor)
        .min(config.refund_retry_max_backoff_ms);
    Duration::from_millis(ms).max(MIN_REFUND_RETRY_WAIT)
}

/// The wait before a refund the store failed for is sent again: the
/// longest backoff, at least [`MIN_REFUND_RETRY_WAIT`].
fn store_retry_delay(config: &Config) -> Duration {
    Duration::from_millis(config.refund_retry_max_backoff_ms).max(MIN_REFUND_RETRY_WAIT)
}

/// Sends the refund `id` again after `delay`, if it is still pending and
/// the app has not stopped meanwhile (a stopped app's refunds are resumed
/// by the next start, [`resume_pending`]).
fn retry_later(state: Saga, id: PaymentId, delay: Duration) {
    tokio::spawn(async move {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        match state.store.payment(id).await {
            Ok(Some(p)) if p.status == PaymentStatus::Pending => send_refund(state, p).await,
            // Settled meanwhile, or gone with its order.
            Ok(_) => {}
            Err(e) => retry_after_store_error(state, id, &e),
        }
    });
}

/// Sends a refund in the background (compensations nobody waits for).
pub fn spawn_refund(state: Saga, payment: Payment) {
    tokio::spawn(send_refund(state, payment));
}

/// One round of a refund; if the store failed for it, another later.
async fn send_refund(state: Saga, payment: Payment) {
    let id = payment.id;
    if let Err(e) = refund(state.clone(), payment).await {
        retry_after_store_error(state, id, &e);
    }
}

/// Sends the refund `id` again after [`store_retry_delay`], the store having
/// failed for it (the gateway call repeats its key, so a refund that went
/// through but was not recorded is answered, not paid, again).
fn retry_after_store_error(state: Saga, id: PaymentId, error: &StoreError) {
    let delay = store_retry_delay(&state.config);
    tracing::error!(
        payment_id = %id,
        %error,
        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "refund could not be settled; trying again later"
    );
    retry_later(state, id, delay);
}

/// Resumes every payment a crash (or a stop) left pending: charges are
/// collected (settling their orders), refunds sent, or, for refunds waiting
/// for a background round, sent when that round is due. Call once at
/// start-up; the payments run in the background. How many were resumed.
pub async fn resume_pending(state: &Saga) -> Result<usize, StoreError> {
    let now = state.clock.now_ms();
    store::for_each_page(
        RESUME_PAGE,
        |after, limit| state.store.pending_payments(after, limit),
        |p| p.id,
        |page| {
            for payment in page {
                match (payment.kind, payment.retry_at_ms) {
                    (PaymentKind::Charge, _) => {
                        tokio::spawn(resume_charge(state.clone(), payment));
                    }
                    (PaymentKind::Refund, None) => spawn_refund(state.clone(), payment),
                    (PaymentKind::Refund, Some(at_ms)) => {
                        let wait_ms = u64::try_from(at_ms.saturating_sub(now)).unwrap_or(0);
                        retry_later(state.clone(), payment.id, Duration::from_millis(wait_ms));
                    }
                }
            }
        },
    )
    .await
}

/// Collects one charge a crash left pending, in the background.
async fn resume_charge(state: Saga, charge: Payment) {
    let id = charge.id;
    let result = match state.store.order(charge.order_id).await {
        Ok(Some(order)) => collect(state, charge, order).await.map(|_| ()),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!(payment_id = %id, error = %e, "resumed payment failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_rounds_back_off_to_the_cap() {
        let config = Config {
            refund_retry_backoff_ms: 1_000,
            refund_retry_max_backoff_ms: 10_000,
            ..Config::default()
        };
        let check = |rounds, expected_ms| {
            assert_eq!(
                retry_delay(&config, rounds),
                Duration::from_millis(expected_ms),
                "round {rounds}"
            );
        };
        check(0, 1_000);
        check(1, 2_000);
        check(3, 8_000);
        check(4, 10_000);
        check(63, 10_000);
        check(64, 10_000);
        check(u32::MAX, 10_000);
    }

    #[test]
    fn refund_retries_never_wait_less_than_the_minimum() {
        let config = Config {
            refund_retry_backoff_ms: 0,
            refund_retry_max_backoff_ms: 0,
            ..Config::default()
        };
        assert_eq!(retry_delay(&config, 0), MIN_REFUND_RETRY_WAIT);
        assert_eq!(retry_delay(&config, 5), MIN_REFUND_RETRY_WAIT);
        assert_eq!(store_retry_delay(&config), MIN_REFUND_RETRY_WAIT);
    }
}
