//! The built-in simulated gateway, for development, tests and load tests.
//!
//! Test tokens:
//!
//! | token              | charge                                             | refunds of it                                    |
//! |--------------------|----------------------------------------------------|--------------------------------------------------|
//! | `tok_ok`           | succeeds                                           | succeed                                          |
//! | `tok_declined`     | declined                                           | —                                                |
//! | `tok_error`        | fails transiently, every time                      | —                                                |
//! | `tok_flaky`        | fails transiently twice per payment, then succeeds | succeed                                          |
//! | `tok_refund_flaky` | succeeds                                           | each fails transiently 5 times, then succeeds    |
//! | `tok_refund_error` | succeeds                                           | fail transiently, every time                     |
//! | `tok_hang`         | never answers (the call times out: `payment_timeout_ms`) | —                                          |
//! | anything else      | declined as an unknown token                       | —                                                |
//!
//! Like a real processor it remembers each idempotency key's final answer,
//! so a retried call answers as the first did and moves no money again, and
//! it refuses refunds beyond what a charge took. That ledger is durable: it
//! lives in the database ([`GatewayLedger`], tables of its own), so a charge
//! made before a restart can be refunded after it. Transient failures are
//! not answers (a real processor that times out has said nothing) and are
//! counted in memory only.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use clock::Clock;
use engine::PaymentId;
use parking_lot::Mutex;

use super::gateway::{ChargeCall, GatewayError, PaymentGateway, RefundCall};
use crate::store::{
    ChargeAnswer, GatewayLedger, LedgerCharge, LedgerTotals, RefundVerdict, StoreError,
};

/// Transient failures `tok_flaky` gives before a charge succeeds.
const FLAKY_FAILURES: u32 = 2;
/// Transient failures each refund of a `tok_refund_flaky` charge gives
/// before it succeeds: more than the saga's default calls per round (4), so
/// the refund is put off and goes through on a background retry.
const REFUND_FLAKY_FAILURES: u32 = 5;

/// What the simulated gateway moved (see [`SimulatedGateway::totals`]).
pub type GatewayTotals = LedgerTotals;

pub struct SimulatedGateway {
    /// Answers by idempotency key and refunded amounts, in the database.
    ledger: Arc<dyn GatewayLedger>,
    /// Transient failures given so far per key (`tok_flaky` charges,
    /// refunds of `tok_refund_flaky`). An entry lives only until its key
    /// stops failing, so the map holds at most the keys in flight.
    failures: Mutex<HashMap<PaymentId, u32>>,
    /// Stamps the ledger's charges and refunds (the app's injected clock).
    clock: Arc<dyn Clock>,
}

