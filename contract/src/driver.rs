//! What drivers send and receive.
//!
//! In: the [`Ping`], one per MQTT publish (`drivers/{driver_id}/location`)
//! or WebSocket text message (`GET /v1/drivers/stream`), or a JSON array of
//! them (`POST /v1/drivers/{driver_id}/locations`, answered with a
//! [`BatchResult`]).
//!
//! Out: [`DriverMessage`]s on MQTT `drivers/{driver_id}/offers` and the
//! driver's WebSocket: an [`OfferMessage`], an [`OfferEndedMessage`], the
//! driver's notifications, and on the WebSocket an [`ErrorMessage`] for a
//! refused ping.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Position;
use crate::ws::ErrorMessage;

/// One driver position as every ingest path takes it:
/// `{"lat","lng","ts"?,"heading"?,"speed"?,"accuracy"?}`.
///
/// Decoding is lenient where apps differ and strict where data would be
/// wrong: unknown fields are ignored (newer apps may send more), `null` is
/// absent, a fractional `ts` is floored to the millisecond; a non-object
/// document, a field of the wrong type or a duplicate field is an error.
/// Missing coordinates decode (as `None`) so the server can name that
/// reason; ranges and plausibility are the server's checks (`engine::ping`),
/// not the decoder's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"lat": 57.70, "lng": 11.97,
    "ts": 1763700000000_i64, "heading": 90, "speed": 8.3, "accuracy": 5})))]
pub struct Ping {
    /// Degrees, -90 to 90. Required (a ping without it is refused as
    /// `missing_coordinates`).
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub lat: Option<f64>,
    /// Degrees, -180 to 180. Required, as `lat`.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub lng: Option<f64>,
    /// When the fix was taken, Unix ms; absent: when it arrives.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub ts: Option<i64>,
    /// Degrees clockwise from north, [0, 360).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub heading: Option<f64>,
    /// Metres per second, 0 to 60.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub speed: Option<f64>,
    /// Metres, non-negative.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub accuracy: Option<f64>,
}

/// The field names of [`Ping`]; anything else is skipped unread.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum PingField {
    Lat,
    Lng,
    Ts,
    Heading,
    Speed,
    Accuracy,
    #[serde(other)]
    Unknown,
}

/// Hand-written rather than derived: a derived struct would also accept a
/// positional array and could not skip unknown fields without buffering.
/// This is the ingest hot path (`bench/benches/ingest.rs`,
/// `ingest/decode_ping`).
impl<'de> Deserialize<'de> for Ping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PingVisitor)
    }
}

struct PingVisitor;

impl<'de> Visitor<'de> for PingVisitor {
    type Value = Ping;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with lat and lng")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ping, A::Error> {
        let mut ping = Ping::default();
        let mut ts: Option<f64> = None;
        while let Some(field) = map.next_key::<PingField>()? {
            let slot = match field {
                PingField::Lat => &mut ping.lat,
                PingField::Lng => &mut ping.lng,
                PingField::Ts => &mut ts,
                PingField::Heading => &mut ping.heading,
                PingField::Speed => &mut ping.speed,
                PingField::Accuracy => &mut ping.accuracy,
                PingField::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom("duplicate field"));
            }
            *slot = map.next_value::<Option<f64>>()?;
        }
        // Unix ms; a fractional millisecond is floored. `as` saturates, so an
        // absurd value stays absurd and the server refuses it as a bad
        // timestamp (JSON has no NaN).
        ping.ts = ts.map(|t| t.floor() as i64);
        Ok(ping)
    }
}

/// The outcome of an HTTP batch of pings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResult {
    /// Pings that moved the driver.
    pub applied: u64,
    /// Pings older than the driver's last applied one.
    pub stale: u64,
    /// Pings identical to one already applied.
    pub duplicate: u64,
    /// Pings refused, by position in the array.
    pub rejected: Vec<RejectedPing>,
}

/// One refused ping of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectedPing {
    /// Position in the submitted array.
    pub index: u64,
    /// `invalid_json`, `missing_coordinates`, `non_finite`, `out_of_range`,
    /// `bad_motion`, `bad_timestamp`, `too_large`, `implausible_jump`,
    /// `rate_limited` (over the driver's ping budget: send it again later).
    pub code: String,
    /// For people; wording may change.
    pub message: String,
}

