//! What a run measured: per order, the instants of its life; per run, the
//! figures operators compare policies by.
//!
//! Definitions (all times in seconds; an order is *measured* when it was
//! placed after the warm-up and before the orders stopped, and delivered):
//! - `pickup`: ready to dispatch (the restaurant accepted it and the
//!   matcher started) → the courier arrives at the restaurant.
//! - `assign`: ready to dispatch → a courier accepted the offer.
//! - `courier_wait`: the courier at the restaurant before the food is
//!   ready (0 when the food waited).
//! - `food_wait`: food ready → picked up (includes the handover).
//! - `click_to_door`: ready to dispatch → delivered (the restaurant
//!   accepts at once, so this is the customer's wait).
//! - `busy`: accepted → delivered, the courier's time on the order.
//! - `utilisation`: couriers' busy time between the warm-up and the end of
//!   orders ÷ (couriers × that time).

use serde::Serialize;

use crate::config::{Load, PolicySpec, Scenario};
use crate::demand::{Demand, OrderPlan};

/// The instants of one order's life, ms of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLog {
    /// Ready to dispatch.
    pub placed_ms: u64,
    /// Food ready.
    pub ready_ms: u64,
    /// Offers made of it.
    pub offers: u32,
    /// The courier that accepted it.
    pub courier: Option<usize>,
    /// When it was accepted.
    pub accepted_ms: Option<u64>,
    /// When its courier reached the restaurant.
    pub arrived_ms: Option<u64>,
    /// When its courier left with the food.
    pub picked_ms: Option<u64>,
    /// When it was handed over at the door.
    pub delivered_ms: Option<u64>,
    /// Stacked orders: when the courier delivered the order it rode along
    /// with; its own busy time counts from there (the time before is the
    /// first order's).
    pub busy_from_ms: Option<u64>,
}

impl OrderLog {
    /// An order not yet placed.
    pub fn new(plan: &OrderPlan) -> OrderLog {
        OrderLog {
            placed_ms: plan.at_ms,
            ready_ms: plan.at_ms + plan.prep_ms,
            offers: 0,
            courier: None,
            accepted_ms: None,
            arrived_ms: None,
            picked_ms: None,
            delivered_ms: None,
            busy_from_ms: None,
        }
    }
}

/// One driven leg (courier → restaurant or restaurant → door) with what
/// was predicted for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtaLeg {
    /// The order it was for.
    pub order: usize,
    /// What the drive took at the courier's true speeds, ms.
    pub actual_ms: u64,
    /// Predicted on the map's nominal speeds, ms.
    pub nominal_ms: u64,
    /// Predicted on the speeds learned from the legs before, ms.
    pub learned_ms: u64,
}

/// ETA errors of driven legs when the couriers' true speeds differ from
/// the map's (`Scenario::road_speed_spread`): before learning (the map's
/// speeds) and after (speeds learned from the legs driven before each
/// one). Over legs of measured orders that took at least a minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EtaErrors {
    /// Legs counted.
    pub legs: usize,
    /// |predicted − actual| on the nominal map, seconds.
    pub nominal_abs_s: Stat,
    /// |predicted − actual| ÷ actual on the nominal map, percent.
    pub nominal_rel_pct: Stat,
    /// |predicted − actual| on the learned speeds, seconds.
    pub learned_abs_s: Stat,
    /// |predicted − actual| ÷ actual on the learned speeds, percent.
    pub learned_rel_pct: Stat,
    /// The true time factor of each road class (by class code).
    pub true_time_factors: Vec<f64>,
    /// The learned ones at the end of the run.
    pub learned_time_factors: Vec<f64>,
}

impl EtaErrors {
    /// The errors of `legs` of orders in the measured window.
    pub(crate) fn build(
        scenario: &Scenario,
        log: &[OrderLog],
        legs: &[EtaLeg],
        true_factors: &[f64],
        learned_factors: &[f64],
    ) -> EtaErrors {
        let from_ms = scenario.warmup_s * 1000;
        let to_ms = scenario.duration_s * 1000;
        let counted: Vec<&EtaLeg> = legs
            .iter()
            .filter(|l| (from_ms..to_ms).contains(&log[l.order].placed_ms) && l.actual_ms >= 60_000)
            .collect();
        let abs = |f: fn(&EtaLeg) -> u64| {
            Stat::of(
                counted
                    .iter()
                    .map(|l| f(l).abs_diff(l.actual_ms) as f64 / 1000.0)
                    .collect(),
            )
        };
        let rel = |f: fn(&EtaLeg) -> u64| {
            Stat::of(
                counted
                    .iter()
                    .map(|l| 100.0 * f(l).abs_diff(l.actual_ms) as f64 / l.actual_ms as f64)
                    .collect(),
            )
        };
        let r3 = |v: &[f64]| v.iter().map(|f| (f * 1000.0).round() / 1000.0).collect();
        EtaErrors {
            legs: counted.len(),
            nominal_abs_s: abs(|l| l.nominal_ms),
            nominal_rel_pct: rel(|l| l.nominal_ms),
            learned_abs_s: abs(|l| l.learned_ms),
            learned_rel_pct: rel(|l| l.learned_ms),
            true_time_factors: r3(true_factors),
            learned_time_factors: r3(learned_factors),
        }
    }
}

