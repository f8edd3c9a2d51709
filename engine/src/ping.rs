//! A driver's position report, validated, and the reasons one is refused.
//!
//! Decoding the wire format is the ingest layer's job; this module owns the
//! rules every path shares, so MQTT, WebSocket and HTTP refuse the same pings
//! for the same reasons.

use serde::Serialize;

use crate::geo::{CoordError, LatLng};
use crate::ids::DriverId;

/// Fastest plausible driver speed, m/s (216 km/h): faster reported speeds or
/// jumps between pings are GPS glitches or forgeries.
pub const MAX_PLAUSIBLE_SPEED_MPS: f32 = 60.0;
/// How far ahead of the server clock a device timestamp may be before the
/// ping is refused: a wrong device clock must not freeze a driver's position
/// (later honest pings would look stale next to a ping from the future).
pub const MAX_FUTURE_SKEW_MS: i64 = 60_000;
/// Pings older than this are refused: they cannot change the live picture.
pub const MAX_PING_AGE_MS: i64 = 24 * 3600 * 1000;

/// A ping that passed validation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ping {
    pub driver_id: DriverId,
    pub position: LatLng,
    /// Device time of the fix (Unix ms); the server's receive time when the
    /// device sent none. Orders pings: an older one than the last is stale.
    pub recorded_at_ms: i64,
    pub heading_deg: Option<f32>,
    pub speed_mps: Option<f32>,
    pub accuracy_m: Option<f32>,
}

/// Why a ping was refused. `code()` is the stable name used in error bodies,
/// WebSocket error messages and the `reason` label of the rejection counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PingRejection {
    #[error("payload is not valid JSON for a ping")]
    InvalidJson,
    #[error("lat and lng are required numbers")]
    MissingCoordinates,
    #[error("coordinates must be finite numbers")]
    NonFinite,
    #[error("lat must be within [-90, 90], lng within [-180, 180]")]
    OutOfRange,
    #[error("heading must be within [0, 360), speed within [0, 60] m/s, accuracy non-negative")]
    BadMotion,
    #[error("ts is more than 60 s in the future or more than 24 h in the past")]
    BadTimestamp,
    #[error("payload is larger than the limit")]
    TooLarge,
    #[error("the topic or path names another driver")]
    WrongDriver,
    #[error("the position jumped faster than a vehicle can move")]
    ImplausibleJump,
    #[error("pings arrive faster than the driver's allowed rate; slow down")]
    RateLimited,
}