impl SimulatedGateway {
    /// A gateway whose ledger is `ledger` (the app's store), stamping it
    /// from `clock`.
    pub fn new(ledger: Arc<dyn GatewayLedger>, clock: Arc<dyn Clock>) -> Self {
        Self {
            ledger,
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The money it moved, from its ledger.
    pub async fn totals(&self) -> Result<GatewayTotals, StoreError> {
        self.ledger.ledger_totals().await
    }

    /// Whether `key` should fail transiently once more (at most `times`).
    fn flaky(&self, key: PaymentId, times: u32) -> bool {
        let mut failures = self.failures.lock();
        let failed = failures.entry(key).or_default();
        if *failed < times {
            *failed += 1;
            true
        } else {
            failures.remove(&key);
            false
        }
    }
}

/// The ledger could not be read or written: to the caller that is a
/// processor it cannot reach. The detail goes to the log, not to the
/// payment row clients read.
fn unreachable_ledger(e: StoreError) -> GatewayError {
    tracing::warn!(error = %e, "simulated gateway: ledger unavailable");
    GatewayError::Transient("simulated gateway ledger unavailable".to_owned())
}

fn answer(charge: LedgerCharge) -> Result<String, GatewayError> {
    match charge.answer {
        ChargeAnswer::Charged { reference } => Ok(reference),
        ChargeAnswer::Declined { reason } => Err(GatewayError::Declined(reason)),
    }
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, call: &ChargeCall) -> Result<String, GatewayError> {
        let key = call.idempotency_key;
        // Tokens that always answer the same way need no lookup first:
        // recording is insert-or-read, so a replay gets the first answer.
        let declined = match call.token.as_str() {
            "tok_ok" | "tok_refund_flaky" | "tok_refund_error" => None,
            "tok_declined" => Some("card declined"),
            // Never answered, so never recorded.
            "tok_error" => {
                return Err(GatewayError::Transient("processor unavailable".to_owned()));
            }
            // A processor that hangs: the breaker's call timeout ends it.
            "tok_hang" => return std::future::pending().await,
            "tok_flaky" => {
                // Flaky until answered; a replay of an answered key is
                // answered.
                let recorded = self
                    .ledger
                    .ledger_charge(key)
                    .await
                    .map_err(unreachable_ledger)?;
                if let Some(recorded) = recorded {
                    return answer(recorded);
                }
                if self.flaky(key, FLAKY_FAILURES) {
                    return Err(GatewayError::Transient("processor timed out".to_owned()));
                }
                None
            }
            _ => Some("unknown payment token"),
        };
        let answer_given = match declined {
            None => ChargeAnswer::Charged {
                reference: format!("ch_{}", key.as_uuid().simple()),
            },
            Some(reason) => ChargeAnswer::Declined {
                reason: reason.to_owned(),
            },
        };
        let recorded = self
            .ledger
            .record_charge(&LedgerCharge {
                key,
                answer: answer_given,
                amount_cents: call.amount_cents,
                token: call.token.clone(),
                refunded_cents: 0,
                created_at_ms: self.clock.now_ms(),
            })
            .await
            .map_err(unreachable_ledger)?;
        answer(recorded)
    }

    async fn refund(&self, call: &RefundCall) -> Result<String, GatewayError> {
        let key = call.idempotency_key;
        let charge = self
            .ledger
            .ledger_charge_by_reference(&call.charge_ref)
            .await
            .map_err(unreachable_ledger)?;
        let token = charge.as_ref().map(|c| c.token.as_str());
        if token == Some("tok_refund_error") {
            return Err(GatewayError::Transient("refunds unavailable".to_owned()));
        }
        // Flaky until answered; a replay of an answered key is answered.
        if token == Some("tok_refund_flaky")
            && self
                .ledger
                .ledger_refund(key)
                .await
                .map_err(unreachable_ledger)?
                .is_none()
            && self.flaky(key, REFUND_FLAKY_FAILURES)
        {
            return Err(GatewayError::Transient("processor timed out".to_owned()));
        }
        let verdict = self
            .ledger
            .record_refund(
                key,
                &call.charge_ref,
                call.amount_cents,
                self.clock.now_ms(),
            )
            .await
            .map_err(unreachable_ledger)?;
        match verdict {
            RefundVerdict::Refunded => Ok(format!("re_{}", key.as_uuid().simple())),
            RefundVerdict::UnknownCharge => {
                Err(GatewayError::Declined("unknown charge".to_owned()))
            }
            RefundVerdict::ExceedsCharge => Err(GatewayError::Declined(
                "refund exceeds the charge".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqlStore;

    async fn ledger() -> Arc<dyn GatewayLedger> {
        Arc::new(SqlStore::connect("sqlite::memory:").await.unwrap())
    }

    fn charge(token: &str, key: PaymentId) -> ChargeCall {
        ChargeCall {
            idempotency_key: key,
            amount_cents: 1_000,
            method: "card".to_owned(),
            token: token.to_owned(),
        }
    }

    fn refund(charge_ref: &str, amount_cents: i64, key: PaymentId) -> RefundCall {
        RefundCall {
            idempotency_key: key,
            charge_ref: charge_ref.to_owned(),
            amount_cents,
        }
    }

    fn transient<T: std::fmt::Debug>(r: Result<T, GatewayError>) -> bool {
        matches!(r, Err(GatewayError::Transient(_)))
    }

    #[tokio::test]
    async fn tokens_behave_as_documented() {
        let g = SimulatedGateway::new(ledger().await, Arc::new(clock::SystemClock));
        assert!(g.charge(&charge("tok_ok", PaymentId::new())).await.is_ok());
        assert!(matches!(
            g.charge(&charge("tok_declined", PaymentId::new())).await,
            Err(GatewayError::Declined(_))
        ));
        let key = PaymentId::new();
        for _ in 0..3 {
            assert!(transient(g.charge(&charge("tok_error", key)).await));
        }
        let key = PaymentId::new();
        for _ in 0..FLAKY_FAILURES {
            assert!(transient(g.charge(&charge("tok_flaky", key)).await));
        }
        assert!(g.charge(&charge("tok_flaky", key)).await.is_ok());
        assert!(
            g.charge(&charge("tok_flaky", key)).await.is_ok(),
            "replayed"
        );
        assert!(matches!(
            g.charge(&charge("4242424242424242", PaymentId::new()))
                .await,
            Err(GatewayError::Declined(_))
        ));
        assert_eq!(g.totals().await.unwrap().charges, 2);

        // Refunds of the refund test tokens.
        let flaky = g
            .charge(&charge("tok_refund_flaky", PaymentId::new()))
            .await
            .unwrap();
        let key = PaymentId::new();
        for _ in 0..REFUND_FLAKY_FAILURES {
            assert!(transient(g.refund(&refund(&flaky, 100, key)).await));
        }
        assert!(g.refund(&refund(&flaky, 100, key)).await.is_ok());
        assert!(
            g.refund(&refund(&flaky, 100, key)).await.is_ok(),
            "replayed"
        );
        let broken = g
            .charge(&charge("tok_refund_error", PaymentId::new()))
            .await
            .unwrap();
        for _ in 0..10 {
            assert!(transient(
                g.refund(&refund(&broken, 100, PaymentId::new())).await
            ));
        }
        assert_eq!(g.totals().await.unwrap().refunds, 1);
        assert!(g.failures.lock().is_empty(), "no key left behind");
    }

    #[tokio::test]
    async fn a_key_moves_money_once() {
        let g = SimulatedGateway::new(ledger().await, Arc::new(clock::SystemClock));
        let key = PaymentId::new();
        let first = g.charge(&charge("tok_ok", key)).await.unwrap();
        assert_eq!(g.charge(&charge("tok_ok", key)).await.unwrap(), first);
        assert_eq!(g.totals().await.unwrap().charges, 1);

        let r1 = PaymentId::new();
        assert!(g.refund(&refund(&first, 600, r1)).await.is_ok());
        assert!(g.refund(&refund(&first, 600, r1)).await.is_ok(), "replayed");
        let over = PaymentId::new();
        assert_eq!(
            g.refund(&refund(&first, 600, over)).await,
            Err(GatewayError::Declined(
                "refund exceeds the charge".to_owned()
            ))
        );
        assert!(
            g.refund(&refund(&first, 400, PaymentId::new()))
                .await
                .is_ok()
        );
        // A refused key stays refused, even now that it would not fit either.
        assert!(matches!(
            g.refund(&refund(&first, 600, over)).await,
            Err(GatewayError::Declined(_))
        ));
        assert_eq!(
            g.refund(&refund("ch_nothing", 1, PaymentId::new())).await,
            Err(GatewayError::Declined("unknown charge".to_owned()))
        );
        let totals = g.totals().await.unwrap();
        assert_eq!((totals.refunds, totals.refunded_cents), (2, 1_000));
    }

    #[tokio::test]
    async fn the_ledger_outlives_the_gateway() {
        // A restart: a new gateway over the same database.
        let ledger = ledger().await;
        let before = SimulatedGateway::new(ledger.clone(), Arc::new(clock::SystemClock));
        let key = PaymentId::new();
        let charged = before.charge(&charge("tok_ok", key)).await.unwrap();
        let declined = PaymentId::new();
        let refusal = before.charge(&charge("tok_declined", declined)).await;
        let r1 = PaymentId::new();
        before.refund(&refund(&charged, 700, r1)).await.unwrap();
        drop(before);

        let after = SimulatedGateway::new(ledger, Arc::new(clock::SystemClock));
        assert_eq!(
            after.charge(&charge("tok_ok", key)).await,
            Ok(charged.clone())
        );
        assert_eq!(
            after.charge(&charge("tok_ok", declined)).await,
            refusal,
            "answered as before"
        );
        assert!(
            after.refund(&refund(&charged, 700, r1)).await.is_ok(),
            "replayed"
        );
        assert!(matches!(
            after.refund(&refund(&charged, 301, PaymentId::new())).await,
            Err(GatewayError::Declined(_))
        ));
        assert!(
            after
                .refund(&refund(&charged, 300, PaymentId::new()))
                .await
                .is_ok()
        );
        let totals = after.totals().await.unwrap();
        assert_eq!(
            totals,
            GatewayTotals {
                charges: 1,
                charged_cents: 1_000,
                refunds: 2,
                refunded_cents: 1_000
            }
        );
    }

    #[tokio::test]
    async fn racing_refunds_of_one_key_refund_once() {
        let g = Arc::new(SimulatedGateway::new(
            ledger().await,
            Arc::new(clock::SystemClock),
        ));
        let charged = g.charge(&charge("tok_ok", PaymentId::new())).await.unwrap();
        let key = PaymentId::new();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (g, call) = (g.clone(), refund(&charged, 600, key));
                tokio::spawn(async move { g.refund(&call).await })
            })
            .collect();
        for call in calls {
            assert!(call.await.unwrap().is_ok());
        }
        assert_eq!(g.totals().await.unwrap().refunded_cents, 600);
    }
}
