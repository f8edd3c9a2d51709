//! The driver ping on the wire (the contract's JSON:
//! `{"lat","lng","ts","heading","speed","accuracy"}`), written by hand into a
//! reused buffer so the generator allocates nothing per ping, and read back
//! by the peer bridge.

use std::io::Write;

use serde::Deserialize;

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
#[derive(Debug, Deserialize, PartialEq)]
pub struct Decoded {
    pub lat: f64,
    pub lng: f64,
    pub ts: Option<i64>,
}

pub fn decode(payload: &[u8]) -> Option<Decoded> {
    serde_json::from_slice(payload).ok()
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