impl PingRejection {
    pub const ALL: [PingRejection; 10] = [
        Self::InvalidJson,
        Self::MissingCoordinates,
        Self::NonFinite,
        Self::OutOfRange,
        Self::BadMotion,
        Self::BadTimestamp,
        Self::TooLarge,
        Self::WrongDriver,
        Self::ImplausibleJump,
        Self::RateLimited,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::MissingCoordinates => "missing_coordinates",
            Self::NonFinite => "non_finite",
            Self::OutOfRange => "out_of_range",
            Self::BadMotion => "bad_motion",
            Self::BadTimestamp => "bad_timestamp",
            Self::TooLarge => "too_large",
            Self::WrongDriver => "wrong_driver",
            Self::ImplausibleJump => "implausible_jump",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl Serialize for PingRejection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl From<CoordError> for PingRejection {
    fn from(e: CoordError) -> Self {
        match e {
            CoordError::NonFinite => Self::NonFinite,
            CoordError::OutOfRange => Self::OutOfRange,
        }
    }
}

/// The raw fields of a ping as decoded from any wire format.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RawPing {
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub ts: Option<i64>,
    pub heading: Option<f64>,
    pub speed: Option<f64>,
    pub accuracy: Option<f64>,
}

/// The contract's decoded ping, field for field (`contract::Ping` is what
/// every ingest path decodes into).
impl From<contract::Ping> for RawPing {
    fn from(p: contract::Ping) -> Self {
        Self {
            lat: p.lat,
            lng: p.lng,
            ts: p.ts,
            heading: p.heading,
            speed: p.speed,
            accuracy: p.accuracy,
        }
    }
}

impl RawPing {
    /// Validates the fields for `driver_id`; `now_ms` is the server's receive
    /// time, used when the device sent no `ts` and to bound the ones it did.
    pub fn validate(self, driver_id: DriverId, now_ms: i64) -> Result<Ping, PingRejection> {
        let (Some(lat), Some(lng)) = (self.lat, self.lng) else {
            return Err(PingRejection::MissingCoordinates);
        };
        let position = LatLng::new(lat, lng)?;
        let recorded_at_ms = match self.ts {
            None => now_ms,
            Some(ts) if ts > now_ms + MAX_FUTURE_SKEW_MS || ts < now_ms - MAX_PING_AGE_MS => {
                return Err(PingRejection::BadTimestamp);
            }
            Some(ts) => ts,
        };
        let heading_deg = optional(self.heading, |h| (0.0..360.0).contains(&h))?;
        let speed_mps = optional(self.speed, |s| (0.0..=MAX_PLAUSIBLE_SPEED_MPS).contains(&s))?;
        let accuracy_m = optional(self.accuracy, |a| a >= 0.0)?;
        Ok(Ping {
            driver_id,
            position,
            recorded_at_ms,
            heading_deg,
            speed_mps,
            accuracy_m,
        })
    }
}

/// Checks an optional motion field as it is stored, after narrowing to
/// `f32`: 359.99999999° rounds to 360.0 and 1e300 m to infinity, which a
/// check on the `f64` would let through (found by `fuzz/`'s `ping` target).
fn optional(v: Option<f64>, ok: impl Fn(f32) -> bool) -> Result<Option<f32>, PingRejection> {
    match v.map(|x| x as f32) {
        None => Ok(None),
        Some(x) if x.is_finite() && ok(x) => Ok(Some(x)),
        Some(_) => Err(PingRejection::BadMotion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_763_700_000_000;

    fn raw(lat: f64, lng: f64) -> RawPing {
        RawPing {
            lat: Some(lat),
            lng: Some(lng),
            ..RawPing::default()
        }
    }

    fn check(input: RawPing, expected: Result<(), PingRejection>) {
        let got = input.validate(DriverId::new(), NOW).map(|_| ());
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn motion_is_checked_as_stored() {
        let with = |heading, speed, accuracy| RawPing {
            heading,
            speed,
            accuracy,
            ..raw(1.0, 1.0)
        };
        // Each rounds to an out-of-range f32 (360.0, infinity).
        check(
            with(Some(359.999_999_99), None, None),
            Err(PingRejection::BadMotion),
        );
        check(with(None, None, Some(1e300)), Err(PingRejection::BadMotion));
        check(with(None, Some(1e300), None), Err(PingRejection::BadMotion));
        // The largest values that stay in range once narrowed.
        check(with(Some(359.99), Some(60.0), Some(3e38)), Ok(()));
    }

    #[test]
    fn validation_table() {
        check(raw(57.7, 11.97), Ok(()));
        check(
            RawPing {
                lat: None,
                ..raw(0.0, 0.0)
            },
            Err(PingRejection::MissingCoordinates),
        );
        check(
            RawPing {
                lng: None,
                ..raw(0.0, 0.0)
            },
            Err(PingRejection::MissingCoordinates),
        );
        check(raw(f64::NAN, 1.0), Err(PingRejection::NonFinite));
        check(raw(91.0, 1.0), Err(PingRejection::OutOfRange));
        check(raw(1.0, 181.0), Err(PingRejection::OutOfRange));
        check(
            RawPing {
                ts: Some(NOW + 61_000),
                ..raw(1.0, 1.0)
            },
            Err(PingRejection::BadTimestamp),
        );
        check(
            RawPing {
                ts: Some(NOW - MAX_PING_AGE_MS - 1),
                ..raw(1.0, 1.0)
            },
            Err(PingRejection::BadTimestamp),
        );
        check(
            RawPing {
                ts: Some(NOW - 5_000),
                ..raw(1.0, 1.0)
            },
            Ok(()),
        );
        check(
            RawPing {
                heading: Some(360.0),
                ..raw(1.0, 1.0)
            },
            Err(PingRejection::BadMotion),
        );
        check(
            RawPing {
                heading: Some(359.9),
                ..raw(1.0, 1.0)
            },
            Ok(()),
        );
        check(
            RawPing {
                speed: Some(-1.0),
                ..raw(1.0, 1.0)
            },
            Err(PingRejection::BadMotion),
        );
        check(
            RawPing {
                speed: Some(61.0),
                ..raw(1.0, 1.0)
            },
            Err(PingRejection::BadMotion),
        );
        check(
            RawPing {
                accuracy: Some(f64::INFINITY),
                ..raw(1.0, 1.0)
            },
            Err(PingRejection::BadMotion),
        );
    }

    #[test]
    fn missing_ts_takes_server_time() {
        let p = raw(1.0, 2.0).validate(DriverId::new(), NOW).unwrap();
        assert_eq!(p.recorded_at_ms, NOW);
    }

    #[test]
    fn rejection_codes_are_unique() {
        let mut codes: Vec<_> = PingRejection::ALL.iter().map(|r| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), PingRejection::ALL.len());
    }
}
