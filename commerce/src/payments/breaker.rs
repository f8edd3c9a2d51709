//! A circuit breaker and a call timeout in front of the payment gateway.
//!
//! A processor that is down or hangs would otherwise cost every order a
//! round of retries (and every request a worker) before it fails. Here:
//!
//! - Each call has a timeout ([`BreakerConfig::call_timeout_ms`]); a call
//!   without an answer in time is a transient failure (the idempotency key
//!   makes the retry safe if the processor did act on it).
//! - **Closed** (normal): calls go through; consecutive transient failures
//!   are counted, an answer (a charge, a refund, or a decline: the
//!   processor works) resets the count.
//! - **Open**: after [`BreakerConfig::failures`] transient failures in a
//!   row no call is made for [`BreakerConfig::open_ms`]; each fails at once
//!   with [`GatewayError::Unavailable`], and [`PaymentGateway::unavailable_for_ms`]
//!   tells the order use-cases to refuse new orders up front (503 with
//!   `Retry-After`) instead of creating orders that fail.
//! - **Half-open**: when the open time is over, the next call is a trial;
//!   others meanwhile fail as in the open state. The trial's answer closes
//!   the breaker; its transient failure opens it again. A trial that never
//!   ends (its task dropped) is replaced after another `open_ms`.
//!
//! Refunds the open breaker refuses stay owed and are retried in the
//! background as after any transient failure (the saga's rounds).
//!
//! Metrics: [`STATE`] (0 closed, 1 open, 2 half-open), [`OPENED_TOTAL`],
//! [`REFUSED_TOTAL`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clock::Clock;
use parking_lot::Mutex;

use super::gateway::{ChargeCall, GatewayError, PaymentGateway, RefundCall};

/// Gauge: the breaker's state (0 closed, 1 open, 2 half-open).
pub const STATE: &str = "hexdash_payment_circuit_state";
/// Counter: times the breaker opened.
pub const OPENED_TOTAL: &str = "hexdash_payment_circuit_opened_total";
/// Counter: gateway calls not made because the breaker was open.
pub const REFUSED_TOTAL: &str = "hexdash_payment_circuit_refused_total";

/// The breaker's settings (the REST layer's `payment_timeout_ms`,
/// `payment_breaker_failures`, `payment_breaker_open_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// How long one gateway call may take before it counts as a transient
    /// failure (0: no timeout).
    pub call_timeout_ms: u64,
    /// Transient failures in a row that open the breaker (0: never opens).
    pub failures: u32,
    /// How long the breaker stays open before a trial call.
    pub open_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            call_timeout_ms: 10_000,
            failures: 5,
            open_ms: 30_000,
        }
    }
}

/// Where the breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; this many transient failures in a row so far.
    Closed { failures: u32 },
    /// No call is made until `until_ms`.
    Open { until_ms: i64 },
    /// One trial call is out since `since_ms`; the rest are refused.
    HalfOpen { since_ms: i64 },
}

impl BreakerState {
    /// The [`STATE`] gauge's value.
    pub fn gauge(self) -> f64 {
        match self {
            Self::Closed { .. } => 0.0,
            Self::Open { .. } => 1.0,
            Self::HalfOpen { .. } => 2.0,
        }
    }

    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen { .. } => "half_open",
        }
    }
}

/// How long a caller is told to wait while a trial call is out.
const TRIAL_RETRY_AFTER_MS: u64 = 1_000;

/// The gateway behind a breaker and a call timeout (module docs).
pub struct Breaker {
    inner: Arc<dyn PaymentGateway>,
    config: BreakerConfig,
    state: Mutex<BreakerState>,
    clock: Arc<dyn Clock>,
}

impl Breaker {
    /// `inner` behind a breaker with `config`, timed by `clock`.
    pub fn new(
        inner: Arc<dyn PaymentGateway>,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        metrics::gauge!(STATE).set(0.0);
        Self {
            inner,
            config,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
            clock,
        }
    }

    /// Where the breaker is now.
    pub fn state(&self) -> BreakerState {
        *self.state.lock()
    }

