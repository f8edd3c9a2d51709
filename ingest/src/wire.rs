//! The driver side of the wire contract ([`contract::driver`]) as ingest
//! speaks it: decoding the JSON ping every path accepts, and encoding the
//! messages drivers receive (offers, offer ends, and the WebSocket error
//! message).
//!
//! Decoding only turns bytes into [`RawPing`] (through the contract's
//! [`contract::Ping`], whose decoder is the hot path benchmarked in
//! `bench/benches/ingest.rs`); the field rules (required coordinates,
//! ranges, timestamps) live in `engine::ping` so every path refuses the
//! same pings for the same reasons.

use contract::ws::ErrorMessage;
use contract::{DriverMessage, OfferEndReason, OfferEndedMessage, OfferMessage};
use engine::{Offer, OfferEnd, OfferId, PingRejection, RawPing};
use serde::{Deserialize, Serialize};

/// Decodes one JSON ping. Unknown fields are ignored (newer apps may send
/// more); a field of the wrong type, a non-object document or trailing
/// garbage is `InvalidJson`. Missing coordinates are left to `validate`.
pub fn decode_ping(bytes: &[u8]) -> Result<RawPing, PingRejection> {
    serde_json::from_slice::<contract::Ping>(bytes)
        .map(RawPing::from)
        .map_err(|_| PingRejection::InvalidJson)
}

/// Decodes one ping from an already parsed JSON value (an element of an HTTP
/// batch), with the same rules as [`decode_ping`].
pub fn decode_ping_value(value: &serde_json::Value) -> Result<RawPing, PingRejection> {
    contract::Ping::deserialize(value)
        .map(RawPing::from)
        .map_err(|_| PingRejection::InvalidJson)
}

/// What a courier decides an offer on, beyond where and when: read from
/// the store for each offer ([`crate::OfferDetails`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Details {
    /// The restaurant's name.
    pub restaurant_name: String,
    /// The restaurant's street address.
    pub restaurant_address: String,
    /// Items in the order (all lines' quantities).
    pub items: u32,
}

/// The offer as a driver receives it, on MQTT and on its WebSocket stream:
/// `{"type":"offer","offer_id","order_id","pickup":{lat,lng},"dropoff":{lat,lng},"expires_at",
/// "restaurant"?:{name,address},"items"?,"pickup_distance_m"?,"trip_distance_m","stacked_with"?}`;
/// `driver_at` is the driver's last position, if known.
pub fn offer_json(
    offer: &Offer,
    details: Option<&Details>,
    driver_at: Option<engine::LatLng>,
) -> String {
    let metres = |m: f64| m.round().clamp(0.0, f64::from(u32::MAX)) as u32;
    to_json(&DriverMessage::Offer(OfferMessage {
        offer_id: offer.offer_id.0,
        order_id: offer.order_id.0,
        pickup: offer.pickup.into(),
        dropoff: offer.dropoff.into(),
        expires_at: offer.expires_at_ms,
        restaurant: details.map(|d| contract::driver::OfferRestaurant {
            name: d.restaurant_name.clone(),
            address: d.restaurant_address.clone(),
        }),
        items: details.map(|d| d.items),
        pickup_distance_m: driver_at.map(|at| metres(engine::geo::haversine_m(at, offer.pickup))),
        trip_distance_m: Some(metres(engine::geo::haversine_m(
            offer.pickup,
            offer.dropoff,
        ))),
        stacked_with: offer.stacked_with.map(|o| o.0),
    }))
}

/// A driver's notification, on MQTT and its WebSocket stream:
/// `{"type":"notification","id","event_type",…}`.
pub fn notification_json(n: &contract::Notification) -> String {
    to_json(&DriverMessage::Notification(n.clone()))
}

/// An offer that can no longer be answered (an extension of the contract, on
/// the same channels): `{"type":"offer_ended","offer_id","reason":"expired"|"withdrawn"}`.
pub fn offer_ended_json(offer_id: OfferId, end: OfferEnd) -> String {
    let reason = match end {
        OfferEnd::Expired => OfferEndReason::Expired,
        OfferEnd::Withdrawn => OfferEndReason::Withdrawn,
    };
    to_json(&DriverMessage::OfferEnded(OfferEndedMessage {
        offer_id: offer_id.0,
        reason,
    }))
}

/// The WebSocket error message: `{"type":"error","code","message"}`.
pub fn error_json(code: &str, message: &str) -> String {
    to_json(&DriverMessage::Error(ErrorMessage {
        code: code.into(),
        message: message.into(),
        channel: None,
    }))
}

/// The error message for a refused ping.
pub fn rejection_json(rejection: PingRejection) -> String {
    error_json(rejection.code(), &rejection.to_string())
}

