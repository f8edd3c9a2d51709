//! The auto-reject sweep: every `api.auto_reject_sweep_ms` (and once at
//! start-up, which is what picks up the deadlines that passed while the
//! server was down), paid orders no restaurant accepted within
//! `api.auto_reject_after_s` of their payment are rejected and refunded
//! by the system (`commerce::usecase::stuck`). The deadline is read from
//! the database against the app's injected clock, so it survives
//! restarts and tests move it with a `clock::ManualClock`; the sweep
//! interval alone is tokio time.

use std::time::Duration;

use commerce::usecase::stuck::{self, Overdue};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Orders the system rejected because no restaurant accepted them in time.
pub const AUTO_REJECTED_TOTAL: &str = "hexdash_orders_auto_rejected_total";
/// Rounds one sweep runs at most: a backlog larger than this many full
/// rounds waits for the next sweep, so one sweep's work stays bounded.
const MAX_ROUNDS_PER_SWEEP: usize = 10;

/// HELP text of this module's metrics (see [`crate::describe_metrics`]).
pub(crate) fn describe() {
    metrics::describe_counter!(
        AUTO_REJECTED_TOTAL,
        "Paid orders rejected and refunded by the system because no restaurant accepted them in time (api.auto_reject_after_s)"
    );
}

/// Whether the sweep runs with `config` (`auto_reject_after_s` 0: off).
pub fn enabled(config: &crate::Config) -> bool {
    config.auto_reject_after_s > 0
}

/// One sweep now: rejects what is overdue on the app's clock, in rounds of
/// at most `stuck::MAX_PER_ROUND`; what the rounds did, added up. Does
/// nothing when auto-rejecting is off.
pub async fn sweep(state: &AppState) -> Result<Overdue, commerce::Error> {
    let mut total = Overdue::default();
    if !enabled(&state.config) {
        return Ok(total);
    }
    let after_ms =
        i64::try_from(state.config.auto_reject_after_s.saturating_mul(1_000)).unwrap_or(i64::MAX);
    let saga = state.saga();
    for _ in 0..MAX_ROUNDS_PER_SWEEP {
        let round =
            stuck::reject_overdue(&saga, after_ms, state.clock.now_ms(), stuck::MAX_PER_ROUND)
                .await?;
        for order_id in &round.rejected {
            tracing::info!(%order_id, after_s = state.config.auto_reject_after_s, "order not accepted in time: rejected and refunded");
        }
        metrics::counter!(AUTO_REJECTED_TOTAL).increment(round.rejected.len() as u64);
        total.rejected.extend(round.rejected);
        total.raced += round.raced;
        total.more = round.more;
        if !round.more {
            break;
        }
    }
    Ok(total)
}

/// Sweeps at start and every `auto_reject_sweep_ms` until `shutdown`
/// (returns at once when auto-rejecting is off). A failed sweep is logged
/// and the next one tries again.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    if !enabled(&state.config) {
        return;
    }
    describe();
    let every = Duration::from_millis(state.config.auto_reject_sweep_ms.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %crate::error_chain(&e), "auto-reject sweep failed; trying again next round");
        }
    }
}
