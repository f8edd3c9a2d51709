//! Live tracking out: `GET /v1/ws` streams driver positions, ETAs and order
//! statuses to customers, restaurants and drivers (`order:{id}` channels),
//! and whole areas of the fleet to dispatchers (`area` channel), with the
//! orders no driver took whose pickup is in their area (`unassigned`). An
//! order's watchers also hear when its courier reaches the restaurant or
//! the door (a `status` with `arrival`, from the matcher's fences).
//!
//! Data flow: engine `Moved`/`Change` broadcast → `fanout` (one task) →
//! `hub` lookup → each interested client's `mailbox` → that client's writer
//! (`connection`) → socket.
//!
//! Parts:
//! - [`protocol`]: every wire name (path, channels, ops, message types,
//!   error and close codes), the client-message parser, the server-message
//!   encoders.
//! - `mailbox`: one per client: a bounded control queue (status, acks,
//!   errors; overflow disconnects as `slow_consumer`) and latest-wins maps
//!   for positions and the area frame.
//! - `hub`: the subscription index: orders by id, areas by H3 cell at the
//!   finest resolution their box fits (9 for a street, 7 for a city view)
//!   plus a global list for huge boxes.
//! - `fanout`: the loop over the engine streams; never awaits a client.
//! - `connection`: the upgrade handler (auth, connection limit) and each
//!   socket's reader (subscribe requests within a per-connection budget)
//!   and writer (keepalive, write timeout, Close frames).
//! - Notifications: the `me` channel ([`Gateway::notify`] pushes a stored
//!   notification to the user's live devices; a subscribe with `after`
//!   first replays the stored ones from the [`Records`] handed in with
//!   [`Gateway::with_records`]); a restaurant's channel
//!   (`restaurant:{id}`, its owner and admins) gets the `status` of each
//!   of its orders from payment on.
//! - ETAs: from an `engine::eta::EtaSource` handed in
//!   ([`Gateway::with_etas`]: the matcher's road ETAs in the app,
//!   crow-fly by default).
//! - [`metrics`]: metric names and handles.
//!
//! **Invariants:** no lock is held across an `.await`; the fan-out never
//! waits on a socket; every queue is bounded with its overflow policy next
//! to it; lock order is hub → engine → mailbox. An error in one connection
//! ends that connection only.
//!
//! **API boundary:** [`Config`], [`Gateway`] (`new`, `with_etas`,
//! `with_records`, `notify`, `router`, `run`, `connection_count`,
//! `backlog`), [`Records`] and the wire names in [`protocol`].

#[doc(hidden)]
pub mod bench_support;
mod connection;
mod fanout;
#[doc(hidden)]
pub mod fuzz_support;
mod hub;
mod mailbox;
pub mod metrics;
pub mod protocol;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use auth::Tokens;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use engine::eta::EtaSource;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fanout::Streams;
use crate::hub::Hub;
use crate::mailbox::{CloseReason, Mailbox, MailboxLimits, Pushed};
use crate::metrics::Metrics;

/// Gateway settings. Every field is a limit; each says why it exists.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Open tracking sockets at most (the target is 100,000 watchers on one
    /// machine); beyond it, new ones get HTTP 503 before the upgrade, so
    /// memory and file descriptors stay finite.
    pub max_connections: usize,
    /// Status, ack and error messages waiting for one client. A client this
    /// far behind is disconnected (`slow_consumer`): losing status messages
    /// silently is worse than a reconnect and a fresh snapshot.
    pub control_queue_limit: usize,
    /// Distinct drivers waiting for one client's next `drivers` frame. Only
    /// the newest state per driver is kept; a new driver beyond the limit
    /// waits for a later move.
    pub area_frame_limit: usize,
    /// Drivers in the snapshot frame of a new area subscription (the engine
    /// query runs under the subscription lock, so it is capped; it is also
    /// cut to `area_frame_limit`).
    pub snapshot_limit: usize,
    /// `order:` subscriptions per connection: an app watches a handful of
    /// orders; this caps the per-connection index and position slots.
    pub max_order_subscriptions: usize,
    /// Subscribe requests (order or area) one connection may make per
    /// `subscribe_window_ms`; more get a `rate_limited` error and change
    /// nothing, the socket stays open. Each area subscription computes a
    /// cell cover and a snapshot of up to `snapshot_limit` drivers, so a
    /// client re-subscribing box after box would cost the server dearly; a
    /// dispatcher panning the map sends a few a second. 0: no limit.
    pub subscribes_per_window: u32,
    pub subscribe_window_ms: u64,
    /// Largest client message answered normally; bigger ones get an
    /// `message_too_large` error (client messages are tiny JSON).
    pub max_message_bytes: usize,
    /// A socket write (or flush) not done in this long closes the client:
    /// it is not reading, and its mailbox only coalesces meanwhile.
    pub write_timeout_ms: u64,
    /// The server pings this often so idle connections stay open through
    /// proxies and dead peers are noticed.
    pub ping_interval_ms: u64,
    /// No frame at all from the client (not even a pong) for this long
    /// closes the connection.
    pub idle_timeout_ms: u64,
    /// On shutdown, how long `run` waits for clients to get their Close
    /// frames before returning.
    pub shutdown_grace_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            control_queue_limit: 256,
            area_frame_limit: 10_000,
            snapshot_limit: 5_000,
            max_order_subscriptions: 64,
            subscribes_per_window: 60,
            subscribe_window_ms: 10_000,
            max_message_bytes: 4 * 1024,
            write_timeout_ms: 10_000,
            ping_interval_ms: 20_000,
            idle_timeout_ms: 60_000,
            shutdown_grace_ms: 5_000,
        }
    }
}

