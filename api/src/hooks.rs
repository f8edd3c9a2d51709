//! Webhooks in the running app: [`Webhooks`], the narrow handle the admin
//! routes hold (register, list, delete, read the log), and [`HookConsumer`],
//! the adapter that puts a [`webhooks::WebhookConsumer`] on the event
//! stream.
//!
//! **The body an integrator receives** is the [`events::Event`] as JSON,
//! byte for byte what is signed: `{"id": 42, "type": "order.placed",
//! "aggregate": {"kind": "order", "id": "<uuid>"}, "version": 1,
//! "at_ms": 1733540000000, "actor": "user:<uuid>" | "system:<name>",
//! "payload": {"schema_version": 1, "body": {…}}}`. `id` is the stream's
//! global id, also sent as `Hexdash-Event-Id` (receivers deduplicate by
//! it: delivery is at least once).
//!
//! One consumer per endpoint, named `webhook:<endpoint id>` (its position
//! and dead letters), all with the metric label `webhook`. A registered
//! endpoint's consumer starts at the stream's head (no history); deleting
//! it stops its consumer and drops its position, dead letters and log.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use events::{Consumer, Consumers, Event, EventLog, EventType, HandleError};
use sqlx::AnyPool;

use crate::error::error_chain as api_error_chain;
use webhooks::{
    Deliverer, Endpoint, EndpointId, EndpointSpec, EnvelopeBytes, NowMs, Secret, WebhookConsumer,
};

/// The metric label of every webhook consumer (no endpoint id in labels).
pub const METRIC_LABEL: &str = "webhook";

/// How webhooks are delivered and retried (the `[webhooks]` section).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The most one delivery attempt may take, connecting included, ms.
    pub timeout_ms: u64,
    /// The most connecting may take, ms (capped by `timeout_ms`).
    pub connect_timeout_ms: u64,
    /// Tries of one event before it goes to the endpoint's dead letters.
    pub max_attempts: u32,
    /// The wait after the first failed try, ms; it doubles after each.
    pub backoff_initial_ms: u64,
    /// The longest wait between tries, ms.
    pub backoff_max_ms: u64,
    /// A PEM file of certificate authorities trusted for `https`
    /// endpoints besides the system's (a private CA); unset: the system's
    /// only.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let delivery = webhooks::Config::default();
        Self {
            timeout_ms: delivery.timeout_ms,
            connect_timeout_ms: delivery.connect_timeout_ms,
            max_attempts: 8,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
            ca_file: delivery.ca_file,
        }
    }
}

impl Config {
    /// The delivery settings among these.
    pub fn delivery(&self) -> webhooks::Config {
        webhooks::Config {
            timeout_ms: self.timeout_ms,
            connect_timeout_ms: self.connect_timeout_ms,
            ca_file: self.ca_file.clone(),
        }
    }

    /// The stream settings of a webhook consumer: the stream's, with these
    /// tries, and a handle timeout a little over the delivery's (the store
    /// reads and the log write around it).
    pub fn stream_config(&self, base: &events::Config) -> events::Config {
        events::Config {
            max_attempts: self.max_attempts,
            backoff_initial_ms: self.backoff_initial_ms,
            backoff_max_ms: self.backoff_max_ms,
            handle_timeout_ms: self.timeout_ms.saturating_add(5_000),
            ..base.clone()
        }
    }
}

/// Why a webhook operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The webhook tables.
    #[error(transparent)]
    Store(#[from] webhooks::store::Error),
    /// The event stream (starting or stopping a consumer).
    #[error(transparent)]
    Events(#[from] events::Error),
    /// The HTTP client could not be built (an unusable resolver
    /// configuration).
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
}

/// The webhooks of a running app. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    log: EventLog,
    consumers: Consumers,
    deliverer: Deliverer,
    stream: events::Config,
    now_ms: NowMs,
}

impl Webhooks {
    /// Webhooks over `log`'s database, adding consumers to `consumers`
    /// (the handle the stream runs with), delivering per `config`; `base`
    /// is the stream's own config.
    pub fn new(
        log: EventLog,
        consumers: Consumers,
        config: &Config,
        base: &events::Config,
        now_ms: NowMs,
    ) -> Result<Self, Error> {
        let deliverer =
            Deliverer::new(&config.delivery()).map_err(|e| Error::Client(api_error_chain(&e)))?;
        Ok(Self {
            log,
            consumers,
            deliverer,
            stream: config.stream_config(base),
            now_ms,
        })
    }

    fn pool(&self) -> &AnyPool {
        self.log.pool()
    }

    /// Starts a consumer for every stored endpoint (at start-up); how
    /// many. Disabled ones too: their runner skips events while they are
    /// disabled, so enabling one again (after a restart or not) resumes at
    /// the next event instead of replaying what happened meanwhile.
    pub async fn start_stored(&self) -> Result<usize, Error> {
        let mut started = 0;
        let mut after = None;
        loop {
            let page =
                webhooks::store::list_endpoints(self.pool(), after, webhooks::store::MAX_PAGE)
                    .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for endpoint in page {
                self.start(endpoint).await?;
                started += 1;
            }
        }
        Ok(started)
    }

