//! The payment gateway interface: what the api asks of a card processor.
//!
//! Every call carries an idempotency key (the payment's id), so a retried
//! call after a timeout or a crash can never charge or refund twice: a real
//! processor (Stripe, Adyen) dedupes on it, and so does the simulated one.

use async_trait::async_trait;
use engine::PaymentId;

/// A charge of `amount_cents` to the payment method behind `token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeCall {
    pub idempotency_key: PaymentId,
    pub amount_cents: i64,
    pub method: String,
    pub token: String,
}

/// A refund of `amount_cents` of the charge the gateway called `charge_ref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundCall {
    pub idempotency_key: PaymentId,
    pub charge_ref: String,
    pub amount_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// A final no (card declined, refund refused): retrying will not help.
    #[error("declined: {0}")]
    Declined(String),
    /// Could not get an answer (timeout, 5xx): retry with the same key.
    #[error("transient gateway failure: {0}")]
    Transient(String),
    /// The call was not made: the gateway has been failing and the
    /// circuit breaker is open ([`super::breaker`]). Retrying at once will
    /// not help; the saga does not retry it within a round.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// The gateway's reference for the charge.
    async fn charge(&self, call: &ChargeCall) -> Result<String, GatewayError>;
    /// The gateway's reference for the refund.
    async fn refund(&self, call: &RefundCall) -> Result<String, GatewayError>;
    /// `Some(milliseconds)` while calls are refused without being made
    /// (an open circuit breaker): new orders are refused up front rather
    /// than created to fail. A plain gateway is always available.
    fn unavailable_for_ms(&self) -> Option<u64> {
        None
    }
}