/// Mean and percentiles of one figure over the measured orders, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Largest value.
    pub max: f64,
}

impl Stat {
    /// Of `values` (seconds); zeros for none.
    pub fn of(mut values: Vec<f64>) -> Stat {
        if values.is_empty() {
            return Stat {
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                max: 0.0,
            };
        }
        values.sort_by(f64::total_cmp);
        let rank =
            |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Stat {
            mean: round(values.iter().sum::<f64>() / values.len() as f64),
            p50: round(rank(0.5)),
            p90: round(rank(0.9)),
            max: round(values[values.len() - 1]),
        }
    }
}

/// Rounds to a tenth of a millisecond: readable JSON, and tiny float noise
/// never makes two equal runs look different.
fn round(s: f64) -> f64 {
    (s * 10_000.0).round() / 10_000.0
}

/// One policy on one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The policy's name.
    pub policy: String,
    /// The seed.
    pub seed: u64,
    /// Couriers on duty.
    pub couriers: usize,
    /// Restaurants.
    pub restaurants: usize,
    /// Orders arrive during this long, seconds.
    pub duration_s: u64,
    /// Orders of the first this many seconds are not measured.
    pub warmup_s: u64,
    /// The nominal utilisation asked for, if the demand was given so.
    pub nominal_utilisation: Option<f64>,
    /// The order rate.
    pub orders_per_hour: f64,
    /// The policy-free courier time per order a nominal utilisation is
    /// turned into a rate with, seconds.
    pub service_estimate_s: f64,
    /// Orders placed over the whole run.
    pub orders_placed: usize,
    /// Orders the figures are computed over (placed in the measured
    /// window and delivered).
    pub orders_measured: usize,
    /// Orders delivered over the whole run.
    pub orders_delivered: usize,
    /// Orders still open when the run ended.
    pub orders_open_at_end: usize,
    /// Orders placed in the measured window still open at the end (left
    /// out of the figures below: under overload, compare this too).
    pub measured_open_at_end: usize,
    /// Offers made.
    pub offers: u64,
    /// Offers couriers declined.
    pub declines: u64,
    /// Answers the matcher refused because the offer had ended.
    pub late_answers: u64,
    /// Conservation breaches (a courier offered or given an order while
    /// busy, an order given twice, an order lost): 0.
    pub violations: u64,
    /// Pickup time (see the module docs for every figure), seconds.
    pub pickup_s: Stat,
    /// Ready to dispatch → accepted.
    pub assign_s: Stat,
    /// Courier at the restaurant before the food is ready.
    pub courier_wait_s: Stat,
    /// Food ready → picked up.
    pub food_wait_s: Stat,
    /// Ready to dispatch → delivered.
    pub click_to_door_s: Stat,
    /// Accepted → delivered (a stacked order: the first order's delivery
    /// → its own, the courier time it added).
    pub busy_s: Stat,
    /// Orders stacked onto a courier's first one (stacking runs).
    pub orders_stacked: u64,
    /// Of them, from another restaurant than the first order's (stacked
    /// on the way).
    pub orders_stacked_on_the_way: u64,
    /// Per stack, how much later the first customer's door was reached
    /// than with the first order alone (the detour's driving and the wait
    /// for the second food): the first customer's added delay, seconds
    /// (none without stacking).
    pub stack_added_delay_s: Stat,
    /// Measured fleet utilisation, 0–1.
    pub utilisation: f64,
    /// When the run ended, seconds of simulated time.
    pub ended_s: f64,
    /// ETA errors before and after learning road speeds (runs with a road
    /// speed spread only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_errors: Option<EtaErrors>,
}

