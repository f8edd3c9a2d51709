//! Counters and gauges of the ingest paths, registered once when an
//! [`Ingest`](crate::Ingest) is built (never per ping), and a rate limiter
//! for the log lines a flood of bad pings would otherwise produce.
//!
//! Names:
//! - `hexdash_pings_total{path, outcome}`: outcome `applied|stale|duplicate|rejected`
//! - `hexdash_pings_rejected_total{path, reason}`: reason is `PingRejection::code()`
//! - `hexdash_connections{kind}`: open `mqtt` (authenticated) and `driver_ws` connections
//! - `hexdash_offers_delivered_total{path}`: offers handed to `mqtt` (the broker) or a `ws` stream
//! - `hexdash_offers_dropped_total{path="ws"}`: offers dropped because a stream's queue was full
//! - `hexdash_driver_notifications_total{path}`: notifications handed to a
//!   driver's stream (`ws`) or the MQTT router (`mqtt`)
//! - `hexdash_driver_notifications_dropped_total`: notifications not
//!   delivered live because a queue was full (the feed still has them)
//! - `hexdash_mqtt_connects_refused_total{reason}`: MQTT CONNECTs answered
//!   with a refusing CONNACK, reason is `ConnectRefusal::as_str()`
//! - `hexdash_mqtt_refused_total{reason}`: MQTT connections closed by the ACL
//!   after their CONNECT
//! - External broker (`[ingest.broker] mode = "external"`):
//!   `hexdash_mqtt_external_connected` (1 while connected),
//!   `hexdash_mqtt_external_reconnects_total` (connections made again after
//!   one was lost or refused), `hexdash_mqtt_external_received_total`
//!   (messages the shared subscription delivered to this node),
//!   `hexdash_mqtt_external_dropped_total{reason}` (`banned`: a banned
//!   driver's ping; `publish_queue_full`: an offer or notification the
//!   client's queue could not take). Bad pings count as on the embedded
//!   path, in `hexdash_pings_rejected_total{path="mqtt"}`.
//!
//! `path` is `mqtt`, `ws` or `http`.

use std::sync::atomic::{AtomicU64, Ordering};

use engine::{Applied, PingRejection};
use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};

/// Where a ping came in; the `path` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    Mqtt,
    Ws,
    Http,
}

impl Path {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Path::Mqtt => "mqtt",
            Path::Ws => "ws",
            Path::Http => "http",
        }
    }
}

/// Why the MQTT ACL refused a CONNECT (the client gets a CONNACK with the
/// matching return code); the `reason` label of
/// `hexdash_mqtt_connects_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectRefusal {
    /// No username and password.
    MissingCredentials,
    /// The username is not a user id.
    BadUsername,
    /// The password is not a token hexdash issued.
    InvalidToken,
    /// The token has expired.
    TokenExpired,
    /// The token was issued before its user logged out.
    TokenRevoked,
    /// The token is another user's than the username.
    TokenOfAnotherUser,
    /// A valid token of a customer, restaurant or admin: only drivers publish
    /// locations.
    NotADriver,
    /// A valid token of a banned user.
    Banned,
    /// A protocol name or level other than MQTT 3.1.1's.
    UnsupportedProtocol,
    /// Keep-alive 0: rumqttd needs it to notice dead connections.
    ZeroKeepAlive,
    /// The process is shutting down.
    ShuttingDown,
}

impl ConnectRefusal {
    pub(crate) const ALL: [ConnectRefusal; 11] = [
        ConnectRefusal::MissingCredentials,
        ConnectRefusal::BadUsername,
        ConnectRefusal::InvalidToken,
        ConnectRefusal::TokenExpired,
        ConnectRefusal::TokenRevoked,
        ConnectRefusal::TokenOfAnotherUser,
        ConnectRefusal::NotADriver,
        ConnectRefusal::Banned,
        ConnectRefusal::UnsupportedProtocol,
        ConnectRefusal::ZeroKeepAlive,
        ConnectRefusal::ShuttingDown,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConnectRefusal::MissingCredentials => "missing_credentials",
            ConnectRefusal::BadUsername => "bad_username",
            ConnectRefusal::InvalidToken => "invalid_token",
            ConnectRefusal::TokenExpired => "token_expired",
            ConnectRefusal::TokenRevoked => "token_revoked",
            ConnectRefusal::TokenOfAnotherUser => "token_of_another_user",
            ConnectRefusal::NotADriver => "not_a_driver",
            ConnectRefusal::Banned => "banned",
            ConnectRefusal::UnsupportedProtocol => "unsupported_protocol",
            ConnectRefusal::ZeroKeepAlive => "zero_keep_alive",
            ConnectRefusal::ShuttingDown => "shutting_down",
        }
    }
}

