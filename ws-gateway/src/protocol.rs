//! The wire format of `GET /v1/ws`: every name a client sees (path, channel
//! prefixes, ops, message types, error codes, close codes) is a constant
//! here, next to the parser for client messages and the encoders for server
//! messages.
//!
//! Client → server (JSON text):
//! - `{"op":"subscribe","channel":"order:{order_id}"}`
//! - `{"op":"subscribe","channel":"area","bbox":[min_lng,min_lat,max_lng,max_lat]}`
//! - `{"op":"unsubscribe","channel":"order:{order_id}" | "area"}`
//!
//! Server → client (JSON text, always with a `type`): `subscribed`,
//! `unsubscribed`, `status`, `location`, `drivers`, `unassigned` (area
//! watchers: an order no driver took), `error`.

use axum::extract::ws::Utf8Bytes;
use engine::{
    BBox, DriverId, DriverStatus, Fix, LatLng, Moved, OrderId, OrderStatus, OrderTrack, Unassigned,
};
use serde::{Deserialize, Serialize};

/// The one route of the gateway.
pub const PATH: &str = "/v1/ws";
/// `order:{order_id}`: one order's status and its driver's position.
pub const ORDER_CHANNEL_PREFIX: &str = "order:";
/// `area` with a `bbox`: every driver inside a box (dispatchers and admins).
pub const AREA_CHANNEL: &str = "area";

pub const OP_SUBSCRIBE: &str = "subscribe";
pub const OP_UNSUBSCRIBE: &str = "unsubscribe";

/// `reason` of a server-initiated `unsubscribed`: the caller stopped being a
/// party to the order (for example a driver whose order was reassigned).
pub const REASON_REVOKED: &str = "revoked";

/// The `type` of every server message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgType {
    Location,
    Status,
    Drivers,
    Error,
    Subscribed,
    Unsubscribed,
    Unassigned,
}

impl MsgType {
    pub const ALL: [MsgType; 7] = [
        Self::Location,
        Self::Status,
        Self::Drivers,
        Self::Error,
        Self::Subscribed,
        Self::Unsubscribed,
        Self::Unassigned,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Location => "location",
            Self::Status => "status",
            Self::Drivers => "drivers",
            Self::Error => "error",
            Self::Subscribed => "subscribed",
            Self::Unsubscribed => "unsubscribed",
            Self::Unassigned => "unassigned",
        }
    }

    /// Dense index, for per-type metric handles.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// `code` values of `error` messages (and of the HTTP error body before the
/// upgrade).
pub mod code {
    /// The text is not JSON.
    pub const INVALID_JSON: &str = "invalid_json";
    /// JSON, but not an object with string `op` and `channel`.
    pub const BAD_REQUEST: &str = "bad_request";
    pub const UNKNOWN_OP: &str = "unknown_op";
    pub const UNKNOWN_CHANNEL: &str = "unknown_channel";
    pub const BAD_ORDER_ID: &str = "bad_order_id";
    pub const BAD_BBOX: &str = "bad_bbox";
    /// The order is not on the board, or the caller is not a party to it
    /// (non-admins are not told which).
    pub const NOT_FOUND: &str = "not_found";
    /// The caller's role may not use this channel (area is for dispatchers).
    pub const FORBIDDEN: &str = "forbidden";
    /// More `order:` subscriptions held than `Config::max_order_subscriptions`.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
    /// More subscribe requests than `Config::subscribes_per_window` in the
    /// window; the message says when to retry.
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const MESSAGE_TOO_LARGE: &str = "message_too_large";
    /// Binary frames: the protocol is JSON text.
    pub const UNSUPPORTED_MESSAGE: &str = "unsupported_message";
    /// Sent just before a disconnect: the client fell too far behind.
    pub const SLOW_CONSUMER: &str = "slow_consumer";
    /// HTTP 503 before the upgrade.
    pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";
    /// HTTP 503 before the upgrade.
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// HTTP 4xx: a plain request to the WebSocket route.
    pub const WEBSOCKET_REQUIRED: &str = "websocket_required";
}

/// Close codes the server sends (RFC 6455 §7.4.1).
pub mod close_code {
    /// Idle timeout: no frame (not even a pong) from the client for too long.
    pub const NORMAL: u16 = 1000;
    /// Server shutdown.
    pub const GOING_AWAY: u16 = 1001;
    /// Slow consumer: the client did not read its status messages.
    pub const POLICY: u16 = 1008;
}

/// `order:{order_id}`.
pub fn order_channel(order_id: OrderId) -> String {
    format!("{ORDER_CHANNEL_PREFIX}{order_id}")
}

// ---------------------------------------------------------------- client → server

