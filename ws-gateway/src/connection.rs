//! One tracking socket: the upgrade handler (auth, connection limit,
//! shutdown) and, per connection, a reader (client requests → hub and
//! mailbox) and a writer (mailbox → socket, keepalive, write timeout, Close
//! frames), polled together in the connection's task. Whatever goes wrong
//! in a connection ends that connection only and is logged here.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auth::reply::error_response;
use auth::{AuthError, Authenticated, Principal, Role};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::cells::fanout_cover;
use engine::{BBox, OrderId, RestaurantId, StatusFilter};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::hub::{ClientId, MAX_AREA_CELLS, MAX_RESTAURANTS_PER_CLIENT, WatchError, kitchen_sees};
use crate::mailbox::{Batch, CloseReason, Mailbox};
use crate::protocol::{self, Outgoing, ProtocolError, Request, close_code, code};

use crate::{Gateway, Shared};

/// Transport cap on one client frame or message. Above
/// `Config::max_message_bytes` (which gets a polite error and keeps the
/// socket) so that only abusive frames cost the connection.
const MAX_TRANSPORT_MESSAGE_BYTES: usize = 64 * 1024;
/// Read buffer per socket. tungstenite allocates it up front (128 KiB by
/// default, measured ≈ 125 KiB of RSS per watcher); clients send a few
/// small subscribe messages, and a larger one still arrives, in pieces.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// After our Close frame, how long to wait for the client's Close reply
/// before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// `GET /v1/ws`: authenticate, admit, upgrade. Every refusal happens here,
/// before the upgrade, with the standard JSON error body.
pub(crate) async fn upgrade(
    State(gateway): State<Gateway>,
    auth: Result<Authenticated, AuthError>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let principal = match auth {
        Ok(Authenticated(p)) => p,
        Err(e) => return e.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return error_response(
                rejection.status(),
                code::WEBSOCKET_REQUIRED,
                &rejection.body_text(),
            );
        }
    };
    let shared = gateway.shared;
    if shared.hub.lock().is_closing() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            code::SHUTTING_DOWN,
            "the server is shutting down",
        );
    }
    let Some(permit) = Permit::acquire(&shared) else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            code::TOO_MANY_CONNECTIONS,
            "too many tracking connections; retry later",
        );
    };
    ws.max_message_size(MAX_TRANSPORT_MESSAGE_BYTES)
        .max_frame_size(MAX_TRANSPORT_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| serve(shared, principal, socket, permit))
}

/// One admitted connection: counted, gauged, and tracked for shutdown until
/// dropped (also when the upgrade itself fails).
struct Permit {
    shared: Arc<Shared>,
    _task: TaskTrackerToken,
}

