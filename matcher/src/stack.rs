//! Stacking: when a courier carrying one order (not yet picked up) is
//! heading to, or waiting at, the restaurant a new order comes from, the
//! new order may ride along: the courier waits for both, delivers the
//! first customer first, then the second. The first customer pays for it
//! only with the wait for the second order's food; [`added_delay_ms`] is
//! that price and [`may_stack`] the rule: the price within the bound.
//!
//! Pure arithmetic on expected instants (ms; any common origin): the live
//! matcher (`Config::stacking`) passes the ready times its dispatches
//! expect (the restaurant's estimate or quote) and the courier's arrival
//! from its travel time to the restaurant; the simulator (`+stack`,
//! which re-exports this module) passes the same expectations and the
//! courier's arrival (known exactly once the courier drives). One rule for
//! both.

/// The first customer's added delay bound when `+stack` names none, and
/// `matcher.stack_delay_bound_s`'s default: 5 minutes, about the spread of
/// a kitchen's preparation time.
pub const DEFAULT_MAX_DELAY_S: u64 = 300;

/// How much later the courier leaves the restaurant with a second order
/// (ready at `second_ready_ms`) than with the first alone (ready at
/// `first_ready_ms`), arriving at `arrival_ms`: the first customer's
/// added delay (the door of the first is driven to first, so nothing
/// else changes for them).
pub fn added_delay_ms(first_ready_ms: u64, arrival_ms: u64, second_ready_ms: u64) -> u64 {
    let alone = first_ready_ms.max(arrival_ms);
    let both = alone.max(second_ready_ms);
    both - alone
}

/// Whether the second order may be stacked: the first customer's added
/// delay is at most `max_delay_ms`.
pub fn may_stack(
    first_ready_ms: u64,
    arrival_ms: u64,
    second_ready_ms: u64,
    max_delay_ms: u64,
) -> bool {
    added_delay_ms(first_ready_ms, arrival_ms, second_ready_ms) <= max_delay_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustively on a grid of instants: the courier leaves with both
    /// orders at the latest of the three instants, never earlier than
    /// alone; a stack is allowed exactly when that is at most the bound
    /// later, and an allowed stack never delays the first customer by more.
    #[test]
    fn the_first_customers_delay_stays_within_the_bound() {
        let grid: Vec<u64> = (0..=12).map(|i| i * 60_000).collect();
        for &bound in &[0, 60_000, 300_000] {
            for &first in &grid {
                for &arrival in &grid {
                    for &second in &grid {
                        let alone = first.max(arrival);
                        let leave_with_both = first.max(arrival).max(second);
                        let delay = added_delay_ms(first, arrival, second);
                        assert_eq!(alone + delay, leave_with_both);
                        let allowed = may_stack(first, arrival, second, bound);
                        assert_eq!(allowed, leave_with_both - alone <= bound);
                        if allowed {
                            assert!(leave_with_both <= alone + bound);
                        }
                        // Food ready by the time the courier leaves anyway
                        // costs nothing.
                        if second <= alone {
                            assert!(allowed && delay == 0);
                        }
                    }
                }
            }
        }
    }
}
