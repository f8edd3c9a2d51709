//! Driver pings in, offers out: the ingest edge of hexdash.
//!
//! - [`mqtt`]: the embedded rumqttd broker. Its ACL codec
//!   ([`mqtt::acl`]) authenticates drivers (username = user id, password =
//!   access token) and confines each to `drivers/{id}/location` (publish)
//!   and `drivers/{id}/offers` (subscribe); an in-process consumer applies
//!   pings to the engine in batches; an in-process publisher sends offers.
//!   With `[ingest.broker] mode = "external"` ([`BrokerConfig`]) there is
//!   no embedded broker: a client of an external broker takes a share of
//!   the pings through a shared subscription (the broker's ACL confines
//!   drivers) into the same batches, and publishes offers through it
//!   ([`Ingest::connect_broker`]).
//! - [`ws`]: `GET /v1/drivers/stream`, one JSON ping per text message, with
//!   error messages for bad pings and the driver's offers on the same socket.
//! - [`http`]: `POST /v1/drivers/{driver_id}/locations`, a batch of pings.
//! - [`wire`] and [`topics`]: the JSON formats and the MQTT topic names.
//! - [`presence`]: the sweep that marks silent drivers offline.
//! - `metrics`: counters and gauges, registered once per [`Ingest`].
//! - Notifications and bans: [`Ingest::notify`] sends a driver's stored
//!   notification to its stream and MQTT inbox; offers carry what
//!   [`OfferDetails`] reads ([`Ingest::with_offer_details`]); a ban
//!   (`auth::Tokens::subscribe_bans`) closes the driver's streams and MQTT
//!   connections.
//!
//! Every path decodes with [`wire`], validates with `engine::RawPing::validate`
//! and reports refusals with `engine::PingRejection` codes, so a ping is
//! refused for the same reason whichever way it came. A bad ping never ends
//! its connection, and one connection's errors never reach another.
//!
//! Use: [`Ingest::new`], then [`Ingest::start_broker`], merge
//! [`Ingest::router`] into the HTTP server, and run [`Ingest::run`] (offer
//! delivery to WebSockets, presence, closing banned drivers' sessions, and
//! closing the streams at shutdown).
//! Install the metrics recorder before [`Ingest::new`]: handles registered
//! earlier stay no-ops.

mod config;
#[doc(hidden)]
pub mod fuzz_support;
pub mod http;
mod metrics;
pub mod mqtt;
pub mod presence;
pub mod topics;
pub mod wire;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{BrokerConfig, BrokerEndpoint, BrokerMode, Config, MqttTls};
pub use mqtt::BrokerHandle;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "MQTT address {addr} is already in use (is another MQTT broker, e.g. Mosquitto, listening there?)"
    )]
    AddrInUse { addr: SocketAddr },
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the embedded MQTT broker failed to start: {0}")]
    Broker(String),
    #[error("invalid [ingest.broker] settings: {0}")]
    Config(String),
}

/// The ingest subsystem. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct Ingest {
    shared: Arc<Shared>,
}

/// What every path and task shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) engine: engine::Handle,
    pub(crate) tokens: auth::Tokens,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) streams: ws::Registry,
    /// Cancelled when [`Ingest::run`] stops: open WebSocket streams send a
    /// Close frame and end.
    pub(crate) closing: CancellationToken,
    /// The WebSocket stream tasks, so shutdown can wait for their Close.
    pub(crate) stream_tasks: TaskTracker,
    /// The app's injected wall clock (ping receive times, log budgets).
    pub(crate) clock: Arc<dyn clock::Clock>,
    /// Drivers' notifications for the MQTT publisher ([`Ingest::notify`]).
    /// Bounded ([`NOTIFY_QUEUE`]); when full the newest is dropped and
    /// counted: the notification is stored, the driver's app finds it in
    /// its feed.
    pub(crate) notify_tx: tokio::sync::mpsc::Sender<(engine::DriverId, String)>,
    /// Bans as they are applied (subscribed at `new`, taken by `run`).
    pub(crate) bans: parking_lot::Mutex<Option<tokio::sync::broadcast::Receiver<engine::UserId>>>,
    /// Where offers' details come from ([`Ingest::with_offer_details`]).
    pub(crate) offer_details: std::sync::OnceLock<Arc<dyn OfferDetails>>,
    /// The publisher's end, taken when the broker starts.
    pub(crate) notify_rx:
        parking_lot::Mutex<Option<tokio::sync::mpsc::Receiver<(engine::DriverId, String)>>>,
}