/// A parsed, validated client message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Request {
    SubscribeOrder(OrderId),
    SubscribeArea(BBox),
    UnsubscribeOrder(OrderId),
    UnsubscribeArea,
}

/// Why a client message was refused; becomes an `error` message, and the
/// socket stays open.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProtocolError {
    pub code: &'static str,
    pub message: String,
    pub channel: Option<String>,
}

impl ProtocolError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            channel: None,
        }
    }

    pub fn on(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }
}

#[derive(Deserialize)]
struct RawRequest {
    op: String,
    channel: String,
    #[serde(default)]
    bbox: Option<serde_json::Value>,
}

/// Parses one text message. The size limit is checked by the caller.
pub(crate) fn parse_request(text: &str) -> Result<Request, ProtocolError> {
    let raw: RawRequest = serde_json::from_str(text).map_err(|e| {
        let code = if e.is_data() {
            code::BAD_REQUEST
        } else {
            code::INVALID_JSON
        };
        ProtocolError::new(code, e.to_string())
    })?;
    let subscribe = match raw.op.as_str() {
        OP_SUBSCRIBE => true,
        OP_UNSUBSCRIBE => false,
        other => {
            return Err(ProtocolError::new(
                code::UNKNOWN_OP,
                format!("unknown op {other:?}: expected {OP_SUBSCRIBE:?} or {OP_UNSUBSCRIBE:?}"),
            ));
        }
    };
    if raw.channel == AREA_CHANNEL {
        if !subscribe {
            return Ok(Request::UnsubscribeArea);
        }
        return parse_bbox(raw.bbox.as_ref())
            .map(Request::SubscribeArea)
            .map_err(|e| e.on(AREA_CHANNEL));
    }
    if let Some(id) = raw.channel.strip_prefix(ORDER_CHANNEL_PREFIX) {
        let order_id: OrderId = id.parse().map_err(|_| {
            ProtocolError::new(code::BAD_ORDER_ID, "the order id must be a UUID")
                .on(raw.channel.clone())
        })?;
        return Ok(if subscribe {
            Request::SubscribeOrder(order_id)
        } else {
            Request::UnsubscribeOrder(order_id)
        });
    }
    Err(ProtocolError::new(
        code::UNKNOWN_CHANNEL,
        format!(
            "unknown channel: expected \"{ORDER_CHANNEL_PREFIX}{{order_id}}\" or {AREA_CHANNEL:?}"
        ),
    )
    .on(raw.channel))
}

fn parse_bbox(value: Option<&serde_json::Value>) -> Result<BBox, ProtocolError> {
    let bad = |m: &str| ProtocolError::new(code::BAD_BBOX, m);
    let shape = "bbox must be [min_lng, min_lat, max_lng, max_lat]";
    let items = value
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad(shape))?;
    let nums: Vec<f64> = items.iter().filter_map(serde_json::Value::as_f64).collect();
    let (&[min_lng, min_lat, max_lng, max_lat], 4) = (&nums[..], items.len()) else {
        return Err(bad(shape));
    };
    BBox::new(min_lng, min_lat, max_lng, max_lat).map_err(|e| bad(&e.to_string()))
}

// ---------------------------------------------------------------- server → client

/// One encoded server message and its type (for the sent counter).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outgoing {
    pub kind: MsgType,
    pub text: Utf8Bytes,
}

fn encode(kind: MsgType, body: &impl Serialize) -> Outgoing {
    let text = match serde_json::to_string(body) {
        Ok(t) => t,
        // The message structs hold only strings, numbers, ids and enums
        // with string names: serde_json has no failure mode for them
        // (non-finite floats become null, they do not fail).
        Err(e) => unreachable!("server message serialisation cannot fail: {e}"),
    };
    Outgoing {
        kind,
        text: Utf8Bytes::from(text),
    }
}

/// A driver position for one watcher kind: with `order_id` for order
/// watchers, with `eta_s` when the order has a next stop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Location {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    pub driver_id: DriverId,
    pub lat: f64,
    pub lng: f64,
    /// Device time of the fix, Unix ms.
    pub ts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<f32>,
    /// Metres per second, as the device reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_s: Option<u32>,
}

impl Location {
    pub fn from_move(m: &Moved, order_id: Option<OrderId>, eta_s: Option<u32>) -> Self {
        Self {
            kind: MsgType::Location.as_str(),
            order_id,
            driver_id: m.driver_id,
            lat: m.position.lat,
            lng: m.position.lng,
            ts: m.recorded_at_ms,
            heading: m.heading_deg,
            speed: m.speed_mps,
            eta_s,
        }
    }

