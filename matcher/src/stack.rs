//! Stacking: a courier carrying one order (not yet picked up) takes a
//! second order along, from the same restaurant or from one on its way,
//! and delivers the first customer first, then the second.
//!
//! - Same restaurant: the courier waits for both, so the first customer
//!   pays only with the wait for the second order's food;
//!   [`added_delay_ms`] is that price and [`may_stack`] the rule (the
//!   price within the bound). It is the special case of the general rule
//!   below with the two restaurants at one place.
//! - On the way ([`plan`]): the second order's restaurant is another one,
//!   R2. The courier picks up both before the first door, in either order
//!   ([`Pickups`]: courier → R1 → R2 or courier → R2 → R1), then drives to
//!   the first door, then to the second: the two routes delivery
//!   platforms use (the second pickup a detour before or after the first,
//!   the first customer served first). Delivering the second customer
//!   first, or fetching R2's food only after the first door (that is a
//!   next order, not a stack), are not stacks here. A stack is allowed
//!   when, on the better allowed route, **both** customers are within the
//!   bound: the first customer's door is reached at most `max_delay_ms`
//!   later than by the courier with the first order alone (the detour's
//!   driving plus any wait for the second food), and the second
//!   customer's at most `max_delay_ms` later than a fresh courier would
//!   bring it (one reaching R2 at `fresh_arrival_ms`, then driving straight
//!   to the second door). Of the allowed routes the one delaying the first
//!   customer least is taken (then the earlier second door, then R1 first).
//!
//! Pure arithmetic on expected instants (ms; any common origin) and road
//! travel times: the live matcher (`Config::stacking`) passes the ready
//! times its dispatches expect (the restaurant's estimate or quote), the
//! travel times on its router (crow-fly where the map does not reach) and,
//! for the fresh courier, the nearest free one's arrival at R2 (or
//! `quote_courier_default_s` from now when none is free); the simulator
//! (`+stack`, which re-exports this module) passes the same expectations
//! and the same kinds of travel times. One rule for both. Customer ETAs of
//! a stacking courier ([`remaining`]) walk the same route.

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

/// Travel times (ms) between the places of a stack: the courier, the
/// first order's restaurant R1 and door D1, the second's R2 and D2. With
/// both orders from one restaurant the R1 ↔ R2 legs are 0, and
/// `courier_second_ms`, `second_first_door_ms` equal their R1 twins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Legs {
    /// Courier → R1.
    pub courier_first_ms: u64,
    /// Courier → R2.
    pub courier_second_ms: u64,
    /// R1 → R2.
    pub first_second_ms: u64,
    /// R2 → R1.
    pub second_first_ms: u64,
    /// R1 → D1: the first order alone.
    pub first_door_ms: u64,
    /// R2 → D1: after the second pickup.
    pub second_first_door_ms: u64,
    /// D1 → D2.
    pub doors_ms: u64,
    /// R2 → D2: a fresh courier's drive with the second order.
    pub second_door_ms: u64,
}

/// A candidate stack: where and when, as the caller expects it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stack {
    /// Now (the courier is where `legs` start from).
    pub now_ms: u64,
    /// When the first order's food is expected ready.
    pub first_ready_ms: u64,
    /// When the second order's food is expected ready.
    pub second_ready_ms: u64,
    /// When a fresh courier would reach R2 (the nearest free one; the
    /// second customer is compared with it).
    pub fresh_arrival_ms: u64,
    /// The travel times.
    pub legs: Legs,
}

/// Which restaurant a stacking courier visits first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pickups {
    /// Courier → R1 → R2 → D1 → D2: the second pickup a detour after the
    /// first (also the only sensible one for one restaurant).
    FirstThenSecond,
    /// Courier → R2 → R1 → D1 → D2: the second pickup a detour before the
    /// first.
    SecondThenFirst,
}

impl Pickups {
    /// Both routes, the preferred on ties first.
    pub const ALL: [Pickups; 2] = [Pickups::FirstThenSecond, Pickups::SecondThenFirst];
}

/// One route of a stack, timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The route.
    pub pickups: Pickups,
    /// When the courier reaches R1.
    pub at_first_ms: u64,
    /// When the courier reaches R2.
    pub at_second_ms: u64,
    /// When the courier reaches D1.
    pub first_door_ms: u64,
    /// When the courier reaches D2.
    pub second_door_ms: u64,
    /// How much later D1 is reached than by the courier with the first
    /// order alone.
    pub first_delay_ms: u64,
    /// How much later D2 is reached than by a fresh courier (0 when
    /// earlier).
    pub second_delay_ms: u64,
}