impl Permit {
    fn acquire(shared: &Arc<Shared>) -> Option<Self> {
        let before = shared.connections.fetch_add(1, Ordering::AcqRel);
        if before >= shared.config.max_connections {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        shared.metrics.connections.increment(1.0);
        Some(Self {
            shared: shared.clone(),
            _task: shared.tracker.token(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        self.shared.metrics.connections.decrement(1.0);
    }
}

/// Removes the client from the hub however the connection ends.
struct Registration<'a> {
    shared: &'a Shared,
    id: ClientId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.hub.lock().remove_client(self.id);
    }
}

/// Why a connection ended (for the log line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    ClientClosed,
    ReadError,
    WriteError,
    WriteTimeout,
    IdleTimeout,
    SlowConsumer,
    ShuttingDown,
    Banned,
}

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

async fn serve(shared: Arc<Shared>, principal: Principal, socket: WebSocket, _permit: Permit) {
    let id = shared.next_client.fetch_add(1, Ordering::Relaxed);
    let mailbox = Arc::new(Mailbox::new(shared.config.mailbox_limits()));
    let (mut sink, mut stream) = socket.split();
    if shared
        .hub
        .lock()
        .add_client(id, principal, mailbox.clone())
        .is_err()
    {
        let _ = timeout(
            shared.config.write_timeout(),
            sink.send(close(close_code::GOING_AWAY, "server shutting down")),
        )
        .await;
        return;
    }
    let _registration = Registration {
        shared: &shared,
        id,
    };
    tracing::debug!(client = id, user = %principal.user_id, role = principal.role.as_str(), "tracking socket open");
    let conn = Connection {
        shared: &shared,
        id,
        principal,
        mailbox: &mailbox,
        started: Instant::now(),
        last_seen_ms: AtomicU64::new(0),
        subscribes: Mutex::new(SubscribeBudget::new(
            shared.config.subscribes_per_window,
            shared.config.subscribe_window_ms,
        )),
    };
    let mut reader = pin!(conn.read_loop(&mut stream));
    let mut writer = pin!(conn.write_loop(&mut sink));
    let ending = tokio::select! {
        ending = &mut reader => ending,
        ending = &mut writer => {
            // Our Close frame is out (or the socket is dead): give the
            // client a moment to answer it, then drop the socket.
            let _ = timeout(CLOSE_LINGER, &mut reader).await;
            ending
        }
    };
    match ending {
        Ending::SlowConsumer | Ending::WriteTimeout => {
            tracing::info!(client = id, user = %principal.user_id, ?ending, "tracking client dropped for falling behind");
        }
        _ => tracing::debug!(client = id, ?ending, "tracking socket closed"),
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

struct Connection<'a> {
    shared: &'a Shared,
    id: ClientId,
    principal: Principal,
    mailbox: &'a Mailbox,
    started: Instant,
    /// When the client last sent any frame, ms after `started`.
    last_seen_ms: AtomicU64,
    /// Subscribe requests left in the current window (only the reader
    /// touches it; a lock because the connection is shared by reference).
    subscribes: Mutex<SubscribeBudget>,
}

/// A fixed window of subscribe requests (`Config::subscribes_per_window`
/// per `Config::subscribe_window_ms`); times are ms since the connection
/// opened.
#[derive(Debug)]
struct SubscribeBudget {
    max: u32,
    window_ms: u64,
    started_ms: u64,
    used: u32,
}

impl SubscribeBudget {
    fn new(max: u32, window_ms: u64) -> Self {
        Self {
            max,
            window_ms: window_ms.max(1),
            started_ms: 0,
            used: 0,
        }
    }

    /// Takes one request, or `Err(ms until the window ends)`.
    fn take(&mut self, now_ms: u64) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        if now_ms.saturating_sub(self.started_ms) >= self.window_ms {
            self.started_ms = now_ms;
            self.used = 0;
        }
        if self.used >= self.max {
            let left_ms = self.window_ms - (now_ms - self.started_ms);
            return Err(left_ms.max(1));
        }
        self.used += 1;
        Ok(())
    }
}

impl Connection<'_> {
    // ------------------------------------------------------------ reader

    async fn read_loop(&self, stream: &mut Stream) -> Ending {
        while let Some(msg) = stream.next().await {
            self.last_seen_ms
                .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
            match msg {
                Ok(Message::Text(text)) => self.on_text(&text).await,
                Ok(Message::Binary(_)) => self.reply_error(ProtocolError::new(
                    code::UNSUPPORTED_MESSAGE,
                    "messages are JSON text frames",
                )),
                // Pongs only refresh `last_seen`; pings are answered by the
                // WebSocket layer; after a Close the stream ends by itself.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_)) => {}
                Err(e) => {
                    tracing::debug!(client = self.id, error = %e, "tracking socket read failed");
                    return Ending::ReadError;
                }
            }
        }
        Ending::ClientClosed
    }