/// Every message a driver receives, told apart by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DriverMessage<'a> {
    /// `{"type":"offer", …}`.
    Offer(OfferMessage),
    /// `{"type":"offer_ended", …}`.
    OfferEnded(OfferEndedMessage),
    /// `{"type":"error","code","message"}`: a refused ping (WebSocket only;
    /// the stream goes on).
    Error(ErrorMessage<'a>),
    /// `{"type":"notification","id",…}`: one of the driver's notifications
    /// (its order cancelled or taken from it …), as stored in its feed
    /// (`GET /v1/notifications`, where one missed here is found).
    Notification(crate::Notification),
}

/// An offer to a driver, on MQTT `drivers/{driver_id}/offers` and on its
/// WebSocket stream; answered with `POST /v1/offers/{offer_id}/accept` or
/// `/decline`; silence until `expires_at` is a decline. On the wire inside
/// [`DriverMessage::Offer`], so with `"type":"offer"` first. What a courier
/// decides on (the restaurant, the distances, the item count) is added
/// when the server can tell it, and left out otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferMessage {
    /// The offer, to name in the answer.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub offer_id: Uuid,
    /// The order offered.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub order_id: Uuid,
    /// The restaurant.
    pub pickup: Position,
    /// The customer.
    pub dropoff: Position,
    /// When silence becomes a decline, Unix ms.
    pub expires_at: i64,
    /// Where the food is: the restaurant's name and address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub restaurant: Option<OfferRestaurant>,
    /// How many items the order holds (all lines' quantities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub items: Option<u32>,
    /// Metres in a straight line from the driver's last position to the
    /// pickup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub pickup_distance_m: Option<u32>,
    /// Metres in a straight line from the pickup to the dropoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub trip_distance_m: Option<u32>,
    /// Present on a stacked offer (`matcher.stacking`): the order the
    /// driver already carries, not yet picked up, that this one rides
    /// along with. Its pickup is this offer's restaurant: the same as the
    /// carried order's, or another one on the way (collect both, then
    /// deliver the carried order's customer first, then this one's).
    /// Absent on a plain offer to a free driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = Uuid, nullable = false)
    )]
    pub stacked_with: Option<Uuid>,
}

/// The restaurant of an offer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferRestaurant {
    /// Its name.
    pub name: String,
    /// Its street address.
    pub address: String,
}

/// An offer that can no longer be answered, on the same channels as the
/// offer: `{"type":"offer_ended","offer_id","reason"}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferEndedMessage {
    /// The offer that ended.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub offer_id: Uuid,
    /// Why it ended.
    pub reason: OfferEndReason,
}

/// Why an offer ended without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OfferEndReason {
    /// Nobody answered before `expires_at`.
    Expired,
    /// The order no longer needs this driver (cancelled, or taken).
    Withdrawn,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_messages_put_the_type_first() {
        let id = Uuid::from_u128(1);
        let offer = DriverMessage::Offer(OfferMessage {
            offer_id: id,
            order_id: id,
            pickup: Position { lat: 1.0, lng: 2.0 },
            dropoff: Position { lat: 3.0, lng: 4.5 },
            expires_at: 7,
            restaurant: None,
            items: None,
            pickup_distance_m: None,
            trip_distance_m: None,
            stacked_with: None,
        });
        let text = serde_json::to_string(&offer).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"type":"offer","offer_id":"{id}","order_id":"{id}","pickup":{{"lat":1.0,"lng":2.0}},"dropoff":{{"lat":3.0,"lng":4.5}},"expires_at":7}}"#
            )
        );
        assert_eq!(serde_json::from_str::<DriverMessage>(&text).unwrap(), offer);
        let ended = DriverMessage::OfferEnded(OfferEndedMessage {
            offer_id: id,
            reason: OfferEndReason::Expired,
        });
        assert_eq!(
            serde_json::to_string(&ended).unwrap(),
            format!(r#"{{"type":"offer_ended","offer_id":"{id}","reason":"expired"}}"#)
        );
    }

    #[test]
    fn ping_decodes_objects_only() {
        let p: Ping = serde_json::from_str(r#"{"lat":1,"lng":2,"ts":3.9,"x":[1]}"#).unwrap();
        assert_eq!(
            p,
            Ping {
                lat: Some(1.0),
                lng: Some(2.0),
                ts: Some(3),
                ..Ping::default()
            }
        );
        assert!(serde_json::from_str::<Ping>("[1,2]").is_err());
        assert!(serde_json::from_str::<Ping>(r#"{"lat":1,"lat":1}"#).is_err());
        // What the serde encoder writes, the decoder reads back.
        let full = Ping {
            lat: Some(57.7),
            lng: Some(11.97),
            ts: Some(1_763_700_000_000),
            heading: Some(90.0),
            speed: Some(8.3),
            accuracy: Some(5.0),
        };
        let text = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<Ping>(&text).unwrap(), full);
    }
}
