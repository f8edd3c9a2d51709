//! `hexdash simulate`: replays a city in virtual time through the real
//! matcher and engine (the `simulate` crate) for each policy × load, and
//! writes `report.json` (one object per run) and PNG charts.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use simulate::{City, Load, PolicySpec, Report, Scenario};

/// Flags of `hexdash simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Policies to compare, comma-separated: `greedy`, `batched` (2 s
    /// window) or `batched:<window_s>`, each optionally with `+prep`
    /// (prep-aware timing, ready times estimated from history) or
    /// `+quoted` (prep-aware, restaurants quote the ready time); for
    /// tuning also `+k=<candidates>`, `+age=<permille>`, `+slack=<s>`.
    #[arg(long, value_delimiter = ',', default_value = "greedy,batched")]
    pub policy: Vec<String>,
    /// Couriers on duty for the whole run.
    #[arg(long, default_value_t = 150)]
    pub couriers: usize,
    /// Restaurants placed on the road graph.
    #[arg(long, default_value_t = 60)]
    pub restaurants: usize,
    /// Simulated hours during which orders arrive.
    #[arg(long, default_value_t = 3.0)]
    pub hours: f64,
    /// Minutes at the start that are not measured (the fleet starts idle).
    #[arg(long, default_value_t = 20)]
    pub warmup_min: u64,
    /// Nominal fleet utilisations to run, comma-separated (1.0 and above is
    /// overload); ignored with `--orders-per-hour`.
    #[arg(long, value_delimiter = ',', default_value = "0.75")]
    pub utilisation: Vec<f64>,
    /// Order rates to run instead, orders per hour, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub orders_per_hour: Vec<f64>,
    /// Shortest preparation time, minutes.
    #[arg(long, default_value_t = 8)]
    pub prep_min: u64,
    /// Longest preparation time, minutes (uniform in between).
    #[arg(long, default_value_t = 15)]
    pub prep_max: u64,
    /// Chance a courier accepts an offer.
    #[arg(long, default_value_t = 0.9)]
    pub accept_probability: f64,
    /// Couriers' true speeds differ from the map's per road class by up to
    /// this fraction (seeded); the report then has `eta_errors`: the ETA
    /// error of driven legs before and after learning the speeds. 0: the
    /// map's speeds are the truth.
    #[arg(long, default_value_t = 0.0)]
    pub road_speed_spread: f64,
    /// Seed of every random draw: same seed, same report.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The road graph (`.hxroads`, built by `hexdash-roads`).
    #[arg(long, default_value = "data/gothenburg_roads_2016.hxroads")]
    pub roads: PathBuf,
    /// Where `report.json` and the charts go (created if missing).
    #[arg(long, default_value = "simulation")]
    pub out: PathBuf,
    /// Skip the charts.
    #[arg(long)]
    pub no_plots: bool,
}

/// The scenarios the flags ask for: one per load.
fn scenarios(args: &SimulateArgs) -> anyhow::Result<Vec<Scenario>> {
    if !(args.hours.is_finite() && args.hours > 0.0) {
        bail!("--hours must be a positive number");
    }
    let base = Scenario {
        seed: args.seed,
        couriers: args.couriers,
        restaurants: args.restaurants,
        duration_s: (args.hours * 3600.0).round() as u64,
        warmup_s: args.warmup_min * 60,
        prep_min_s: args.prep_min * 60,
        prep_max_s: args.prep_max * 60,
        accept_probability: args.accept_probability,
        road_speed_spread: args.road_speed_spread,
        ..Scenario::default()
    };
    let loads: Vec<(String, Load)> = if args.orders_per_hour.is_empty() {
        args.utilisation
            .iter()
            .map(|&u| (format!("{:.0}%", u * 100.0), Load::Utilisation(u)))
            .collect()
    } else {
        args.orders_per_hour
            .iter()
            .map(|&r| (format!("{r}/h"), Load::OrdersPerHour(r)))
            .collect()
    };
    Ok(loads
        .into_iter()
        .map(|(name, load)| Scenario {
            name,
            load,
            ..base.clone()
        })
        .collect())
}

/// Runs the comparison and writes its files.
pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let policies = args
        .policy
        .iter()
        .map(|p| PolicySpec::parse(p).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scenarios = scenarios(args)?;
    let city = City::load(&args.roads)
        .with_context(|| format!("cannot load the road graph {}", args.roads.display()))?;
    let reports = simulate::compare(&city, &scenarios, &policies)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let json = args.out.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(&reports)? + "\n")
        .with_context(|| format!("cannot write {}", json.display()))?;
    println!("{}", table(&reports));
    println!("wrote {}", json.display());
    if !args.no_plots {
        for file in simulate::plot::draw(&reports, &args.out)? {
            println!("wrote {}", file.display());
        }
    }
    Ok(())
}

/// A Markdown table of the main figures, minutes unless said.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| load | policy | orders/h | util. | pickup mean | pickup p90 | courier wait | food wait | click-to-door mean | click-to-door p90 | busy/order | open at end |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let m = |s: f64| format!("{:.1}", s / 60.0);
    for r in reports {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.0}% | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            r.policy,
            r.orders_per_hour,
            r.utilisation * 100.0,
            m(r.pickup_s.mean),
            m(r.pickup_s.p90),
            m(r.courier_wait_s.mean),
            m(r.food_wait_s.mean),
            m(r.click_to_door_s.mean),
            m(r.click_to_door_s.p90),
            m(r.busy_s.mean),
            r.measured_open_at_end,
        ));
    }
    let with_etas: Vec<&Report> = reports.iter().filter(|r| r.eta_errors.is_some()).collect();
    if !with_etas.is_empty() {
        out.push_str(
            "\n| load | policy | legs | ETA error p50 nominal | p90 nominal | p50 learned | p90 learned | rel. p50 nominal | rel. p90 nominal | rel. p50 learned | rel. p90 learned |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in with_etas {
            let Some(e) = &r.eta_errors else { continue };
            out.push_str(&format!(
                "| {} | {} | {} | {:.0} s | {:.0} s | {:.0} s | {:.0} s | {:.1}% | {:.1}% | {:.1}% | {:.1}% |\n",
                r.scenario,
                r.policy,
                e.legs,
                e.nominal_abs_s.p50,
                e.nominal_abs_s.p90,
                e.learned_abs_s.p50,
                e.learned_abs_s.p90,
                e.nominal_rel_pct.p50,
                e.nominal_rel_pct.p90,
                e.learned_rel_pct.p50,
                e.learned_rel_pct.p90,
            ));
        }
    }
    out
}