/// Why the MQTT ACL closed a connection after its CONNECT; the `reason`
/// label of `hexdash_mqtt_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A packet other than CONNECT before the CONNECT (rumqttd closes such
    /// connections itself; the ACL does not trust that).
    NotConnected,
    /// A SUBSCRIBE to anything but the driver's own offers topic.
    ForbiddenSubscription,
    /// Too many publishes to topics that are not the driver's own.
    RepeatedWrongDriver,
    /// A second CONNECT on an open connection (an attempt to change identity).
    SecondConnect,
    /// The process is shutting down.
    ShuttingDown,
    /// An admin banned the driver while it was connected.
    Banned,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Refusal::NotConnected,
        Refusal::ForbiddenSubscription,
        Refusal::RepeatedWrongDriver,
        Refusal::SecondConnect,
        Refusal::ShuttingDown,
        Refusal::Banned,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::NotConnected => "not_connected",
            Refusal::ForbiddenSubscription => "forbidden_subscription",
            Refusal::RepeatedWrongDriver => "repeated_wrong_driver",
            Refusal::SecondConnect => "second_connect",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Banned => "banned",
        }
    }
}

/// The ping counters of one path.
pub(crate) struct PathMetrics {
    applied: Counter,
    stale: Counter,
    duplicate: Counter,
    rejected: Counter,
    /// Indexed like `PingRejection::ALL`.
    by_reason: Vec<Counter>,
}

impl PathMetrics {
    fn new(path: Path) -> Self {
        let p = path.as_str();
        let outcome =
            |o: &'static str| counter!("hexdash_pings_total", "path" => p, "outcome" => o);
        Self {
            applied: outcome("applied"),
            stale: outcome("stale"),
            duplicate: outcome("duplicate"),
            rejected: outcome("rejected"),
            by_reason: PingRejection::ALL
                .iter()
                .map(
                    |r| counter!("hexdash_pings_rejected_total", "path" => p, "reason" => r.code()),
                )
                .collect(),
        }
    }

    pub(crate) fn rejected(&self, reason: PingRejection) {
        self.rejected.increment(1);
        if let Some(i) = PingRejection::ALL.iter().position(|r| *r == reason) {
            self.by_reason[i].increment(1);
        }
    }

    /// Counts an engine outcome; an implausible jump counts as a rejection.
    pub(crate) fn outcome(&self, applied: Applied) {
        match applied {
            Applied::Moved => self.applied.increment(1),
            Applied::Stale => self.stale.increment(1),
            Applied::Duplicate => self.duplicate.increment(1),
            Applied::ImplausibleJump => self.rejected(PingRejection::ImplausibleJump),
            Applied::RateLimited => self.rejected(PingRejection::RateLimited),
        }
    }
}

pub(crate) struct Metrics {
    pub(crate) mqtt: PathMetrics,
    pub(crate) ws: PathMetrics,
    pub(crate) http: PathMetrics,
    pub(crate) mqtt_connections: Gauge,
    pub(crate) ws_connections: Gauge,
    pub(crate) offers_mqtt: Counter,
    pub(crate) offers_ws: Counter,
    pub(crate) offers_ws_dropped: Counter,
    pub(crate) notifications_ws: Counter,
    pub(crate) notifications_mqtt: Counter,
    pub(crate) notifications_dropped: Counter,
    /// Indexed like `Refusal::ALL`.
    refused: Vec<Counter>,
    /// Indexed like `ConnectRefusal::ALL`.
    connects_refused: Vec<Counter>,
    /// One limiter for all rejection logs of all paths.
    pub(crate) reject_log: LogLimiter,
    pub(crate) external: ExternalMetrics,
}

/// The external broker client's figures.
pub(crate) struct ExternalMetrics {
    pub(crate) connected: Gauge,
    pub(crate) reconnects: Counter,
    pub(crate) received: Counter,
    pub(crate) dropped_banned: Counter,
    pub(crate) dropped_queue_full: Counter,
}

impl ExternalMetrics {
    fn new() -> Self {
        let dropped = |reason: &'static str| counter!("hexdash_mqtt_external_dropped_total", "reason" => reason);
        Self {
            connected: gauge!("hexdash_mqtt_external_connected"),
            reconnects: counter!("hexdash_mqtt_external_reconnects_total"),
            received: counter!("hexdash_mqtt_external_received_total"),
            dropped_banned: dropped("banned"),
            dropped_queue_full: dropped("publish_queue_full"),
        }
    }
}