    async fn on_text(&self, text: &str) {
        let limit = self.shared.config.max_message_bytes;
        if text.len() > limit {
            let message = format!("client messages are limited to {limit} bytes");
            return self.reply_error(ProtocolError::new(code::MESSAGE_TOO_LARGE, message));
        }
        match protocol::parse_request(text) {
            Err(e) => self.reply_error(e),
            Ok(Request::SubscribeOrder(order_id)) => {
                if self.may_subscribe(&protocol::order_channel(order_id)) {
                    self.subscribe_order(order_id);
                }
            }
            Ok(Request::UnsubscribeOrder(order_id)) => self.unsubscribe_order(order_id),
            Ok(Request::SubscribeArea(bbox)) => {
                if self.may_subscribe(protocol::AREA_CHANNEL) {
                    self.subscribe_area(bbox).await;
                }
            }
            Ok(Request::UnsubscribeArea) => self.unsubscribe_area(),
            Ok(Request::SubscribeMe { after }) => {
                if self.may_subscribe(protocol::ME_CHANNEL) {
                    self.subscribe_me(after).await;
                }
            }
            Ok(Request::UnsubscribeMe) => self.unsubscribe_me(),
            Ok(Request::SubscribeRestaurant(id)) => {
                if self.may_subscribe(&protocol::restaurant_channel(id)) {
                    self.subscribe_restaurant(id).await;
                }
            }
            Ok(Request::UnsubscribeRestaurant(id)) => self.unsubscribe_restaurant(id),
        }
    }

    /// Counts a subscribe request against the connection's budget; over it,
    /// answers `rate_limited` on `channel` and the request changes nothing.
    fn may_subscribe(&self, channel: &str) -> bool {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let Err(retry_ms) = self.subscribes.lock().take(now_ms) else {
            return true;
        };
        self.shared.metrics.subscribe_rate_limited.increment(1);
        let config = &self.shared.config;
        let message = format!(
            "at most {} subscribe requests per {} ms; retry in {retry_ms} ms",
            config.subscribes_per_window, config.subscribe_window_ms
        );
        self.reply_error(ProtocolError::new(code::RATE_LIMITED, message).on(channel));
        false
    }

    fn reply(&self, msg: Outgoing) {
        self.shared.push_control(self.mailbox, msg);
    }

    fn reply_error(&self, e: ProtocolError) {
        self.reply(protocol::error(&e));
    }

    /// Registration, ack, current status and current position happen under
    /// the hub lock, so no fan-out message can come before the ack or fall
    /// between the board read and the registration.
    fn subscribe_order(&self, order_id: OrderId) {
        let shared = self.shared;
        let channel = protocol::order_channel(order_id);
        let mut hub = shared.hub.lock();
        let visible = |t: &engine::OrderTrack| {
            self.principal.role == Role::Admin || t.is_party(self.principal.user_id)
        };
        let Some(track) = shared.engine.order(order_id).filter(visible) else {
            drop(hub);
            // Non-admins are not told whether the order exists.
            return self.reply_error(
                ProtocolError::new(
                    code::NOT_FOUND,
                    "no such order on the live board, or not yours",
                )
                .on(channel),
            );
        };
        match hub.watch_order(self.id, &track) {
            Ok(_) => {}
            Err(WatchError::TooMany) => {
                drop(hub);
                shared.metrics.too_many_orders.increment(1);
                let limit = shared.config.max_order_subscriptions;
                let message = format!("at most {limit} order subscriptions per connection");
                return self.reply_error(
                    ProtocolError::new(code::TOO_MANY_SUBSCRIPTIONS, message).on(channel),
                );
            }
            Err(WatchError::UnknownClient) => return,
        }
        self.reply(protocol::subscribed(&channel, None));
        self.reply(protocol::status(&track));
        let Some(driver_id) = track.driver_id else {
            return;
        };
        let Some(fix) = shared.engine.driver(driver_id).and_then(|v| v.fix) else {
            return;
        };
        let eta = shared.etas.order_eta(&track, fix.position);
        let msg = protocol::location_from_fix(driver_id, &fix, Some(order_id), eta);
        self.mailbox
            .push_location((order_id, driver_id), fix.recorded_at_ms, msg);
        drop(hub);
    }

    fn unsubscribe_order(&self, order_id: OrderId) {
        let mut hub = self.shared.hub.lock();
        hub.unwatch_order(self.id, order_id);
        self.mailbox.clear_order(order_id);
        self.reply(protocol::unsubscribed(
            &protocol::order_channel(order_id),
            None,
        ));
        drop(hub);
    }