/// What an offer's extra fields are read from (implemented by the binary
/// over the store, which this crate does not depend on): the order's
/// restaurant and item count. `None` when it cannot tell (the offer goes
/// out without them).
pub trait OfferDetails: Send + Sync + 'static {
    /// The details of `order`'s offer.
    fn details(
        &self,
        order: engine::OrderId,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<wire::Details>> + Send + '_>>;
}

/// How long an offer waits for its details: a slow store must not hold up
/// offers, which expire in seconds; after this it goes out without them.
const DETAILS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

impl Shared {
    /// The offer as a driver receives it, with its details when they can be
    /// read in time, and the driver's distance to the pickup.
    pub(crate) async fn offer_json(&self, offer: &engine::Offer) -> String {
        let details = match self.offer_details.get() {
            Some(source) => tokio::time::timeout(DETAILS_TIMEOUT, source.details(offer.order_id))
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let driver_at = self
            .engine
            .driver(offer.driver_id)
            .and_then(|v| v.fix)
            .map(|f| f.position);
        wire::offer_json(offer, details.as_ref(), driver_at)
    }
}

/// Notifications waiting for the MQTT publisher: a burst of cancellations
/// across the fleet; the publisher hands each to the router in
/// microseconds.
pub(crate) const NOTIFY_QUEUE: usize = 4_096;

/// The axum state of the ingest routes.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

impl FromRef<AppState> for auth::Tokens {
    fn from_ref(state: &AppState) -> Self {
        state.0.tokens.clone()
    }
}

impl Ingest {
    /// Builds the subsystem; nothing runs yet. Registers the metric handles
    /// with the recorder installed at this point.
    pub fn new(
        config: Config,
        engine: engine::Handle,
        tokens: auth::Tokens,
        clock: Arc<dyn clock::Clock>,
    ) -> Self {
        let (notify_tx, notify_rx) = tokio::sync::mpsc::channel(NOTIFY_QUEUE);
        let bans = tokens.subscribe_bans();
        Self {
            shared: Arc::new(Shared {
                bans: parking_lot::Mutex::new(Some(bans)),
                notify_tx,
                offer_details: std::sync::OnceLock::new(),
                notify_rx: parking_lot::Mutex::new(Some(notify_rx)),
                clock,
                config,
                engine,
                tokens,
                metrics: metrics::Metrics::new(),
                streams: ws::Registry::default(),
                closing: CancellationToken::new(),
                stream_tasks: TaskTracker::new(),
            }),
        }
    }

    /// Starts the embedded MQTT broker on `config.mqtt_addr` and returns once
    /// it accepts connections and its pings reach the engine. A taken
    /// address is [`Error::AddrInUse`]. The broker stops accepting, closes
    /// its connections (at their next packet) and stops its tasks when
    /// `shutdown` is cancelled; the rumqttd router thread itself lives until
    /// the process exits.
    ///
    /// With `[ingest.broker] mode = "external"` nothing is bound: this is
    /// [`Ingest::connect_broker`] with the subscription to the pings.
    pub async fn start_broker(&self, shutdown: CancellationToken) -> Result<BrokerHandle, Error> {
        match self.shared.config.broker.mode {
            BrokerMode::Embedded => mqtt::start(self.shared.clone(), shutdown).await,
            BrokerMode::External => self.connect_broker(true, shutdown).await,
        }
    }

    /// Connects to the external broker (`[ingest.broker]`) as a client and
    /// returns at once; the handle's `is_up` says when it is connected
    /// (and, with `subscribe`, subscribed). With `subscribe` the drivers'
    /// pings come in through a shared subscription (an ingest node);
    /// without, the client only publishes offers and notifications (a
    /// node that makes them without the ingest role). Reconnects by itself
    /// until `shutdown`. Invalid settings are [`Error::Config`].
    pub async fn connect_broker(
        &self,
        subscribe: bool,
        shutdown: CancellationToken,
    ) -> Result<BrokerHandle, Error> {
        mqtt::start_external(self.shared.clone(), subscribe, shutdown).await
    }

    /// The routes `GET /v1/drivers/stream` and
    /// `POST /v1/drivers/{driver_id}/locations`, state applied.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/v1/drivers/stream", get(ws::stream_driver))
            .route(
                "/v1/drivers/{driver_id}/locations",
                post(http::post_locations),
            )
            .with_state(AppState(self.shared.clone()))
    }

