//! The driver ping on the wire ([`contract::Ping`]:
//! `{"lat","lng","ts","heading","speed","accuracy"}`), written by hand into a
//! reused buffer so the generator allocates nothing per ping (a test checks
//! the contract's decoder reads it as meant), and read back by the peer
//! bridge through the contract's decoder.

use std::io::Write;

use crate::walker::Fix;

/// Appends the JSON ping for `fix` recorded at `ts_ms` (Unix ms). Six
/// decimals of a degree are about 0.1 m, finer than any phone's GPS.
pub fn write_json(out: &mut Vec<u8>, fix: &Fix, ts_ms: i64) {
    // Whole degrees in [0, 360): 359.6 must become 0, not 360 (refused).
    let heading = fix.heading_deg.round().rem_euclid(360.0);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"lat":{:.6},"lng":{:.6},"ts":{},"heading":{heading:.0},"speed":{:.1},"accuracy":5}}"#,
        fix.position.lat, fix.position.lng, ts_ms, fix.speed_mps
    );
}

/// The fields the bridge needs from a ping.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    /// Degrees north.
    pub lat: f64,
    /// Degrees east.
    pub lng: f64,
    /// Device time, Unix ms, when the ping had one.
    pub ts: Option<i64>,
}

/// The bridge's view of a ping; `None` when it is not a contract ping with
/// both coordinates.
pub fn decode(payload: &[u8]) -> Option<Decoded> {
    let ping: contract::Ping = serde_json::from_slice(payload).ok()?;
    Some(Decoded {
        lat: ping.lat?,
        lng: ping.lng?,
        ts: ping.ts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::LatLng;

    #[test]
    fn encodes_contract_json_and_decodes_it() {
        let fix = Fix {
            position: LatLng {
                lat: 57.708_912_3,
                lng: 11.974_6,
            },
            heading_deg: 89.6,
            speed_mps: 8.34,
        };
        let mut out = Vec::new();
        write_json(&mut out, &fix, 1_763_700_000_123);
        let text = std::str::from_utf8(&out).expect("utf8");
        assert_eq!(
            text,
            r#"{"lat":57.708912,"lng":11.974600,"ts":1763700000123,"heading":90,"speed":8.3,"accuracy":5}"#
        );
        let v: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        assert_eq!(v["ts"], 1_763_700_000_123_i64);
        assert_eq!(
            decode(&out),
            Some(Decoded {
                lat: 57.708912,
                lng: 11.9746,
                ts: Some(1_763_700_000_123)
            })
        );
        assert_eq!(decode(b"nope"), None);
        // The hand-written encoder and the contract agree: its text is the
        // contract ping of the rounded values, field for field.
        let decoded: contract::Ping = serde_json::from_slice(&out).expect("a contract ping");
        assert_eq!(
            decoded,
            contract::Ping {
                lat: Some(57.708912),
                lng: Some(11.9746),
                ts: Some(1_763_700_000_123),
                heading: Some(90.0),
                speed: Some(8.3),
                accuracy: Some(5.0),
            }
        );
        for (heading, expected) in [(359.6, "0"), (0.4, "0"), (359.4, "359"), (180.5, "181")] {
            out.clear();
            write_json(
                &mut out,
                &Fix {
                    heading_deg: heading,
                    ..fix
                },
                1,
            );
            let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
            assert_eq!(v["heading"].to_string(), expected, "{heading}");
        }
    }
}