/// The run's tallies besides the order log.
pub(crate) struct Tallies {
    /// Offers made.
    pub offers: u64,
    /// Offers declined.
    pub declines: u64,
    /// Answers refused as too late.
    pub late_answers: u64,
    /// Conservation breaches seen during the run.
    pub violations: u64,
    /// When the run ended, ms of the run.
    pub ended_ms: u64,
    /// Orders stacked.
    pub stacked: u64,
    /// Orders stacked from another restaurant.
    pub stacked_on_the_way: u64,
    /// Per stack, the first customer's added delay, ms.
    pub stack_delays_ms: Vec<u64>,
}

impl Report {
    /// The figures of one run.
    pub(crate) fn build(
        scenario: &Scenario,
        policy: &PolicySpec,
        demand: &Demand,
        log: &[OrderLog],
        tallies: Tallies,
    ) -> Report {
        let from_ms = scenario.warmup_s * 1000;
        let to_ms = scenario.duration_s * 1000;
        let window: Vec<&OrderLog> = log
            .iter()
            .filter(|o| (from_ms..to_ms).contains(&o.placed_ms))
            .collect();
        let done: Vec<&OrderLog> = window
            .iter()
            .copied()
            .filter(|o| o.delivered_ms.is_some())
            .collect();
        let secs = |ms: u64| ms as f64 / 1000.0;
        let figure = |f: &dyn Fn(&OrderLog) -> Option<u64>| {
            Stat::of(done.iter().filter_map(|o| f(o)).map(secs).collect())
        };
        let mut violations = tallies.violations;
        // Every order is delivered or open; a delivered one went through
        // every step in order.
        for o in log {
            if let Some(d) = o.delivered_ms {
                let steps = [o.accepted_ms, o.arrived_ms, o.picked_ms];
                if o.courier.is_none()
                    || steps.iter().any(Option::is_none)
                    || !steps.iter().flatten().chain([&d]).is_sorted()
                {
                    violations += 1;
                }
            }
        }
        let busy_ms: u64 = log
            .iter()
            .filter_map(|o| {
                let a = o.busy_from_ms.or(o.accepted_ms)?.max(from_ms);
                let d = o.delivered_ms.unwrap_or(tallies.ended_ms).min(to_ms);
                Some(d.saturating_sub(a))
            })
            .sum();
        let fleet_ms = scenario.couriers as f64 * (to_ms - from_ms) as f64;
        let placed = log
            .iter()
            .filter(|o| o.placed_ms <= tallies.ended_ms)
            .count();
        let delivered = log.iter().filter(|o| o.delivered_ms.is_some()).count();
        Report {
            scenario: scenario.name.clone(),
            policy: policy.name.clone(),
            seed: scenario.seed,
            couriers: scenario.couriers,
            restaurants: scenario.restaurants,
            duration_s: scenario.duration_s,
            warmup_s: scenario.warmup_s,
            nominal_utilisation: match scenario.load {
                Load::Utilisation(u) => Some(u),
                Load::OrdersPerHour(_) => None,
            },
            orders_per_hour: round(demand.orders_per_hour),
            service_estimate_s: round(demand.service_estimate_s),
            orders_placed: placed,
            orders_measured: done.len(),
            orders_delivered: delivered,
            orders_open_at_end: placed - delivered,
            measured_open_at_end: window.len() - done.len(),
            offers: tallies.offers,
            declines: tallies.declines,
            late_answers: tallies.late_answers,
            violations,
            pickup_s: figure(&|o| Some(o.arrived_ms? - o.placed_ms)),
            assign_s: figure(&|o| Some(o.accepted_ms? - o.placed_ms)),
            courier_wait_s: figure(&|o| Some(o.ready_ms.saturating_sub(o.arrived_ms?))),
            food_wait_s: figure(&|o| Some(o.picked_ms?.saturating_sub(o.ready_ms))),
            click_to_door_s: figure(&|o| Some(o.delivered_ms? - o.placed_ms)),
            busy_s: figure(&|o| Some(o.delivered_ms? - o.busy_from_ms.or(o.accepted_ms)?)),
            orders_stacked: tallies.stacked,
            orders_stacked_on_the_way: tallies.stacked_on_the_way,
            stack_added_delay_s: Stat::of(
                tallies.stack_delays_ms.iter().map(|&ms| secs(ms)).collect(),
            ),
            utilisation: round(busy_ms as f64 / fleet_ms.max(1.0)),
            ended_s: secs(tallies.ended_ms),
            eta_errors: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_uses_nearest_rank() {
        let s = Stat::of((1..=10).map(f64::from).collect());
        assert_eq!((s.mean, s.p50, s.p90, s.max), (5.5, 5.0, 9.0, 10.0));
        assert_eq!(Stat::of(vec![]).mean, 0.0);
        assert_eq!(Stat::of(vec![3.0]).p90, 3.0);
    }
}
