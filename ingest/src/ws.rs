//! WebSocket ingest: `GET /v1/drivers/stream`.
//!
//! A driver (token in `Authorization: Bearer` or `?token=`) sends one JSON
//! ping per text message. Good pings get no answer (fire-and-forget, like
//! MQTT QoS 0); a bad one gets `{"type":"error","code","message"}` and the
//! stream continues. The same socket carries that driver's offers, as the
//! same JSON as on MQTT.
//!
//! [`Registry`] maps a driver to the send queues of its open streams so the
//! offer task ([`deliver_offers`]) can reach them; a stream removes itself
//! when it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use auth::reply::error_response;
use auth::{Authenticated, Role};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::Response;
use engine::{Applied, Change, DriverId, PingRejection, RecvError};
use metrics::Gauge;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Read buffer per driver socket (tungstenite allocates it up front).
const READ_BUFFER_BYTES: usize = 4 * 1024;

use crate::metrics::Path;
use crate::{AppState, Shared, wire};

/// Open streams per driver. A phone that reconnects before the old socket
/// timed out has two for a while; a newer stream beyond this closes the
/// oldest, so stale sockets cannot pile up.
pub const MAX_STREAMS_PER_DRIVER: usize = 4;

pub(crate) async fn stream_driver(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if principal.role != Role::Driver {
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only drivers can stream pings",
        );
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            return error_response(
                rejection.status(),
                "websocket_upgrade_required",
                &rejection.body_text(),
            );
        }
    };
    let shared = state.0;
    let driver_id = DriverId::from(principal.user_id);
    let max = shared.config.ws_max_message_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        // tungstenite allocates its read buffer up front (128 KiB by
        // default); pings are ~100-byte messages, larger ones still arrive.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            let tasks = shared.stream_tasks.clone();
            tasks.track_future(run_stream(shared, driver_id, socket))
        })
}

async fn run_stream(shared: Arc<Shared>, driver_id: DriverId, mut socket: WebSocket) {
    let (tx, mut outbox) = mpsc::channel(shared.config.ws_send_queue.max(1));
    let stream_id = shared.streams.register(driver_id, tx);
    let _open = OpenStream::new(&shared.metrics.ws_connections);
    let close = loop {
        tokio::select! {
            biased;
            () = shared.closing.cancelled() => break Some((close_code::AWAY, "server shutting down")),
            out = outbox.recv() => match out {
                Some(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        break None;
                    }
                }
                // The registry dropped our queue: a newer stream replaced this one.
                // The registry dropped our queue: the driver was banned, or
                // a newer stream replaced this one.
                None if shared.tokens.is_banned(driver_id.into()) => break Some((close_code::POLICY, "banned")),
                None => break Some((close_code::POLICY, "replaced by a newer stream of the same driver")),
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Err(reason) = ingest_text(&shared, driver_id, text.as_bytes())
                        && socket.send(Message::Text(wire::rejection_json(reason).into())).await.is_err()
                    {
                        break None;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    reject(&shared, driver_id, PingRejection::InvalidJson);
                    let text = wire::error_json(PingRejection::InvalidJson.code(), "pings are JSON text messages, not binary");
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                // Pongs to pings are sent by axum itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
            },
        }
    };
    shared.streams.unregister(driver_id, stream_id);
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
}

/// Applies one text message as a ping of `driver_id`.
pub(crate) fn ingest_text(
    shared: &Shared,
    driver_id: DriverId,
    bytes: &[u8],
) -> Result<(), PingRejection> {
    let now = shared.now_ms();
    let ping = if bytes.len() > shared.config.max_ping_bytes {
        Err(PingRejection::TooLarge)
    } else {
        wire::decode_ping(bytes).and_then(|raw| raw.validate(driver_id, now))
    };
    let ping = ping.inspect_err(|&reason| reject(shared, driver_id, reason))?;
    let outcome = shared.engine.apply_ping(&ping, now);
    shared.metrics.path(Path::Ws).outcome(outcome);
    match outcome {
        Applied::ImplausibleJump => {
            log(driver_id, PingRejection::ImplausibleJump);
            Err(PingRejection::ImplausibleJump)
        }
        Applied::RateLimited => {
            log(driver_id, PingRejection::RateLimited);
            Err(PingRejection::RateLimited)
        }
        Applied::Moved | Applied::Stale | Applied::Duplicate => Ok(()),
    }
}

