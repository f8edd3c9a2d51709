//! A courier's MQTT connection to hexdash's broker, as a driver app makes
//! it: username = user id, password = access token; pings published to
//! `drivers/{id}/location`, offers read from `drivers/{id}/offers`.

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::route::Fix;

/// Requests (pings) rumqttc queues before `try_publish` refuses: a courier
/// sends one a second, so a full queue means a stalled connection, and a
/// dropped ping is what a phone in a tunnel does too.
const REQUEST_QUEUE: usize = 16;
/// Offers waiting for the courier; one is the norm (a driver holds one
/// offer at a time), more are dropped, which the server reads as silence.
const OFFER_QUEUE: usize = 8;
/// How long the broker may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// MQTT keep-alive: the broker drops a silent courier after 1.5 × this.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// An open MQTT connection.
pub struct Link {
    client: AsyncClient,
    /// Offer messages (`{"type":"offer",…}`, `{"type":"offer_ended",…}`);
    /// `None` once the connection is gone.
    pub messages: mpsc::Receiver<Value>,
    location_topic: String,
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The broker refused or dropped the connection before accepting it.
    #[error("MQTT connection to {addr} failed: {reason}")]
    Connect {
        /// The broker.
        addr: SocketAddr,
        /// What happened.
        reason: String,
    },
}

impl Link {
    /// Connects as `driver_id` with `token` and subscribes to its offers.
    pub async fn connect(
        addr: SocketAddr,
        driver_id: &str,
        token: &str,
    ) -> Result<Link, LinkError> {
        let mut opts = MqttOptions::new(
            format!("demo-{driver_id}"),
            addr.ip().to_string(),
            addr.port(),
        );
        opts.set_credentials(driver_id, token);
        opts.set_keep_alive(KEEP_ALIVE);
        let (client, eventloop) = AsyncClient::new(opts, REQUEST_QUEUE);
        let (tx, messages) = mpsc::channel(OFFER_QUEUE);
        let (connected_tx, connected) = oneshot::channel();
        tokio::spawn(pump(eventloop, tx, connected_tx));
        let fail = |reason: String| LinkError::Connect { addr, reason };
        match tokio::time::timeout(CONNECT_TIMEOUT, connected).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(reason))) => return Err(fail(reason)),
            Ok(Err(_)) => return Err(fail("the connection ended".into())),
            Err(_) => return Err(fail("no answer in time".into())),
        }
        client
            .subscribe(format!("drivers/{driver_id}/offers"), QoS::AtLeastOnce)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(Link {
            client,
            messages,
            location_topic: format!("drivers/{driver_id}/location"),
        })
    }

    /// Publishes a ping (QoS 0, as driver apps do); `false` when the
    /// connection's queue is full or closed (the ping is dropped).
    pub fn ping(&self, fix: &Fix, ts_ms: i64) -> bool {
        let ping = contract::driver::Ping {
            lat: Some(fix.position.lat),
            lng: Some(fix.position.lng),
            ts: Some(ts_ms),
            heading: Some(fix.heading_deg),
            // The server refuses a reported speed over 60 m/s.
            speed: Some(fix.speed_mps.min(59.0)),
            accuracy: Some(5.0),
        };
        // Serialising plain numbers cannot fail.
        let Ok(payload) = serde_json::to_vec(&ping) else {
            return false;
        };
        self.client
            .try_publish(&self.location_topic, QoS::AtMostOnce, false, payload)
            .is_ok()
    }

    /// Closes the connection (the broker sees a clean disconnect).
    pub fn close(&self) {
        let _ = self.client.try_disconnect();
    }
}

/// Drives the connection: reports the CONNACK (or the failure before it)
/// and forwards every JSON message; ends at the first error, so the
/// courier reconnects with a fresh token rather than rumqttc retrying
/// with an expired one.
async fn pump(
    mut eventloop: EventLoop,
    messages: mpsc::Sender<Value>,
    connected: oneshot::Sender<Result<(), String>>,
) {
    let mut connected = Some(connected);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Some(c) = connected.take() {
                    let _ = c.send(Ok(()));
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Ok(v) = serde_json::from_slice(&p.payload) {
                    // Full: dropped, as a phone that missed a message.
                    let _ = messages.try_send(v);
                }
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                if let Some(c) = connected.take() {
                    let _ = c.send(Err(e.to_string()));
                }
                return;
            }
        }
    }
}