    /// Lets a call through (`Ok`), or refuses it with the time left.
    fn admit(&self) -> Result<(), GatewayError> {
        let now = self.clock.now_ms();
        let mut state = self.state.lock();
        let refused = |left_ms: u64| {
            metrics::counter!(REFUSED_TOTAL).increment(1);
            Err(GatewayError::Unavailable(format!(
                "the payment gateway is failing; no calls for {} s",
                left_ms.div_ceil(1000).max(1)
            )))
        };
        match *state {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until_ms } if now < until_ms => {
                refused(u64::try_from(until_ms - now).unwrap_or(0))
            }
            BreakerState::HalfOpen { since_ms }
                if now < since_ms.saturating_add(self.open_ms()) =>
            {
                refused(TRIAL_RETRY_AFTER_MS)
            }
            // Open time over, or a trial that never ended: this call is
            // the (new) trial.
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => {
                self.set(&mut state, BreakerState::HalfOpen { since_ms: now });
                Ok(())
            }
        }
    }

    /// Records a call's result.
    fn record<T>(&self, result: &Result<T, GatewayError>) {
        let now = self.clock.now_ms();
        let mut state = self.state.lock();
        let next = match (result, *state) {
            (Err(GatewayError::Transient(_)), BreakerState::Closed { failures }) => {
                let failures = failures.saturating_add(1);
                if self.config.failures > 0 && failures >= self.config.failures {
                    self.opened(failures);
                    BreakerState::Open {
                        until_ms: now.saturating_add(self.open_ms()),
                    }
                } else {
                    BreakerState::Closed { failures }
                }
            }
            (Err(GatewayError::Transient(_)), BreakerState::HalfOpen { .. }) => {
                self.opened(1);
                BreakerState::Open {
                    until_ms: now.saturating_add(self.open_ms()),
                }
            }
            // A call admitted before the breaker opened, ending after.
            (Err(GatewayError::Transient(_)), open @ BreakerState::Open { .. }) => open,
            (Err(GatewayError::Unavailable(_)), unchanged) => unchanged,
            (Ok(_) | Err(GatewayError::Declined(_)), previous) => {
                if !matches!(previous, BreakerState::Closed { .. }) {
                    tracing::info!("payment gateway answers again; circuit closed");
                }
                BreakerState::Closed { failures: 0 }
            }
        };
        self.set(&mut state, next);
    }

    fn opened(&self, failures: u32) {
        metrics::counter!(OPENED_TOTAL).increment(1);
        tracing::warn!(
            failures,
            open_ms = self.config.open_ms,
            "payment gateway failing; circuit open: orders are refused until a trial call answers"
        );
    }

    fn open_ms(&self) -> i64 {
        i64::try_from(self.config.open_ms).unwrap_or(i64::MAX)
    }

    fn set(&self, state: &mut BreakerState, next: BreakerState) {
        if *state != next {
            metrics::gauge!(STATE).set(next.gauge());
        }
        *state = next;
    }

    /// Runs one admitted call under the timeout and records its result.
    async fn call<F>(&self, call: F) -> Result<String, GatewayError>
    where
        F: std::future::Future<Output = Result<String, GatewayError>>,
    {
        self.admit()?;
        let result = match self.config.call_timeout_ms {
            0 => call.await,
            ms => tokio::time::timeout(Duration::from_millis(ms), call)
                .await
                .unwrap_or_else(|_| {
                    Err(GatewayError::Transient(format!(
                        "no answer from the payment gateway within {ms} ms"
                    )))
                }),
        };
        self.record(&result);
        result
    }
}

#[async_trait]
impl PaymentGateway for Breaker {
    async fn charge(&self, call: &ChargeCall) -> Result<String, GatewayError> {
        self.call(self.inner.charge(call)).await
    }

    async fn refund(&self, call: &RefundCall) -> Result<String, GatewayError> {
        self.call(self.inner.refund(call)).await
    }

