//! `hexdash serve`: parse configuration, start everything (with `--demo`,
//! the simulated city too), stop on SIGINT or SIGTERM. `hexdash simulate`:
//! replay a city in virtual time through the real matcher
//! (`hexdash::cli::simulate`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hexdash::cli::simulate::SimulateArgs;
use hexdash::config::{Config, Overrides};
use hexdash::{App, telemetry};

/// jemalloc instead of glibc's malloc: after 32 concurrent signups (argon2id,
/// 19 MiB each) glibc kept ≈ 550 MiB resident for good, jemalloc gives the
/// hashing memory back at once (docs/BENCHMARKS.md, "Memory after signups").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "hexdash",
    version,
    about = "Real-time tracking and dispatch engine for food delivery"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine, the MQTT broker, the REST API and the WebSocket gateway.
    Serve {
        /// TOML configuration file (overridden by HEXDASH_* variables and flags).
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Replay a city in fast virtual time through the real matcher and
    /// engine, per policy and load; writes report.json and PNG charts.
    Simulate(SimulateArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config, overrides } => serve(config, overrides),
        // No tokio runtime here: each run builds its own, single-threaded
        // on a paused clock.
        Command::Simulate(args) => match hexdash::cli::simulate::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hexdash simulate: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

#[tokio::main]
async fn serve(config: Option<PathBuf>, overrides: Overrides) -> ExitCode {
    let mut config = match Config::load(config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hexdash: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let demo = match hexdash::demo::prepare(&mut config) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("hexdash: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.log, config.log_format);
    telemetry::prometheus();
    tracing::debug!(config = ?config.redacted(), "configuration");

    // The one place the system clock is chosen; everything else is handed it.
    let app = match App::build(config, std::sync::Arc::new(clock::SystemClock)).await {
        Ok(app) => app,
        Err(e) => {
            report(&e);
            return ExitCode::FAILURE;
        }
    };
    let demo = demo.map(|plan| plan.spawn(&app));
    let demo_failed = demo.as_ref().map(hexdash::demo::Running::failed);
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        hexdash::demo::stop_then(demo, &shutdown).await;
    });
    match app.run_until_stopped().await {
        // The demo city failed to set up (it said why) and stopped the app.
        Ok(()) if demo_failed.is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) => {
            ExitCode::FAILURE
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// States a fatal error once: in the log when errors are logged, else on
/// stderr (a filter of `off` must not make a failed start silent). Causes
/// that repeat their parent's text (sqlx's do) are left out.
fn report(e: &anyhow::Error) {
    let message = api::error_chain(e.as_ref());
    if tracing::enabled!(tracing::Level::ERROR) {
        tracing::error!("{message}");
    } else {
        eprintln!("hexdash: {message}");
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
