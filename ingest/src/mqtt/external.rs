//! The external broker: hexdash as an MQTT client (rumqttc, used only in
//! this module) of a broker cluster (Mosquitto, EMQX, VerneMQ) that drivers
//! connect to instead of the embedded broker.
//!
//! - The broker authenticates drivers and enforces the per-driver topic ACL
//!   (docs/EXTERNAL_BROKER.md): a driver publishes only to
//!   `drivers/{own id}/location` and reads only `drivers/{own id}/offers`.
//!   That is what lets the topic name the driver here.
//! - An ingest node subscribes with a **shared subscription**
//!   (`$share/{group}/drivers/+/location`): the broker hands each ping to
//!   one member of the group, so N nodes split the load and each ping is
//!   applied once. Every message goes through the embedded path's
//!   [`Batch`] (topic check, size, decode, validation, one engine lock per
//!   batch, the same counters and log lines); a banned driver's pings are
//!   dropped here (the broker does not know hexdash's bans).
//! - Offers, offer ends and notifications go out through the same
//!   publisher as the embedded broker's ([`offers::run`]) on this client,
//!   from whichever node makes them (a node without the ingest role
//!   connects to publish only).
//! - [`Connection::run`] owns the connection: on a loss or a refusal it
//!   waits with exponential backoff (`reconnect_initial_ms` doubling up to
//!   `reconnect_max_ms`), tries the next url, and subscribes again on every
//!   new connection (a clean session keeps nothing). `BrokerHandle::is_up`
//!   (`/readyz`'s `mqtt_broker`) is true while connected and subscribed.
//! - Presence: there are no CONNECT/DISCONNECT hooks here, but the embedded
//!   broker has none for presence either: a driver is online from its
//!   pings and goes offline by the engine's expiry (`presence`) on both.
//!   What is lost is the count of open driver connections
//!   (`hexdash_connections{kind="mqtt"}` stays 0: read it at the broker).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, QoS, Request, Subscribe,
    SubscribeReasonCode,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::consumer::{Batch, MAX_BATCH};
use super::offers::{self, Outbox};
use super::{BrokerHandle, Kind};
use crate::config::{BrokerConfig, BrokerEndpoint};
use crate::{Error, Shared, topics};

/// How long shutdown waits for the DISCONNECT to be written (a clean
/// goodbye lets the broker drop the session at once).
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest client id hexdash makes up (MQTT 3.1.1 brokers must accept 23
/// characters; every broker here accepts more).
const MADE_UP_ID_CHARS: usize = 12;

/// Connects to the external broker and returns at once; the connection
/// comes up in the background (`is_up` says when). With `subscribe`, the
/// drivers' pings are applied to the engine; offers and notifications are
/// published either way. Refuses settings that cannot work.
pub(crate) async fn start(
    shared: Arc<Shared>,
    subscribe: bool,
    shutdown: CancellationToken,
) -> Result<BrokerHandle, Error> {
    let config = &shared.config.broker;
    let endpoints = config.validate().map_err(Error::Config)?;
    let client_id = config.client_id.clone().unwrap_or_else(|| {
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("hexdash-{}", &random[..MADE_UP_ID_CHARS])
    });
    let options: Vec<MqttOptions> = endpoints
        .iter()
        .map(|e| mqtt_options(config, &client_id, e))
        .collect();
    let (client, mut eventloop) = AsyncClient::new(options[0].clone(), config.publish_queue);
    eventloop
        .network_options
        .set_connection_timeout(config.connect_timeout_s);
    let qos = qos(config.qos);
    let urls = endpoints
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let up = Arc::new(AtomicBool::new(false));
    let tasks = TaskTracker::new();
    let changes = shared.engine.subscribe_changes();
    let connection = Connection {
        shared: shared.clone(),
        eventloop,
        client: client.clone(),
        filter: subscribe.then(|| topics::shared_locations(&config.share_group)),
        qos,
        up: up.clone(),
        backoff: Backoff::new(config.reconnect_initial_ms, config.reconnect_max_ms),
        connected: false,
        ever_connected: false,
        current: 0,
        endpoints,
        options,
    };
    tasks.spawn(connection.run(shutdown.clone()));
    let outbox = ClientOutbox {
        shared: shared.clone(),
        client,
        qos,
    };
    tasks.spawn(offers::run(shared, outbox, changes, shutdown));
    tasks.close();
    tracing::info!(
        urls = %urls,
        client_id = %client_id,
        subscribe,
        "connecting to the external MQTT broker"
    );
    Ok(BrokerHandle {
        kind: Kind::External(urls),
        up,
        tasks,
    })
}

fn mqtt_options(config: &BrokerConfig, client_id: &str, at: &BrokerEndpoint) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, at.host.clone(), at.port);
    options
        .set_keep_alive(Duration::from_secs(u64::from(config.keep_alive_s)))
        // Nothing to resume: pings are superseded, offers expire, and the
        // subscription is made again on every connection.
        .set_clean_session(true)
        .set_max_packet_size(config.max_packet_bytes, config.max_packet_bytes);
    if let Some(username) = &config.username {
        options.set_credentials(
            username.clone(),
            config.password.clone().unwrap_or_default(),
        );
    }
    options
}

