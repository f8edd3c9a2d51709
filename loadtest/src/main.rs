//! `loadtest`: the network load generator. It drives a running hexdash, or
//! a "do it yourself" peer stack of `../shared/peers/` (Mosquitto and a
//! bridge writing `GEOADD` into Redis, `GEOSEARCH`; or the same bridge
//! writing UPSERTs into PostGIS, a KNN `SELECT`), over real sockets with
//! the same scenarios, so every figure in `docs/BENCHMARKS.md` is a ratio
//! measured in one session.
//!
//! Parts:
//! - [`cli`]: flags; [`scenarios`]: the phases of a run and the mix of
//!   components each scenario uses;
//! - drivers: [`fleet`] (MQTT senders over [`mqtt`], a minimal MQTT 3.1.1
//!   client) and [`ws`] (WebSocket drivers and watchers); their pings
//!   ([`ping`]) follow [`walker`]s on the OpenStreetMap road network of
//!   Gothenburg ([`roads`], [`geo`]);
//! - [`nearby`]: nearest-driver queries (REST, `GEOSEARCH` or PostGIS KNN);
//!   [`bridge`]: the peers' MQTT → Redis or PostGIS bridge; [`postgis`]: the
//!   PostGIS peer's table, UPSERTs and KNN query; [`accounts`]:
//!   signup/login and the credentials cache;
//! - measurement: [`stats`] (HDR histograms, counters), [`server_metrics`]
//!   (hexdash's `/metrics`), [`proc_stats`] (server CPU and RSS),
//!   [`progress`], [`report`] (text/JSON report and SLO checks).
//!
//! Map data © OpenStreetMap contributors, available under the Open Database
//! License (ODbL 1.0).

mod accounts;
mod bridge;
mod cli;
mod clock;
mod fleet;
mod geo;
mod mqtt;
mod nearby;
mod ping;
mod postgis;
mod proc_stats;
mod progress;
mod report;
mod roads;
mod scenarios;
mod search;
mod server_metrics;
mod stats;
mod walker;
mod ws;

use std::process::ExitCode;

use clap::Parser;
use rlimit::Resource;

/// Open files wanted: 10,000+ drivers and 10,000+ watchers with room to
/// spare (each connection is one descriptor here).
const WANTED_NOFILE: u64 = 1_048_576;

/// Exit code when an SLO flag was missed (2 is for errors).
const EXIT_SLO_MISSED: u8 = 1;
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(e) = cli.validate() {
        eprintln!("loadtest: {e:#}");
        return ExitCode::from(EXIT_ERROR);
    }
    let nofile = raise_nofile_limit();
    let needed = (cli.drivers + cli.watchers + cli.nearby_conns + 64) as u64;
    if nofile < needed {
        eprintln!(
            "loadtest: warning: only {nofile} open files allowed, this run needs about {needed}; \
             raise it (ulimit -n) or run as root"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let report = match runtime.block_on(scenarios::run(&cli)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    // Leave lingering connection tasks behind without waiting for them.
    runtime.shutdown_background();
    if cli.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("loadtest: cannot serialise the report: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SLO_MISSED)
    }
}

/// Raises the open-file limit as far as allowed (the hard limit too when
/// running as root) and returns the soft limit in force.
fn raise_nofile_limit() -> u64 {
    if let Ok((soft, hard)) = Resource::NOFILE.get()
        && soft < WANTED_NOFILE
    {
        // Raising the hard limit needs CAP_SYS_RESOURCE; without it, settle
        // for the current hard limit.
        if Resource::NOFILE
            .set(WANTED_NOFILE, WANTED_NOFILE.max(hard))
            .is_err()
        {
            let _ = Resource::NOFILE.set(hard, hard);
        }
    }
    Resource::NOFILE.get().map_or(0, |(soft, _)| soft)
}