    pub fn from_fix(
        driver_id: DriverId,
        fix: &Fix,
        order_id: Option<OrderId>,
        eta_s: Option<u32>,
    ) -> Self {
        Self {
            kind: MsgType::Location.as_str(),
            order_id,
            driver_id,
            lat: fix.position.lat,
            lng: fix.position.lng,
            ts: fix.recorded_at_ms,
            heading: fix.heading_deg,
            speed: fix.speed_mps,
            eta_s,
        }
    }

    pub fn encode(&self) -> Outgoing {
        encode(MsgType::Location, self)
    }
}

#[derive(Serialize)]
struct StatusMsg {
    #[serde(rename = "type")]
    kind: &'static str,
    order_id: OrderId,
    status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    driver_id: Option<DriverId>,
    /// When the order last changed, Unix ms.
    at: i64,
}

/// `{"type":"status","order_id","status","driver_id"?,"at"}`.
pub(crate) fn status(track: &OrderTrack) -> Outgoing {
    encode(
        MsgType::Status,
        &StatusMsg {
            kind: MsgType::Status.as_str(),
            order_id: track.order_id,
            status: track.status,
            driver_id: track.driver_id,
            at: track.updated_at_ms,
        },
    )
}

/// One driver in a `drivers` frame: its latest known state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct AreaDriver {
    pub driver_id: DriverId,
    pub lat: f64,
    pub lng: f64,
    pub status: DriverStatus,
    /// Device time of the fix, Unix ms.
    pub ts: i64,
}

impl AreaDriver {
    pub fn new(driver_id: DriverId, position: LatLng, status: DriverStatus, ts: i64) -> Self {
        Self {
            driver_id,
            lat: position.lat,
            lng: position.lng,
            status,
            ts,
        }
    }
}

#[derive(Serialize)]
struct DriversMsg<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    drivers: &'a [AreaDriver],
}

/// `{"type":"drivers","drivers":[{driver_id,lat,lng,status,ts}]}`.
pub(crate) fn drivers(drivers: &[AreaDriver]) -> Outgoing {
    encode(
        MsgType::Drivers,
        &DriversMsg {
            kind: MsgType::Drivers.as_str(),
            drivers,
        },
    )
}

#[derive(Serialize)]
struct UnassignedMsg {
    #[serde(rename = "type")]
    kind: &'static str,
    order_id: OrderId,
    /// The pickup, where a driver is needed.
    lat: f64,
    lng: f64,
    /// Offers that ended without an accept.
    attempts: u32,
    /// When the search for a driver started, Unix ms.
    since: i64,
    /// When it was raised (or resolved), Unix ms.
    at: i64,
    /// False when raised; true once the order has a driver or needs none.
    resolved: bool,
}

/// `{"type":"unassigned","order_id","lat","lng","attempts","since","at","resolved"}`:
/// an order no driver took, for the dispatchers whose area holds its pickup.
pub(crate) fn unassigned(news: &Unassigned) -> Outgoing {
    encode(
        MsgType::Unassigned,
        &UnassignedMsg {
            kind: MsgType::Unassigned.as_str(),
            order_id: news.order_id,
            lat: news.pickup.lat,
            lng: news.pickup.lng,
            attempts: news.attempts,
            since: news.since_ms,
            at: news.at_ms,
            resolved: news.resolved,
        },
    )
}

#[derive(Serialize)]
struct AckMsg<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bbox: Option<[f64; 4]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// `{"type":"subscribed","channel"}`, with the `bbox` echoed for areas.
pub(crate) fn subscribed(channel: &str, bbox: Option<BBox>) -> Outgoing {
    let bbox = bbox.map(|b| [b.min.lng, b.min.lat, b.max.lng, b.max.lat]);
    encode(
        MsgType::Subscribed,
        &AckMsg {
            kind: MsgType::Subscribed.as_str(),
            channel,
            bbox,
            reason: None,
        },
    )
}

/// `{"type":"unsubscribed","channel"}`; `reason` only when the server ended
/// the subscription itself.
pub(crate) fn unsubscribed(channel: &str, reason: Option<&'static str>) -> Outgoing {
    encode(
        MsgType::Unsubscribed,
        &AckMsg {
            kind: MsgType::Unsubscribed.as_str(),
            channel,
            bbox: None,
            reason,
        },
    )
}

#[derive(Serialize)]
struct ErrorMsg<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
}