    fn unavailable_for_ms(&self) -> Option<u64> {
        let now = self.clock.now_ms();
        match self.state() {
            BreakerState::Closed { .. } => None,
            BreakerState::Open { until_ms } if now < until_ms => {
                Some(u64::try_from(until_ms - now).unwrap_or(0))
            }
            BreakerState::HalfOpen { since_ms }
                if now < since_ms.saturating_add(self.open_ms()) =>
            {
                Some(TRIAL_RETRY_AFTER_MS)
            }
            // Time for a trial: let an order through to make it.
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use engine::PaymentId;

    /// A gateway that answers as it is told and counts the calls it gets.
    #[derive(Default)]
    struct Scripted {
        failing: std::sync::atomic::AtomicBool,
        hang: std::sync::atomic::AtomicBool,
        calls: AtomicU32,
    }

    #[async_trait]
    impl PaymentGateway for Scripted {
        async fn charge(&self, _: &ChargeCall) -> Result<String, GatewayError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.failing.load(Ordering::SeqCst) {
                Err(GatewayError::Transient("down".into()))
            } else {
                Ok("ch_1".into())
            }
        }

        async fn refund(&self, _: &RefundCall) -> Result<String, GatewayError> {
            Err(GatewayError::Declined("no".into()))
        }
    }

    fn call() -> ChargeCall {
        ChargeCall {
            idempotency_key: PaymentId::new(),
            amount_cents: 100,
            method: "card".into(),
            token: "tok_ok".into(),
        }
    }

    fn breaker(
        inner: &Arc<Scripted>,
        clock: &Arc<clock::ManualClock>,
        call_timeout_ms: u64,
    ) -> Breaker {
        Breaker::new(
            inner.clone(),
            BreakerConfig {
                call_timeout_ms,
                failures: 3,
                open_ms: 10_000,
            },
            clock.clone(),
        )
    }

    #[tokio::test]
    async fn opens_after_failures_in_a_row_fails_fast_then_closes_on_a_trial() {
        let inner = Arc::new(Scripted::default());
        let clock = Arc::new(clock::ManualClock::new(1_000_000));
        let breaker = breaker(&inner, &clock, 0);
        inner.failing.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            assert!(matches!(
                breaker.charge(&call()).await,
                Err(GatewayError::Transient(_))
            ));
        }
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until_ms: 1_010_000
            }
        );
        assert_eq!(breaker.unavailable_for_ms(), Some(10_000));
        // Open: refused without a call.
        assert!(matches!(
            breaker.charge(&call()).await,
            Err(GatewayError::Unavailable(_))
        ));
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);

        // The open time over: one trial; it fails, so open again.
        clock.advance(10_000);
        assert_eq!(breaker.unavailable_for_ms(), None);
        assert!(matches!(
            breaker.charge(&call()).await,
            Err(GatewayError::Transient(_))
        ));
        assert_eq!(inner.calls.load(Ordering::SeqCst), 4);
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until_ms: 1_020_000
            }
        );

        // The gateway is back: the next trial closes it.
        inner.failing.store(false, Ordering::SeqCst);
        clock.advance(10_000);
        assert_eq!(breaker.charge(&call()).await.unwrap(), "ch_1");
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
        assert_eq!(breaker.unavailable_for_ms(), None);
    }

    #[tokio::test]
    async fn an_answer_resets_the_count_and_a_decline_is_an_answer() {
        let inner = Arc::new(Scripted::default());
        let clock = Arc::new(clock::ManualClock::new(0));
        let breaker = breaker(&inner, &clock, 0);
        inner.failing.store(true, Ordering::SeqCst);
        breaker.charge(&call()).await.unwrap_err();
        breaker.charge(&call()).await.unwrap_err();
        let refund = RefundCall {
            idempotency_key: PaymentId::new(),
            charge_ref: "ch_1".into(),
            amount_cents: 1,
        };
        assert!(matches!(
            breaker.refund(&refund).await,
            Err(GatewayError::Declined(_))
        ));
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
        breaker.charge(&call()).await.unwrap_err();
        breaker.charge(&call()).await.unwrap_err();
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 2 });
    }

    #[tokio::test]
    async fn a_call_without_an_answer_times_out_as_a_transient_failure() {
        let inner = Arc::new(Scripted::default());
        let clock = Arc::new(clock::ManualClock::new(0));
        let breaker = breaker(&inner, &clock, 20);
        inner.hang.store(true, Ordering::SeqCst);
        let answer = breaker.charge(&call()).await;
        assert!(
            matches!(&answer, Err(GatewayError::Transient(why)) if why.contains("within 20 ms")),
            "{answer:?}"
        );
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 1 });
    }

    #[tokio::test]
    async fn a_trial_that_never_ends_is_replaced() {
        let inner = Arc::new(Scripted::default());
        let clock = Arc::new(clock::ManualClock::new(0));
        let breaker = breaker(&inner, &clock, 0);
        inner.failing.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            breaker.charge(&call()).await.unwrap_err();
        }
        clock.advance(10_000);
        // The trial is admitted and then dropped before it answers.
        breaker.admit().unwrap();
        assert!(matches!(breaker.state(), BreakerState::HalfOpen { .. }));
        assert_eq!(breaker.unavailable_for_ms(), Some(TRIAL_RETRY_AFTER_MS));
        assert!(matches!(
            breaker.charge(&call()).await,
            Err(GatewayError::Unavailable(_))
        ));
        clock.advance(10_000);
        inner.failing.store(false, Ordering::SeqCst);
        assert_eq!(breaker.charge(&call()).await.unwrap(), "ch_1");
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    }
}
