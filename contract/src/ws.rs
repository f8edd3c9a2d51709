//! The tracking WebSocket, `GET /v1/ws`: every name a client sees (path,
//! channels, ops, message types, error codes, close codes) and the messages.
//!
//! Client → server (JSON text), a [`ClientMessage`]:
//! - `{"op":"subscribe","channel":"order:{order_id}"}`
//! - `{"op":"subscribe","channel":"area","bbox":[min_lng,min_lat,max_lng,max_lat]}`
//! - `{"op":"subscribe","channel":"me","after"?:<notification id>}`: the
//!   caller's own notifications; with `after`, first every one stored
//!   after that id, then live ones, with no gap and no repeat at the seam
//! - `{"op":"subscribe","channel":"restaurant:{restaurant_id}"}`: the
//!   `status` of each of the restaurant's orders from payment on, first
//!   those open now (its owner and admins)
//! - `{"op":"unsubscribe","channel":"order:{order_id}" | "area" | "me" | "restaurant:{restaurant_id}"}`
//!
//! Server → client (JSON text, always with a `type` first), a
//! [`ServerMessage`]: `subscribed`, `unsubscribed`, `status` (also the
//! courier's arrival at the restaurant or the door), `location`,
//! `drivers`, `unassigned` (area watchers: an order no driver took),
//! `notification` (the `me` channel), `error`.
//!
//! Borrowed fields ([`Cow`]) let the server encode without copying what it
//! already holds (a frame of area drivers, a channel name); decoding gives
//! owned values.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Arrival, DriverStatus, OrderStatus};

/// The one route of the tracking gateway.
pub const PATH: &str = "/v1/ws";
/// `order:{order_id}`: one order's status and its driver's position.
pub const ORDER_CHANNEL_PREFIX: &str = "order:";
/// `area` with a `bbox`: every driver inside a box (dispatchers and admins).
pub const AREA_CHANNEL: &str = "area";
/// `me`: the caller's own notifications (any role), with an optional
/// `after` cursor.
pub const ME_CHANNEL: &str = "me";
/// `restaurant:{restaurant_id}`: the `status` of every order of the
/// restaurant from payment on (its owner and admins), first those open now.
pub const RESTAURANT_CHANNEL_PREFIX: &str = "restaurant:";

/// The `op` that starts a subscription.
pub const OP_SUBSCRIBE: &str = "subscribe";
/// The `op` that ends one.
pub const OP_UNSUBSCRIBE: &str = "unsubscribe";

/// `reason` of a server-initiated `unsubscribed`: the caller stopped being a
/// party to the order (for example a driver whose order was reassigned).
pub const REASON_REVOKED: &str = "revoked";

/// `order:{order_id}`.
pub fn order_channel(order_id: Uuid) -> String {
    format!("{ORDER_CHANNEL_PREFIX}{order_id}")
}

/// `restaurant:{restaurant_id}`.
pub fn restaurant_channel(restaurant_id: Uuid) -> String {
    format!("{RESTAURANT_CHANNEL_PREFIX}{restaurant_id}")
}

/// `code` values of `error` messages (and of the HTTP error body before the
/// upgrade).
pub mod code {
    /// The text is not JSON.
    pub const INVALID_JSON: &str = "invalid_json";
    /// JSON, but not an object with string `op` and `channel`.
    pub const BAD_REQUEST: &str = "bad_request";
    /// `op` is neither `subscribe` nor `unsubscribe`.
    pub const UNKNOWN_OP: &str = "unknown_op";
    /// `channel` is neither `order:{order_id}` nor `area`.
    pub const UNKNOWN_CHANNEL: &str = "unknown_channel";
    /// `order:` is not followed by a UUID.
    pub const BAD_ORDER_ID: &str = "bad_order_id";
    /// The `bbox` is missing, not four numbers, or not a valid box.
    pub const BAD_BBOX: &str = "bad_bbox";
    /// `restaurant:` is not followed by a UUID.
    pub const BAD_RESTAURANT_ID: &str = "bad_restaurant_id";
    /// `after` (the `me` channel's cursor) is not a non-negative integer.
    pub const BAD_AFTER: &str = "bad_after";
    /// More notifications were missed since `after` than a subscribe
    /// replays: page `GET /v1/notifications?after=` to catch up, then
    /// subscribe with the last id.
    pub const RESYNC_TOO_FAR: &str = "resync_too_far";
    /// The server could not read the stored notifications just now; retry.
    pub const UNAVAILABLE: &str = "unavailable";
    /// The order is not on the board, or the caller is not a party to it;
    /// the restaurant does not exist or is not the caller's (non-admins
    /// are not told which).
    pub const NOT_FOUND: &str = "not_found";
    /// The caller's role may not use this channel (area is for
    /// dispatchers, a restaurant's channel for restaurants and admins).
    pub const FORBIDDEN: &str = "forbidden";
    /// More `order:` (or `restaurant:`) subscriptions held than the server
    /// allows.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
    /// More subscribe requests than the server allows in its window; the
    /// message says when to retry.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A client message over the size limit.
    pub const MESSAGE_TOO_LARGE: &str = "message_too_large";
    /// Binary frames: the protocol is JSON text.
    pub const UNSUPPORTED_MESSAGE: &str = "unsupported_message";
    /// Sent just before a disconnect: the client fell too far behind.
    pub const SLOW_CONSUMER: &str = "slow_consumer";
    /// Sent just before a disconnect: an admin banned the user.
    pub const BANNED: &str = "banned";
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

// ---------------------------------------------------------------- client → server

/// A client message as it arrives, before the server checks it.
///
/// `op` and `bbox` are kept loose (any string, any JSON) so the server can
/// answer a precise `unknown_op` or `bad_bbox` instead of a generic
/// `bad_request`; the document states the accepted shapes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientMessage {
    /// `subscribe` or `unsubscribe`.
    #[cfg_attr(feature = "openapi", schema(value_type = Op))]
    pub op: String,
    /// `order:{order_id}` or `area`.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "order:0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b")
    )]
    pub channel: String,
    /// `[min_lng, min_lat, max_lng, max_lat]`: required to subscribe to
    /// `area`, ignored otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<Vec<f64>>, nullable = false, min_items = 4, max_items = 4)
    )]
    pub bbox: Option<serde_json::Value>,
    /// The `me` channel: the id of the last notification the device saw;
    /// the subscription first replays every later one. A non-negative
    /// integer; ignored on other channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<i64>, nullable = false, minimum = 0)
    )]
    pub after: Option<serde_json::Value>,
}

