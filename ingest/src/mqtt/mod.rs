//! The embedded MQTT broker (rumqttd, used only in this module).
//!
//! - The rumqttd router runs on its own thread; its TCP server runs on our
//!   runtime with [`acl::AclProtocol`] as its codec, which authenticates
//!   drivers and confines each to its own topics.
//! - [`consumer`]: an in-process link subscribed to `drivers/+/location`
//!   that decodes, validates and applies pings to the engine in batches.
//! - [`offers`]: a second in-process link that publishes each offer to
//!   `drivers/{driver_id}/offers`.
//! - [`external`]: instead of all of the above, a client of an external
//!   broker (rumqttc): a shared subscription on the drivers' pings, the
//!   same batches, and the same offers publisher.

pub mod acl;
pub(crate) mod consumer;
mod external;
mod offers;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use rumqttd::local::{LinkBuilder, LinkRx, LinkTx};
use rumqttd::{
    ConnectionSettings, LinkType, Notification, RouterConfig, SegmentConfig, Server, ServerSettings,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Error, Shared, topics};

/// The router's id; there is one router per process.
const ROUTER_ID: usize = 0;
/// Client ids of the in-process links. Remote client ids are always
/// rewritten to `{uuid}.{id}` or assigned `rumqtt-{uuid}`, so no driver can
/// take these over.
const CONSUMER_CLIENT_ID: &str = "hexdash-ingest";
const OFFERS_CLIENT_ID: &str = "hexdash-offers";

/// Publishes the router forwards to one connection per scheduling round
/// before serving others (fairness between the consumer and drivers).
const MAX_OUTGOING_PACKETS: u64 = 200;
/// Commit log of the ping filter: 4 × 8 MiB ≈ 2 s of pings at 100k/s. A
/// consumer further behind loses the oldest pings (positions are superseded
/// by the next ping anyway).
const LOCATION_SEGMENT_BYTES: usize = 8 * 1024 * 1024;
const LOCATION_SEGMENT_COUNT: usize = 4;
/// Commit log of every other filter, i.e. each driver's offers topic: a
/// single 1 KiB segment (rumqttd's minimum), a few offers. Offers go out as
/// they are published and a new subscriber never replays old ones, so
/// retention only costs memory (one log per subscribed driver).
const DEFAULT_SEGMENT_BYTES: usize = 1024;
const DEFAULT_SEGMENT_COUNT: usize = 1;
/// Time for the router to answer the in-process links' setup.
const ROUTER_SETUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Notifications read while waiting for the consumer's SUBACK (the router
/// sends nothing else on a fresh link; this bounds the loop regardless).
const MAX_SETUP_NOTIFICATIONS: usize = 16;

/// A running broker, embedded or external: for `/readyz` and logs.
#[derive(Clone, Debug)]
pub struct BrokerHandle {
    kind: Kind,
    up: Arc<AtomicBool>,
    tasks: TaskTracker,
}

#[derive(Clone, Debug)]
enum Kind {
    /// The embedded broker, listening here.
    Embedded(SocketAddr),
    /// A client of the external broker(s) at these urls.
    External(String),
}

impl BrokerHandle {
    /// The address the embedded broker listens on (the chosen port when
    /// configured with port 0); `None` with an external broker, where
    /// hexdash listens for no MQTT.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.kind {
            Kind::Embedded(addr) => Some(*addr),
            Kind::External(_) => None,
        }
    }

    /// Where drivers' MQTT goes, for the start log: the listen address, or
    /// `external <urls>`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Embedded(addr) => addr.to_string(),
            Kind::External(urls) => format!("external {urls}"),
        }
    }

    /// Embedded: true while the listener accepts and pings reach the
    /// engine; false after shutdown or if the router went away. External:
    /// true while connected to the broker (and, on an ingest node,
    /// subscribed to the pings).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Resolves once the broker's tasks (listener, consumer, offer
    /// publisher; or the external client) have stopped, after the
    /// shutdown token was cancelled.
    pub async fn stopped(&self) {
        self.tasks.wait().await;
    }
}

/// Connects to the external broker; see [`crate::Ingest::connect_broker`].
pub(crate) async fn start_external(
    shared: Arc<Shared>,
    subscribe: bool,
    shutdown: CancellationToken,
) -> Result<BrokerHandle, Error> {
    external::start(shared, subscribe, shutdown).await
}

