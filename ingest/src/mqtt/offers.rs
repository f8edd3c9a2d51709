//! Publishes offers (and offer ends) from the engine's change stream, and
//! drivers' notifications ([`crate::Ingest::notify`]), to
//! `drivers/{driver_id}/offers`, at QoS 0 through an in-process link. The
//! router delivers them to that driver's subscription, if it has one; the
//! ACL keeps every other driver off that topic.

use std::sync::Arc;
use std::time::Duration;

use engine::{Change, RecvError};
use rumqttd::local::{LinkRx, LinkTx};
use tokio_util::sync::CancellationToken;

use crate::{Shared, topics, wire};

/// Attempts to hand one offer to a router whose event queue is full, and
/// the pause between them: the router drains its queue in microseconds, so
/// persisting fullness means it is wedged; the offer is then dropped (it
/// would expire unanswered anyway) instead of stalling later offers.
const PUBLISH_ATTEMPTS: u32 = 20;
const PUBLISH_RETRY_PAUSE: Duration = Duration::from_millis(5);

pub(super) async fn run(
    shared: Arc<Shared>,
    mut link_tx: LinkTx,
    mut link_rx: LinkRx,
    mut changes: engine::Receiver<Change>,
    shutdown: CancellationToken,
) {
    // Taken once: a second broker start finds none and publishes offers only.
    let mut notes = shared.notify_rx.lock().take();
    loop {
        let change = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            // Nothing is expected here (QoS 0 publishes are not acked), but
            // the link's queue must not grow unread.
            n = link_rx.next() => {
                if let Err(e) = n {
                    tracing::error!(error = %e, "MQTT router closed the offers link; offers no longer reach MQTT drivers");
                    break;
                }
                continue;
            }
            Some((driver_id, payload)) = async {
                match notes.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if publish(&mut link_tx, topics::offers(driver_id), payload).await {
                    shared.metrics.notifications_mqtt.increment(1);
                } else {
                    shared.metrics.notifications_dropped.increment(1);
                }
                continue;
            }
            c = changes.recv_direct() => c,
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
        if publish(&mut link_tx, topics::offers(driver_id), payload).await {
            shared.metrics.offers_mqtt.increment(1);
        } else {
            tracing::warn!(%driver_id, "MQTT router did not take an offer; dropped");
        }
    }
}

/// `LinkTx::publish` blocks the thread while the router's queue is full, so
/// this uses `try_publish`, which leaves the packet in the link's buffer
/// without waking the router when it fails: take it back and retry later.
async fn publish(link_tx: &mut LinkTx, topic: String, payload: String) -> bool {
    for _ in 0..PUBLISH_ATTEMPTS {
        match link_tx.try_publish(topic.clone(), payload.clone()) {
            Ok(_) => return true,
            Err(_) => {
                // Only this task writes to the buffer, so a packet at its
                // back is the one just pushed. An empty buffer means the
                // router drained it (woken by an earlier publish): sent.
                if link_tx.buffer().pop_back().is_none() {
                    return true;
                }
                tokio::time::sleep(PUBLISH_RETRY_PAUSE).await;
            }
        }
    }
    false
}
