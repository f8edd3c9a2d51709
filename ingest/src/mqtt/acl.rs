//! The topic ACL of the embedded broker.
//!
//! rumqttd cannot restrict topics per user by itself (its tenant prefixes
//! come only from TLS client certificates, and its connection handling is
//! private). But its `Server` clones one `Protocol` value per accepted
//! connection and decodes every packet that connection sends through it,
//! starting with CONNECT. [`AclProtocol`] wraps the MQTT 3.1.1 codec and
//! enforces, per connection:
//!
//! - **CONNECT**: username = the driver's user id, password = its access
//!   token, verified here (the identity the checks below use) and again by
//!   rumqttd's `external_auth` hook ([`auth_handler`]). A refusal is answered
//!   with a CONNACK whose return code says why (see [`return_code`]; sent by
//!   rumqttd's connect handler, patched for it, see `vendor/README.md`), then
//!   the connection is closed. Only MQTT 3.1.1 is spoken: an MQTT 5 client
//!   gets an MQTT 5 CONNACK with reason code 0x84 (unsupported protocol
//!   version) and a reason string, MQTT 3.1 and other levels a 3.1.1
//!   CONNACK with return code 1 (keep-alive 0, which rumqttd does not serve,
//!   gets 2). The client id becomes `{driver_id}.{client_id}` so one driver
//!   cannot take over another's session (rumqttd closes the older connection
//!   of a duplicate client id), nor the broker's in-process links.
//!   Last-will messages are dropped: the router would publish them to any
//!   topic on the driver's behalf, past this check.
//! - **PUBLISH** of a QoS 0 ping to `drivers/{own id}/location` is applied
//!   to the engine right here, in the connection's task, and not handed to
//!   the router: every ping decoded from one read of the socket goes in one
//!   batch under one engine lock. rumqttd's router is one thread for all
//!   connections and queues without bound when it falls behind (measured:
//!   150,000 pings/s offered collapsed to 26,600/s with RSS growing), while
//!   connection tasks run on every core. The keep-alive is unaffected:
//!   rumqttd times it on bytes read from the socket. QoS 1/2 pings still go
//!   through the router, which acknowledges them, to the consumer.
//! - **PUBLISH**: only to `drivers/{own id}/location`. Anything else is
//!   counted (`wrong_driver`), logged, and neutralised; the connection stays
//!   up so its next valid ping applies. QoS 0 becomes a PINGREQ (the router
//!   answers a PINGRESP, which clients ignore); QoS 1/2 are readdressed to
//!   a `$` topic no filter can match, so the router still acknowledges them.
//!   After [`MAX_WRONG_TOPIC_PUBLISHES`] the connection is closed.
//! - **SUBSCRIBE**: only `drivers/{own id}/offers`; anything else (other
//!   drivers' pings or offers, wildcards) closes the connection.
//! - A second CONNECT on the same connection closes it (no identity change).

use std::sync::Arc;

use auth::{AuthError, Role, Tokens};
use bytes::{Bytes, BytesMut};
use engine::{DriverId, PingRejection};
use metrics::Gauge;
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::v5::V5;
use rumqttd::protocol::{
    self, ConnAckProperties, Connect, ConnectReturnCode, Login, Packet, PingReq, Protocol, Publish,
    Subscribe,
};
use tokio_util::sync::CancellationToken;

use super::consumer::Batch;
use crate::metrics::{ConnectRefusal, Path, Refusal};
use crate::{Shared, topics};

/// Publishes to foreign topics tolerated on one connection before it is
/// closed: a buggy app gets its pings through, a prober gets cut off (each
/// neutralised QoS 1/2 publish still costs the router a filter scan).
pub const MAX_WRONG_TOPIC_PUBLISHES: u32 = 16;

/// Where foreign QoS 1/2 publishes are readdressed: topics starting with `$`
/// never match a subscription filter in rumqttd, so nothing is stored or
/// delivered, yet the router acknowledges the packet.
const DROPPED_TOPIC: &str = "$hexdash/dropped";

/// Longest topic or filter quoted in a log line.
const LOGGED_TOPIC_CHARS: usize = 96;

/// The reason string of the MQTT 5 CONNACK that refuses an MQTT 5 client:
/// paho and others show it next to the reason code.
const V5_REFUSAL_REASON: &str = "hexdash speaks MQTT 3.1.1 only; connect with protocol level 4";

/// Protocol names of MQTT 3.1.1 and 5 (`MQTT`) and of MQTT 3.1 (`MQIsdp`):
/// a CONNECT naming one of these gets an answer even at a level we do not
/// speak; any other name is not MQTT and is closed without one (as the
/// 3.1.1 specification allows, [MQTT-3.1.2-1]).
const MQTT_PROTOCOL_NAMES: [&[u8]; 2] = [b"MQTT", b"MQIsdp"];

/// MQTT 5's protocol level.
const MQTT5_LEVEL: u8 = 5;