/// Starts the broker; see [`crate::Ingest::start_broker`].
pub(crate) async fn start(
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> Result<BrokerHandle, Error> {
    let addr = reserve(shared.config.mqtt_addr)?;
    let router_tx = rumqttd::Router::new(ROUTER_ID, router_config(&shared.config)).spawn();

    let links = {
        let router_tx = router_tx.clone();
        // Blocking: the router answers a new link on a synchronous channel.
        tokio::task::spawn_blocking(move || {
            let build = |client_id| {
                LinkBuilder::new(client_id, router_tx.clone())
                    .dynamic_filters(true)
                    .build()
                    .map(|(tx, rx, _ack)| (tx, rx))
                    .map_err(|e| e.to_string())
            };
            let (mut consumer_tx, consumer_rx) = build(CONSUMER_CLIENT_ID)?;
            consumer_tx
                .subscribe(topics::ALL_LOCATIONS)
                .map_err(|e| e.to_string())?;
            let (offers_tx, offers_rx) = build(OFFERS_CLIENT_ID)?;
            Ok::<_, String>(Links {
                consumer_tx,
                consumer_rx,
                offers_tx,
                offers_rx,
            })
        })
    };
    let Links {
        consumer_tx,
        mut consumer_rx,
        offers_tx,
        offers_rx,
    } = tokio::time::timeout(ROUTER_SETUP_TIMEOUT, links)
        .await
        .map_err(|_| {
            Error::Broker("the router did not register the in-process links in time".into())
        })?
        .map_err(|e| Error::Broker(format!("setting up the in-process links panicked: {e}")))?
        .map_err(|e| Error::Broker(format!("the router refused an in-process link: {e}")))?;
    // Pings published before the subscription is in place would go nowhere.
    tokio::time::timeout(ROUTER_SETUP_TIMEOUT, await_suback(&mut consumer_rx))
        .await
        .map_err(|_| {
            Error::Broker("the router did not acknowledge the ping subscription in time".into())
        })??;

    let ctx = Arc::new(acl::AclContext {
        shared: shared.clone(),
        shutdown: shutdown.clone(),
    });
    let settings = server_settings(
        &shared.config,
        addr,
        acl::auth_handler(shared.tokens.clone()),
    );
    let mut server = Server::new(settings, router_tx, acl::AclProtocol::new(ctx));
    let mut accept = Box::pin(async move { server.start(LinkType::Remote).await });
    // `Server::start` binds its listener synchronously in its first poll and
    // then waits for connections: polling it once here turns a bind failure
    // into our error and means the broker accepts once we return.
    match std::future::poll_fn(|cx| Poll::Ready(accept.as_mut().poll(cx))).await {
        Poll::Pending => {}
        Poll::Ready(Err(e)) => {
            return Err(Error::Bind {
                addr,
                source: io::Error::other(e.to_string()),
            });
        }
        Poll::Ready(Ok(())) => {
            return Err(Error::Broker("the MQTT listener stopped at once".into()));
        }
    }

    let up = Arc::new(AtomicBool::new(true));
    let tasks = TaskTracker::new();
    let changes = shared.engine.subscribe_changes();
    {
        let (up, shutdown) = (up.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                result = accept => {
                    tracing::error!(error = ?result, %addr, "MQTT listener stopped");
                }
            }
            up.store(false, Ordering::Relaxed);
        });
    }
    tasks.spawn(consumer::run(
        shared.clone(),
        consumer_tx,
        consumer_rx,
        up.clone(),
        shutdown.clone(),
    ));
    let outbox = offers::RouterOutbox {
        link_tx: offers_tx,
        link_rx: offers_rx,
    };
    tasks.spawn(offers::run(shared, outbox, changes, shutdown));
    tasks.close();
    tracing::info!(%addr, "MQTT broker listening");
    Ok(BrokerHandle {
        kind: Kind::Embedded(addr),
        up,
        tasks,
    })
}

/// The address to give rumqttd, checked free. rumqttd binds by itself and
/// cannot report its port, so port 0 is resolved here to a port the OS says
/// is free; a taken address becomes a clear error instead of a log line
/// inside rumqttd. (Between this check and rumqttd's bind another process
/// could take the port; `start` reports that race as a bind error too.)
fn reserve(addr: SocketAddr) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(addr).map_err(|source| match source.kind() {
        io::ErrorKind::AddrInUse => Error::AddrInUse { addr },
        _ => Error::Bind { addr, source },
    })?;
    listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })
}

fn router_config(config: &crate::Config) -> RouterConfig {
    let location = SegmentConfig {
        max_segment_size: LOCATION_SEGMENT_BYTES,
        max_segment_count: LOCATION_SEGMENT_COUNT,
    };
    RouterConfig {
        // Two slots for the in-process links.
        max_connections: config.max_connections.saturating_add(2),
        max_outgoing_packet_count: MAX_OUTGOING_PACKETS,
        max_segment_size: DEFAULT_SEGMENT_BYTES,
        max_segment_count: DEFAULT_SEGMENT_COUNT,
        custom_segment: Some(HashMap::from([(
            topics::ALL_LOCATIONS.to_owned(),
            location,
        )])),
        ..RouterConfig::default()
    }
}

fn server_settings(
    config: &crate::Config,
    listen: SocketAddr,
    auth: rumqttd::AuthHandler,
) -> ServerSettings {
    ServerSettings {
        name: "hexdash-mqtt".to_owned(),
        listen,
        // rumqttd reads the files once at start and does each handshake in
        // the connection's task under `connection_timeout_ms` (a patch:
        // vendor/README.md).
        tls: config
            .mqtt_tls
            .as_ref()
            .map(|t| rumqttd::TlsConfig::Rustls {
                capath: None,
                certpath: t.cert_file.display().to_string(),
                keypath: t.key_file.display().to_string(),
            }),
        // rumqttd sleeps this long after every accept: 0 leaves accepts
        // unthrottled (1 ms would cap them at 1,000/s).
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: config.mqtt_connect_timeout_ms,
            max_payload_size: config.max_mqtt_packet_bytes,
            max_inflight_count: config.mqtt_max_inflight,
            auth: None,
            external_auth: Some(auth),
            // No effect on the topics that reach the router: the ACL lets
            // through only topics that match the consumer's filter, and the
            // `$` sink topic which matches nothing.
            dynamic_filters: true,
        },
    }
}

/// The consumer's and the offer publisher's in-process links.
struct Links {
    consumer_tx: LinkTx,
    consumer_rx: LinkRx,
    offers_tx: LinkTx,
    offers_rx: LinkRx,
}

async fn await_suback(link_rx: &mut LinkRx) -> Result<(), Error> {
    for _ in 0..MAX_SETUP_NOTIFICATIONS {
        match link_rx.next().await {
            Ok(Some(Notification::DeviceAck(_))) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Broker(format!(
                    "the router closed the ingest link: {e}"
                )));
            }
        }
    }
    Err(Error::Broker(
        "the router did not acknowledge the ping subscription".into(),
    ))
}