fn to_json<T: Serialize>(value: &T) -> String {
    match serde_json::to_string(value) {
        Ok(s) => s,
        // Only plain structs of strings, numbers and ids are serialised here:
        // serde_json fails only on non-string map keys or failing Serialize
        // impls, neither of which exists in these types.
        Err(e) => unreachable!("serialising a wire message cannot fail: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{DriverId, LatLng, OrderId};

    fn check(input: &str, expected: Result<RawPing, PingRejection>) {
        assert_eq!(decode_ping(input.as_bytes()), expected, "input {input}");
    }

    fn raw(lat: f64, lng: f64) -> RawPing {
        RawPing {
            lat: Some(lat),
            lng: Some(lng),
            ..RawPing::default()
        }
    }

    #[test]
    fn decode_table() {
        check(
            r#"{"lat":57.70,"lng":11.97,"ts":1763700000000,"heading":90,"speed":8.3,"accuracy":5}"#,
            Ok(RawPing {
                lat: Some(57.70),
                lng: Some(11.97),
                ts: Some(1_763_700_000_000),
                heading: Some(90.0),
                speed: Some(8.3),
                accuracy: Some(5.0),
            }),
        );
        check(r#"{"lat":1,"lng":2}"#, Ok(raw(1.0, 2.0)));
        check(
            r#" {"lat":1,"lng":2,"battery":0.5,"extra":{"a":[1]}} "#,
            Ok(raw(1.0, 2.0)),
        );
        check(
            r#"{"lat":1,"lng":2,"ts":1763700000000.7}"#,
            Ok(RawPing {
                ts: Some(1_763_700_000_000),
                ..raw(1.0, 2.0)
            }),
        );
        check(r#"{"lat":1,"lng":2,"heading":null}"#, Ok(raw(1.0, 2.0)));
        // Missing coordinates decode; `validate` refuses them.
        check(
            r#"{"lng":2}"#,
            Ok(RawPing {
                lng: Some(2.0),
                ..RawPing::default()
            }),
        );
        check(r#"{}"#, Ok(RawPing::default()));
        check(r#"{"lat":"57.7","lng":2}"#, Err(PingRejection::InvalidJson));
        check(
            r#"{"lat":1,"lng":2,"ts":"now"}"#,
            Err(PingRejection::InvalidJson),
        );
        check(
            r#"{"lat":1,"lat":2,"lng":2}"#,
            Err(PingRejection::InvalidJson),
        );
        check(r#"{"lat":1e999,"lng":2}"#, Err(PingRejection::InvalidJson));
        check(
            r#"[57.7,11.97,null,null,null,null]"#,
            Err(PingRejection::InvalidJson),
        );
        check(r#"{"lat":1,"lng":2} x"#, Err(PingRejection::InvalidJson));
        check("57.7", Err(PingRejection::InvalidJson));
        check("not json", Err(PingRejection::InvalidJson));
        check("", Err(PingRejection::InvalidJson));
    }

    #[test]
    fn decode_then_validate_gives_the_shared_reasons() {
        let now = 1_763_700_000_000;
        let v = |s: &str| {
            decode_ping(s.as_bytes()).and_then(|r| r.validate(DriverId::new(), now).map(|_| ()))
        };
        assert_eq!(v(r#"{"lng":2}"#), Err(PingRejection::MissingCoordinates));
        assert_eq!(v(r#"{"lat":91,"lng":2}"#), Err(PingRejection::OutOfRange));
        assert_eq!(
            v(r#"{"lat":1,"lng":2,"ts":1e300}"#),
            Err(PingRejection::BadTimestamp)
        );
        assert_eq!(
            v(r#"{"lat":1,"lng":2,"ts":-1e300}"#),
            Err(PingRejection::BadTimestamp)
        );
        assert_eq!(v(r#"{"lat":1,"lng":2}"#), Ok(()));
    }

    #[test]
    fn value_decoding_matches_bytes_decoding() {
        for s in [
            r#"{"lat":1,"lng":2,"x":true}"#,
            r#"[1,2]"#,
            r#"{"lat":"1"}"#,
            "3",
        ] {
            let value: serde_json::Value = serde_json::from_str(s).unwrap();
            assert_eq!(decode_ping_value(&value), decode_ping(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn offer_shape() {
        let offer = Offer {
            offer_id: OfferId::new(),
            order_id: OrderId::new(),
            driver_id: DriverId::new(),
            pickup: LatLng::new(57.7, 11.97).unwrap(),
            dropoff: LatLng::new(57.71, 11.98).unwrap(),
            expires_at_ms: 1_763_700_030_000,
            relayed: false,
            stacked_with: None,
        };
        // Without details or a driver position: where, when, how far (0.01°
        // north is 1,112 m, 0.01° east here 594 m: 1,261 m).
        let v: serde_json::Value = serde_json::from_str(&offer_json(&offer, None, None)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "offer",
                "offer_id": offer.offer_id.to_string(),
                "order_id": offer.order_id.to_string(),
                "pickup": {"lat": 57.7, "lng": 11.97},
                "dropoff": {"lat": 57.71, "lng": 11.98},
                "expires_at": 1_763_700_030_000_i64,
                "trip_distance_m": 1_261,
            })
        );
        // With them: what a courier decides on.
        let details = Details {
            restaurant_name: "Pizzeria Göta".into(),
            restaurant_address: "Kungsgatan 1".into(),
            items: 3,
        };
        let driver_at = LatLng::new(57.69, 11.97).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&offer_json(&offer, Some(&details), Some(driver_at))).unwrap();
        assert_eq!(
            v["restaurant"],
            serde_json::json!({"name": "Pizzeria Göta", "address": "Kungsgatan 1"})
        );
        assert_eq!(v["items"], 3);
        assert_eq!(v["pickup_distance_m"], 1_112);
        // A stacked offer names the order it rides along with.
        let first = OrderId::new();
        let stacked = Offer {
            stacked_with: Some(first),
            ..offer.clone()
        };
        let v: serde_json::Value = serde_json::from_str(&offer_json(&stacked, None, None)).unwrap();
        assert_eq!(v["stacked_with"], first.to_string());
        let ended: serde_json::Value =
            serde_json::from_str(&offer_ended_json(offer.offer_id, OfferEnd::Withdrawn)).unwrap();
        assert_eq!(
            ended,
            serde_json::json!({"type": "offer_ended", "offer_id": offer.offer_id.to_string(), "reason": "withdrawn"})
        );
    }

    #[test]
    fn error_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&rejection_json(PingRejection::OutOfRange)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "out_of_range");
        assert!(v["message"].as_str().unwrap().contains("lat"));
    }
}