    /// The same subsystem, whose offers carry the details `source` reads
    /// (restaurant, item count). Only the first call takes effect.
    pub fn with_offer_details(self, source: Arc<dyn OfferDetails>) -> Self {
        let _ = self.shared.offer_details.set(source);
        self
    }

    /// Sends `driver`'s stored notification to its WebSocket stream (if
    /// open) and to MQTT `drivers/{driver_id}/offers` (if subscribed).
    /// Never waits: a full queue drops it (counted), the feed keeps it.
    pub fn notify(&self, driver: engine::DriverId, notification: &contract::Notification) {
        let shared = &self.shared;
        // Only a driver the engine knows can have a stream or be subscribed
        // on MQTT (customers' notifications pass through here too).
        if shared.engine.driver(driver).is_none() {
            return;
        }
        let text = wire::notification_json(notification);
        if shared.streams.has(driver) {
            let delivery = shared
                .streams
                .deliver(driver, &axum::extract::ws::Utf8Bytes::from(text.clone()));
            shared
                .metrics
                .notifications_ws
                .increment(delivery.queued as u64);
            shared
                .metrics
                .notifications_dropped
                .increment(delivery.dropped as u64);
        }
        if shared.notify_tx.try_send((driver, text)).is_err() {
            shared.metrics.notifications_dropped.increment(1);
        }
    }

    /// Offer delivery to WebSocket streams and the presence sweep, until
    /// `shutdown`; then closes the open streams (Close frame) and waits for
    /// them. Subscribes to the engine's changes when called (not when first
    /// polled), so no offer published after this call is missed.
    pub fn run(&self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        let changes = self.shared.engine.subscribe_changes();
        let shared = self.shared.clone();
        async move {
            let bans = shared.bans.lock().take();
            tokio::join!(
                close_banned(&shared, bans, &shutdown),
                ws::deliver_offers(shared.clone(), changes, shutdown.clone()),
                presence::run(
                    shared.engine.clone(),
                    shared.clock.clone(),
                    shared.config.presence_sweep_ms,
                    shutdown.clone()
                ),
            );
            shared.closing.cancel();
            shared.stream_tasks.close();
            shared.stream_tasks.wait().await;
        }
    }
}

/// Closes a banned driver's sessions as each ban is applied, until
/// `shutdown`: its WebSocket streams (Close 1008 `banned`) and its MQTT
/// connections (a message to its offers topic, which the ACL refuses to
/// write for a banned driver, so rumqttd drops the connection; one not
/// subscribed there ends at its next packet). Missed bans (a lag) sweep
/// the streams.
async fn close_banned(
    shared: &Shared,
    bans: Option<tokio::sync::broadcast::Receiver<engine::UserId>>,
    shutdown: &CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(mut bans) = bans else {
        return;
    };
    loop {
        let banned: Vec<engine::DriverId> = tokio::select! {
            () = shutdown.cancelled() => return,
            ban = bans.recv() => match ban {
                Ok(user) => vec![user.into()],
                Err(RecvError::Lagged(_)) => shared
                    .streams
                    .drivers()
                    .into_iter()
                    .filter(|d| shared.tokens.is_banned((*d).into()))
                    .collect(),
                Err(RecvError::Closed) => return,
            },
        };
        for driver in banned {
            let streams = shared.streams.close(driver);
            let wake = wire::error_json(contract::ws::code::BANNED, "your account was banned");
            let _ = shared.notify_tx.try_send((driver, wake));
            tracing::info!(%driver, streams, "closing a banned driver's sessions");
        }
    }
}

impl Shared {
    /// Server time, Unix ms, from the app's injected clock: the receive
    /// time of pings. The engine never reads the clock; this edge does.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Server time, Unix s (log rate limiting).
    pub(crate) fn now_s(&self) -> u64 {
        // A clock before 1970 is a broken host; 0 keeps the arithmetic sane.
        u64::try_from(self.now_ms().div_euclid(1000)).unwrap_or(0)
    }
}

/// The system clock's now for unit tests' fixtures, Unix ms.
#[cfg(test)]
pub(crate) fn now_ms() -> i64 {
    clock::Clock::now_ms(&clock::SystemClock)
}

/// The system clock's now for unit tests' fixtures, Unix s.
#[cfg(test)]
pub(crate) fn now_s() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}