/// When the courier with the first order alone reaches D1.
pub fn first_alone_door_ms(s: &Stack) -> u64 {
    let leave = s
        .now_ms
        .saturating_add(s.legs.courier_first_ms)
        .max(s.first_ready_ms);
    leave.saturating_add(s.legs.first_door_ms)
}

/// When a fresh courier (at R2 at `fresh_arrival_ms`) reaches D2.
pub fn fresh_door_ms(s: &Stack) -> u64 {
    s.fresh_arrival_ms
        .max(s.second_ready_ms)
        .saturating_add(s.legs.second_door_ms)
}

/// `s` on the route `pickups`, timed: the courier waits at each
/// restaurant for its food.
pub fn route(s: &Stack, pickups: Pickups) -> Plan {
    let l = &s.legs;
    let (at_first_ms, at_second_ms, first_door_ms) = match pickups {
        Pickups::FirstThenSecond => {
            let at_first = s.now_ms.saturating_add(l.courier_first_ms);
            let leave_first = at_first.max(s.first_ready_ms);
            let at_second = leave_first.saturating_add(l.first_second_ms);
            let leave_second = at_second.max(s.second_ready_ms);
            (
                at_first,
                at_second,
                leave_second.saturating_add(l.second_first_door_ms),
            )
        }
        Pickups::SecondThenFirst => {
            let at_second = s.now_ms.saturating_add(l.courier_second_ms);
            let leave_second = at_second.max(s.second_ready_ms);
            let at_first = leave_second.saturating_add(l.second_first_ms);
            let leave_first = at_first.max(s.first_ready_ms);
            (
                at_first,
                at_second,
                leave_first.saturating_add(l.first_door_ms),
            )
        }
    };
    let second_door_ms = first_door_ms.saturating_add(l.doors_ms);
    Plan {
        pickups,
        at_first_ms,
        at_second_ms,
        first_door_ms,
        second_door_ms,
        first_delay_ms: first_door_ms.saturating_sub(first_alone_door_ms(s)),
        second_delay_ms: second_door_ms.saturating_sub(fresh_door_ms(s)),
    }
}

/// Whether `p` keeps both customers within `max_delay_ms`.
pub fn within(p: &Plan, max_delay_ms: u64) -> bool {
    p.first_delay_ms <= max_delay_ms && p.second_delay_ms <= max_delay_ms
}

/// The stack's route if it may be stacked: of the routes keeping both
/// customers within `max_delay_ms` ([`within`]), the one delaying the
/// first customer least (then the earlier second door, then
/// [`Pickups::FirstThenSecond`]); `None` when neither does.
pub fn plan(s: &Stack, max_delay_ms: u64) -> Option<Plan> {
    Pickups::ALL
        .into_iter()
        .map(|p| route(s, p))
        .filter(|p| within(p, max_delay_ms))
        .min_by_key(|p| (p.first_delay_ms, p.second_door_ms, p.pickups))
}

/// What is left of a stacking courier's round, for the customers' ETAs:
/// the pickups still to make (R1, R2 or both; both orders still at their
/// kitchens, or one picked up), then D1, then D2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Now.
    pub now_ms: u64,
    /// When R1's food is ready (`now_ms` or earlier once ready); `None`
    /// once picked up.
    pub first_ready_ms: Option<u64>,
    /// When R2's food is ready; `None` once picked up.
    pub second_ready_ms: Option<u64>,
    /// The travel times (the courier's from where it is now).
    pub legs: Legs,
    /// Courier → D1 (when both are picked up).
    pub courier_first_door_ms: u64,
}