/// Checked by `BrokerConfig::validate` (0 or 1).
fn qos(level: u8) -> QoS {
    if level == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// The client's connection: reads pings, keeps the link alive, reconnects.
struct Connection {
    shared: Arc<Shared>,
    eventloop: EventLoop,
    client: AsyncClient,
    /// `$share/{group}/drivers/+/location` on an ingest node.
    filter: Option<String>,
    qos: QoS,
    up: Arc<AtomicBool>,
    backoff: Backoff,
    connected: bool,
    /// A CONNACK after the first is a reconnection (counted).
    ever_connected: bool,
    /// Index into `endpoints`/`options` of the broker tried now.
    current: usize,
    endpoints: Vec<BrokerEndpoint>,
    options: Vec<MqttOptions>,
}

impl Connection {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut batch = Batch::default();
        loop {
            let polled = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                polled = self.eventloop.poll() => polled,
            };
            let now = self.shared.now_ms();
            let mut failure = None;
            match polled {
                Ok(event) => {
                    self.handle(event, &mut batch, now);
                    // What the last socket read brought is queued in the
                    // client: handle it as one batch (one engine lock).
                    // `poll` returns those at once, without network I/O.
                    let mut handled = 1;
                    while handled < MAX_BATCH && !self.eventloop.state.events.is_empty() {
                        match self.eventloop.poll().await {
                            Ok(event) => self.handle(event, &mut batch, now),
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
                        }
                        handled += 1;
                    }
                    batch.apply(&self.shared, now);
                }
                Err(e) => failure = Some(e),
            }
            if let Some(e) = failure {
                self.lost(&e);
                let pause = self.backoff.next();
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
        self.set_up(false);
        if self.connected {
            self.say_goodbye().await;
        }
        self.shared.metrics.external.connected.set(0.0);
    }

    fn handle(&mut self, event: Event, batch: &mut Batch, now_ms: i64) {
        let Event::Incoming(packet) = event else {
            return;
        };
        match packet {
            Incoming::Publish(publish) => {
                self.shared.metrics.external.received.increment(1);
                self.on_ping(batch, publish.topic.as_bytes(), &publish.payload, now_ms);
            }
            Incoming::ConnAck(_) => self.on_connected(),
            Incoming::SubAck(ack) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure));
                if refused {
                    tracing::error!(
                        filter = self.filter.as_deref().unwrap_or_default(),
                        "the MQTT broker refused hexdash's subscription to the drivers' pings; \
                         check the ACL of hexdash's account (docs/EXTERNAL_BROKER.md)"
                    );
                } else {
                    tracing::info!(
                        filter = self.filter.as_deref().unwrap_or_default(),
                        "subscribed to the drivers' pings"
                    );
                    self.set_up(true);
                }
            }
            _ => {}
        }
    }

    /// One message of the shared subscription: the embedded path's checks,
    /// after hexdash's own ban list, which the broker does not know.
    fn on_ping(&self, batch: &mut Batch, topic: &[u8], payload: &[u8], now_ms: i64) {
        let shared = &self.shared;
        if let Some(driver_id) = topics::parse_location(topic)
            && shared.tokens.is_banned(driver_id.into())
        {
            shared.metrics.external.dropped_banned.increment(1);
            return;
        }
        batch.add_published(shared, topic, payload, now_ms);
    }

    fn on_connected(&mut self) {
        self.connected = true;
        self.backoff.reset();
        self.shared.metrics.external.connected.set(1.0);
        let at = &self.endpoints[self.current];
        if self.ever_connected {
            self.shared.metrics.external.reconnects.increment(1);
            tracing::info!(broker = %at, "reconnected to the MQTT broker");
        } else {
            tracing::info!(broker = %at, "connected to the MQTT broker");
        }
        self.ever_connected = true;
        match &self.filter {
            // First in line, before offers queued meanwhile: a clean
            // session has no subscription until this one is acknowledged.
            Some(filter) => self
                .eventloop
                .pending
                .push_front(Request::Subscribe(Subscribe::new(filter.clone(), self.qos))),
            None => self.set_up(true),
        }
    }

    /// The connection failed or could not be made: say so, and aim the
    /// next attempt at the next broker of the list.
    fn lost(&mut self, e: &ConnectionError) {
        let at = &self.endpoints[self.current];
        match e {
            ConnectionError::ConnectionRefused(code) => tracing::error!(
                broker = %at,
                code = ?code,
                "the MQTT broker refused hexdash's CONNECT; check [ingest.broker] username and password"
            ),
            _ if self.connected => tracing::warn!(
                broker = %at,
                error = %e,
                "lost the connection to the MQTT broker; reconnecting"
            ),
            _ => tracing::warn!(
                broker = %at,
                error = %e,
                "cannot connect to the MQTT broker; retrying"
            ),
        }
        self.connected = false;
        self.set_up(false);
        self.shared.metrics.external.connected.set(0.0);
        if self.options.len() > 1 {
            self.current = (self.current + 1) % self.options.len();
            self.eventloop.mqtt_options = self.options[self.current].clone();
        }
    }

    /// Sends DISCONNECT and lets the client write it, within a bound.
    async fn say_goodbye(&mut self) {
        if self.client.try_disconnect().is_err() {
            return;
        }
        let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, async {
            loop {
                match self.eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }
}

/// The wait before the next connection attempt.
struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    next_ms: u64,
}

