//! Operator endpoints: `/` (where to go), `/healthz` (the process is
//! alive), `/readyz` (each dependency the node uses answers: the database,
//! the embedded broker on an ingest node or the external one's connection,
//! Redis when configured; and the node's id, roles and, in a cluster,
//! leases), `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::telemetry;

/// What readiness and the scrape-time gauges look at.
#[derive(Clone)]
pub struct OpsState {
    pub engine: engine::Handle,
    pub store: Arc<dyn api::Store>,
    /// The MQTT broker: the embedded one on an ingest node, or this node's
    /// client of the external broker (on every node); `None` on a node
    /// without the ingest role in embedded mode.
    pub broker: Option<ingest::BrokerHandle>,
    pub gateway: ws_gateway::Gateway,
    /// Redis, with `redis_url`.
    pub redis: Option<cluster::Redis>,
    /// The node's id and roles, as `/readyz` shows them.
    pub node: crate::node::NodeInfo,
    /// The node's leases, with Redis.
    pub leases: Option<cluster::Leases>,
    /// The payment gateway's circuit breaker, on a node with the REST API.
    pub payment_breaker: Option<Arc<api::payments::Breaker>>,
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/", get(get_index))
        .route("/healthz", get(get_health))
        .route("/readyz", get(get_readiness))
        .route("/metrics", get(get_metrics))
        .with_state(state)
}

/// The root answers a newcomer (or a browser) with where to go instead of
/// a bare 404: the links are relative to this server.
async fn get_index() -> Json<serde_json::Value> {
    Json(json!({
        "name": "hexdash",
        "version": env!("CARGO_PKG_VERSION"),
        "links": {
            "console": web_console::PATH,
            "docs": api::openapi::UI_PATH,
            "openapi": api::openapi::DOCUMENT_PATH,
            "health": "/healthz",
            "readiness": "/readyz",
            "metrics": "/metrics",
        },
    }))
}

async fn get_health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when every dependency this node uses answers. `checks` names
/// only those: `mqtt_broker` on an ingest node (with an external broker:
/// on every node, true while connected and, on an ingest node,
/// subscribed), `redis` with `redis_url`. `payment_gateway` (a node with
/// the REST API) is the circuit breaker's state, `closed`, `open` or
/// `half_open`: shown, not a reason to be unready, since everything but
/// new orders still works and a balancer taking every node out would stop
/// tracking too.
async fn get_readiness(State(state): State<OpsState>) -> Response {
    let (database, redis) = tokio::join!(state.store.ping(), async {
        match &state.redis {
            Some(redis) => Some(redis.ping().await),
            None => None,
        }
    });
    let mut checks = serde_json::Map::new();
    checks.insert("database".into(), database.is_ok().into());
    if let Some(broker) = &state.broker {
        checks.insert("mqtt_broker".into(), broker.is_up().into());
    }
    if let Some(redis) = redis {
        checks.insert("redis".into(), redis.into());
    }
    let ready = checks
        .values()
        .all(|up| up == &serde_json::Value::Bool(true));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": checks,
        "node": state.node,
    });
    if let Some(breaker) = &state.payment_breaker {
        body["payment_gateway"] = breaker.state().as_str().into();
    }
    if let Some(leases) = &state.leases {
        // What this node does alone now: the regions it dispatches and
        // the relay, each with its fencing token and time left.
        body["leases"] = json!(leases.held());
    }
    (status, Json(body)).into_response()
}

async fn get_metrics(State(state): State<OpsState>) -> Response {
    let stats = state.engine.stats();
    metrics::gauge!("hexdash_drivers").set(stats.drivers as f64);
    metrics::gauge!("hexdash_tracked_orders").set(stats.tracked_orders as f64);
    metrics::gauge!("hexdash_occupied_cells").set(stats.occupied_cells as f64);
    metrics::gauge!("hexdash_queue_depth", "queue" => "engine_moves")
        .set(stats.moves_queued as f64);
    metrics::gauge!("hexdash_queue_depth", "queue" => "engine_changes")
        .set(stats.changes_queued as f64);
    let backlog = state.gateway.backlog();
    metrics::gauge!("hexdash_queue_depth", "queue" => "ws_control").set(backlog.control as f64);
    metrics::gauge!("hexdash_queue_depth", "queue" => "ws_locations").set(backlog.locations as f64);
    metrics::gauge!("hexdash_queue_depth", "queue" => "ws_area").set(backlog.area_drivers as f64);
    metrics::gauge!("hexdash_ws_mailbox_max").set(backlog.max_per_client as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry::render(),
    )
        .into_response()
}
