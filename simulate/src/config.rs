//! What a run simulates: the city's size, the demand, how couriers behave,
//! and which dispatch policy decides.

use serde::{Deserialize, Serialize};

/// The demand: how many orders arrive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Orders per hour over the whole city (Poisson arrivals).
    OrdersPerHour(f64),
    /// Nominal fleet utilisation: orders per hour = `u × couriers × 3600 /
    /// S`, where `S` is an estimated courier time per order that does not
    /// depend on the policy (see [`crate::City::service_estimate_s`]). 1.0
    /// and above is overload. The measured utilisation is in the report.
    Utilisation(f64),
}

/// One simulated city and its demand; every policy of a comparison runs
/// the same scenario (same seed: same restaurants, couriers, orders, prep
/// times and courier answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scenario {
    /// A name for reports and charts ("90%", "overload").
    pub name: String,
    /// Seed of every random draw: same seed, same run.
    pub seed: u64,
    /// Couriers, all on duty for the whole run.
    pub couriers: usize,
    /// Restaurants, placed on the road graph.
    pub restaurants: usize,
    /// Simulated time during which orders arrive, seconds.
    pub duration_s: u64,
    /// Orders placed in the first this many seconds are not measured: the
    /// fleet starts idle and spread out, which flatters every policy.
    pub warmup_s: u64,
    /// After the last order arrives, the run goes on at most this long for
    /// the orders still open (overload never clears its backlog).
    pub drain_s: u64,
    /// The demand.
    pub load: Load,
    /// Restaurants lie within this distance of the city centre, metres.
    pub city_radius_m: f64,
    /// Customers lie within this distance of their restaurant, metres.
    pub delivery_radius_m: f64,
    /// Preparation time, uniform in `[prep_min_s, prep_max_s]`, from the
    /// restaurant accepting the order (when the matcher starts) to food
    /// ready for pickup.
    pub prep_min_s: u64,
    /// See `prep_min_s`.
    pub prep_max_s: u64,
    /// Chance a courier accepts an offer (otherwise declines it).
    pub accept_probability: f64,
    /// A courier answers an offer after a delay uniform in
    /// `[answer_min_s, answer_max_s]`; kept under the matcher's offer
    /// timeout (offers do not lapse, see [`crate::world`]).
    pub answer_min_s: u64,
    /// See `answer_min_s`.
    pub answer_max_s: u64,
    /// Seconds between two GPS pings of a courier (the real apps send one
    /// or two a second; the matcher sees positions a few seconds old either
    /// way, and fewer pings keep long runs fast).
    pub ping_interval_s: u64,
    /// Courier time at the restaurant once the food is ready (handover).
    pub pickup_handover_s: u64,
    /// Courier time at the door.
    pub dropoff_handover_s: u64,
    /// Road speeds (the graph's car speeds by road class and `maxspeed`)
    /// times this: below 1 for bikes and scooters in traffic.
    pub speed_factor: f64,
    /// Couriers' true speeds differ from the map's nominal ones per road
    /// class: each class's travel times are multiplied by a factor drawn
    /// (from the seed) uniformly in `[1 − spread, 1 + spread]`. 0: the
    /// map's speeds are the truth. Above 0 the run also measures the ETA
    /// error of each driven leg on the nominal map and with speeds
    /// learned from the legs driven before (`routing::learn`).
    pub road_speed_spread: f64,
    /// With a road speed spread: the learned speeds are put to use (a new
    /// contraction hierarchy, about a second) after every this many
    /// driven legs.
    pub relearn_every_legs: usize,
}

impl Default for Scenario {
    fn default() -> Scenario {
        Scenario {
            name: "default".into(),
            seed: 1,
            couriers: 150,
            restaurants: 60,
            duration_s: 3 * 3600,
            warmup_s: 20 * 60,
            drain_s: 3600,
            load: Load::Utilisation(0.75),
            city_radius_m: 4_000.0,
            delivery_radius_m: 3_000.0,
            prep_min_s: 8 * 60,
            prep_max_s: 15 * 60,
            accept_probability: 0.9,
            answer_min_s: 5,
            answer_max_s: 25,
            ping_interval_s: 5,
            pickup_handover_s: 60,
            dropoff_handover_s: 90,
            speed_factor: 1.0,
            road_speed_spread: 0.0,
            relearn_every_legs: 400,
        }
    }
}

/// A dispatch policy to try: a name and the live matcher's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicySpec {
    /// Shown in reports and charts ("greedy", "batched 2s").
    pub name: String,
    /// The matcher's configuration, as `hexdash serve` would read it
    /// (`policy`, `batch_window_s`, …); `roads` is ignored: the simulator
    /// hands the matcher the city's own graph.
    pub matcher: matcher::Config,
    /// Prep-aware runs: restaurants say when the food will be ready
    /// (`Matcher::dispatch_ready_at` with the true ready time) instead of
    /// the matcher estimating it from their history.
    #[serde(default)]
    pub ready_quoted: bool,
    /// Stacking (`+stack`, `+stack=<s>`): a courier on the way to (or
    /// waiting at) a restaurant with one order takes a second order from
    /// the same restaurant or from one on its way when the first
    /// customer's added delay, and the second's against a fresh courier,
    /// stay within this many seconds (`crate::stack::plan`). `None`: off.
    #[serde(default)]
    pub stack_max_delay_s: Option<u64>,
}