/// Position slots per order subscription: one driver per order, plus room
/// for a reassignment while the old driver's last position is unsent.
const LOCATION_SLOTS_PER_ORDER: usize = 2;

impl Config {
    fn mailbox_limits(&self) -> MailboxLimits {
        MailboxLimits {
            control: self.control_queue_limit,
            locations: self.max_order_subscriptions.max(1) * LOCATION_SLOTS_PER_ORDER,
            area: self.area_frame_limit,
        }
    }

    fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.max(1))
    }

    fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms.max(1))
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.max(1))
    }

    /// Stored notifications one `me` subscribe replays at most (and live
    /// ones a resyncing device may hold back): half the control queue, so
    /// a replay never overflows it by itself.
    fn resync_limit(&self) -> usize {
        (self.control_queue_limit / 2).max(1)
    }
}

/// A boxed future of a [`Records`] read; the error is logged and told to
/// the client as `unavailable`.
pub type RecordsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What the gateway reads from the store: the stored notifications the
/// `me` channel replays, and restaurants' owners (who may watch a
/// restaurant's channel). Implemented by the binary over the api's store,
/// which this crate does not depend on.
pub trait Records: Send + Sync + 'static {
    /// `user`'s notifications with ids above `after`, ascending, at most
    /// `limit`.
    fn notifications_after(
        &self,
        user: engine::UserId,
        after: i64,
        limit: usize,
    ) -> RecordsFuture<'_, Vec<contract::Notification>>;

    /// The owner of `restaurant`; `None` when there is no such restaurant.
    fn restaurant_owner(
        &self,
        restaurant: engine::RestaurantId,
    ) -> RecordsFuture<'_, Option<engine::UserId>>;
}

/// Closes a banned user's sockets as each ban is applied (an error
/// `banned`, then Close 1008), until `shutdown`. Missed bans (a lag) close
/// every socket whose user is banned now.
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
        let user = tokio::select! {
            () = shutdown.cancelled() => return,
            ban = bans.recv() => match ban {
                Ok(user) => Some(user),
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => return,
            },
        };
        let closed = shared
            .hub
            .lock()
            .close_banned(user, |u| shared.tokens.is_banned(u));
        if closed > 0 {
            tracing::info!(?user, closed, "closed a banned user's tracking sockets");
        }
    }
}

/// What is waiting in client mailboxes right now (for `/metrics` and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pub clients: usize,
    /// Status/ack/error messages waiting, all clients.
    pub control: usize,
    /// Positions waiting, all clients.
    pub locations: usize,
    /// Drivers waiting for area frames, all clients.
    pub area_drivers: usize,
    /// The largest single mailbox (control + locations + area drivers).
    pub max_per_client: usize,
}

/// The tracking gateway. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    config: Config,
    engine: engine::Handle,
    tokens: Tokens,
    hub: Mutex<Hub>,
    /// Sockets admitted (from the upgrade request until the socket ends).
    connections: AtomicUsize,
    next_client: AtomicU64,
    /// Every admitted connection holds a token, so shutdown can wait for
    /// them to send their Close frames.
    tracker: TaskTracker,
    metrics: Metrics,
    /// Taken by `run`.
    streams: Mutex<Option<Streams>>,
    /// Bans as they are applied (subscribed at `new`, taken by `run`): a
    /// banned user's sockets are closed at once.
    bans: Mutex<Option<tokio::sync::broadcast::Receiver<engine::UserId>>>,
    /// Customer ETAs for order watchers' positions (the matcher's road
    /// ETAs in the app; crow-fly by default). Called under the hub lock:
    /// the source bounds its own cost.
    etas: Arc<dyn EtaSource>,
    /// What the `me` channel's resync and the restaurant channel's owner
    /// check read; set once by [`Gateway::with_records`] (without it those
    /// channels answer `unavailable`).
    records: OnceLock<Arc<dyn Records>>,
}

impl Shared {
    /// Records a control push outcome (the overflow that disconnects).
    fn note_control(&self, pushed: Pushed) {
        if pushed == Pushed::Overflowed {
            self.metrics.slow_consumer.increment(1);
        }
    }

    fn push_control(&self, mailbox: &Mailbox, msg: protocol::Outgoing) {
        self.note_control(mailbox.push_control(msg));
    }
}