/// `{"type":"error","code","message","channel"?}`.
pub(crate) fn error(e: &ProtocolError) -> Outgoing {
    encode(
        MsgType::Error,
        &ErrorMsg {
            kind: MsgType::Error.as_str(),
            code: e.code,
            message: &e.message,
            channel: e.channel.as_deref(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = "0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b";

    fn check(input: &str, expected: Result<Request, &str>) {
        let got = parse_request(input).map_err(|e| e.code);
        assert_eq!(got, expected, "input {input}");
    }

    #[test]
    fn parse_table() {
        let order: OrderId = ORDER.parse().unwrap();
        let bbox = BBox::new(11.9, 57.6, 12.0, 57.8).unwrap();
        check(
            &format!(r#"{{"op":"subscribe","channel":"order:{ORDER}"}}"#),
            Ok(Request::SubscribeOrder(order)),
        );
        check(
            &format!(r#"{{"op":"unsubscribe","channel":"order:{ORDER}"}}"#),
            Ok(Request::UnsubscribeOrder(order)),
        );
        check(
            r#"{"op":"subscribe","channel":"area","bbox":[11.9,57.6,12.0,57.8]}"#,
            Ok(Request::SubscribeArea(bbox)),
        );
        check(
            r#"{"op":"unsubscribe","channel":"area"}"#,
            Ok(Request::UnsubscribeArea),
        );
        check(
            r#"{"op":"unsubscribe","channel":"area","bbox":"ignored"}"#,
            Ok(Request::UnsubscribeArea),
        );
        check("not json", Err(code::INVALID_JSON));
        check(r#"{"op":"subscribe""#, Err(code::INVALID_JSON));
        check(r#"{"op":"subscribe"}"#, Err(code::BAD_REQUEST));
        check(r#"[1,2]"#, Err(code::BAD_REQUEST));
        check(r#"{"op":5,"channel":"area"}"#, Err(code::BAD_REQUEST));
        check(
            r#"{"op":"publish","channel":"area"}"#,
            Err(code::UNKNOWN_OP),
        );
        check(
            r#"{"op":"subscribe","channel":"drivers"}"#,
            Err(code::UNKNOWN_CHANNEL),
        );
        check(
            r#"{"op":"subscribe","channel":"order:42"}"#,
            Err(code::BAD_ORDER_ID),
        );
        check(
            r#"{"op":"subscribe","channel":"area"}"#,
            Err(code::BAD_BBOX),
        );
        check(
            r#"{"op":"subscribe","channel":"area","bbox":[1,2,3]}"#,
            Err(code::BAD_BBOX),
        );
        check(
            r#"{"op":"subscribe","channel":"area","bbox":[1,2,3,4,5]}"#,
            Err(code::BAD_BBOX),
        );
        check(
            r#"{"op":"subscribe","channel":"area","bbox":[1,2,3,"4"]}"#,
            Err(code::BAD_BBOX),
        );
        check(
            r#"{"op":"subscribe","channel":"area","bbox":[12,57,11,58]}"#,
            Err(code::BAD_BBOX),
        );
        check(
            r#"{"op":"subscribe","channel":"area","bbox":[1,95,3,96]}"#,
            Err(code::BAD_BBOX),
        );
    }

    #[test]
    fn errors_name_the_channel() {
        let e = parse_request(r#"{"op":"subscribe","channel":"order:x"}"#).unwrap_err();
        assert_eq!(e.channel.as_deref(), Some("order:x"));
        let v: serde_json::Value = serde_json::from_str(&error(&e).text).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], code::BAD_ORDER_ID);
        assert_eq!(v["channel"], "order:x");
    }

    #[test]
    fn message_type_names_are_unique_and_indexed() {
        for (i, t) in MsgType::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
        let mut names: Vec<_> = MsgType::ALL.iter().map(|t| t.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MsgType::ALL.len());
    }

    #[test]
    fn status_and_location_shapes() {
        let track = OrderTrack {
            order_id: ORDER.parse().unwrap(),
            customer_id: engine::UserId::new(),
            restaurant_id: engine::RestaurantId::new(),
            restaurant_owner_id: engine::UserId::new(),
            status: OrderStatus::ReadyForPickup,
            driver_id: None,
            pickup: LatLng::new(57.7, 11.97).unwrap(),
            dropoff: LatLng::new(57.71, 11.98).unwrap(),
            updated_at_ms: 5,
        };
        let v: serde_json::Value = serde_json::from_str(&status(&track).text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"status","order_id":ORDER,"status":"ready_for_pickup","at":5})
        );

        let driver = DriverId::new();
        let fix = Fix {
            position: LatLng::new(57.7, 11.97).unwrap(),
            recorded_at_ms: 9,
            heading_deg: Some(90.0),
            speed_mps: None,
            accuracy_m: None,
            cell: engine::cells::cell_of(LatLng::new(57.7, 11.97).unwrap()),
        };
        let v: serde_json::Value = serde_json::from_str(
            &Location::from_fix(driver, &fix, None, Some(3))
                .encode()
                .text,
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"location","driver_id":driver.to_string(),"lat":57.7,"lng":11.97,"ts":9,"heading":90.0,"eta_s":3})
        );
    }
}