impl Backoff {
    fn new(initial_ms: u64, max_ms: u64) -> Self {
        let max_ms = max_ms.max(initial_ms);
        Self {
            initial_ms,
            max_ms,
            next_ms: initial_ms,
        }
    }

    fn next(&mut self) -> Duration {
        let now = self.next_ms;
        self.next_ms = now.saturating_mul(2).min(self.max_ms);
        Duration::from_millis(now)
    }

    fn reset(&mut self) {
        self.next_ms = self.initial_ms;
    }
}

/// Offers and notifications through the client's request queue.
struct ClientOutbox {
    shared: Arc<Shared>,
    client: AsyncClient,
    qos: QoS,
}

impl Outbox for ClientOutbox {
    /// Never waits: a full queue (the broker is away, or slower than the
    /// offers) drops the message, counted.
    async fn publish(&mut self, topic: String, payload: String) -> bool {
        match self.client.try_publish(topic, self.qos, false, payload) {
            Ok(()) => true,
            Err(_) => {
                self.shared.metrics.external.dropped_queue_full.increment(1);
                false
            }
        }
    }

    /// The connection task outlives the publisher (it stops on shutdown
    /// only), so this never resolves.
    async fn closed(&mut self) {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(100, 700);
        let waits: Vec<u64> = (0..5).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(100));
    }
}
