//! The tracking WebSocket's wire contract ([`contract::ws`]) as the gateway
//! speaks it: the names (re-exported from the contract, so they are defined
//! once), the parser that turns a [`contract::ClientMessage`] into a
//! validated [`Request`], and the encoders that turn engine state into
//! [`ServerMessage`]s. Encoding is the gateway's hot path
//! (`bench/benches/gateway.rs`): messages borrow what they send.
//!
//! Client → server (JSON text):
//! - `{"op":"subscribe","channel":"order:{order_id}"}`
//! - `{"op":"subscribe","channel":"area","bbox":[min_lng,min_lat,max_lng,max_lat]}`
//! - `{"op":"subscribe","channel":"me","after"?:<notification id>}`
//! - `{"op":"subscribe","channel":"restaurant:{restaurant_id}"}`
//! - `{"op":"unsubscribe","channel":"order:{order_id}" | "area" | "me" | "restaurant:{restaurant_id}"}`
//!
//! Server → client (JSON text, always with a `type`): `subscribed`,
//! `unsubscribed`, `status` (with `arrival` when the courier reached the
//! restaurant or the door), `location`, `drivers`, `unassigned` (area
//! watchers: an order no driver took), `notification` (`me`), `error`.

use std::borrow::Cow;

use axum::extract::ws::Utf8Bytes;
use contract::ws::{
    AreaDriver, Drivers, ErrorMessage, Location, Status, Subscribed, Unassigned as UnassignedMsg,
    Unsubscribed,
};
use contract::{ClientMessage, ServerMessage};
use engine::eta::Eta;
use engine::{
    Arrived, BBox, DriverId, DriverStatus, Fix, LatLng, Moved, OrderId, OrderTrack, RestaurantId,
    Unassigned,
};

pub use contract::ws::{
    AREA_CHANNEL, ME_CHANNEL, OP_SUBSCRIBE, OP_UNSUBSCRIBE, ORDER_CHANNEL_PREFIX, PATH,
    REASON_REVOKED, RESTAURANT_CHANNEL_PREFIX, close_code, code,
};

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
    Notification,
}

impl MsgType {
    pub const ALL: [MsgType; 8] = [
        Self::Location,
        Self::Status,
        Self::Drivers,
        Self::Error,
        Self::Subscribed,
        Self::Unsubscribed,
        Self::Unassigned,
        Self::Notification,
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
            Self::Notification => "notification",
        }
    }

    /// Dense index, for per-type metric handles.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// `order:{order_id}`.
pub fn order_channel(order_id: OrderId) -> String {
    contract::ws::order_channel(order_id.0)
}

/// `restaurant:{restaurant_id}`.
pub fn restaurant_channel(restaurant_id: RestaurantId) -> String {
    contract::ws::restaurant_channel(restaurant_id.0)
}

// ---------------------------------------------------------------- client → server

/// A parsed, validated client message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Request {
    SubscribeOrder(OrderId),
    SubscribeArea(BBox),
    UnsubscribeOrder(OrderId),
    UnsubscribeArea,
    /// The caller's notifications, replaying those after the cursor first.
    SubscribeMe {
        after: Option<i64>,
    },
    UnsubscribeMe,
    /// A restaurant's orders (its owner and admins).
    SubscribeRestaurant(RestaurantId),
    UnsubscribeRestaurant(RestaurantId),
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

