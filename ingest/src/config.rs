//! Ingest settings. Every bound here keeps memory, latency or abuse finite.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Embedded MQTT broker listener. Port 0 picks a free port (read it back
    /// from `BrokerHandle::local_addr`). Not a setting of its own: the
    /// binary copies the top-level `mqtt_addr` (`HEXDASH_MQTT_ADDR`) here,
    /// so there is one way to set it.
    #[serde(skip)]
    pub mqtt_addr: SocketAddr,
    /// Broker connection slots (drivers plus the two in-process links). The
    /// router preallocates tables of this size (virtual memory, touched as
    /// used), and refuses connections beyond it.
    pub max_connections: usize,
    /// How often drivers that stopped pinging are marked offline.
    pub presence_sweep_ms: u64,
    /// Largest accepted ping, bytes. A real ping is about 120 bytes; the
    /// margin is for optional fields newer apps may add.
    pub max_ping_bytes: usize,
    /// Largest MQTT packet the broker reads, bytes. Larger packets make
    /// rumqttd drop the connection, so this sits well above `max_ping_bytes`:
    /// a moderately oversized ping gets a `too_large` rejection instead.
    pub max_mqtt_packet_bytes: usize,
    /// Time a new MQTT connection has to send CONNECT, so idle sockets
    /// cannot hold connection slots.
    pub mqtt_connect_timeout_ms: u16,
    /// QoS 1/2 messages in flight per MQTT connection (and the largest batch
    /// of packets read from one connection at a time).
    pub mqtt_max_inflight: usize,
    /// Largest HTTP batch, in pings: about 15 minutes of 1 Hz pings.
    pub max_batch_pings: usize,
    /// Largest HTTP batch body, bytes.
    pub max_batch_body_bytes: usize,
    /// Largest WebSocket message the socket accepts at all. Above
    /// `max_ping_bytes` so a moderately oversized ping gets an error message
    /// instead of a killed connection.
    pub ws_max_message_bytes: usize,
    /// Messages (offers) queued for one driver's WebSocket; when full, further
    /// offers to that socket are dropped and counted (an offer the driver
    /// cannot read in time expires anyway).
    pub ws_send_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mqtt_addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1883)),
            max_connections: 200_000,
            presence_sweep_ms: 1_000,
            max_ping_bytes: 1024,
            max_mqtt_packet_bytes: 16 * 1024,
            mqtt_connect_timeout_ms: 10_000,
            mqtt_max_inflight: 100,
            max_batch_pings: 1_000,
            max_batch_body_bytes: 1024 * 1024,
            ws_max_message_bytes: 64 * 1024,
            ws_send_queue: 64,
        }
    }
}
