//! The engine's changes that become events without a business
//! transaction: driver online/offline (from `Change::DriverStatus`), the
//! matcher's offers (`Change::Offer`, as `order.offered` on the order's
//! stream) and couriers' arrivals (`Change::Arrived`, as
//! `order.arrived_at_restaurant` / `order.arrived_at_customer`) and
//! orders the matcher raised because no driver takes them
//! (`Change::Unassigned`, as `order.dispatch_stalled`; its resolution is
//! no event), through `events::presence`'s bounded queue. What a crash may
//! lose: what that queue holds (see `events::presence`); and a change the
//! engine's stream dropped for this reader when it lagged (counted as a
//! WARN): presence is a level the next change restates.

use std::collections::HashMap;

use engine::{Change, DriverId, DriverStatus, RecvError};
use events::{Actor, EventType, NewEvent, Payload, PresenceChange, PresenceRecorder};
use tokio_util::sync::CancellationToken;

/// Reads the engine's change stream until `shutdown` and records presence
/// flips and offers.
pub async fn run(
    engine: engine::Handle,
    recorder: PresenceRecorder,
    clock: std::sync::Arc<dyn clock::Clock>,
    shutdown: CancellationToken,
) {
    let mut changes = engine.subscribe_changes();
    let mut online: HashMap<DriverId, bool> = HashMap::new();
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(change) => feed(&recorder, &mut online, &change, clock.now_ms()),
            Err(RecvError::Overflowed(n)) => {
                tracing::warn!(
                    missed = n,
                    "presence feed lagged behind the engine's changes"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Records one change if it is a presence flip, an offer, an arrival or a
/// stalled dispatch.
fn feed(
    recorder: &PresenceRecorder,
    online: &mut HashMap<DriverId, bool>,
    change: &Change,
    now_ms: i64,
) {
    match change {
        // A driver pinging another node, or an offer another node's
        // matcher made: that node records them (one event, not one per
        // node).
        Change::DriverStatus { remote: true, .. } => {}
        Change::Offer(offer) if offer.relayed => {}
        Change::DriverStatus {
            driver_id,
            status,
            at_ms,
            ..
        } => {
            let now_online = *status != DriverStatus::Offline;
            if online.insert(*driver_id, now_online) != Some(now_online) {
                recorder.record(PresenceChange {
                    driver_id: driver_id.as_uuid(),
                    online: now_online,
                    at_ms: *at_ms,
                });
            }
        }
        Change::Offer(offer) => {
            recorder.record_event(NewEvent {
                event_type: EventType::OrderOffered,
                aggregate_id: offer.order_id.to_string(),
                at_ms: now_ms,
                actor: Actor::System("matcher".to_owned()),
                payload: Payload::v1(serde_json::json!({
                    "offer_id": offer.offer_id.to_string(),
                    "driver_id": offer.driver_id.to_string(),
                    "expires_at_ms": offer.expires_at_ms,
                })),
            });
        }
        Change::Arrived(arrived) => {
            let body = commerce::event::CourierArrived {
                order_id: arrived.order_id,
                driver_id: arrived.driver_id,
                lat: arrived.position.lat,
                lng: arrived.position.lng,
                at_ms: arrived.at_ms,
            };
            match serde_json::to_value(&body) {
                Ok(body) => {
                    recorder.record_event(NewEvent {
                        event_type: commerce::event::arrival_event_type(arrived.arrival),
                        aggregate_id: arrived.order_id.to_string(),
                        at_ms: arrived.at_ms,
                        actor: Actor::User(arrived.driver_id.as_uuid()),
                        payload: Payload::v1(body),
                    });
                }
                // Plain numbers and ids: serialising cannot fail.
                Err(e) => tracing::warn!(error = %e, "cannot record an arrival"),
            }
        }
        Change::Unassigned(u) if !u.resolved => {
            let body = commerce::event::DispatchStalled {
                order_id: u.order_id,
                attempts: u.attempts,
                waiting_since_ms: u.since_ms,
                lat: u.pickup.lat,
                lng: u.pickup.lng,
                at_ms: u.at_ms,
            };
            match serde_json::to_value(&body) {
                Ok(body) => {
                    recorder.record_event(NewEvent {
                        event_type: EventType::OrderDispatchStalled,
                        aggregate_id: u.order_id.to_string(),
                        at_ms: u.at_ms,
                        actor: Actor::System("matcher".to_owned()),
                        payload: Payload::v1(body),
                    });
                }
                // Plain numbers and ids: serialising cannot fail.
                Err(e) => tracing::warn!(error = %e, "cannot record a stalled dispatch"),
            }
        }
        _ => {}
    }
}