/// The CONNACK return code that tells a client why its CONNECT was refused,
/// in MQTT 3.1.1's terms (rumqttd writes it in the client's version):
/// 4 (bad user name or password) when the credentials do not authenticate
/// anyone, 5 (not authorised) when they do but that user may not publish
/// locations, 1 (unacceptable protocol version), 3 (server unavailable),
/// and 2 (identifier rejected) for keep-alive 0: 3.1.1 has no code for it,
/// and 2 is what Mosquitto answers to a keep-alive it does not accept.
fn return_code(refusal: ConnectRefusal) -> ConnectReturnCode {
    match refusal {
        ConnectRefusal::MissingCredentials
        | ConnectRefusal::BadUsername
        | ConnectRefusal::InvalidToken
        | ConnectRefusal::TokenExpired
        | ConnectRefusal::TokenRevoked
        | ConnectRefusal::TokenOfAnotherUser => ConnectReturnCode::BadUserNamePassword,
        ConnectRefusal::NotADriver | ConnectRefusal::Banned => ConnectReturnCode::NotAuthorized,
        ConnectRefusal::UnsupportedProtocol => ConnectReturnCode::RefusedProtocolVersion,
        ConnectRefusal::ZeroKeepAlive => ConnectReturnCode::ClientIdentifierNotValid,
        ConnectRefusal::ShuttingDown => ConnectReturnCode::ServiceUnavailable,
    }
}

/// What every connection's ACL shares.
pub(crate) struct AclContext {
    pub(crate) shared: Arc<Shared>,
    /// Cancelled at shutdown: connections are closed at their next packet.
    pub(crate) shutdown: CancellationToken,
}

/// Why a CONNECT's credentials were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// The username is not a user id (a UUID).
    BadUsername,
    /// The password is not a valid, unexpired token of an unbanned user.
    Token(AuthError),
    /// The token belongs to another user than the username.
    NotThisUser,
    /// The token is not a driver's.
    NotADriver,
}

impl From<AuthFailure> for ConnectRefusal {
    fn from(failure: AuthFailure) -> Self {
        match failure {
            AuthFailure::BadUsername => ConnectRefusal::BadUsername,
            // `Missing` is the REST layer's (no bearer header); a CONNECT
            // with a login always carries a password, possibly empty.
            AuthFailure::Token(AuthError::Invalid | AuthError::Missing) => {
                ConnectRefusal::InvalidToken
            }
            AuthFailure::Token(AuthError::Expired) => ConnectRefusal::TokenExpired,
            AuthFailure::Token(AuthError::Revoked) => ConnectRefusal::TokenRevoked,
            AuthFailure::Token(AuthError::Banned) => ConnectRefusal::Banned,
            AuthFailure::NotThisUser => ConnectRefusal::TokenOfAnotherUser,
            AuthFailure::NotADriver => ConnectRefusal::NotADriver,
        }
    }
}

/// The driver a username/password pair authenticates, if any.
pub(crate) fn authorize(
    tokens: &Tokens,
    username: &str,
    password: &str,
) -> Result<DriverId, AuthFailure> {
    let driver_id: DriverId = username.parse().map_err(|_| AuthFailure::BadUsername)?;
    let principal = tokens.verify(password).map_err(AuthFailure::Token)?;
    if principal.user_id.as_uuid() != driver_id.as_uuid() {
        return Err(AuthFailure::NotThisUser);
    }
    if principal.role != Role::Driver {
        return Err(AuthFailure::NotADriver);
    }
    Ok(driver_id)
}

/// rumqttd's own authentication hook: the same check as the ACL's, so the
/// broker's gate is closed even where the wrapper would not be consulted.
pub(crate) fn auth_handler(tokens: Tokens) -> rumqttd::AuthHandler {
    Arc::new(move |_client_id, username, password| {
        let ok = authorize(&tokens, &username, &password).is_ok();
        Box::pin(async move { ok })
    })
}

/// The per-connection protocol wrapper. `Clone` hands out a fresh,
/// unauthenticated connection state (that is how rumqttd uses it: one clone
/// per accepted socket).
pub(crate) struct AclProtocol {
    inner: V4,
    ctx: Arc<AclContext>,
    saw_connect: bool,
    /// Set when the CONNECT was MQTT 5's: the refusing CONNACK is then
    /// written in MQTT 5's format (the only packet such a connection gets).
    answer_v5: bool,
    session: Option<Session>,
    /// Pings of the current read; kept (empty) between reads so its buffer
    /// is allocated once per connection, not once per read.
    batch: Batch,
}

/// An authenticated connection.
struct Session {
    driver_id: DriverId,
    location_topic: String,
    offers_topic: String,
    wrong_topic_publishes: u32,
    _open: OpenConnection,
}

/// Counts an authenticated connection in `hexdash_connections{kind="mqtt"}`
/// while it lives: the protocol value is dropped when rumqttd drops the
/// connection, so the gauge follows closes of every kind.
struct OpenConnection(Gauge);