/// The `op` of a [`ClientMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// [`OP_SUBSCRIBE`].
    Subscribe,
    /// [`OP_UNSUBSCRIBE`].
    Unsubscribe,
}

impl Op {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => OP_SUBSCRIBE,
            Self::Unsubscribe => OP_UNSUBSCRIBE,
        }
    }
}

// ---------------------------------------------------------------- server → client

/// Every server message, told apart by `type` (written first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// A subscription started.
    Subscribed(Subscribed<'a>),
    /// A subscription ended (asked for, or ended by the server).
    Unsubscribed(Unsubscribed<'a>),
    /// An order's status.
    Status(Status),
    /// A driver's position.
    Location(Location),
    /// An area frame: the latest state of drivers in the box.
    Drivers(Drivers<'a>),
    /// An order no driver took, at its pickup (area watchers).
    Unassigned(Unassigned),
    /// One of the caller's notifications (the `me` channel), with its id.
    Notification(crate::Notification),
    /// A refused client message, or a warning before a disconnect.
    Error(ErrorMessage<'a>),
}

impl ServerMessage<'_> {
    /// The `type` this message is written with.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Subscribed(_) => "subscribed",
            Self::Unsubscribed(_) => "unsubscribed",
            Self::Status(_) => "status",
            Self::Location(_) => "location",
            Self::Drivers(_) => "drivers",
            Self::Unassigned(_) => "unassigned",
            Self::Notification(_) => "notification",
            Self::Error(_) => "error",
        }
    }
}

/// `{"type":"subscribed","channel","bbox"?}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subscribed<'a> {
    /// The channel as the client named it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub channel: Cow<'a, str>,
    /// Areas: the box, echoed as `[min_lng, min_lat, max_lng, max_lat]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<Vec<f64>>, nullable = false, min_items = 4, max_items = 4)
    )]
    pub bbox: Option<[f64; 4]>,
}

/// `{"type":"unsubscribed","channel","reason"?}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unsubscribed<'a> {
    /// The channel that ended.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub channel: Cow<'a, str>,
    /// Only when the server ended the subscription itself:
    /// [`REASON_REVOKED`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, nullable = false))]
    pub reason: Option<Cow<'a, str>>,
}

/// `{"type":"status","order_id","status","driver_id"?,"at","arrival"?}`:
/// the order's status after a change, or (with `arrival`) its courier
/// reaching a stop, once per order and stop; the status is then the
/// order's current one, unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// The order.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub order_id: Uuid,
    /// Its status now.
    pub status: OrderStatus,
    /// Its driver, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid, nullable = false))]
    pub driver_id: Option<Uuid>,
    /// When the order last changed, Unix ms; with `arrival`, when the
    /// courier arrived (its fix's time).
    pub at: i64,
    /// Only on an arrival: the courier reached the restaurant (before
    /// pickup) or the customer's door (after pickup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub arrival: Option<Arrival>,
}

/// `{"type":"location","order_id"?,"driver_id","lat","lng","ts","heading"?,"speed"?,"eta_s"?,"delivery_eta_s"?}`:
/// a driver position, with `order_id` for order watchers and `eta_s` /
/// `delivery_eta_s` when the order has a next stop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Location {
    /// The order watched (order channels only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid, nullable = false))]
    pub order_id: Option<Uuid>,
    /// The driver.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub driver_id: Uuid,
    /// Degrees north.
    pub lat: f64,
    /// Degrees east.
    pub lng: f64,
    /// Device time of the fix, Unix ms.
    pub ts: i64,
    /// Degrees clockwise from north, as the device reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub heading: Option<f32>,
    /// Metres per second, as the device reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub speed: Option<f32>,
    /// Seconds to the order's next stop (the restaurant before pickup,
    /// the door after), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub eta_s: Option<u32>,
    /// Seconds until the order reaches the customer's door: before pickup
    /// the courier's drive to the restaurant or the food's remaining
    /// preparation, whichever is longer, then the drive to the door.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub delivery_eta_s: Option<u32>,
}