/// Parses one text message. The size limit is checked by the caller.
pub(crate) fn parse_request(text: &str) -> Result<Request, ProtocolError> {
    let raw: ClientMessage = serde_json::from_str(text).map_err(|e| {
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
    if raw.channel == ME_CHANNEL {
        if !subscribe {
            return Ok(Request::UnsubscribeMe);
        }
        let after = match &raw.after {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(v.as_i64().filter(|a| *a >= 0).ok_or_else(|| {
                ProtocolError::new(
                    code::BAD_AFTER,
                    "after must be the id of a notification: an integer, 0 or more",
                )
                .on(ME_CHANNEL)
            })?),
        };
        return Ok(Request::SubscribeMe { after });
    }
    if let Some(id) = raw.channel.strip_prefix(RESTAURANT_CHANNEL_PREFIX) {
        let restaurant_id: RestaurantId = id.parse().map_err(|_| {
            ProtocolError::new(code::BAD_RESTAURANT_ID, "the restaurant id must be a UUID")
                .on(raw.channel.clone())
        })?;
        return Ok(if subscribe {
            Request::SubscribeRestaurant(restaurant_id)
        } else {
            Request::UnsubscribeRestaurant(restaurant_id)
        });
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
            "unknown channel: expected \"{ORDER_CHANNEL_PREFIX}{{order_id}}\", {AREA_CHANNEL:?}, {ME_CHANNEL:?} or \"{RESTAURANT_CHANNEL_PREFIX}{{restaurant_id}}\""
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

fn encode(kind: MsgType, message: &ServerMessage<'_>) -> Outgoing {
    debug_assert_eq!(kind.as_str(), message.type_name());
    let text = match serde_json::to_string(message) {
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

fn location(message: Location) -> Outgoing {
    encode(MsgType::Location, &ServerMessage::Location(message))
}

/// A driver position for order watchers (`order_id`), with `eta_s` and
/// `delivery_eta_s` when the order has a next stop, from an applied ping.
pub(crate) fn location_from_move(
    m: &Moved,
    order_id: Option<OrderId>,
    eta: Option<Eta>,
) -> Outgoing {
    location(Location {
        order_id: order_id.map(|o| o.0),
        driver_id: m.driver_id.0,
        lat: m.position.lat,
        lng: m.position.lng,
        ts: m.recorded_at_ms,
        heading: m.heading_deg,
        speed: m.speed_mps,
        eta_s: eta.map(|e| e.next_stop_s),
        delivery_eta_s: eta.map(|e| e.door_s),
    })
}

/// As [`location_from_move`], from a driver's last fix.
pub(crate) fn location_from_fix(
    driver_id: DriverId,
    fix: &Fix,
    order_id: Option<OrderId>,
    eta: Option<Eta>,
) -> Outgoing {
    location(Location {
        order_id: order_id.map(|o| o.0),
        driver_id: driver_id.0,
        lat: fix.position.lat,
        lng: fix.position.lng,
        ts: fix.recorded_at_ms,
        heading: fix.heading_deg,
        speed: fix.speed_mps,
        eta_s: eta.map(|e| e.next_stop_s),
        delivery_eta_s: eta.map(|e| e.door_s),
    })
}

/// `{"type":"status","order_id","status","driver_id"?,"at"}`.
pub(crate) fn status(track: &OrderTrack) -> Outgoing {
    encode(
        MsgType::Status,
        &ServerMessage::Status(Status {
            order_id: track.order_id.0,
            status: track.status,
            driver_id: track.driver_id.map(|d| d.0),
            at: track.updated_at_ms,
            arrival: None,
        }),
    )
}

/// `{"type":"status","order_id","status","driver_id","at","arrival"}`: the
/// courier of `track` reached a stop; the status is the order's as
/// `track` has it, `at` the fix's time.
pub(crate) fn arrival(track: &OrderTrack, arrived: &Arrived) -> Outgoing {
    encode(
        MsgType::Status,
        &ServerMessage::Status(Status {
            order_id: arrived.order_id.0,
            status: track.status,
            driver_id: Some(arrived.driver_id.0),
            at: arrived.at_ms,
            arrival: Some(arrived.arrival),
        }),
    )
}

/// One driver in a `drivers` frame: its latest known state.
pub(crate) fn area_driver(
    driver_id: DriverId,
    position: LatLng,
    status: DriverStatus,
    ts: i64,
) -> AreaDriver {
    AreaDriver {
        driver_id: driver_id.0,
        lat: position.lat,
        lng: position.lng,
        status,
        ts,
    }
}

/// `{"type":"drivers","drivers":[{driver_id,lat,lng,status,ts}]}`.
pub(crate) fn drivers(drivers: &[AreaDriver]) -> Outgoing {
    encode(
        MsgType::Drivers,
        &ServerMessage::Drivers(Drivers {
            drivers: Cow::Borrowed(drivers),
        }),
    )
}

/// `{"type":"unassigned","order_id","lat","lng","attempts","since","at","resolved"}`:
/// an order no driver took, for the dispatchers whose area holds its pickup.
pub(crate) fn unassigned(news: &Unassigned) -> Outgoing {
    encode(
        MsgType::Unassigned,
        &ServerMessage::Unassigned(UnassignedMsg {
            order_id: news.order_id.0,
            lat: news.pickup.lat,
            lng: news.pickup.lng,
            attempts: news.attempts,
            since: news.since_ms,
            at: news.at_ms,
            resolved: news.resolved,
        }),
    )
}

/// `{"type":"notification","id",…}`: one of the caller's notifications.
pub(crate) fn notification(n: &contract::Notification) -> Outgoing {
    encode(
        MsgType::Notification,
        &ServerMessage::Notification(n.clone()),
    )
}

/// `{"type":"subscribed","channel"}`, with the `bbox` echoed for areas.
pub(crate) fn subscribed(channel: &str, bbox: Option<BBox>) -> Outgoing {
    let bbox = bbox.map(|b| [b.min.lng, b.min.lat, b.max.lng, b.max.lat]);
    encode(
        MsgType::Subscribed,
        &ServerMessage::Subscribed(Subscribed {
            channel: Cow::Borrowed(channel),
            bbox,
        }),
    )
}

/// `{"type":"unsubscribed","channel"}`; `reason` only when the server ended
/// the subscription itself.
pub(crate) fn unsubscribed(channel: &str, reason: Option<&'static str>) -> Outgoing {
    encode(
        MsgType::Unsubscribed,
        &ServerMessage::Unsubscribed(Unsubscribed {
            channel: Cow::Borrowed(channel),
            reason: reason.map(Cow::Borrowed),
        }),
    )
}

/// `{"type":"error","code","message","channel"?}`.
pub(crate) fn error(e: &ProtocolError) -> Outgoing {
    encode(
        MsgType::Error,
        &ServerMessage::Error(ErrorMessage {
            code: Cow::Borrowed(e.code),
            message: Cow::Borrowed(&e.message),
            channel: e.channel.as_deref().map(Cow::Borrowed),
        }),
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
        check(
            r#"{"op":"subscribe","channel":"me"}"#,
            Ok(Request::SubscribeMe { after: None }),
        );
        check(
            r#"{"op":"subscribe","channel":"me","after":null}"#,
            Ok(Request::SubscribeMe { after: None }),
        );
        check(
            r#"{"op":"subscribe","channel":"me","after":17}"#,
            Ok(Request::SubscribeMe { after: Some(17) }),
        );
        check(
            r#"{"op":"unsubscribe","channel":"me","after":"x"}"#,
            Ok(Request::UnsubscribeMe),
        );
        for bad in [r#"-1"#, r#""5""#, "1.5", "[1]", "18446744073709551616"] {
            check(
                &format!(r#"{{"op":"subscribe","channel":"me","after":{bad}}}"#),
                Err(code::BAD_AFTER),
            );
        }
        check(
            r#"{"op":"subscribe","channel":"ME"}"#,
            Err(code::UNKNOWN_CHANNEL),
        );
        let restaurant: RestaurantId = ORDER.parse().unwrap();
        check(
            &format!(r#"{{"op":"subscribe","channel":"restaurant:{ORDER}"}}"#),
            Ok(Request::SubscribeRestaurant(restaurant)),
        );
        check(
            &format!(r#"{{"op":"unsubscribe","channel":"restaurant:{ORDER}"}}"#),
            Ok(Request::UnsubscribeRestaurant(restaurant)),
        );
        check(
            r#"{"op":"subscribe","channel":"restaurant:7"}"#,
            Err(code::BAD_RESTAURANT_ID),
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
            status: engine::OrderStatus::ReadyForPickup,
            driver_id: None,
            pickup: LatLng::new(57.7, 11.97).unwrap(),
            dropoff: LatLng::new(57.71, 11.98).unwrap(),
            updated_at_ms: 5,
            version: 0,
        };
        let v: serde_json::Value = serde_json::from_str(&status(&track).text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"status","order_id":ORDER,"status":"ready_for_pickup","at":5})
        );
        let courier = DriverId::new();
        let arrived = Arrived {
            order_id: track.order_id,
            driver_id: courier,
            arrival: engine::Arrival::ArrivedAtRestaurant,
            position: track.pickup,
            at_ms: 7,
        };
        let v: serde_json::Value = serde_json::from_str(&arrival(&track, &arrived).text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"status","order_id":ORDER,"status":"ready_for_pickup",
                               "driver_id":courier.to_string(),"at":7,"arrival":"arrived_at_restaurant"})
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
            &location_from_fix(
                driver,
                &fix,
                None,
                Some(Eta {
                    next_stop_s: 3,
                    door_s: 8,
                }),
            )
            .text,
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"location","driver_id":driver.to_string(),"lat":57.7,"lng":11.97,"ts":9,"heading":90.0,"eta_s":3,"delivery_eta_s":8})
        );
    }
}
