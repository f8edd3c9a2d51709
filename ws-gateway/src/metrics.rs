//! Metric names and the handles the gateway updates, registered once in
//! `Gateway::new` (so the binary must install its recorder before that).

use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};

use crate::protocol::MsgType;

/// Gauge, label `kind="watch_ws"`: open tracking WebSockets.
pub const CONNECTIONS: &str = "hexdash_connections";
pub const CONNECTIONS_KIND: &str = "watch_ws";
/// Counter, label `type`: server messages written to sockets.
pub const MESSAGES_SENT: &str = "hexdash_ws_messages_sent_total";
/// Counter, label `reason` (see `reason`): messages or clients dropped.
pub const DROPPED: &str = "hexdash_ws_dropped_total";
/// Counter, label `stream="moves"|"changes"`: engine events the fan-out
/// missed because it fell behind the broadcast.
pub const FANOUT_LAGGED: &str = "hexdash_ws_fanout_lagged_total";
/// Counter, label `reason` (`rate_limited`, `too_many_subscriptions`):
/// subscribe requests refused by a per-connection cap.
pub const SUBSCRIPTIONS_REFUSED: &str = "hexdash_ws_subscriptions_refused_total";

/// `reason` values of [`DROPPED`].
pub mod reason {
    /// An unsent position replaced by a newer one (latest wins).
    pub const COALESCED: &str = "coalesced";
    /// A client disconnected because its control queue overflowed.
    pub const SLOW_CONSUMER: &str = "slow_consumer";
    /// A client disconnected because a write did not complete in time.
    pub const WRITE_TIMEOUT: &str = "write_timeout";
    /// A client disconnected after no frame from it for the idle timeout.
    pub const IDLE_TIMEOUT: &str = "idle_timeout";
    /// A driver update not queued because the area frame was at its limit.
    pub const AREA_FULL: &str = "area_full";
    /// A position not queued because the location slots were at their limit.
    pub const LOCATION_FULL: &str = "location_full";
}

pub(crate) struct Metrics {
    pub connections: Gauge,
    sent: [Counter; MsgType::ALL.len()],
    pub coalesced: Counter,
    pub slow_consumer: Counter,
    pub write_timeout: Counter,
    pub idle_timeout: Counter,
    pub area_full: Counter,
    pub location_full: Counter,
    pub lagged_moves: Counter,
    pub lagged_changes: Counter,
    pub subscribe_rate_limited: Counter,
    pub too_many_orders: Counter,
}

impl Metrics {
    pub fn register() -> Self {
        describe_gauge!(CONNECTIONS, "Open client connections by kind");
        describe_counter!(MESSAGES_SENT, "Tracking WebSocket messages sent, by type");
        describe_counter!(
            DROPPED,
            "Tracking WebSocket messages or clients dropped, by reason"
        );
        describe_counter!(
            FANOUT_LAGGED,
            "Engine events the WebSocket fan-out missed by lagging"
        );
        describe_counter!(
            SUBSCRIPTIONS_REFUSED,
            "Tracking WebSocket subscribe requests refused by a per-connection cap, by reason"
        );
        let dropped = |r: &'static str| counter!(DROPPED, "reason" => r);
        let refused = |r: &'static str| counter!(SUBSCRIPTIONS_REFUSED, "reason" => r);
        Self {
            connections: gauge!(CONNECTIONS, "kind" => CONNECTIONS_KIND),
            sent: MsgType::ALL.map(|t| counter!(MESSAGES_SENT, "type" => t.as_str())),
            coalesced: dropped(reason::COALESCED),
            slow_consumer: dropped(reason::SLOW_CONSUMER),
            write_timeout: dropped(reason::WRITE_TIMEOUT),
            idle_timeout: dropped(reason::IDLE_TIMEOUT),
            area_full: dropped(reason::AREA_FULL),
            location_full: dropped(reason::LOCATION_FULL),
            lagged_moves: counter!(FANOUT_LAGGED, "stream" => "moves"),
            lagged_changes: counter!(FANOUT_LAGGED, "stream" => "changes"),
            subscribe_rate_limited: refused(crate::protocol::code::RATE_LIMITED),
            too_many_orders: refused(crate::protocol::code::TOO_MANY_SUBSCRIPTIONS),
        }
    }

    pub fn sent(&self, kind: MsgType) -> &Counter {
        &self.sent[kind.index()]
    }
}