/// What a gateway's clients watch ([`Gateway::watched`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Watched {
    /// Orders with at least one watcher.
    pub orders: Vec<engine::OrderId>,
    /// Every area subscription's box.
    pub areas: Vec<engine::BBox>,
}

impl FromRef<Gateway> for Tokens {
    fn from_ref(gateway: &Gateway) -> Tokens {
        gateway.shared.tokens.clone()
    }
}

impl Gateway {
    /// Subscribes to the engine's streams at once, so events between `new`
    /// and `run` reach clients; registers the metric handles (install the
    /// recorder first).
    /// A gateway whose ETAs are crow-fly ([`engine::eta::CrowFly`]).
    pub fn new(config: Config, engine: engine::Handle, tokens: Tokens) -> Self {
        Self::with_etas(config, engine, tokens, Arc::new(engine::eta::CrowFly))
    }

    /// A gateway whose order watchers get their ETAs from `etas` (the
    /// matcher's road ETAs, `matcher::Matcher::etas`).
    pub fn with_etas(
        config: Config,
        engine: engine::Handle,
        tokens: Tokens,
        etas: Arc<dyn EtaSource>,
    ) -> Self {
        let streams = Streams {
            moves: engine.subscribe_moves(),
            changes: engine.subscribe_changes(),
        };
        let hub = Hub::new(config.max_order_subscriptions, config.resync_limit());
        let bans = tokens.subscribe_bans();
        Self {
            shared: Arc::new(Shared {
                config,
                engine,
                tokens,
                hub: Mutex::new(hub),
                connections: AtomicUsize::new(0),
                next_client: AtomicU64::new(1),
                tracker: TaskTracker::new(),
                metrics: Metrics::register(),
                streams: Mutex::new(Some(streams)),
                bans: Mutex::new(Some(bans)),
                etas,
                records: OnceLock::new(),
            }),
        }
    }

    /// The same gateway, whose `me` subscriptions replay stored
    /// notifications from `records` and whose restaurant channels check
    /// owners there. Only the first call takes effect.
    pub fn with_records(self, records: Arc<dyn Records>) -> Self {
        let _ = self.shared.records.set(records);
        self
    }

    /// Sends `user`'s stored notification to each of their devices
    /// subscribed to `me` that has not had it (a device still replaying
    /// gets it after its replay). Never waits: a device whose queue is full
    /// is disconnected as a slow consumer and resyncs on reconnect.
    pub fn notify(&self, user: engine::UserId, notification: &contract::Notification) {
        let msg = protocol::notification(notification);
        let mut hub = self.shared.hub.lock();
        let to = hub.notified(user, notification.id, &msg);
        for mailbox in to {
            self.shared.push_control(&mailbox, msg.clone());
        }
        drop(hub);
    }

    /// `GET /v1/ws`, state applied.
    pub fn router(&self) -> Router {
        Router::new()
            .route(protocol::PATH, get(connection::upgrade))
            .with_state(self.clone())
    }

    /// The fan-out loop. Returns when `shutdown` is cancelled, after every
    /// client got a Close frame (1001) or `shutdown_grace_ms` passed.
    pub async fn run(self, shutdown: CancellationToken) {
        let streams = self.shared.streams.lock().take();
        let bans = self.shared.bans.lock().take();
        match streams {
            Some(streams) => {
                tokio::join!(
                    fanout::run(&self.shared, streams, &shutdown),
                    close_banned(&self.shared, bans, &shutdown),
                );
            }
            None => {
                tracing::error!(
                    "Gateway::run called twice; the second call only waits for shutdown"
                );
                shutdown.cancelled().await;
            }
        }
        self.close_all().await;
    }

    /// What this gateway's clients watch now: orders and map areas (so
    /// a node of several holds the drivers' positions they need).
    pub fn watched(&self) -> Watched {
        let hub = self.shared.hub.lock();
        Watched {
            orders: hub.order_ids(),
            areas: hub.area_boxes(),
        }
    }

    /// Open tracking sockets (including ones being upgraded).
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::Acquire)
    }

    /// What is waiting in mailboxes (walks every client: for scrapes and
    /// tests, not hot paths).
    pub fn backlog(&self) -> Backlog {
        let depths = self.shared.hub.lock().depths();
        let mut b = Backlog {
            clients: depths.len(),
            ..Backlog::default()
        };
        for d in depths {
            b.control += d.control;
            b.locations += d.locations;
            b.area_drivers += d.area;
            b.max_per_client = b.max_per_client.max(d.control + d.locations + d.area);
        }
        b
    }

    async fn close_all(&self) {
        let mailboxes = self.shared.hub.lock().begin_close();
        tracing::info!(clients = mailboxes.len(), "closing tracking sockets");
        for mailbox in &mailboxes {
            mailbox.close(CloseReason::GoingAway);
        }
        self.shared.tracker.close();
        let grace = Duration::from_millis(self.shared.config.shutdown_grace_ms);
        if tokio::time::timeout(grace, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.connection_count(),
                "tracking sockets still open after the shutdown grace"
            );
        }
    }
}