fn reject(shared: &Shared, driver_id: DriverId, reason: PingRejection) {
    shared.metrics.path(Path::Ws).rejected(reason);
    log(driver_id, reason);
}

/// The driver is told directly, so this is only a debug line.
fn log(driver_id: DriverId, reason: PingRejection) {
    tracing::debug!(%driver_id, reason = reason.code(), "WebSocket ping rejected");
}

/// Counts an open stream in `hexdash_connections{kind="driver_ws"}`.
struct OpenStream(Gauge);

impl OpenStream {
    fn new(gauge: &Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Drivers' open streams. Short critical sections, never held across an
/// await (sends are `try_send`).
#[derive(Default)]
pub(crate) struct Registry {
    streams: Mutex<FxHashMap<DriverId, Vec<Entry>>>,
    next_id: AtomicU64,
}

struct Entry {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
}

/// What happened to one message for one driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) queued: usize,
    /// Streams whose queue was full.
    pub(crate) dropped: usize,
}

impl Registry {
    /// Adds a stream; the oldest of the driver's streams is closed (its
    /// queue dropped) when the driver already has the maximum.
    fn register(&self, driver_id: DriverId, tx: mpsc::Sender<Utf8Bytes>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut streams = self.streams.lock();
        let entries = streams.entry(driver_id).or_default();
        if entries.len() >= MAX_STREAMS_PER_DRIVER {
            entries.remove(0);
        }
        entries.push(Entry { id, tx });
        id
    }

    fn unregister(&self, driver_id: DriverId, id: u64) {
        let mut streams = self.streams.lock();
        if let Some(entries) = streams.get_mut(&driver_id) {
            entries.retain(|e| e.id != id);
            if entries.is_empty() {
                streams.remove(&driver_id);
            }
        }
    }

    /// Closes every stream of `driver_id` (banned): their queues are
    /// dropped, so each ends with a Close. How many.
    pub(crate) fn close(&self, driver_id: DriverId) -> usize {
        self.streams
            .lock()
            .remove(&driver_id)
            .map_or(0, |entries| entries.len())
    }

    /// Every driver with an open stream (a sweep after missed bans).
    pub(crate) fn drivers(&self) -> Vec<DriverId> {
        self.streams.lock().keys().copied().collect()
    }

    pub(crate) fn has(&self, driver_id: DriverId) -> bool {
        self.streams.lock().contains_key(&driver_id)
    }

    /// Queues `text` on every stream of the driver, never waiting.
    pub(crate) fn deliver(&self, driver_id: DriverId, text: &Utf8Bytes) -> Delivery {
        let streams = self.streams.lock();
        let mut delivery = Delivery::default();
        for entry in streams.get(&driver_id).into_iter().flatten() {
            match entry.tx.try_send(text.clone()) {
                Ok(()) => delivery.queued += 1,
                Err(mpsc::error::TrySendError::Full(_)) => delivery.dropped += 1,
                // The stream is ending and will unregister itself.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        delivery
    }
}

/// Forwards offers (and offer ends) from the engine's change stream to the
/// drivers' WebSocket streams until `shutdown`.
pub(crate) async fn deliver_offers(
    shared: Arc<Shared>,
    mut changes: engine::Receiver<Change>,
    shutdown: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            c = changes.recv_direct() => c,
        };
        let driver_id = match &change {
            Ok(Change::Offer(offer)) => offer.driver_id,
            Ok(Change::OfferEnded { driver_id, .. }) => *driver_id,
            Ok(_) => continue,
            Err(RecvError::Overflowed(n)) => {
                tracing::warn!(
                    missed = n,
                    "WebSocket offer delivery fell behind the change stream; offers were lost"
                );
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        // Serialised only when the driver has a stream to receive it.
        if !shared.streams.has(driver_id) {
            continue;
        }
        let text = match change {
            Ok(Change::Offer(offer)) => shared.offer_json(&offer).await,
            Ok(Change::OfferEnded { offer_id, end, .. }) => wire::offer_ended_json(offer_id, end),
            _ => continue,
        };
        let delivery = shared.streams.deliver(driver_id, &Utf8Bytes::from(text));
        shared.metrics.offers_ws.increment(delivery.queued as u64);
        if delivery.dropped > 0 {
            shared
                .metrics
                .offers_ws_dropped
                .increment(delivery.dropped as u64);
            tracing::warn!(%driver_id, "a driver's WebSocket is not reading; an offer was dropped");
        }
    }
}