    async fn subscribe_area(&self, bbox: BBox) {
        let shared = self.shared;
        if self.principal.role != Role::Admin {
            return self.reply_error(
                ProtocolError::new(
                    code::FORBIDDEN,
                    "area subscriptions are for dispatchers and admins",
                )
                .on(protocol::AREA_CHANNEL),
            );
        }
        // Up to tens of thousands of cell lookups for a big box: off the
        // async workers. A failed task only makes the box global.
        let cover = tokio::task::spawn_blocking(move || fanout_cover(bbox, MAX_AREA_CELLS))
            .await
            .unwrap_or(None);
        let mut hub = shared.hub.lock();
        if hub.watch_area(self.id, bbox, cover).is_err() {
            return;
        }
        // Snapshot under the hub lock: no move can slip between it and the
        // registration; later moves of the same drivers supersede it.
        let snapshot = shared
            .engine
            .within(bbox, shared.config.snapshot_limit, StatusFilter::Any);
        let drivers = snapshot.iter().filter_map(|v| {
            v.fix
                .map(|f| protocol::area_driver(v.driver_id, f.position, v.status, f.recorded_at_ms))
        });
        let pushed = self.mailbox.reset_area(
            protocol::subscribed(protocol::AREA_CHANNEL, Some(bbox)),
            drivers,
        );
        shared.note_control(pushed);
        drop(hub);
    }

    fn unsubscribe_area(&self) {
        let mut hub = self.shared.hub.lock();
        hub.unwatch_area(self.id);
        self.mailbox.clear_area();
        self.reply(protocol::unsubscribed(protocol::AREA_CHANNEL, None));
        drop(hub);
    }

    /// The caller's notifications. The subscription is registered first
    /// (live ones wait in the hub), then the store is read for those after
    /// `after`, then, under the hub lock, the ack, the stored ones and the
    /// waiting ones go out, each only if its id is above the last sent:
    /// whatever was stored before the read is in it, whatever is pushed
    /// after the registration waits, and the consumer stores before it
    /// pushes, so nothing falls between and nothing comes twice.
    async fn subscribe_me(&self, after: Option<i64>) {
        let shared = self.shared;
        let channel = protocol::ME_CHANNEL;
        let Some(records) = shared.records.get() else {
            return self.reply_error(
                ProtocolError::new(code::UNAVAILABLE, "notifications are not served here")
                    .on(channel),
            );
        };
        if shared.hub.lock().watch_me(self.id).is_err() {
            return;
        }
        let limit = shared.config.resync_limit();
        let backlog = match after {
            None => Ok(Vec::new()),
            // One more than the limit, to tell "exactly the limit" from "more".
            Some(after) => {
                records
                    .notifications_after(self.principal.user_id, after, limit + 1)
                    .await
            }
        };
        let backlog = match backlog {
            Ok(b) if b.len() <= limit => b,
            Ok(_) => {
                self.shared.hub.lock().unwatch_me(self.id);
                let message = format!(
                    "more than {limit} notifications since {}: page GET /v1/notifications?after= \
                     to catch up, then subscribe with the last id",
                    after.unwrap_or(0)
                );
                return self
                    .reply_error(ProtocolError::new(code::RESYNC_TOO_FAR, message).on(channel));
            }
            Err(e) => {
                self.shared.hub.lock().unwatch_me(self.id);
                tracing::warn!(client = self.id, error = %e, "could not read stored notifications");
                return self.reply_error(
                    ProtocolError::new(
                        code::UNAVAILABLE,
                        "could not read your notifications just now; retry",
                    )
                    .on(channel),
                );
            }
        };
        let backlog = backlog
            .iter()
            .map(|n| (n.id, protocol::notification(n)))
            .collect();
        let mut hub = shared.hub.lock();
        let Some((mailbox, out)) = hub.me_live(self.id, after.unwrap_or(0), backlog) else {
            // Unsubscribed (or gone) meanwhile.
            return;
        };
        shared.push_control(&mailbox, protocol::subscribed(channel, None));
        for msg in out {
            shared.push_control(&mailbox, msg);
        }
        drop(hub);
    }

