//! Logs and metrics: one tracing subscriber, one Prometheus recorder.
//!
//! - [`init_logging`]: the subscriber (text or JSON; colour only on a
//!   terminal).
//! - [`prometheus`]: the recorder, with the HELP text of the metrics the
//!   binary itself records and `hexdash_build_info`; [`render`] adds the
//!   process metrics ([`process`]) at scrape time.
//! - [`http`]: the request middleware (counts, durations, one log line per
//!   request under `hexdash::http`).

pub mod http;
mod process;

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_gauge, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Noisy dependencies held down unless the filter names them. rumqttd logs
/// every accepted connection at info and every ordinary disconnect or refused
/// login at ERROR, from its per-connection link (`server`) and the router's
/// connection bookkeeping (`router::routing`); ingest logs refusals itself,
/// rate-limited, so those two modules are off and the rest of rumqttd stays
/// at error.
const QUIET_DEPENDENCIES: &str = "rumqttd=error,rumqttd::server=off,rumqttd::router::routing=off,sqlx=warn,hyper=warn,tower_http=warn";

/// How often histogram samples are folded into their buckets. The recorder
/// keeps each sample until then (8 bytes per request); without this a
/// process nobody scrapes would grow without bound.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the global tracing subscriber (once; later calls are no-ops).
/// Logs go to stdout, with colour only when stdout is a terminal and
/// `NO_COLOR` is unset (a file, a pipe or journald gets plain text).
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(format!("{QUIET_DEPENDENCIES},{filter}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("{QUIET_DEPENDENCIES},info")));
    let ansi = use_colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Colour codes only for a person at a terminal who has not asked for none
/// (<https://no-color.org>).
fn use_colour(is_terminal: bool, no_color: bool) -> bool {
    is_terminal && !no_color
}

/// The process-wide Prometheus recorder. Installed once; every `App` in the
/// process (tests start several) renders the same registry.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(http::DURATION.to_owned()),
                http::DURATION_BUCKETS,
            )
            // Fails only for an empty bucket list; ours is a non-empty constant.
            .expect("request duration buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first, in which case
        // our handle renders an empty registry: acceptable, and logged.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

/// HELP text of the metrics recorded in this crate (`ops` at scrape time,
/// [`http`] per request) and the build info; the library crates describe
/// their own (ingest and ws-gateway when built, api and matcher here).
fn describe() {
    api::describe_metrics();
    events::describe_metrics();
    cluster::describe_metrics();
    crate::answers::describe_metrics();
    matcher::describe_metrics();
    describe_gauge!(
        "hexdash_build_info",
        "Always 1; the labels say which build is running"
    );
    gauge!("hexdash_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    describe_gauge!(
        "hexdash_drivers",
        "Drivers the engine knows (online and offline)"
    );
    describe_gauge!(
        "hexdash_tracked_orders",
        "Orders on the engine's live board (assigned, being tracked)"
    );
    describe_gauge!(
        "hexdash_occupied_cells",
        "H3 cells of the spatial index holding at least one driver"
    );
    describe_gauge!(
        "hexdash_queue_depth",
        "Items waiting in an internal queue, by queue"
    );
    describe_gauge!(
        "hexdash_ws_mailbox_max",
        "Longest outgoing mailbox of any tracking WebSocket client"
    );
    metrics::describe_counter!(
        http::REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    metrics::describe_histogram!(
        http::DURATION,
        metrics::Unit::Seconds,
        "Time from an HTTP request to its response head, by method, route template and status"
    );
}

/// The scrape: every registered metric, then the process metrics.
pub fn render() -> String {
    let mut text = prometheus().render();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&process::render());
    text
}

/// Folds histogram samples into their buckets every [`UPKEEP_INTERVAL`]
/// until `shutdown`.
pub async fn run_upkeep(shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => prometheus().run_upkeep(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let check = |terminal, no_color, expected| {
            assert_eq!(
                use_colour(terminal, no_color),
                expected,
                "terminal={terminal} no_color={no_color}"
            );
        };
        check(true, false, true);
        check(false, false, false);
        check(true, true, false);
        check(false, true, false);
    }
}
