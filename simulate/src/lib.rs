//! The city simulator behind `hexdash simulate`: replays a city in virtual
//! time through the real engine and the real matcher loop, so operators can
//! choose a dispatch policy for their city and the tests can prove one.
//!
//! - [`config`]: a [`Scenario`] (fleet, restaurants, demand, prep times,
//!   courier behaviour, seed) and a [`PolicySpec`] (a name and the live
//!   matcher's `Config`).
//! - [`city`]: the road graph and router ([`City`]), placing things on it,
//!   and the drives couriers follow node to node ([`Paths`], [`Drive`]).
//! - [`demand`]: everything drawn from the seed before a run (restaurants,
//!   courier starts, Poisson orders with their doors and prep times), the
//!   same for every policy of a comparison.
//! - `world`: one run on tokio's paused clock: couriers that ping the
//!   engine, answer offers, drive to the restaurant, wait, drive to the
//!   door; orders put on the engine's board and dispatched by the matcher.
//! - [`report`]: per-order instants and the figures per run ([`Report`]:
//!   pickup time, courier wait, food wait, click-to-door, busy time,
//!   utilisation).
//! - [`stack`]: stacking's rule (a second order from the same restaurant
//!   or one on the way while both customers' added delays stay within a
//!   bound, [`stack::plan`]): the
//!   matcher's own (`matcher::stack`), re-exported, so the simulator and
//!   the live matcher decide by one function.
//! - [`plot`]: PNG bar charts of a set of reports.
//!
//! No network, no database, no wall clock: a run's report depends only on
//! its scenario, its policy and the graph.

pub mod city;
pub mod config;
pub mod demand;
pub mod plot;
pub mod report;
pub use matcher::stack;
mod world;

// The charts' font and text drawing are loadtest's own files, included
// rather than copied (one place to fix them); loadtest itself is a network
// tool the product binary must not depend on.
#[path = "../../loadtest/src/bin/plot/font.rs"]
mod font;
#[path = "../../loadtest/src/bin/plot/text.rs"]
mod text;

pub use city::{City, Drive, Paths};
pub use config::{ConfigError, Load, PolicySpec, Scenario};
pub use demand::Demand;
pub use report::{EtaErrors, Report, Stat};

use report::Tallies;

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario's settings.
    #[error("invalid scenario: {0}")]
    Config(#[from] ConfigError),
    /// tokio could not build the run's runtime.
    #[error("cannot start the simulation's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Runs `policy` on `scenario` in `city` and measures it. Takes a few
/// seconds per simulated hour of a 150-courier city in a release build.
pub fn run(city: &City, scenario: &Scenario, policy: &PolicySpec) -> Result<Report, Error> {
    scenario.validate(policy.matcher.offer_timeout_s)?;
    let demand = Demand::draw(city, scenario);
    run_drawn(city, scenario, &demand, policy)
}

/// Every policy on every scenario, scenario by scenario (the demand is
/// drawn once per scenario and shared by its policies: paired runs).
pub fn compare(
    city: &City,
    scenarios: &[Scenario],
    policies: &[PolicySpec],
) -> Result<Vec<Report>, Error> {
    let mut reports = Vec::new();
    for scenario in scenarios {
        for policy in policies {
            scenario.validate(policy.matcher.offer_timeout_s)?;
        }
        let demand = Demand::draw(city, scenario);
        for policy in policies {
            reports.push(run_drawn(city, scenario, &demand, policy)?);
        }
    }
    Ok(reports)
}

fn run_drawn(
    city: &City,
    scenario: &Scenario,
    demand: &Demand,
    policy: &PolicySpec,
) -> Result<Report, Error> {
    // One thread and a paused clock: see `world` for why this makes runs
    // repeatable and fast.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let world = runtime.block_on(world::World::run(city, scenario, demand, policy));
    let tallies = Tallies {
        offers: world.offers,
        declines: world.declines,
        late_answers: world.late_answers,
        violations: world.violations + world.missed_changes,
        ended_ms: world.ended_ms(),
        stacked: world.stacked,
        stacked_on_the_way: world.stacked_on_the_way,
        stack_delays_ms: world.stack_delays_ms.clone(),
    };
    let mut report = report::Report::build(scenario, policy, demand, &world.log, tallies);
    if let Some(learned) = world.learned_time_factors() {
        report.eta_errors = Some(report::EtaErrors::build(
            scenario,
            &world.log,
            &world.eta_legs,
            &demand::true_time_factors(scenario),
            &learned,
        ));
    }
    Ok(report)
}