    /// A restaurant's orders: for admins, and for its owner (checked in
    /// the store); others get `forbidden` (not a restaurant) or
    /// `not_found` (not theirs, or no such restaurant; not told which).
    /// Registration, ack and the snapshot of its open orders happen under
    /// the hub lock, so no change falls between the snapshot and the
    /// registration.
    async fn subscribe_restaurant(&self, restaurant: RestaurantId) {
        let shared = self.shared;
        let channel = protocol::restaurant_channel(restaurant);
        match self.principal.role {
            Role::Admin => {}
            Role::Restaurant => {
                let Some(records) = shared.records.get() else {
                    return self.reply_error(
                        ProtocolError::new(code::UNAVAILABLE, "restaurants are not served here")
                            .on(channel),
                    );
                };
                match records.restaurant_owner(restaurant).await {
                    Ok(Some(owner)) if owner == self.principal.user_id => {}
                    Ok(_) => {
                        return self.reply_error(
                            ProtocolError::new(code::NOT_FOUND, "no such restaurant, or not yours")
                                .on(channel),
                        );
                    }
                    Err(e) => {
                        tracing::warn!(client = self.id, error = %e, "could not read a restaurant's owner");
                        return self.reply_error(
                            ProtocolError::new(
                                code::UNAVAILABLE,
                                "could not check the restaurant just now; retry",
                            )
                            .on(channel),
                        );
                    }
                }
            }
            Role::Customer | Role::Driver => {
                return self.reply_error(
                    ProtocolError::new(
                        code::FORBIDDEN,
                        "a restaurant's channel is for its owner and admins",
                    )
                    .on(channel),
                );
            }
        }
        let mut hub = shared.hub.lock();
        match hub.watch_restaurant(self.id, restaurant) {
            Ok(_) => {}
            Err(WatchError::TooMany) => {
                drop(hub);
                let message = format!(
                    "at most {MAX_RESTAURANTS_PER_CLIENT} restaurant subscriptions per connection"
                );
                return self.reply_error(
                    ProtocolError::new(code::TOO_MANY_SUBSCRIPTIONS, message).on(channel),
                );
            }
            Err(WatchError::UnknownClient) => return,
        }
        self.reply(protocol::subscribed(&channel, None));
        let mut open = shared.engine.restaurant_orders(restaurant);
        open.sort_by_key(|t| (t.updated_at_ms, t.order_id));
        for track in open.iter().filter(|t| kitchen_sees(t.status)) {
            self.reply(protocol::status(track));
        }
        drop(hub);
    }

    fn unsubscribe_restaurant(&self, restaurant: RestaurantId) {
        let mut hub = self.shared.hub.lock();
        hub.unwatch_restaurant(self.id, restaurant);
        self.reply(protocol::unsubscribed(
            &protocol::restaurant_channel(restaurant),
            None,
        ));
        drop(hub);
    }

    fn unsubscribe_me(&self) {
        let mut hub = self.shared.hub.lock();
        hub.unwatch_me(self.id);
        self.reply(protocol::unsubscribed(protocol::ME_CHANNEL, None));
        drop(hub);
    }

    // ------------------------------------------------------------ writer