impl OpenConnection {
    fn new(gauge: &Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl AclProtocol {
    pub(crate) fn new(ctx: Arc<AclContext>) -> Self {
        Self {
            inner: V4,
            ctx,
            saw_connect: false,
            answer_v5: false,
            session: None,
            batch: Batch::default(),
        }
    }

    /// Whether this connection's driver has been banned since it connected.
    fn is_banned(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| self.ctx.shared.tokens.is_banned(s.driver_id.into()))
    }

    /// Closes the connection: rumqttd drops a connection whose codec fails.
    fn refuse(&self, refusal: Refusal) -> protocol::Error {
        self.ctx.shared.metrics.refused(refusal);
        protocol::Error::MalformedPacket
    }

    /// Refuses the CONNECT: counted, logged (rate-limited, no password), and
    /// answered by rumqttd with a CONNACK carrying the return code before it
    /// closes the connection.
    fn refuse_connect(&self, refusal: ConnectRefusal, username: Option<&str>) -> protocol::Error {
        self.ctx.shared.metrics.connect_refused(refusal);
        if let Some(suppressed) = self.log_budget() {
            tracing::info!(
                username = %loggable(username.unwrap_or_default().as_bytes()),
                reason = refusal.as_str(),
                mqtt5 = self.answer_v5,
                suppressed,
                "MQTT: CONNECT refused"
            );
        }
        let code = match return_code(refusal) {
            ConnectReturnCode::RefusedProtocolVersion if self.answer_v5 => {
                ConnectReturnCode::UnsupportedProtocolVersion
            }
            code => code,
        };
        protocol::Error::ConnectRefused(code)
    }

    /// The codec refused a CONNECT's protocol name or level: an MQTT client
    /// of another version is told so in its own version's CONNACK; anything
    /// else is not MQTT and is closed without an answer.
    fn refuse_protocol(
        &mut self,
        peeked: Option<ConnectProtocol>,
        error: protocol::Error,
    ) -> protocol::Error {
        let Some(ConnectProtocol { mqtt, level }) = peeked else {
            return error;
        };
        self.answer_v5 = mqtt && level == MQTT5_LEVEL;
        let refused = self.refuse_connect(ConnectRefusal::UnsupportedProtocol, None);
        // Not MQTT at all: counted and logged, closed without a CONNACK.
        if mqtt { refused } else { error }
    }

    fn on_connect(
        &mut self,
        mut connect: Connect,
        props: Option<protocol::ConnectProperties>,
        login: Option<Login>,
    ) -> Result<Packet, protocol::Error> {
        if self.saw_connect {
            if let Some(suppressed) = self.log_budget() {
                let driver_id = self.session.as_ref().map(|s| s.driver_id);
                tracing::warn!(
                    ?driver_id,
                    suppressed,
                    "MQTT: second CONNECT on a connection; closing it"
                );
            }
            return Err(self.refuse(Refusal::SecondConnect));
        }
        self.saw_connect = true;
        let Some(login) = login else {
            return Err(self.refuse_connect(ConnectRefusal::MissingCredentials, None));
        };
        let driver_id = match authorize(&self.ctx.shared.tokens, &login.username, &login.password) {
            Ok(id) => id,
            Err(failure) => {
                return Err(self.refuse_connect(failure.into(), Some(&login.username)));
            }
        };
        // rumqttd would close it without a CONNACK.
        if connect.keep_alive == 0 {
            return Err(self.refuse_connect(ConnectRefusal::ZeroKeepAlive, Some(&login.username)));
        }
        if !connect.client_id.is_empty() {
            connect.client_id = format!("{driver_id}.{}", connect.client_id);
        }
        self.session = Some(Session {
            driver_id,
            location_topic: topics::location(driver_id),
            offers_topic: topics::offers(driver_id),
            wrong_topic_publishes: 0,
            _open: OpenConnection::new(&self.ctx.shared.metrics.mqtt_connections),
        });
        Ok(Packet::Connect(connect, props, None, None, Some(login)))
    }

    fn on_publish(
        &mut self,
        mut publish: Publish,
        props: Option<protocol::PublishProperties>,
        qos: u8,
        batch: &mut Batch,
        now_ms: i64,
    ) -> Result<Option<Packet>, protocol::Error> {
        let Some(session) = self.session.as_mut() else {
            // rumqttd reads CONNECT first and closes connections that start
            // otherwise; kept closed here too rather than trusted.
            return Err(self.refuse(Refusal::NotConnected));
        };
        if publish.topic == session.location_topic.as_bytes() {
            if qos == 0 {
                let driver_id = session.driver_id;
                batch.add_payload(&self.ctx.shared, driver_id, &publish.payload, now_ms);
                return Ok(None);
            }
            // Retained pings would only pile up in the broker.
            publish.retain = false;
            return Ok(Some(Packet::Publish(publish, props)));
        }
        session.wrong_topic_publishes += 1;
        let (driver_id, count) = (session.driver_id, session.wrong_topic_publishes);
        let shared = &self.ctx.shared;
        shared
            .metrics
            .path(Path::Mqtt)
            .rejected(PingRejection::WrongDriver);
        if let Some(suppressed) = shared.metrics.reject_log.allow(shared.now_s()) {
            tracing::warn!(
                %driver_id,
                topic = %loggable(&publish.topic),
                count,
                suppressed,
                "MQTT: publish to a topic that is not the driver's own location; dropped"
            );
        }
        if count > MAX_WRONG_TOPIC_PUBLISHES {
            if let Some(suppressed) = self.log_budget() {
                tracing::warn!(
                    %driver_id,
                    count,
                    suppressed,
                    "MQTT: too many publishes to foreign topics; closing the connection"
                );
            }
            return Err(self.refuse(Refusal::RepeatedWrongDriver));
        }
        if qos == 0 {
            return Ok(Some(Packet::PingReq(PingReq)));
        }
        publish.topic = Bytes::from_static(DROPPED_TOPIC.as_bytes());
        publish.payload = Bytes::new();
        publish.retain = false;
        Ok(Some(Packet::Publish(publish, props)))
    }

    fn on_subscribe(
        &mut self,
        subscribe: Subscribe,
        props: Option<protocol::SubscribeProperties>,
    ) -> Result<Packet, protocol::Error> {
        let Some(session) = self.session.as_ref() else {
            return Err(self.refuse(Refusal::NotConnected));
        };
        if let Some(bad) = subscribe
            .filters
            .iter()
            .find(|f| f.path != session.offers_topic)
        {
            if let Some(suppressed) = self.log_budget() {
                tracing::warn!(
                    driver_id = %session.driver_id,
                    filter = %loggable(bad.path.as_bytes()),
                    suppressed,
                    "MQTT: subscription outside the driver's own offers topic; closing the connection"
                );
            }
            return Err(self.refuse(Refusal::ForbiddenSubscription));
        }
        Ok(Packet::Subscribe(subscribe, props))
    }

    /// Clients control how often these lines happen, so they share the
    /// rejection log budget; `Some(n)` = log, `n` lines were suppressed.
    fn log_budget(&self) -> Option<u64> {
        self.ctx
            .shared
            .metrics
            .reject_log
            .allow(self.ctx.shared.now_s())
    }
}

impl Clone for AclProtocol {
    fn clone(&self) -> Self {
        Self::new(self.ctx.clone())
    }
}

impl Protocol for AclProtocol {
    fn read_mut(
        &mut self,
        stream: &mut BytesMut,
        max_size: usize,
    ) -> Result<Packet, protocol::Error> {
        // Pings applied here are consumed from the buffer; the call ends
        // with the first packet for the router, or with "need more bytes"
        // (which makes rumqttd read the socket again), or with an error —
        // the batch is applied in every case.
        let mut batch = std::mem::take(&mut self.batch);
        let now = self.ctx.shared.now_ms();
        let result = loop {
            // The frame starts at the front of the buffer: its first byte
            // holds a PUBLISH's QoS, which rumqttd's `Publish` keeps private.
            let qos = stream.first().map_or(0, |b| (b >> 1) & 0b11);
            // The codec's errors do not say which protocol a refused CONNECT
            // named (and consume the frame), so look first; only the first
            // packet of a connection can be its CONNECT.
            let peeked = if self.saw_connect {
                None
            } else {
                connect_protocol(stream)
            };
            let packet = match self.inner.read_mut(stream, max_size) {
                Ok(packet) => packet,
                Err(
                    e @ (protocol::Error::InvalidProtocol
                    | protocol::Error::InvalidProtocolLevel(_)),
                ) => break Err(self.refuse_protocol(peeked, e)),
                Err(e) => break Err(e),
            };
            if self.ctx.shutdown.is_cancelled() {
                break Err(match packet {
                    Packet::Connect(..) if !self.saw_connect => {
                        self.refuse_connect(ConnectRefusal::ShuttingDown, None)
                    }
                    _ => self.refuse(Refusal::ShuttingDown),
                });
            }
            if self.is_banned() {
                break Err(self.refuse(Refusal::Banned));
            }
            let routed = match packet {
                // The will (and its properties) are dropped: see the module doc.
                Packet::Connect(connect, props, _will, _will_props, login) => {
                    self.on_connect(connect, props, login).map(Some)
                }
                Packet::Publish(publish, props) => {
                    self.on_publish(publish, props, qos, &mut batch, now)
                }
                Packet::Subscribe(subscribe, props) => {
                    self.on_subscribe(subscribe, props).map(Some)
                }
                other => Ok(Some(other)),
            };
            match routed {
                Ok(None) => continue,
                Ok(Some(packet)) => break Ok(packet),
                Err(e) => break Err(e),
            }
        };
        batch.apply(&self.ctx.shared, now);
        self.batch = batch;
        result
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, protocol::Error> {
        // A banned driver's connection ends at the next packet the router
        // sends it: `Ingest` publishes one to its offers topic as the ban
        // is applied, so a subscribed connection closes at once.
        if self.is_banned() {
            return Err(self.refuse(Refusal::Banned));
        }
        if self.answer_v5 {
            // The refusing CONNACK, the one packet an MQTT 5 connection gets.
            let packet = match packet {
                Packet::ConnAck(ack, None) => Packet::ConnAck(
                    ack,
                    Some(ConnAckProperties {
                        reason_string: Some(V5_REFUSAL_REASON.to_owned()),
                        ..ConnAckProperties::default()
                    }),
                ),
                other => other,
            };
            return V5.write(packet, write);
        }
        self.inner.write(packet, write)
    }
}

/// The protocol a CONNECT frame names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ConnectProtocol {
    /// The name is one of [`MQTT_PROTOCOL_NAMES`].
    mqtt: bool,
    /// The protocol level (4 = 3.1.1, 5 = 5, 3 = 3.1).
    level: u8,
}

/// The protocol of the CONNECT frame at the front of `stream`; `None` if
/// the frame is not a CONNECT or its header has not fully arrived.
fn connect_protocol(stream: &[u8]) -> Option<ConnectProtocol> {
    let (&first, rest) = stream.split_first()?;
    if first >> 4 != 1 {
        return None;
    }
    // The remaining length: 1-4 bytes, the high bit of each says "more".
    let length_bytes = rest.iter().take(4).position(|b| b & 0x80 == 0)? + 1;
    let header = rest.get(length_bytes..)?;
    let name_len = usize::from(u16::from_be_bytes([*header.first()?, *header.get(1)?]));
    let name = header.get(2..2 + name_len)?;
    let level = *header.get(2 + name_len)?;
    Some(ConnectProtocol {
        mqtt: MQTT_PROTOCOL_NAMES.contains(&name),
        level,
    })
}

/// A client-supplied topic, shortened and made printable for a log line.
fn loggable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(LOGGED_TOPIC_CHARS)
        .flat_map(char::escape_default)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::now_ms;
    use auth::Principal;
    use engine::UserId;