impl Metrics {
    /// Registers every handle with the recorder installed now (global, or a
    /// local one in tests); handles registered before a recorder is
    /// installed stay no-ops.
    pub(crate) fn new() -> Self {
        describe();
        Self {
            mqtt: PathMetrics::new(Path::Mqtt),
            ws: PathMetrics::new(Path::Ws),
            http: PathMetrics::new(Path::Http),
            mqtt_connections: gauge!("hexdash_connections", "kind" => "mqtt"),
            ws_connections: gauge!("hexdash_connections", "kind" => "driver_ws"),
            offers_mqtt: counter!("hexdash_offers_delivered_total", "path" => "mqtt"),
            offers_ws: counter!("hexdash_offers_delivered_total", "path" => "ws"),
            offers_ws_dropped: counter!("hexdash_offers_dropped_total", "path" => "ws"),
            notifications_ws: counter!("hexdash_driver_notifications_total", "path" => "ws"),
            notifications_mqtt: counter!("hexdash_driver_notifications_total", "path" => "mqtt"),
            notifications_dropped: counter!("hexdash_driver_notifications_dropped_total"),
            refused: Refusal::ALL
                .iter()
                .map(|r| counter!("hexdash_mqtt_refused_total", "reason" => r.as_str()))
                .collect(),
            connects_refused: ConnectRefusal::ALL
                .iter()
                .map(|r| counter!("hexdash_mqtt_connects_refused_total", "reason" => r.as_str()))
                .collect(),
            reject_log: LogLimiter::new(),
            external: ExternalMetrics::new(),
        }
    }

    pub(crate) fn path(&self, path: Path) -> &PathMetrics {
        match path {
            Path::Mqtt => &self.mqtt,
            Path::Ws => &self.ws,
            Path::Http => &self.http,
        }
    }

    pub(crate) fn refused(&self, refusal: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|r| *r == refusal) {
            self.refused[i].increment(1);
        }
    }

    pub(crate) fn connect_refused(&self, refusal: ConnectRefusal) {
        if let Some(i) = ConnectRefusal::ALL.iter().position(|r| *r == refusal) {
            self.connects_refused[i].increment(1);
        }
    }
}

fn describe() {
    describe_counter!(
        "hexdash_pings_total",
        "Driver pings received, by path and outcome"
    );
    describe_counter!(
        "hexdash_pings_rejected_total",
        "Driver pings refused, by path and reason"
    );
    describe_gauge!("hexdash_connections", "Open driver connections, by kind");
    describe_counter!(
        "hexdash_offers_delivered_total",
        "Offers handed to a driver transport, by path"
    );
    describe_counter!(
        "hexdash_offers_dropped_total",
        "Offers dropped because a driver stream was full"
    );
    describe_counter!(
        "hexdash_driver_notifications_total",
        "Driver notifications handed to a driver's stream or the MQTT router, by path"
    );
    describe_counter!(
        "hexdash_driver_notifications_dropped_total",
        "Driver notifications not delivered live because a queue was full (the feed keeps them)"
    );
    describe_counter!(
        "hexdash_mqtt_refused_total",
        "MQTT connections closed by the ACL after their CONNECT, by reason"
    );
    describe_counter!(
        "hexdash_mqtt_connects_refused_total",
        "MQTT CONNECTs refused with a CONNACK return code, by reason"
    );
    describe_gauge!(
        "hexdash_mqtt_external_connected",
        "1 while connected to the external MQTT broker"
    );
    describe_counter!(
        "hexdash_mqtt_external_reconnects_total",
        "Connections to the external MQTT broker made again after one was lost"
    );
    describe_counter!(
        "hexdash_mqtt_external_received_total",
        "Messages the external broker delivered to this node's shared subscription"
    );
    describe_counter!(
        "hexdash_mqtt_external_dropped_total",
        "External broker messages dropped, by reason"
    );
}

/// Log lines allowed per second before the rest are counted and summarised;
/// at 100k bad pings/s a line each would drown the log and the disk.
const LOG_LINES_PER_S: u64 = 20;

/// A per-second budget of log lines, shared by all connections (lock-free).
pub(crate) struct LogLimiter {
    /// The second the budget belongs to (Unix s).
    second: AtomicU64,
    /// Lines used in that second.
    used: AtomicU64,
    /// Lines refused since the last line that was allowed.
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub(crate) fn new() -> Self {
        Self {
            second: AtomicU64::new(0),
            used: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being how many were
    /// suppressed before it (to put in the line); `None` when over budget.
    pub(crate) fn allow(&self, now_s: u64) -> Option<u64> {
        let second = self.second.load(Ordering::Relaxed);
        if second != now_s
            && self
                .second
                .compare_exchange(second, now_s, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < LOG_LINES_PER_S {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_limiter_budget_per_second() {
        let l = LogLimiter::new();
        for _ in 0..LOG_LINES_PER_S {
            assert_eq!(l.allow(10), Some(0));
        }
        assert_eq!(l.allow(10), None);
        assert_eq!(l.allow(10), None);
        assert_eq!(l.allow(11), Some(2));
        assert_eq!(l.allow(11), Some(0));
    }
}