    async fn write_loop(&self, sink: &mut Sink) -> Ending {
        let config = &self.shared.config;
        let every = config.ping_interval();
        let mut keepalive = tokio::time::interval_at(Instant::now() + every, every);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batch = Batch::default();
        loop {
            let closing = self.mailbox.take(&mut batch);
            match closing {
                Some(CloseReason::SlowConsumer) => {
                    // The backlog was discarded; say why, then close.
                    let e = ProtocolError::new(
                        code::SLOW_CONSUMER,
                        "too far behind on status messages; reconnect",
                    );
                    let goodbye = async {
                        sink.feed(Message::Text(protocol::error(&e).text)).await?;
                        sink.send(close(close_code::POLICY, "slow consumer")).await
                    };
                    let _ = timeout(config.write_timeout(), goodbye).await;
                    return Ending::SlowConsumer;
                }
                Some(CloseReason::Banned) => {
                    let e = ProtocolError::new(code::BANNED, "your account was banned");
                    let goodbye = async {
                        sink.feed(Message::Text(protocol::error(&e).text)).await?;
                        sink.send(close(close_code::POLICY, "banned")).await
                    };
                    let _ = timeout(config.write_timeout(), goodbye).await;
                    return Ending::Banned;
                }
                Some(CloseReason::GoingAway) => {
                    // Flush what is pending, then say goodbye.
                    if let Err(ending) = self.send_batch(sink, &mut batch).await {
                        return ending;
                    }
                    let _ = timeout(
                        config.write_timeout(),
                        sink.send(close(close_code::GOING_AWAY, "server shutting down")),
                    )
                    .await;
                    return Ending::ShuttingDown;
                }
                None => {
                    if let Err(ending) = self.send_batch(sink, &mut batch).await {
                        return ending;
                    }
                }
            }
            tokio::select! {
                () = self.mailbox.notified() => {}
                _ = keepalive.tick() => {
                    if self.idle_for() >= config.idle_timeout() {
                        self.shared.metrics.idle_timeout.increment(1);
                        let _ = timeout(config.write_timeout(), sink.send(close(close_code::NORMAL, "idle timeout"))).await;
                        return Ending::IdleTimeout;
                    }
                    if let Err(ending) = self.write(sink, Message::Ping(Bytes::new()), None).await {
                        return ending;
                    }
                    if let Err(ending) = self.flush(sink).await {
                        return ending;
                    }
                }
            }
        }
    }

    fn idle_for(&self) -> Duration {
        let seen = Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(seen)
    }

    /// Control first, then positions, then one `drivers` frame with every
    /// pending driver.
    async fn send_batch(&self, sink: &mut Sink, batch: &mut Batch) -> Result<(), Ending> {
        if batch.is_empty() {
            return Ok(());
        }
        for msg in batch.control.drain(..).chain(batch.locations.drain(..)) {
            self.write(sink, Message::Text(msg.text), Some(msg.kind))
                .await?;
        }
        if batch.area_due {
            let frame = protocol::drivers(&batch.area);
            self.write(sink, Message::Text(frame.text), Some(frame.kind))
                .await?;
        }
        batch.clear();
        self.flush(sink).await
    }

    async fn write(
        &self,
        sink: &mut Sink,
        msg: Message,
        kind: Option<protocol::MsgType>,
    ) -> Result<(), Ending> {
        self.timed(sink.feed(msg)).await?;
        if let Some(kind) = kind {
            self.shared.metrics.sent(kind).increment(1);
        }
        Ok(())
    }

    async fn flush(&self, sink: &mut Sink) -> Result<(), Ending> {
        self.timed(sink.flush()).await
    }

    async fn timed(&self, op: impl Future<Output = Result<(), axum::Error>>) -> Result<(), Ending> {
        match timeout(self.shared.config.write_timeout(), op).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(client = self.id, error = %e, "tracking socket write failed");
                Err(Ending::WriteError)
            }
            Err(_) => {
                self.shared.metrics.write_timeout.increment(1);
                Err(Ending::WriteTimeout)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SubscribeBudget;

    #[test]
    fn subscribe_budget_is_a_fixed_window() {
        let mut budget = SubscribeBudget::new(2, 1_000);
        assert_eq!(budget.take(0), Ok(()));
        assert_eq!(budget.take(10), Ok(()));
        assert_eq!(budget.take(400), Err(600));
        assert_eq!(budget.take(999), Err(1));
        assert_eq!(budget.take(1_000), Ok(()), "a new window");
        assert_eq!(budget.take(1_500), Ok(()));
        assert_eq!(budget.take(1_600), Err(400));

        let mut unlimited = SubscribeBudget::new(0, 1_000);
        assert!((0..1_000).all(|_| unlimited.take(0).is_ok()));
    }
}