    fn now_s() -> u64 {
        crate::now_s()
    }

    #[test]
    fn authorize_table() {
        let tokens = Tokens::new(b"secret", 60);
        let driver = UserId::new();
        let token = |user_id, role| tokens.issue(Principal { user_id, role }, now_s()).token;
        let check = |username: &str, password: &str, expected: Result<(), AuthFailure>| {
            assert_eq!(
                authorize(&tokens, username, password).map(|_| ()),
                expected,
                "{username}"
            );
        };
        let d = driver.to_string();
        check(&d, &token(driver, Role::Driver), Ok(()));
        check(&d.to_uppercase(), &token(driver, Role::Driver), Ok(()));
        check(
            "driver-7",
            &token(driver, Role::Driver),
            Err(AuthFailure::BadUsername),
        );
        check(
            &d,
            "not-a-token",
            Err(AuthFailure::Token(AuthError::Invalid)),
        );
        check(
            &d,
            &token(UserId::new(), Role::Driver),
            Err(AuthFailure::NotThisUser),
        );
        check(
            &d,
            &token(driver, Role::Customer),
            Err(AuthFailure::NotADriver),
        );
        check(
            &d,
            &token(driver, Role::Admin),
            Err(AuthFailure::NotADriver),
        );
        let expired = tokens
            .issue(
                Principal {
                    user_id: driver,
                    role: Role::Driver,
                },
                now_s() - 3600,
            )
            .token;
        check(&d, &expired, Err(AuthFailure::Token(AuthError::Expired)));
        let valid = token(driver, Role::Driver);
        tokens.ban(driver);
        check(&d, &valid, Err(AuthFailure::Token(AuthError::Banned)));
    }