/// `{"type":"drivers","drivers":[{driver_id,lat,lng,status,ts}]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Drivers<'a> {
    /// Drivers whose state changed since the last frame (or all, in the
    /// first frame after subscribing).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<AreaDriver>))]
    pub drivers: Cow<'a, [AreaDriver]>,
}

/// One driver in a `drivers` frame: its latest known state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AreaDriver {
    /// The driver.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub driver_id: Uuid,
    /// Degrees north.
    pub lat: f64,
    /// Degrees east.
    pub lng: f64,
    /// Its status now.
    pub status: DriverStatus,
    /// Device time of the fix, Unix ms.
    pub ts: i64,
}

/// `{"type":"unassigned","order_id","lat","lng","attempts","since","at","resolved"}`:
/// an order no driver took, for the dispatchers whose area holds its pickup.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unassigned {
    /// The order.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub order_id: Uuid,
    /// The pickup, where a driver is needed: degrees north.
    pub lat: f64,
    /// The pickup: degrees east.
    pub lng: f64,
    /// Offers that ended without an accept.
    pub attempts: u32,
    /// When the search for a driver started, Unix ms.
    pub since: i64,
    /// When it was raised (or resolved), Unix ms.
    pub at: i64,
    /// False when raised; true once the order has a driver or needs none.
    pub resolved: bool,
}

/// `{"type":"error","code","message","channel"?}`, on the tracking socket
/// and (without `channel`) on the driver socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorMessage<'a> {
    /// Stable, snake_case: one of [`code`], or a ping rejection's code on
    /// the driver socket.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: Cow<'a, str>,
    /// For people; wording may change.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub message: Cow<'a, str>,
    /// The channel the refused request named, when it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, nullable = false))]
    pub channel: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_the_serde_tags() {
        let id = Uuid::from_u128(7);
        let messages = [
            ServerMessage::Subscribed(Subscribed {
                channel: AREA_CHANNEL.into(),
                bbox: Some([1.0, 2.0, 3.0, 4.0]),
            }),
            ServerMessage::Unsubscribed(Unsubscribed {
                channel: order_channel(id).into(),
                reason: Some(REASON_REVOKED.into()),
            }),
            ServerMessage::Status(Status {
                order_id: id,
                status: OrderStatus::Paid,
                driver_id: None,
                at: 1,
                arrival: None,
            }),
            ServerMessage::Status(Status {
                order_id: id,
                status: OrderStatus::Preparing,
                driver_id: Some(id),
                at: 2,
                arrival: Some(Arrival::ArrivedAtRestaurant),
            }),
            ServerMessage::Location(Location {
                order_id: None,
                driver_id: id,
                lat: 1.0,
                lng: 2.0,
                ts: 3,
                heading: Some(90.0),
                speed: None,
                eta_s: Some(4),
                delivery_eta_s: Some(9),
            }),
            ServerMessage::Drivers(Drivers {
                drivers: vec![AreaDriver {
                    driver_id: id,
                    lat: 1.0,
                    lng: 2.0,
                    status: DriverStatus::Busy,
                    ts: 5,
                }]
                .into(),
            }),
            ServerMessage::Unassigned(Unassigned {
                order_id: id,
                lat: 1.0,
                lng: 2.0,
                attempts: 3,
                since: 4,
                at: 5,
                resolved: false,
            }),
            ServerMessage::Notification(crate::Notification {
                id: 4,
                event_id: 9,
                event_type: "order.accepted".into(),
                order_id: Some(id),
                restaurant_id: None,
                status: Some(OrderStatus::Accepted),
                text: "t".into(),
                at_ms: 6,
                read_at_ms: None,
            }),
            ServerMessage::Error(ErrorMessage {
                code: code::BAD_BBOX.into(),
                message: "m".into(),
                channel: None,
            }),
        ];
        for m in messages {
            let text = serde_json::to_string(&m).unwrap();
            let prefix = format!(r#"{{"type":"{}","#, m.type_name());
            assert!(text.starts_with(&prefix), "{text}");
            assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), m);
        }
    }

    #[test]
    fn client_message_keeps_loose_fields() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"op":"publish","channel":"area","bbox":"x"}"#).unwrap();
        assert_eq!(m.op, "publish");
        assert_eq!(m.bbox, Some(serde_json::json!("x")));
        assert_eq!(Op::Subscribe.as_str(), OP_SUBSCRIBE);
        assert_eq!(
            serde_json::to_string(&Op::Unsubscribe).unwrap(),
            format!("\"{OP_UNSUBSCRIBE}\"")
        );
    }
}