impl PolicySpec {
    /// Parses `greedy`, `batched` (2 s window) or `batched:<window_s>`,
    /// each optionally followed by `+prep` (prep-aware timing on
    /// estimates learned from the restaurants' history), `+quoted`
    /// (prep-aware, restaurants quote the true ready time), and for tuning
    /// `+k=<n>` (`batch_candidates`), `+age=<permille>`
    /// (`batch_age_weight_permille`) or `+slack=<s>` (`prep_slack_s`);
    /// `+stack` / `+stack=<max_delay_s>` turns on stacking.
    pub fn parse(spec: &str) -> Result<PolicySpec, String> {
        let mut parts = spec.split('+');
        let s = parts.next().unwrap_or_default();
        let mut config = matcher::Config::default();
        let mut name = match s.split_once(':') {
            None if s == "greedy" => "greedy".to_owned(),
            None if s == "batched" => {
                config.policy = matcher::PolicyKind::Batched;
                format!("batched {}s", config.batch_window_s)
            }
            Some(("batched", w)) => {
                let window: u64 = w
                    .parse()
                    .map_err(|_| format!("batch window `{w}` is not whole seconds"))?;
                if window == 0 {
                    return Err("the batch window is at least 1 s".into());
                }
                config.policy = matcher::PolicyKind::Batched;
                config.batch_window_s = window;
                format!("batched {window}s")
            }
            _ => {
                return Err(format!(
                    "unknown policy `{s}`: greedy, batched or batched:<window_s>"
                ));
            }
        };
        let mut ready_quoted = false;
        let mut stack_max_delay_s = None;
        for modifier in parts {
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("`+{modifier}`: `{v}` is not a whole number"))
            };
            match modifier.split_once('=') {
                None if modifier == "prep" => config.prep_aware = true,
                None if modifier == "quoted" => {
                    config.prep_aware = true;
                    ready_quoted = true;
                }
                Some(("k", v)) => config.batch_candidates = number(v)?.max(1) as usize,
                Some(("age", v)) => config.batch_age_weight_permille = number(v)?,
                Some(("slack", v)) => config.prep_slack_s = number(v)?,
                None if modifier == "stack" => {
                    stack_max_delay_s = Some(crate::stack::DEFAULT_MAX_DELAY_S);
                }
                Some(("stack", v)) => stack_max_delay_s = Some(number(v)?),
                _ => {
                    return Err(format!(
                        "unknown policy option `+{modifier}`: +prep, +quoted, +k=<candidates>, \
                         +age=<permille>, +slack=<s>, +stack or +stack=<max_delay_s>"
                    ));
                }
            }
            name.push_str(" +");
            name.push_str(modifier);
        }
        Ok(PolicySpec {
            name,
            matcher: config,
            ready_quoted,
            stack_max_delay_s,
        })
    }
}

/// What is wrong with a scenario, before anything runs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A setting outside what the simulation can do.
    #[error("{0}")]
    Invalid(String),
}

impl Scenario {
    /// Checks settings that would make a run meaningless or endless.
    pub fn validate(&self, offer_timeout_s: u64) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.couriers == 0 || self.restaurants == 0 {
            return bad("at least one courier and one restaurant");
        }
        if self.duration_s == 0 {
            return bad("the duration is at least one second");
        }
        if self.warmup_s >= self.duration_s {
            return bad("the warm-up must end before the orders stop");
        }
        match self.load {
            Load::OrdersPerHour(r) | Load::Utilisation(r) if !(r.is_finite() && r > 0.0) => {
                return bad("the load is a positive number");
            }
            _ => {}
        }
        if self.prep_min_s > self.prep_max_s || self.answer_min_s > self.answer_max_s {
            return bad("a range's minimum is above its maximum");
        }
        if self.answer_max_s >= offer_timeout_s {
            return bad("couriers answer before the matcher's offer timeout");
        }
        if !(0.0..=1.0).contains(&self.accept_probability) || self.accept_probability == 0.0 {
            return bad("the accept probability is in (0, 1]");
        }
        if self.ping_interval_s == 0 {
            return bad("the ping interval is at least one second");
        }
        if !(0.0..0.9).contains(&self.road_speed_spread) {
            return bad("the road speed spread is at least 0 and below 0.9");
        }
        if !(self.speed_factor.is_finite() && self.speed_factor > 0.0) {
            return bad("the speed factor is a positive number");
        }
        if !(self.city_radius_m > 0.0 && self.delivery_radius_m > 0.0) {
            return bad("the radii are positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!(PolicySpec::parse("greedy").unwrap().name, "greedy");
        let b = PolicySpec::parse("batched:5").unwrap();
        assert_eq!(b.name, "batched 5s");
        assert_eq!(b.matcher.batch_window_s, 5);
        assert_eq!(b.matcher.policy, matcher::PolicyKind::Batched);
        assert!(PolicySpec::parse("batched:0").is_err());
        assert!(PolicySpec::parse("fastest").is_err());
        let p = PolicySpec::parse("batched:2+prep").unwrap();
        assert_eq!(p.name, "batched 2s +prep");
        assert!(p.matcher.prep_aware && !p.ready_quoted);
        let q = PolicySpec::parse("greedy+quoted").unwrap();
        assert!(q.matcher.prep_aware && q.ready_quoted);
        assert!(PolicySpec::parse("greedy+fast").is_err());
        let t = PolicySpec::parse("batched:2+k=16+age=0+prep+slack=120").unwrap();
        assert_eq!(t.name, "batched 2s +k=16 +age=0 +prep +slack=120");
        assert_eq!(
            (
                t.matcher.batch_candidates,
                t.matcher.batch_age_weight_permille,
                t.matcher.prep_slack_s
            ),
            (16, 0, 120)
        );
        assert!(PolicySpec::parse("batched+k=x").is_err());
    }

    #[test]
    fn default_scenario_is_valid() {
        Scenario::default().validate(60).unwrap();
        let late = Scenario {
            answer_max_s: 60,
            ..Scenario::default()
        };
        assert!(late.validate(60).is_err());
    }
}
