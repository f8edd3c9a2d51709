//! `plot`: PNG charts from `loadtest --json` reports, for
//! `docs/BENCHMARKS.md`.
//!
//!     cargo run --release -p loadtest --bin plot -- --out docs/img \
//!       --legend orders_sqlite=SQLite loadtest/results/2026-11-21/orders_sqlite_*.json …
//!
//! Parts: [`input`] reads a report and labels it from its file name;
//! [`series`] groups runs into series sorted by offered load; [`chart`]
//! draws each chart of [`chart::SPECS`] that has data, with [`marker`]s
//! for points and a [`legend`] placed clear of the lines; [`font`] embeds
//! the font and [`text`] draws it (working around a plotters bug). Which runs a chart compares is the caller's choice: it shows every
//! series of its scenario among the files given.

mod chart;
mod font;
mod input;
mod legend;
mod marker;
mod series;
mod text;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Draws ingest_throughput.png, orders_throughput.png, orders_latency.png
/// and track_latency.png from loadtest JSON reports (each chart only when
/// some report has its data). Reports are grouped into series by scenario
/// and label: the words of the file name without digits, after the
/// scenario (`ingest_peer_now_10k_15hz.json` → `peer_now`), plus the
/// settings that change a point's meaning (transport, batch, watchers).
#[derive(Debug, Parser)]
#[command(name = "plot")]
struct Cli {
    /// Directory for the PNG files (created if missing; files replaced).
    #[arg(long, default_value = "docs/img")]
    out: PathBuf,

    /// Legend text for the series of a scenario and label,
    /// `SCENARIO_LABEL=TEXT` (e.g. `ingest_peer_now="peer, later runs"`);
    /// repeatable. Labels without one show with spaces for `_`.
    #[arg(long = "legend", value_name = "SCENARIO_LABEL=TEXT", value_parser = parse_legend)]
    legends: Vec<(String, String)>,

    /// The reports (`loadtest … --json` output).
    #[arg(required = true)]
    reports: Vec<PathBuf>,
}

fn parse_legend(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((label, text)) if !label.is_empty() && !text.is_empty() => {
            Ok((label.to_owned(), text.to_owned()))
        }
        _ => Err(format!("expected SCENARIO_LABEL=TEXT, got {arg:?}")),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    font::register()?;
    let mut runs = Vec::with_capacity(cli.reports.len());
    for path in &cli.reports {
        let run = input::read(path)?;
        if series::point(&run.report).is_none() {
            eprintln!(
                "plot: {} skipped: not an ingest, track or orders report, or its section is missing",
                path.display()
            );
        }
        runs.push(run);
    }
    let legends: HashMap<String, String> = cli.legends.into_iter().collect();
    let all = series::group(&runs, &legends);
    std::fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    for spec in &chart::SPECS {
        let shown: Vec<&series::Series> =
            all.iter().filter(|s| s.scenario == spec.scenario).collect();
        let path = cli.out.join(spec.file);
        if chart::draw(spec, &shown, &path)
            .with_context(|| format!("drawing {}", path.display()))?
        {
            let names: Vec<&str> = shown.iter().map(|s| s.name.as_str()).collect();
            println!("{}: {}", path.display(), names.join("; "));
        }
    }
    Ok(())
}