    struct Conn {
        acl: AclProtocol,
        tokens: Tokens,
        engine: engine::Handle,
        driver: UserId,
        shutdown: CancellationToken,
    }

    impl Conn {
        fn new() -> Self {
            let tokens = Tokens::new(b"secret", 60);
            let engine = engine::Handle::new(engine::Config::default());
            let ingest = crate::Ingest::new(
                crate::Config::default(),
                engine.clone(),
                tokens.clone(),
                Arc::new(clock::SystemClock),
            );
            let shutdown = CancellationToken::new();
            let ctx = Arc::new(AclContext {
                shared: ingest.shared.clone(),
                shutdown: shutdown.clone(),
            });
            // As rumqttd does: clone the template per connection.
            let acl = AclProtocol::new(ctx).clone();
            Self {
                acl,
                tokens,
                engine,
                driver: UserId::new(),
                shutdown,
            }
        }

        fn token(&self, role: Role) -> String {
            self.tokens
                .issue(
                    Principal {
                        user_id: self.driver,
                        role,
                    },
                    now_s(),
                )
                .token
        }

        fn read(&mut self, packet: Packet) -> Result<Packet, protocol::Error> {
            let mut buf = BytesMut::new();
            V4.write(packet, &mut buf).unwrap();
            self.read_raw(buf)
        }

