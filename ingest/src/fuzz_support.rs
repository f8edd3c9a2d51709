//! Fuzzing access (hidden from the docs; not an API): the `fuzz/` crate
//! drives the decoders that see drivers' bytes through the same functions
//! production calls, on an [`Ingest`] with a fixed clock and one driver
//! whose token it knows.
//!
//! - [`Harness::mqtt`]: a connection's [`AclProtocol`] codec, fed the bytes
//!   of a socket as rumqttd feeds them (read, decode until "need more
//!   bytes", read again), answering a refused CONNECT with its CONNACK.
//! - [`Harness::external_publish`]: a message an external broker delivered
//!   (topic parsing and the ping payload, `mqtt::consumer`).
//! - [`Harness::ws_text`]: one text message on a driver's WebSocket stream.
//! - [`Harness::http_batch`]: the body of `POST /v1/drivers/{id}/locations`.

use std::sync::Arc;

use auth::{Principal, Role, Tokens};
use bytes::BytesMut;
use engine::{DriverId, PingRejection, UserId};
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{self, ConnAck, Connect, Login, Packet, Protocol};
use tokio_util::sync::CancellationToken;

use crate::mqtt::acl::{AclContext, AclProtocol};
use crate::mqtt::consumer::Batch;
use crate::{Config, Ingest, http, ws};

/// The harness clock's time, Unix ms: pings with `ts` near it are current.
pub const NOW_MS: i64 = 1_763_700_000_000;

/// An ingest subsystem with one known driver.
pub struct Harness {
    ingest: Ingest,
    engine: engine::Handle,
    driver: UserId,
    token: String,
    shutdown: CancellationToken,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// Default settings, a clock stopped at [`NOW_MS`], and the driver
    /// `00000000-0000-0000-0000-000000000001` (fixed, so corpus files can
    /// name its topics).
    pub fn new() -> Self {
        let clock: Arc<dyn clock::Clock> = Arc::new(clock::ManualClock::new(NOW_MS));
        let tokens = Tokens::new(b"fuzz", 3600).with_clock(clock.clone());
        let engine = engine::Handle::new(engine::Config::default());
        let ingest = Ingest::new(Config::default(), engine.clone(), tokens.clone(), clock);
        let driver = UserId::from(uuid::Uuid::from_u64_pair(0, 1));
        let principal = Principal {
            user_id: driver,
            role: Role::Driver,
        };
        let token = tokens.issue(principal, tokens.now_s()).token;
        Self {
            ingest,
            engine,
            driver,
            token,
            shutdown: CancellationToken::new(),
        }
    }

    /// The harness's driver.
    pub fn driver_id(&self) -> DriverId {
        self.driver.into()
    }

    /// The engine the pings go to (to check what was applied).
    pub fn engine(&self) -> &engine::Handle {
        &self.engine
    }

    /// A fresh MQTT connection's codec; with `authenticated`, it has already
    /// read a valid CONNECT of the harness's driver.
    pub fn mqtt(&self, authenticated: bool) -> MqttConnection {
        let ctx = Arc::new(AclContext {
            shared: self.ingest.shared.clone(),
            shutdown: self.shutdown.clone(),
        });
        // As rumqttd does: one clone of the template per connection.
        let mut connection = MqttConnection {
            acl: AclProtocol::new(ctx).clone(),
            buffer: BytesMut::new(),
            max_size: self.ingest.shared.config.max_mqtt_packet_bytes,
            closed: false,
        };
        if authenticated {
            let connect = Connect {
                keep_alive: 30,
                client_id: "fuzz".into(),
                clean_session: true,
            };
            let login = Login {
                username: self.driver.to_string(),
                password: self.token.clone(),
            };
            let mut frame = BytesMut::new();
            let packet = Packet::Connect(connect, None, None, None, Some(login));
            // Encoding a CONNECT of short strings into a growable buffer
            // cannot fail; a failure would be a harness bug worth a panic.
            V4.write(packet, &mut frame)
                .unwrap_or_else(|e| panic!("encoding the harness CONNECT failed: {e}"));
            connection.feed(&frame);
            assert!(!connection.closed, "the harness's own CONNECT was refused");
        }
        connection
    }

    /// One message an external broker delivered on the shared subscription
    /// (`drivers/+/location`), applied as `mqtt::external` applies it.
    pub fn external_publish(&self, topic: &[u8], payload: &[u8]) {
        let shared = &self.ingest.shared;
        let mut batch = Batch::default();
        batch.add_published(shared, topic, payload, NOW_MS);
        batch.apply(shared, NOW_MS);
    }

    /// One text message on the driver's WebSocket stream.
    pub fn ws_text(&self, bytes: &[u8]) -> Result<(), PingRejection> {
        ws::ingest_text(&self.ingest.shared, self.driver_id(), bytes)
    }

    /// The body of an HTTP batch of the driver's pings: `None` when it is
    /// refused as a whole (not a JSON array, too many pings), else the
    /// answer.
    pub fn http_batch(&self, body: &[u8]) -> Option<contract::BatchResult> {
        let shared = &self.ingest.shared;
        let items = http::parse_batch(&shared.config, body).ok()?;
        Some(http::apply_batch(shared, self.driver_id(), &items))
    }
}

/// One MQTT connection's codec and its unread bytes.
pub struct MqttConnection {
    acl: AclProtocol,
    buffer: BytesMut,
    max_size: usize,
    closed: bool,
}

impl MqttConnection {
    /// Appends `bytes` (one read of the socket) and decodes as rumqttd's
    /// network loop does: packet after packet until the codec needs more
    /// bytes; any other error closes the connection (a refused CONNECT is
    /// answered with its CONNACK first). Returns the packets handed to the
    /// router.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        if self.closed {
            return 0;
        }
        self.buffer.extend_from_slice(bytes);
        let mut routed = 0;
        loop {
            let before = self.buffer.len();
            match self.acl.read_mut(&mut self.buffer, self.max_size) {
                Ok(_) => {
                    routed += 1;
                    // A packet is at least its two header bytes.
                    assert!(self.buffer.len() < before, "a packet consumed no bytes");
                }
                Err(protocol::Error::InsufficientBytes(_)) => return routed,
                Err(protocol::Error::ConnectRefused(code)) => {
                    let ack = ConnAck {
                        session_present: false,
                        code,
                    };
                    let mut out = BytesMut::new();
                    // rumqttd writes it; an encoder error only ends the
                    // connection there too.
                    let _ = self.acl.write(Packet::ConnAck(ack, None), &mut out);
                    self.closed = true;
                    return routed;
                }
                Err(_) => {
                    self.closed = true;
                    return routed;
                }
            }
        }
    }

    /// Whether the codec closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
