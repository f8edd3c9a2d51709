//! The in-process consumer of `drivers/+/location`: decodes, validates and
//! applies MQTT pings to the engine — the QoS 1/2 ones. QoS 0 pings (what
//! the contract asks of apps) never reach the router: the connection's ACL
//! applies them with the same [`Batch`] as it decodes them (see `acl`).
//!
//! It drains whatever the router has ready (up to [`MAX_BATCH`]
//! notifications) and applies the valid pings under one engine lock. The
//! router stops forwarding to a link whose buffer filled up and tells it
//! with `Notification::Unschedule`; the link must answer with `wake()` or it
//! never receives again (after about 200 messages).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use engine::{Applied, DriverId, Ping, PingRejection};
use futures_util::FutureExt;
use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::{Forward, Notification};
use tokio_util::sync::CancellationToken;

use crate::metrics::Path;
use crate::{Shared, topics, wire};

/// Notifications handled before the batch is applied: bounds the batch's
/// memory and the delay of its first ping (the router hands out at most a
/// couple of hundred per round anyway).
pub(super) const MAX_BATCH: usize = 1024;

pub(super) async fn run(
    shared: Arc<Shared>,
    // Kept so the link stays registered; the consumer publishes nothing.
    _link_tx: LinkTx,
    mut link_rx: LinkRx,
    up: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut batch = Batch::default();
    loop {
        let first = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            n = link_rx.next() => n,
        };
        let now = shared.now_ms();
        let mut next = Some(first);
        let mut handled = 0;
        let mut unscheduled = false;
        let mut router_gone = false;
        while let Some(notification) = next {
            match notification {
                Ok(Some(Notification::Forward(forward))) => batch.add(&shared, forward, now),
                Ok(Some(Notification::Unschedule)) => unscheduled = true,
                // Acks and wake-ups without data.
                Ok(_) => {}
                Err(e) => {
                    report_router_gone(&e);
                    router_gone = true;
                    break;
                }
            }
            handled += 1;
            if handled >= MAX_BATCH {
                break;
            }
            // `next()` returns at once while the router has more ready;
            // dropping it when pending loses nothing (it has not taken any).
            next = link_rx.next().now_or_never();
        }
        batch.apply(&shared, now);
        if unscheduled && let Err(e) = link_rx.wake().await {
            report_router_gone(&e);
            router_gone = true;
        }
        if router_gone {
            break;
        }
    }
    up.store(false, Ordering::Relaxed);
}

fn report_router_gone(e: &LinkError) {
    tracing::error!(error = %e, "MQTT router closed the ingest link; MQTT pings no longer reach the engine");
}

/// Valid pings waiting to be applied together.
#[derive(Default)]
pub(crate) struct Batch {
    pings: Vec<Ping>,
}

impl Batch {
    /// Decodes and checks one ping of `driver_id` (the connection's
    /// authenticated driver); a bad one is counted and logged.
    pub(super) fn add_payload(
        &mut self,
        shared: &Shared,
        driver_id: DriverId,
        payload: &[u8],
        now_ms: i64,
    ) {
        match decode(payload, driver_id, shared.config.max_ping_bytes, now_ms) {
            Ok(ping) => self.pings.push(ping),
            Err(reason) => reject(shared, Some(driver_id), reason),
        }
    }

    fn add(&mut self, shared: &Shared, forward: Forward, now_ms: i64) {
        let publish = forward.publish;
        self.add_published(shared, &publish.topic, &publish.payload, now_ms);
    }

    /// Decodes and checks one message a subscription on
    /// `drivers/+/location` received; the driver is the one its topic
    /// names. The broker's ACL (the embedded one's, or an external
    /// broker's) lets a driver publish only to its own location topic, so
    /// that is the authenticated driver.
    pub(crate) fn add_published(
        &mut self,
        shared: &Shared,
        topic: &[u8],
        payload: &[u8],
        now_ms: i64,
    ) {
        let Some(driver_id) = topics::parse_location(topic) else {
            // `+` also matches ids that are not UUIDs, which no driver
            // account has.
            reject(shared, None, PingRejection::WrongDriver);
            return;
        };
        self.add_payload(shared, driver_id, payload, now_ms);
    }

    /// Applies the waiting pings under one engine lock and counts them.
    pub(crate) fn apply(&mut self, shared: &Shared, now_ms: i64) {
        if self.pings.is_empty() {
            return;
        }
        let outcomes = shared.engine.apply_pings(&self.pings, now_ms);
        let metrics = shared.metrics.path(Path::Mqtt);
        for (ping, outcome) in self.pings.iter().zip(outcomes) {
            metrics.outcome(outcome);
            match outcome {
                Applied::ImplausibleJump => {
                    log(shared, Some(ping.driver_id), PingRejection::ImplausibleJump);
                }
                Applied::RateLimited => {
                    log(shared, Some(ping.driver_id), PingRejection::RateLimited);
                }
                Applied::Moved | Applied::Stale | Applied::Duplicate => {}
            }
        }
        self.pings.clear();
    }
}

fn decode(
    payload: &[u8],
    driver_id: DriverId,
    max_bytes: usize,
    now_ms: i64,
) -> Result<Ping, PingRejection> {
    if payload.len() > max_bytes {
        return Err(PingRejection::TooLarge);
    }
    wire::decode_ping(payload)?.validate(driver_id, now_ms)
}

fn reject(shared: &Shared, driver_id: Option<DriverId>, reason: PingRejection) {
    shared.metrics.path(Path::Mqtt).rejected(reason);
    log(shared, driver_id, reason);
}

/// MQTT has no reply channel for a bad ping, so the log line is the
/// driver's (and operator's) only clue: warn, but rate limited.
fn log(shared: &Shared, driver_id: Option<DriverId>, reason: PingRejection) {
    if let Some(suppressed) = shared.metrics.reject_log.allow(shared.now_s()) {
        tracing::warn!(
            ?driver_id,
            reason = reason.code(),
            suppressed,
            "MQTT ping rejected: {reason}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_checks_size_first() {
        let id = DriverId::new();
        let now = 1_763_700_000_000;
        let ok = br#"{"lat":57.7,"lng":11.97}"#;
        assert!(decode(ok, id, 1024, now).is_ok());
        assert_eq!(decode(ok, id, 10, now), Err(PingRejection::TooLarge));
        assert_eq!(decode(b"{", id, 1024, now), Err(PingRejection::InvalidJson));
        assert_eq!(
            decode(br#"{"lat":57.7}"#, id, 1024, now),
            Err(PingRejection::MissingCoordinates)
        );
    }
}