        fn read_raw(&mut self, mut buf: BytesMut) -> Result<Packet, protocol::Error> {
            let packet = self.acl.read_mut(&mut buf, 16 * 1024);
            if packet.is_ok() {
                assert!(buf.is_empty(), "one whole packet consumed");
            }
            packet
        }

        fn connect(
            &mut self,
            client_id: &str,
            password: String,
        ) -> Result<Packet, protocol::Error> {
            let will = rumqttd::protocol::LastWill {
                topic: Bytes::from_static(b"drivers/someone-else/location"),
                message: Bytes::from_static(b"{}"),
                qos: rumqttd::protocol::QoS::AtMostOnce,
                retain: false,
            };
            let connect = Connect {
                keep_alive: 30,
                client_id: client_id.to_owned(),
                clean_session: true,
            };
            let login = Login {
                username: self.driver.to_string(),
                password,
            };
            self.read(Packet::Connect(
                connect,
                None,
                Some(will),
                None,
                Some(login),
            ))
        }

        fn connected() -> Self {
            let mut c = Self::new();
            let token = c.token(Role::Driver);
            c.connect("phone", token).unwrap();
            c
        }

        fn own_location(&self) -> String {
            format!("drivers/{}/location", self.driver)
        }
    }

    /// A PUBLISH frame with any QoS (rumqttd's `Publish` keeps QoS private).
    fn publish_frame(topic: &str, payload: &[u8], qos: u8, retain: bool) -> BytesMut {
        let mut body = Vec::new();
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        if qos > 0 {
            body.extend_from_slice(&7u16.to_be_bytes());
        }
        body.extend_from_slice(payload);
        assert!(body.len() < 128, "one-byte remaining length");
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[0x30 | (qos << 1) | u8::from(retain), body.len() as u8]);
        frame.extend_from_slice(&body);
        frame
    }

    fn subscribe(filter: &str) -> Packet {
        let filter = rumqttd::protocol::Filter {
            path: filter.to_owned(),
            qos: rumqttd::protocol::QoS::AtMostOnce,
            nolocal: false,
            preserve_retain: false,
            retain_forward_rule: rumqttd::protocol::RetainForwardRule::Never,
        };
        Packet::Subscribe(
            Subscribe {
                pkid: 1,
                filters: vec![filter],
            },
            None,
        )
    }

    #[test]
    fn connect_rewrites_client_id_and_drops_the_will() {
        let mut c = Conn::new();
        let token = c.token(Role::Driver);
        let Ok(Packet::Connect(connect, _, will, _, login)) = c.connect("phone", token.clone())
        else {
            panic!("connect refused");
        };
        assert_eq!(connect.client_id, format!("{}.phone", c.driver));
        assert!(will.is_none());
        assert_eq!(login.map(|l| l.password), Some(token));
        // An empty client id stays empty: rumqttd assigns a random one.
        let mut c = Conn::new();
        let token = c.token(Role::Driver);
        let Ok(Packet::Connect(connect, ..)) = c.connect("", token) else {
            panic!("connect refused")
        };
        assert_eq!(connect.client_id, "");
    }

    fn refused(result: Result<Packet, protocol::Error>) -> ConnectReturnCode {
        match result {
            Err(protocol::Error::ConnectRefused(code)) => code,
            other => panic!("expected a refused CONNECT, got {other:?}"),
        }
    }

    /// The bytes the broker writes for a refusing CONNACK on this connection.
    fn connack_bytes(acl: &AclProtocol, code: ConnectReturnCode) -> Vec<u8> {
        let ack = protocol::ConnAck {
            session_present: false,
            code,
        };
        let mut buf = BytesMut::new();
        acl.write(Packet::ConnAck(ack, None), &mut buf).unwrap();
        buf.to_vec()
    }

    #[test]
    fn connect_refusals_carry_their_return_code() {
        use ConnectReturnCode::{BadUserNamePassword, NotAuthorized};
        let mut c = Conn::new();
        assert_eq!(
            refused(c.connect("phone", "garbage".into())),
            BadUserNamePassword
        );
        assert_eq!(
            connack_bytes(&c.acl, BadUserNamePassword),
            [0x20, 0x02, 0x00, 0x04]
        );
        let mut c = Conn::new();
        let token = c.token(Role::Customer);
        assert_eq!(refused(c.connect("phone", token)), NotAuthorized);
        let mut c = Conn::new();
        let connect = Connect {
            keep_alive: 30,
            client_id: "x".into(),
            clean_session: true,
        };
        assert_eq!(
            refused(c.read(Packet::Connect(connect, None, None, None, None))),
            BadUserNamePassword
        );
        let mut c = Conn::new();
        let token = c.token(Role::Driver);
        let connect = Connect {
            keep_alive: 0,
            client_id: "x".into(),
            clean_session: true,
        };
        let login = Login {
            username: c.driver.to_string(),
            password: token,
        };
        assert_eq!(
            refused(c.read(Packet::Connect(connect, None, None, None, Some(login)))),
            ConnectReturnCode::ClientIdentifierNotValid
        );
        // A second CONNECT is no refused login: the connection just closes.
        let mut c = Conn::connected();
        let token = c.token(Role::Driver);
        assert!(matches!(
            c.connect("again", token),
            Err(protocol::Error::MalformedPacket)
        ));
    }

    #[test]
    fn every_return_code_has_a_mqtt_3_1_1_encoding() {
        // rumqttd's 3.1.1 encoder panics on MQTT-5-only codes.
        for refusal in ConnectRefusal::ALL {
            let bytes = connack_bytes(&Conn::new().acl, return_code(refusal));
            assert_eq!(bytes.len(), 4, "{refusal:?}");
        }
    }

    /// A CONNECT frame with the given protocol name and level (the rest
    /// as MQTT 5 would send it: flags, keep-alive, no properties, id "x").
    fn connect_frame(name: &[u8], level: u8) -> BytesMut {
        let mut body = Vec::new();
        body.extend_from_slice(&(name.len() as u16).to_be_bytes());
        body.extend_from_slice(name);
        body.extend_from_slice(&[level, 0x02, 0, 60, 0, 0, 1, b'x']);
        let mut frame = BytesMut::from(&[0x10, body.len() as u8][..]);
        frame.extend_from_slice(&body);
        frame
    }

    #[test]
    fn other_protocol_versions_are_answered_in_their_own_version() {
        let mut c = Conn::new();
        assert_eq!(
            refused(c.read_raw(connect_frame(b"MQTT", 5))),
            ConnectReturnCode::UnsupportedProtocolVersion
        );
        let bytes = connack_bytes(&c.acl, ConnectReturnCode::UnsupportedProtocolVersion);
        let reason = V5_REFUSAL_REASON.as_bytes();
        let mut expected = vec![0x20, (2 + 1 + 3 + reason.len()) as u8, 0x00, 0x84];
        expected.extend_from_slice(&[(3 + reason.len()) as u8, 0x1F, 0, reason.len() as u8]);
        expected.extend_from_slice(reason);
        assert_eq!(bytes, expected);
        for (name, level) in [(&b"MQIsdp"[..], 3), (b"MQTT", 3), (b"MQTT", 6)] {
            let mut c = Conn::new();
            assert_eq!(
                refused(c.read_raw(connect_frame(name, level))),
                ConnectReturnCode::RefusedProtocolVersion,
                "level {level}"
            );
        }
        // Not MQTT at all: closed without an answer.
        let mut c = Conn::new();
        assert!(matches!(
            c.read_raw(connect_frame(b"HTTP", 4)),
            Err(protocol::Error::InvalidProtocol)
        ));
    }

    #[test]
    fn connect_protocol_reads_the_header_once_it_is_there() {
        let frame = connect_frame(b"MQTT", 5);
        let expected = Some(ConnectProtocol {
            mqtt: true,
            level: 5,
        });
        assert_eq!(connect_protocol(&frame), expected);
        // Up to the level byte, every prefix is "not yet".
        for end in 0..9 {
            assert_eq!(connect_protocol(&frame[..end]), None, "{end}");
        }
        assert_eq!(connect_protocol(&frame[..9]), expected);
        // A multi-byte remaining length.
        let mut long = BytesMut::from(&[0x10, 0x80, 0x01][..]);
        long.extend_from_slice(&frame[2..]);
        assert_eq!(connect_protocol(&long), expected);
        // Not a CONNECT.
        assert_eq!(connect_protocol(&publish_frame("t", b"", 0, false)), None);
        assert_eq!(
            connect_protocol(&connect_frame(b"MQIsdp", 3)),
            Some(ConnectProtocol {
                mqtt: true,
                level: 3
            })
        );
    }

    const PING: &[u8] = br#"{"lat":57.7,"lng":11.97}"#;

    #[test]
    fn publish_acl() {
        let mut c = Conn::connected();
        let own = c.own_location();
        // Own topic, QoS 0: applied here and consumed; the router gets
        // nothing and rumqttd reads on.
        let mut buf = publish_frame(&own, PING, 0, true);
        assert!(matches!(
            c.acl.read_mut(&mut buf, 16 * 1024),
            Err(protocol::Error::InsufficientBytes(_))
        ));
        assert!(buf.is_empty());
        assert!(c.engine.driver(c.driver.into()).is_some(), "applied");
        // Own topic, QoS 1: through to the router (which acks it), retain
        // cleared.
        match c.read_raw(publish_frame(&own, PING, 1, true)) {
            Ok(Packet::Publish(p, _)) => {
                assert_eq!(p.topic, own.as_bytes());
                assert!(!p.retain);
            }
            other => panic!("{other:?}"),
        }
        let other = format!("drivers/{}/location", UserId::new());
        // QoS 0 to a foreign topic: a harmless PINGREQ.
        assert!(matches!(
            c.read_raw(publish_frame(&other, b"{}", 0, false)),
            Ok(Packet::PingReq(_))
        ));
        // QoS 1: readdressed to the sink so the router still acks it.
        match c.read_raw(publish_frame(&other, b"{}", 1, false)) {
            Ok(Packet::Publish(p, _)) => {
                assert_eq!(p.topic, DROPPED_TOPIC.as_bytes());
                assert!(p.payload.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // Still usable after mistakes...
        assert!(matches!(
            c.read_raw(publish_frame(&own, PING, 1, false)),
            Ok(Packet::Publish(..))
        ));
        // ...until the limit.
        for _ in 2..MAX_WRONG_TOPIC_PUBLISHES {
            assert!(c.read_raw(publish_frame("x", b"", 0, false)).is_ok());
        }
        assert!(c.read_raw(publish_frame("x", b"", 0, false)).is_err());
    }

    #[test]
    fn subscribe_acl() {
        let mut c = Conn::connected();
        let own = format!("drivers/{}/offers", c.driver);
        assert!(matches!(c.read(subscribe(&own)), Ok(Packet::Subscribe(..))));
        for filter in [
            format!("drivers/{}/offers", UserId::new()),
            "drivers/+/offers".to_owned(),
            "drivers/+/location".to_owned(),
            "#".to_owned(),
            format!("$share/g/{own}"),
            c.own_location(),
        ] {
            let mut c2 = Conn::connected();
            assert!(c2.read(subscribe(&filter)).is_err(), "{filter}");
            // A forbidden filter next to an allowed one still closes.
            let mut c3 = Conn::connected();
            let mut both = subscribe(&format!("drivers/{}/offers", c3.driver));
            if let (Packet::Subscribe(s, _), Packet::Subscribe(bad, _)) =
                (&mut both, subscribe(&filter))
            {
                s.filters.extend(bad.filters);
            }
            assert!(c3.read(both).is_err(), "{filter}");
        }
    }

    #[test]
    fn nothing_before_connect_and_nothing_after_shutdown() {
        let mut c = Conn::new();
        let own = c.own_location();
        assert!(c.read_raw(publish_frame(&own, b"{}", 0, false)).is_err());
        let mut c = Conn::connected();
        assert!(matches!(
            c.read(Packet::PingReq(PingReq)),
            Ok(Packet::PingReq(_))
        ));
        c.shutdown.cancel();
        assert!(c.read(Packet::PingReq(PingReq)).is_err());
        // A CONNECT during shutdown is told the server is unavailable.
        let mut c = Conn::new();
        c.shutdown.cancel();
        let token = c.token(Role::Driver);
        assert_eq!(
            refused(c.connect("phone", token)),
            ConnectReturnCode::ServiceUnavailable
        );
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut c = Conn::connected();
        let own = c.own_location();
        let mut frame = publish_frame(&own, PING, 1, false);
        let mut head = frame.split_to(5);
        assert!(matches!(
            c.acl.read_mut(&mut head, 16 * 1024),
            Err(protocol::Error::InsufficientBytes(_))
        ));
        head.unsplit(frame);
        assert!(matches!(
            c.acl.read_mut(&mut head, 16 * 1024),
            Ok(Packet::Publish(..))
        ));
    }

    #[test]
    fn one_read_of_pings_is_one_batch_up_to_the_next_routed_packet() {
        let mut c = Conn::connected();
        let own = c.own_location();
        // Three pings (one bad), a PINGREQ, and half of another ping.
        let now = now_ms();
        let at = |lat: f64, ts: i64| format!(r#"{{"lat":{lat},"lng":11.97,"ts":{ts}}}"#);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&publish_frame(
            &own,
            at(57.70, now - 2_000).as_bytes(),
            0,
            false,
        ));
        buf.extend_from_slice(&publish_frame(&own, b"{", 0, false));
        buf.extend_from_slice(&publish_frame(
            &own,
            at(57.7001, now - 1_000).as_bytes(),
            0,
            false,
        ));
        V4.write(Packet::PingReq(PingReq), &mut buf).unwrap();
        let tail = publish_frame(&own, PING, 0, false);
        buf.extend_from_slice(&tail[..4]);
        // The pings are applied (the bad one is counted and dropped) and
        // the PINGREQ goes on to the router...
        assert!(matches!(
            c.acl.read_mut(&mut buf, 16 * 1024),
            Ok(Packet::PingReq(_))
        ));
        let view = c.engine.driver(c.driver.into()).expect("applied");
        let fix = view.fix.expect("a position");
        assert!(
            (fix.position.lat - 57.7001).abs() < 1e-9,
            "the later ping won"
        );
        // ...and the half ping waits for its bytes.
        assert!(matches!(
            c.acl.read_mut(&mut buf, 16 * 1024),
            Err(protocol::Error::InsufficientBytes(_))
        ));
        assert_eq!(buf.len(), 4);
    }

    #[test]
    fn loggable_escapes_and_truncates() {
        assert_eq!(loggable(b"drivers/x\n"), "drivers/x\\n");
        assert_eq!(loggable(&[b'a'; 500]).len(), LOGGED_TOPIC_CHARS);
    }
}