    /// [`Webhooks::start_stored`] for the endpoints not running here yet
    /// (registered on another node since this one started): a node that
    /// takes the relay lease delivers to every stored endpoint. How many
    /// it started.
    pub async fn start_stored_missing(&self) -> Result<usize, Error> {
        let running = self.consumers.names();
        let mut started = 0;
        let mut after = None;
        loop {
            let page =
                webhooks::store::list_endpoints(self.pool(), after, webhooks::store::MAX_PAGE)
                    .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for endpoint in page {
                if running.contains(&consumer_name(endpoint.id)) {
                    continue;
                }
                self.start(endpoint).await?;
                started += 1;
            }
        }
        Ok(started)
    }

    /// Stores a new endpoint with the id `id` (made by the caller from the
    /// app's clock) and starts its consumer; the endpoint with its secret
    /// (show it once).
    pub async fn register(&self, spec: EndpointSpec, id: EndpointId) -> Result<Endpoint, Error> {
        let endpoint = Endpoint::new(spec, id, Secret::generate(), (self.now_ms)());
        webhooks::store::insert_endpoint(self.pool(), &endpoint).await?;
        if let Err(e) = self.start(endpoint.clone()).await {
            // No endpoint without a consumer: undo.
            webhooks::store::delete_endpoint(self.pool(), endpoint.id).await?;
            return Err(e);
        }
        Ok(endpoint)
    }

    async fn start(&self, endpoint: Endpoint) -> Result<(), Error> {
        let consumer = HookConsumer::new(WebhookConsumer::new(
            endpoint,
            self.deliverer.clone(),
            self.pool().clone(),
            self.now_ms.clone(),
        ));
        self.consumers
            .add_with(Arc::new(consumer), self.stream.clone())
            .await?;
        Ok(())
    }

    /// The endpoint with this id.
    pub async fn get(&self, id: EndpointId) -> Result<Option<Endpoint>, Error> {
        Ok(webhooks::store::get_endpoint(self.pool(), id).await?)
    }

    /// A page of endpoints in id order, after `after`.
    pub async fn list(
        &self,
        after: Option<EndpointId>,
        limit: u32,
    ) -> Result<Vec<Endpoint>, Error> {
        Ok(webhooks::store::list_endpoints(self.pool(), after, limit).await?)
    }

    /// A page of an endpoint's delivery log, newest first, before `before`.
    pub async fn deliveries(
        &self,
        id: EndpointId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<webhooks::store::Delivery>, Error> {
        Ok(webhooks::store::list_deliveries(self.pool(), id, before, limit).await?)
    }

    /// Enables or disables the endpoint (by an admin); the endpoint as it
    /// is now, `None` when there is no such endpoint. Its consumer keeps
    /// running either way (see [`Webhooks::start_stored`]): events that
    /// come while it is disabled are skipped, not kept for later.
    pub async fn set_enabled(
        &self,
        id: EndpointId,
        enabled: bool,
    ) -> Result<Option<Endpoint>, Error> {
        let reason = (!enabled).then_some(DISABLED_BY_ADMIN);
        if !webhooks::store::set_enabled(self.pool(), id, enabled, reason, (self.now_ms)()).await? {
            return Ok(None);
        }
        self.get(id).await
    }

    /// Stops the endpoint's consumer (dropping its position and dead
    /// letters) and deletes it with its log; whether it existed.
    pub async fn delete(&self, id: EndpointId) -> Result<bool, Error> {
        self.consumers.remove(&self.log, &consumer_name(id)).await?;
        Ok(webhooks::store::delete_endpoint(self.pool(), id).await?)
    }
}

/// The `disabled_reason` of an endpoint an admin disabled.
pub const DISABLED_BY_ADMIN: &str = "disabled by an admin";

/// A webhook consumer's name on the stream.
pub fn consumer_name(id: EndpointId) -> String {
    format!("webhook:{id}")
}

/// A [`WebhookConsumer`] as an [`events::Consumer`].
pub struct HookConsumer {
    inner: WebhookConsumer,
    name: String,
}

impl HookConsumer {
    /// The adapter for `inner`.
    pub fn new(inner: WebhookConsumer) -> Self {
        let name = consumer_name(inner.endpoint.id);
        Self { inner, name }
    }
}

/// The signed body and headers of `event` (see the module docs).
pub fn envelope(event: &Event) -> Result<EnvelopeBytes, serde_json::Error> {
    Ok(EnvelopeBytes {
        event_id: event.id.to_string(),
        event_type: event.event_type.as_str().to_owned(),
        body: Bytes::from(serde_json::to_vec(event)?),
    })
}

#[async_trait]
impl Consumer for HookConsumer {
    fn name(&self) -> &str {
        &self.name
    }

    fn metric_label(&self) -> &str {
        METRIC_LABEL
    }

    fn wants(&self, event_type: EventType) -> bool {
        // The types cannot change after registration; `handle` reads the
        // row again for what can (enabled, deleted).
        self.inner.endpoint.wants(event_type.as_str())
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let envelope = envelope(event)?;
        self.inner.handle(&envelope).await?;
        Ok(())
    }
}
