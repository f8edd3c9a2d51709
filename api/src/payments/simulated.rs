//! The built-in simulated gateway, for development, tests and load tests.
//!
//! Test tokens:
//!
//! | token          | charge                                              |
//! |----------------|-----------------------------------------------------|
//! | `tok_ok`       | succeeds                                            |
//! | `tok_declined` | declined                                            |
//! | `tok_error`    | fails transiently, every time                       |
//! | `tok_flaky`    | fails transiently twice per payment, then succeeds  |
//! | anything else  | declined as an unknown token                        |
//!
//! Like a real processor it remembers each idempotency key's outcome, so a
//! retried call answers as the first did and moves no money again, and it
//! refuses refunds beyond what a charge took. It counts the money it
//! actually moved, which tests use to prove nothing was charged twice.

use std::collections::HashMap;

use async_trait::async_trait;
use engine::PaymentId;
use parking_lot::Mutex;

use super::gateway::{ChargeCall, GatewayError, PaymentGateway, RefundCall};

/// Transient failures `tok_flaky` gives before it succeeds.
const FLAKY_FAILURES: u32 = 2;

#[derive(Default)]
pub struct SimulatedGateway {
    state: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    /// Final outcomes by idempotency key (charges and refunds).
    outcomes: HashMap<PaymentId, Result<String, GatewayError>>,
    /// Transient failures given so far per key (`tok_flaky`).
    failures: HashMap<PaymentId, u32>,
    /// Per charge reference: amount charged and amount refunded.
    charges: HashMap<String, (i64, i64)>,
    charges_made: u64,
    refunds_made: u64,
}

/// What the simulated gateway did, for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayTotals {
    pub charges: u64,
    pub charged_cents: i64,
    pub refunds: u64,
    pub refunded_cents: i64,
}

impl SimulatedGateway {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn totals(&self) -> GatewayTotals {
        let ledger = self.state.lock();
        GatewayTotals {
            charges: ledger.charges_made,
            charged_cents: ledger.charges.values().map(|&(c, _)| c).sum(),
            refunds: ledger.refunds_made,
            refunded_cents: ledger.charges.values().map(|&(_, r)| r).sum(),
        }
    }
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, call: &ChargeCall) -> Result<String, GatewayError> {
        let mut ledger = self.state.lock();
        if let Some(outcome) = ledger.outcomes.get(&call.idempotency_key) {
            return outcome.clone();
        }
        let outcome = match call.token.as_str() {
            "tok_ok" => Ok(()),
            "tok_declined" => Err(GatewayError::Declined("card declined".to_owned())),
            "tok_error" => {
                return Err(GatewayError::Transient("processor unavailable".to_owned()));
            }
            "tok_flaky" => {
                let failed = ledger.failures.entry(call.idempotency_key).or_default();
                if *failed < FLAKY_FAILURES {
                    *failed += 1;
                    return Err(GatewayError::Transient("processor timed out".to_owned()));
                }
                Ok(())
            }
            _ => Err(GatewayError::Declined("unknown payment token".to_owned())),
        };
        let outcome = outcome.map(|()| {
            let reference = format!("ch_{}", call.idempotency_key.as_uuid().simple());
            ledger
                .charges
                .insert(reference.clone(), (call.amount_cents, 0));
            ledger.charges_made += 1;
            reference
        });
        ledger
            .outcomes
            .insert(call.idempotency_key, outcome.clone());
        outcome
    }

    async fn refund(&self, call: &RefundCall) -> Result<String, GatewayError> {
        let mut ledger = self.state.lock();
        if let Some(outcome) = ledger.outcomes.get(&call.idempotency_key) {
            return outcome.clone();
        }
        let outcome = match ledger.charges.get_mut(&call.charge_ref) {
            None => Err(GatewayError::Declined("unknown charge".to_owned())),
            Some((charged, refunded)) if *refunded + call.amount_cents > *charged => Err(
                GatewayError::Declined("refund exceeds the charge".to_owned()),
            ),
            Some((_, refunded)) => {
                *refunded += call.amount_cents;
                Ok(format!("re_{}", call.idempotency_key.as_uuid().simple()))
            }
        };
        if outcome.is_ok() {
            ledger.refunds_made += 1;
        }
        ledger
            .outcomes
            .insert(call.idempotency_key, outcome.clone());
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(token: &str, key: PaymentId) -> ChargeCall {
        ChargeCall {
            idempotency_key: key,
            amount_cents: 1_000,
            method: "card".to_owned(),
            token: token.to_owned(),
        }
    }

    #[tokio::test]
    async fn tokens_behave_as_documented() {
        let g = SimulatedGateway::new();
        assert!(g.charge(&charge("tok_ok", PaymentId::new())).await.is_ok());
        assert!(matches!(
            g.charge(&charge("tok_declined", PaymentId::new())).await,
            Err(GatewayError::Declined(_))
        ));
        let key = PaymentId::new();
        for _ in 0..3 {
            assert!(matches!(
                g.charge(&charge("tok_error", key)).await,
                Err(GatewayError::Transient(_))
            ));
        }
        let key = PaymentId::new();
        for _ in 0..FLAKY_FAILURES {
            assert!(matches!(
                g.charge(&charge("tok_flaky", key)).await,
                Err(GatewayError::Transient(_))
            ));
        }
        assert!(g.charge(&charge("tok_flaky", key)).await.is_ok());
        assert!(matches!(
            g.charge(&charge("4242424242424242", PaymentId::new()))
                .await,
            Err(GatewayError::Declined(_))
        ));
        assert_eq!(g.totals().charges, 2);
    }

    #[tokio::test]
    async fn a_key_moves_money_once() {
        let g = SimulatedGateway::new();
        let key = PaymentId::new();
        let first = g.charge(&charge("tok_ok", key)).await.unwrap();
        assert_eq!(g.charge(&charge("tok_ok", key)).await.unwrap(), first);
        assert_eq!(g.totals().charges, 1);

        let refund = |amount, key| RefundCall {
            idempotency_key: key,
            charge_ref: first.clone(),
            amount_cents: amount,
        };
        let r1 = PaymentId::new();
        assert!(g.refund(&refund(600, r1)).await.is_ok());
        assert!(g.refund(&refund(600, r1)).await.is_ok(), "replayed");
        assert!(matches!(
            g.refund(&refund(600, PaymentId::new())).await,
            Err(GatewayError::Declined(_))
        ));
        assert!(g.refund(&refund(400, PaymentId::new())).await.is_ok());
        let totals = g.totals();
        assert_eq!((totals.refunds, totals.refunded_cents), (2, 1_000));
    }
}
