//! Publishes offers (and offer ends) from the engine's change stream, and
//! drivers' notifications ([`crate::Ingest::notify`]), to
//! `drivers/{driver_id}/offers` at QoS 0, through an [`Outbox`]: the
//! embedded router's in-process link ([`RouterOutbox`]) or the external
//! broker's client (`external::ClientOutbox`). What goes out, to which
//! topic, is decided here once for both. The broker delivers each message
//! to that driver's subscription, if it has one; its ACL keeps every
//! other driver off that topic.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use engine::{Change, RecvError};
use rumqttd::local::{LinkRx, LinkTx};
use tokio_util::sync::CancellationToken;

use crate::{Shared, topics, wire};

/// Where the publisher hands its messages.
pub(super) trait Outbox: Send {
    /// Hands `payload` for `topic` to the broker; `false` when it was
    /// dropped (the broker's queue stayed full).
    fn publish(&mut self, topic: String, payload: String) -> impl Future<Output = bool> + Send;

    /// Resolves when the outbox can no longer deliver anything; the
    /// publisher then stops. Cancel-safe (polled in a `select!`).
    fn closed(&mut self) -> impl Future<Output = ()> + Send;
}

/// What the publisher's loop woke up for.
enum Next {
    Stop,
    Note(engine::DriverId, String),
    Change(Result<Change, RecvError>),
}

pub(super) async fn run(
    shared: Arc<Shared>,
    mut outbox: impl Outbox,
    mut changes: engine::Receiver<Change>,
    shutdown: CancellationToken,
) {
    // Taken once: a second broker start finds none and publishes offers only.
    let mut notes = shared.notify_rx.lock().take();
    loop {
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => Next::Stop,
            () = outbox.closed() => Next::Stop,
            Some((driver_id, payload)) = async {
                match notes.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Next::Note(driver_id, payload),
            c = changes.recv_direct() => Next::Change(c),
        };
        let change = match next {
            Next::Stop => break,
            Next::Note(driver_id, payload) => {
                if outbox.publish(topics::offers(driver_id), payload).await {
                    shared.metrics.notifications_mqtt.increment(1);
                } else {
                    shared.metrics.notifications_dropped.increment(1);
                }
                continue;
            }
            Next::Change(change) => change,
        };
        let (driver_id, payload) = match change {
            Ok(Change::Offer(offer)) => (offer.driver_id, shared.offer_json(&offer).await),
            Ok(Change::OfferEnded {
                offer_id,
                driver_id,
                end,
            }) => (driver_id, wire::offer_ended_json(offer_id, end)),
            Ok(_) => continue,
            Err(RecvError::Overflowed(n)) => {
                tracing::warn!(
                    missed = n,
                    "MQTT offer publisher fell behind the change stream; offers were lost"
                );
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        if outbox.publish(topics::offers(driver_id), payload).await {
            shared.metrics.offers_mqtt.increment(1);
        } else {
            tracing::warn!(%driver_id, "the MQTT broker did not take an offer; dropped");
        }
    }
}

/// Attempts to hand one offer to a router whose event queue is full, and
/// the pause between them: the router drains its queue in microseconds, so
/// persisting fullness means it is wedged; the offer is then dropped (it
/// would expire unanswered anyway) instead of stalling later offers.
const PUBLISH_ATTEMPTS: u32 = 20;
const PUBLISH_RETRY_PAUSE: Duration = Duration::from_millis(5);

/// The embedded router's in-process link.
pub(super) struct RouterOutbox {
    pub(super) link_tx: LinkTx,
    pub(super) link_rx: LinkRx,
}

impl Outbox for RouterOutbox {
    /// `LinkTx::publish` blocks the thread while the router's queue is
    /// full, so this uses `try_publish`, which leaves the packet in the
    /// link's buffer without waking the router when it fails: take it back
    /// and retry later.
    async fn publish(&mut self, topic: String, payload: String) -> bool {
        for _ in 0..PUBLISH_ATTEMPTS {
            match self.link_tx.try_publish(topic.clone(), payload.clone()) {
                Ok(_) => return true,
                Err(_) => {
                    // Only this task writes to the buffer, so a packet at its
                    // back is the one just pushed. An empty buffer means the
                    // router drained it (woken by an earlier publish): sent.
                    if self.link_tx.buffer().pop_back().is_none() {
                        return true;
                    }
                    tokio::time::sleep(PUBLISH_RETRY_PAUSE).await;
                }
            }
        }
        false
    }

    /// Nothing is expected on the link (QoS 0 publishes are not acked),
    /// but its queue must not grow unread; it ends when the router does.
    async fn closed(&mut self) {
        loop {
            if let Err(e) = self.link_rx.next().await {
                tracing::error!(error = %e, "MQTT router closed the offers link; offers no longer reach MQTT drivers");
                return;
            }
        }
    }
}
