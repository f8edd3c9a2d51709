//! Stuck orders: a paid order the restaurant has not accepted within the
//! deadline is rejected and refunded by the system ([`reject_overdue`]).
//!
//! The deadline counts from the order's payment as stored
//! (`orders.paid_at_ms`), so it survives restarts: whoever sweeps after a
//! restart finds the overdue orders in the database. Each rejection is
//! [`step::reject_as_system`], the restaurant's rejection with the system
//! as the actor: the same compare-and-set from `paid`, so of a
//! restaurant's accept and the sweep racing for one order exactly one
//! applies and the other finds the order moved (counted as `raced`, not an
//! error); the same stock given back, pending refund, `order.rejected`
//! event (actor `system:orders`) and so the same notifications.
//!
//! (The other stuck order, one no driver takes, is the matcher's: it
//! raises it, and `api`'s feed turns that into `order.dispatch_stalled`.)

use engine::OrderId;

use super::step;
use crate::payments::Saga;
use crate::{Error, Result};

/// Most orders one call rejects: bounds a sweep's transaction count; a
/// backlog (after a long outage) is worked off over consecutive calls.
pub const MAX_PER_ROUND: u32 = 100;

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overdue {
    /// Orders rejected now, longest waiting first.
    pub rejected: Vec<OrderId>,
    /// Overdue orders that moved before their rejection applied (the
    /// restaurant accepted, the customer cancelled, another node's sweep
    /// rejected): left as they are.
    pub raced: usize,
    /// Whether the round was full, so more may be overdue.
    pub more: bool,
}

/// Rejects, as the system, every order still `paid` at or before
/// `now_ms - after_ms` (at most `limit`, at most [`MAX_PER_ROUND`]).
pub async fn reject_overdue(
    saga: &Saga,
    after_ms: i64,
    now_ms: i64,
    limit: u32,
) -> Result<Overdue> {
    let limit = limit.clamp(1, MAX_PER_ROUND);
    let overdue = saga
        .store
        .orders_awaiting_acceptance(now_ms.saturating_sub(after_ms), limit)
        .await?;
    let mut round = Overdue {
        more: overdue.len() == limit as usize,
        ..Overdue::default()
    };
    for order in overdue {
        let id = order.id;
        match step::reject_as_system(saga, order, now_ms).await {
            Ok(_) => round.rejected.push(id),
            Err(Error::IllegalTransition { .. } | Error::NotFound(_)) => round.raced += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(round)
}