/// When the courier reaches R1 (`None` once picked up), R2 (likewise),
/// D1 and D2 on what is left of `r`: the remaining pickups in the order
/// that reaches D1 first (ties: R1 first), as [`route`] times them.
pub fn remaining(r: &Round) -> (Option<u64>, Option<u64>, u64, u64) {
    let l = &r.legs;
    let (at_first, at_second, first_door) = match (r.first_ready_ms, r.second_ready_ms) {
        (Some(first_ready_ms), Some(second_ready_ms)) => {
            let s = Stack {
                now_ms: r.now_ms,
                first_ready_ms,
                second_ready_ms,
                fresh_arrival_ms: 0,
                legs: *l,
            };
            let best = Pickups::ALL
                .into_iter()
                .map(|p| route(&s, p))
                .min_by_key(|p| (p.first_door_ms, p.pickups))
                .unwrap_or_else(|| route(&s, Pickups::FirstThenSecond));
            (
                Some(best.at_first_ms),
                Some(best.at_second_ms),
                best.first_door_ms,
            )
        }
        (Some(ready), None) => {
            let at = r.now_ms.saturating_add(l.courier_first_ms);
            (
                Some(at),
                None,
                at.max(ready).saturating_add(l.first_door_ms),
            )
        }
        (None, Some(ready)) => {
            let at = r.now_ms.saturating_add(l.courier_second_ms);
            (
                None,
                Some(at),
                at.max(ready).saturating_add(l.second_first_door_ms),
            )
        }
        (None, None) => (None, None, r.now_ms.saturating_add(r.courier_first_door_ms)),
    };
    (
        at_first,
        at_second,
        first_door,
        first_door.saturating_add(l.doors_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    /// Places of a stack, as indices of a travel-time matrix.
    const C: usize = 0;
    const R1: usize = 1;
    const R2: usize = 2;
    const D1: usize = 3;
    const D2: usize = 4;

    fn legs_of(t: &[[u64; 5]; 5]) -> Legs {
        Legs {
            courier_first_ms: t[C][R1],
            courier_second_ms: t[C][R2],
            first_second_ms: t[R1][R2],
            second_first_ms: t[R2][R1],
            first_door_ms: t[R1][D1],
            second_first_door_ms: t[R2][D1],
            doors_ms: t[D1][D2],
            second_door_ms: t[R2][D2],
        }
    }

    /// Every order of the stops {R1, R2, D1, D2} a stack may take (both
    /// pickups before the first door, D1 before D2), found by trying all
    /// 24 and keeping the valid ones.
    fn stack_routes() -> Vec<[usize; 4]> {
        let mut routes = Vec::new();
        for a in 1..=4 {
            for b in 1..=4 {
                for c in 1..=4 {
                    for d in 1..=4 {
                        let r = [a, b, c, d];
                        let pos = |x: usize| r.iter().position(|&y| y == x).unwrap();
                        let distinct = (1..=4).all(|x| r.contains(&x));
                        if distinct
                            && pos(R1).max(pos(R2)) < pos(D1).min(pos(D2))
                            && pos(D1) < pos(D2)
                        {
                            routes.push(r);
                        }
                    }
                }
            }
        }
        routes
    }

    /// Drives `route` from the courier: when D1 and D2 are reached, and
    /// which restaurant came first.
    fn drive(t: &[[u64; 5]; 5], s: &Stack, route: [usize; 4]) -> (u64, u64, Pickups) {
        let (mut at, mut here, mut doors) = (s.now_ms, C, [0; 5]);
        for stop in route {
            at += t[here][stop];
            here = stop;
            match stop {
                R1 => at = at.max(s.first_ready_ms),
                R2 => at = at.max(s.second_ready_ms),
                _ => doors[stop] = at,
            }
        }
        let first = if route[0] == R1 {
            Pickups::FirstThenSecond
        } else {
            Pickups::SecondThenFirst
        };
        (doors[D1], doors[D2], first)
    }

    /// The brute force: every valid route driven, the allowed ones (each
    /// customer within `bound` of its alternative, computed here from the
    /// matrix) ranked as [`plan`] ranks them.
    fn brute_force(t: &[[u64; 5]; 5], s: &Stack, bound: u64) -> Option<(u64, u64, Pickups)> {
        let alone = (s.now_ms + t[C][R1]).max(s.first_ready_ms) + t[R1][D1];
        let fresh = s.fresh_arrival_ms.max(s.second_ready_ms) + t[R2][D2];
        stack_routes()
            .into_iter()
            .map(|r| drive(t, s, r))
            .filter(|&(d1, d2, _)| {
                d1.saturating_sub(alone) <= bound && d2.saturating_sub(fresh) <= bound
            })
            .min_by_key(|&(d1, d2, p)| (d1.saturating_sub(alone), d2, p))
    }

    fn matrix(cells: Vec<u64>) -> [[u64; 5]; 5] {
        let mut t = [[0; 5]; 5];
        for a in 0..5 {
            for b in 0..5 {
                if a != b {
                    t[a][b] = cells[a * 5 + b];
                }
            }
        }
        t
    }

    #[test]
    fn a_stack_takes_one_of_two_routes() {
        assert_eq!(stack_routes(), [[R1, R2, D1, D2], [R2, R1, D1, D2]]);
    }

    proptest! {
        /// On random travel times (asymmetric, as one-way streets make
        /// them) and instants: [`plan`] allows a stack exactly when the
        /// brute force finds an allowed route, and picks the same one,
        /// timed the same.
        #[test]
        fn plan_equals_the_brute_force(
            cells in prop::collection::vec(0u64..1_200_000, 25),
            now in 0u64..600_000,
            first_ready in 0u64..1_800_000,
            second_ready in 0u64..1_800_000,
            fresh in 0u64..1_200_000,
            bound in prop::sample::select(vec![0u64, 60_000, 300_000, 600_000]),
        ) {
            let t = matrix(cells);
            let s = Stack {
                now_ms: now,
                first_ready_ms: first_ready,
                second_ready_ms: second_ready,
                fresh_arrival_ms: now + fresh,
                legs: legs_of(&t),
            };
            let expected = brute_force(&t, &s, bound);
            let got = plan(&s, bound);
            prop_assert_eq!(
                got.map(|p| (p.first_door_ms, p.second_door_ms, p.pickups)),
                expected
            );
            if let Some(p) = got {
                prop_assert!(within(&p, bound));
                prop_assert!(p.first_door_ms <= first_alone_door_ms(&s) + bound);
                prop_assert!(p.second_door_ms <= fresh_door_ms(&s) + bound);
            }
        }

        /// With both orders from one restaurant (the R1 ↔ R2 legs 0), the
        /// first customer's delay is [`added_delay_ms`]'s.
        #[test]
        fn one_restaurant_is_the_special_case(
            to_kitchen in 0u64..1_200_000,
            to_door in 0u64..1_200_000,
            doors in 0u64..1_200_000,
            now in 0u64..600_000,
            first_ready in 0u64..1_800_000,
            second_ready in 0u64..1_800_000,
        ) {
            let s = Stack {
                now_ms: now,
                first_ready_ms: first_ready,
                second_ready_ms: second_ready,
                fresh_arrival_ms: u64::MAX / 4,
                legs: Legs {
                    courier_first_ms: to_kitchen,
                    courier_second_ms: to_kitchen,
                    first_second_ms: 0,
                    second_first_ms: 0,
                    first_door_ms: to_door,
                    second_first_door_ms: to_door,
                    doors_ms: doors,
                    second_door_ms: to_door,
                },
            };
            let delay = added_delay_ms(first_ready, now + to_kitchen, second_ready);
            for p in Pickups::ALL {
                prop_assert_eq!(route(&s, p).first_delay_ms, delay);
            }
            for bound in [0, 60_000, 300_000] {
                prop_assert_eq!(
                    plan(&s, bound).is_some(),
                    may_stack(first_ready, now + to_kitchen, second_ready, bound)
                );
            }
        }

        /// What is left of a round ([`remaining`]) is the fastest way to D1
        /// through the pickups still to make, by brute force over their
        /// orders; D2 follows D1.
        #[test]
        fn the_rest_of_a_round_equals_the_brute_force(
            cells in prop::collection::vec(0u64..1_200_000, 25),
            now in 0u64..600_000,
            first_ready in prop::option::of(0u64..1_800_000),
            second_ready in prop::option::of(0u64..1_800_000),
        ) {
            let t = matrix(cells);
            let r = Round {
                now_ms: now,
                first_ready_ms: first_ready,
                second_ready_ms: second_ready,
                legs: legs_of(&t),
                courier_first_door_ms: t[C][D1],
            };
            let pickups: Vec<(usize, u64)> = [(R1, first_ready), (R2, second_ready)]
                .into_iter()
                .filter_map(|(x, ready)| ready.map(|ready| (x, ready)))
                .collect();
            let mut orders = vec![pickups.clone()];
            if pickups.len() == 2 {
                orders.push(vec![pickups[1], pickups[0]]);
            }
            let best = orders
                .into_iter()
                .map(|stops| {
                    let (mut at, mut here, mut seen) = (now, C, [None; 5]);
                    for (stop, ready) in stops {
                        at += t[here][stop];
                        seen[stop] = Some(at);
                        at = at.max(ready);
                        here = stop;
                    }
                    at += t[here][D1];
                    (at, seen[R1], seen[R2])
                })
                .min_by_key(|&(d1, r1, _)| (d1, r1.is_none()))
                .unwrap();
            let (at_first, at_second, d1, d2) = remaining(&r);
            prop_assert_eq!((d1, at_first, at_second), best);
            prop_assert_eq!(d2, d1 + t[D1][D2]);
        }
    }
}
