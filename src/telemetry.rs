//! Logs and metrics: one tracing subscriber, one Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Noisy dependencies held down unless the filter names them. rumqttd logs
/// every accepted connection at info and every ordinary disconnect or refused
/// login at ERROR, from its per-connection link (`server`) and the router's
/// connection bookkeeping (`router::routing`); ingest logs refusals itself,
/// rate-limited, so those two modules are off and the rest of rumqttd stays
/// at error.
const QUIET_DEPENDENCIES: &str = "rumqttd=error,rumqttd::server=off,rumqttd::router::routing=off,sqlx=warn,hyper=warn,tower_http=warn";

/// Installs the global tracing subscriber (once; later calls are no-ops).
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(format!("{QUIET_DEPENDENCIES},{filter}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("{QUIET_DEPENDENCIES},info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder. Installed once; every `App` in the
/// process (tests start several) renders the same registry.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first, in which case
        // our handle renders an empty registry: acceptable, and logged.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}
