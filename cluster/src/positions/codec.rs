//! The compact binary form of drivers' state between nodes: a batch (one
//! `PUBLISH` per region and interval) and a snapshot entry (one hash field
//! per driver). Fixed-size little-endian records, so a batch of 1,000
//! drivers is 47 kB and decoding is a bounds check and a few loads.
//!
//! Batch: `[version u8][node id length u8][node id][base_ms i64]` then
//! records. Snapshot entry: `[base_ms i64][record]`. Record
//! ([`RECORD_LEN`] bytes): driver id (16), fix time − base (i32), seen
//! time − base (i32; `i32::MIN`: not heard from), lat and lng in 1e-7°
//! (i32 each, ≈ 1 cm), heading in 0.01° (u16), speed in cm/s (u16),
//! accuracy in dm (u16, saturating), flags (u8: fix, available),
//! declaration time (i64, 0: never). `u16::MAX` means "not sent".
//!
//! Input is untrusted (anything may publish to Redis): every field is
//! checked and a bad record is an error, never a panic.

use engine::{Availability, DriverId, LatLng, Replica, ReplicaFix};

/// The format's version; a batch of another version is refused.
pub const VERSION: u8 = 1;
/// Bytes per record.
pub const RECORD_LEN: usize = 47;
/// "Not sent" for the u16 fields.
const NONE16: u16 = u16::MAX;
/// "Not heard from" for the seen time.
const NEVER32: i32 = i32::MIN;
const FLAG_FIX: u8 = 1;
const FLAG_AVAILABLE: u8 = 2;
/// 1e7: degrees to the wire's units.
const DEG_SCALE: f64 = 1e7;

/// Why bytes are not a batch or a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than its header")]
    Truncated,
    #[error("unknown version {0}")]
    Version(u8),
    #[error("records are not whole")]
    Ragged,
    #[error("a position out of range")]
    Position,
    #[error("a time out of range")]
    Time,
    #[error("the node id is not UTF-8")]
    NodeId,
}

/// Starts a batch of `node`'s records relative to `base_ms` (node ids are
/// at most 64 bytes, checked by the config).
pub fn batch_header(buf: &mut Vec<u8>, node: &str, base_ms: i64) {
    let node = &node.as_bytes()[..node.len().min(u8::MAX as usize)];
    buf.push(VERSION);
    buf.push(node.len() as u8);
    buf.extend_from_slice(node);
    buf.extend_from_slice(&base_ms.to_le_bytes());
}

/// Appends `replica` as a record relative to `base_ms`. Times further from
/// the base than an i32 of milliseconds (24 days) saturate.
pub fn put_record(buf: &mut Vec<u8>, r: &Replica, base_ms: i64) {
    let delta = |t: i64| -> i32 {
        i32::try_from(t - base_ms).unwrap_or(if t < base_ms { NEVER32 + 1 } else { i32::MAX })
    };
    buf.extend_from_slice(r.driver_id.as_uuid().as_bytes());
    let (recorded, lat, lng, heading, speed, accuracy) = match r.fix {
        Some(f) => (
            delta(f.recorded_at_ms),
            (f.position.lat * DEG_SCALE).round() as i32,
            (f.position.lng * DEG_SCALE).round() as i32,
            f.heading_deg
                .map_or(NONE16, |h| (h * 100.0).round().clamp(0.0, 35_999.0) as u16),
            f.speed_mps
                .map_or(NONE16, |s| (s * 100.0).round().clamp(0.0, 65_534.0) as u16),
            f.accuracy_m
                .map_or(NONE16, |a| (a * 10.0).round().clamp(0.0, 65_534.0) as u16),
        ),
        None => (0, 0, 0, NONE16, NONE16, NONE16),
    };
    let seen = if r.seen_at_ms > 0 {
        delta(r.seen_at_ms)
    } else {
        NEVER32
    };
    buf.extend_from_slice(&recorded.to_le_bytes());
    buf.extend_from_slice(&seen.to_le_bytes());
    buf.extend_from_slice(&lat.to_le_bytes());
    buf.extend_from_slice(&lng.to_le_bytes());
    buf.extend_from_slice(&heading.to_le_bytes());
    buf.extend_from_slice(&speed.to_le_bytes());
    buf.extend_from_slice(&accuracy.to_le_bytes());
    let mut flags = 0;
    if r.fix.is_some() {
        flags |= FLAG_FIX;
    }
    if r.availability == Availability::Available {
        flags |= FLAG_AVAILABLE;
    }
    buf.push(flags);
    buf.extend_from_slice(&r.availability_at_ms.to_le_bytes());
}

/// A decoded batch header and its records, still encoded.
#[derive(Debug)]
pub struct Batch<'a> {
    /// The publishing node.
    pub node: &'a str,
    /// What the records' times are relative to.
    pub base_ms: i64,
    records: &'a [u8],
}

impl<'a> Batch<'a> {
    /// Reads a batch's header and checks its records are whole.
    pub fn parse(bytes: &'a [u8]) -> Result<Batch<'a>, DecodeError> {
        let (&version, rest) = bytes.split_first().ok_or(DecodeError::Truncated)?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let (&len, rest) = rest.split_first().ok_or(DecodeError::Truncated)?;
        let len = usize::from(len);
        if rest.len() < len + 8 {
            return Err(DecodeError::Truncated);
        }
        let node = std::str::from_utf8(&rest[..len]).map_err(|_| DecodeError::NodeId)?;
        let base_ms = i64::from_le_bytes(array(&rest[len..len + 8]));
        let records = &rest[len + 8..];
        if records.len() % RECORD_LEN != 0 {
            return Err(DecodeError::Ragged);
        }
        Ok(Batch {
            node,
            base_ms,
            records,
        })
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len() / RECORD_LEN
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Its records, each decoded or refused.
    pub fn replicas(&self) -> impl Iterator<Item = Result<Replica, DecodeError>> + '_ {
        self.records
            .chunks_exact(RECORD_LEN)
            .map(|r| record(r, self.base_ms))
    }
}

/// A snapshot entry: `replica` relative to its own base.
pub fn snapshot_entry(r: &Replica, base_ms: i64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(8 + RECORD_LEN);
    buf.extend_from_slice(&base_ms.to_le_bytes());
    put_record(&mut buf, r, base_ms);
    buf
}

/// Reads a snapshot entry.
pub fn parse_snapshot_entry(bytes: &[u8]) -> Result<Replica, DecodeError> {
    if bytes.len() != 8 + RECORD_LEN {
        return Err(DecodeError::Ragged);
    }
    record(&bytes[8..], i64::from_le_bytes(array(&bytes[..8])))
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

fn record(b: &[u8], base_ms: i64) -> Result<Replica, DecodeError> {
    let i32_at = |at: usize| i32::from_le_bytes(array(&b[at..at + 4]));
    let u16_at = |at: usize| u16::from_le_bytes(array(&b[at..at + 2]));
    let optional = |v: u16, scale: f32| (v != NONE16).then(|| f32::from(v) / scale);
    let driver_id = DriverId::from(uuid::Uuid::from_bytes(array(&b[..16])));
    let recorded = i32_at(16);
    let seen = i32_at(20);
    let flags = b[38];
    let availability_at_ms = i64::from_le_bytes(array(&b[39..47]));
    if availability_at_ms < 0 || base_ms < 0 {
        return Err(DecodeError::Time);
    }
    let fix = if flags & FLAG_FIX != 0 {
        let lat = f64::from(i32_at(24)) / DEG_SCALE;
        let lng = f64::from(i32_at(28)) / DEG_SCALE;
        let position = LatLng::new(lat, lng).map_err(|_| DecodeError::Position)?;
        Some(ReplicaFix {
            position,
            recorded_at_ms: base_ms + i64::from(recorded),
            heading_deg: optional(u16_at(32), 100.0),
            speed_mps: optional(u16_at(34), 100.0),
            accuracy_m: optional(u16_at(36), 10.0),
        })
    } else {
        None
    };
    Ok(Replica {
        driver_id,
        fix,
        seen_at_ms: if seen == NEVER32 {
            0
        } else {
            base_ms + i64::from(seen)
        },
        availability: if flags & FLAG_AVAILABLE != 0 {
            Availability::Available
        } else {
            Availability::Offline
        },
        availability_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(fix: bool) -> Replica {
        Replica {
            driver_id: DriverId::new(),
            fix: fix.then(|| ReplicaFix {
                position: LatLng::new(57.708_870_1, -11.974_560_3).unwrap(),
                recorded_at_ms: 1_763_700_000_123,
                heading_deg: Some(359.99),
                speed_mps: Some(8.3),
                accuracy_m: None,
            }),
            seen_at_ms: 1_763_700_000_200,
            availability: Availability::Available,
            availability_at_ms: 1_763_600_000_000,
        }
    }

    #[test]
    fn a_batch_round_trips_within_the_wire_precision() {
        let base = 1_763_700_000_000;
        let (a, b) = (replica(true), replica(false));
        let mut buf = Vec::new();
        batch_header(&mut buf, "node-a", base);
        put_record(&mut buf, &a, base);
        put_record(&mut buf, &b, base);
        let batch = Batch::parse(&buf).unwrap();
        assert_eq!(
            (batch.node, batch.base_ms, batch.len()),
            ("node-a", base, 2)
        );
        let got: Vec<Replica> = batch.replicas().map(Result::unwrap).collect();
        let fix = got[0].fix.unwrap();
        let sent = a.fix.unwrap();
        assert!((fix.position.lat - sent.position.lat).abs() < 1e-7);
        assert!((fix.position.lng - sent.position.lng).abs() < 1e-7);
        assert_eq!(fix.recorded_at_ms, sent.recorded_at_ms);
        assert!((fix.heading_deg.unwrap() - 359.99).abs() < 0.01);
        assert!((fix.speed_mps.unwrap() - 8.3).abs() < 0.01);
        assert_eq!(fix.accuracy_m, None);
        assert_eq!(got[0].seen_at_ms, a.seen_at_ms);
        assert_eq!(got[0].availability_at_ms, a.availability_at_ms);
        assert_eq!(got[1].fix, None);
        assert_eq!(got[1].driver_id, b.driver_id);
        assert_eq!(
            buf.len(),
            2 + "node-a".len() + 8 + 2 * RECORD_LEN,
            "fixed-size records"
        );
    }

    #[test]
    fn a_declaration_alone_says_nothing_of_presence() {
        let r = Replica {
            seen_at_ms: 0,
            availability: Availability::Offline,
            ..replica(false)
        };
        let entry = snapshot_entry(&r, 1_000);
        assert_eq!(parse_snapshot_entry(&entry), Ok(r));
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let base = 5_000;
        let mut good = Vec::new();
        batch_header(&mut good, "n", base);
        put_record(&mut good, &replica(true), base);
        assert_eq!(Batch::parse(&[]).unwrap_err(), DecodeError::Truncated);
        assert_eq!(Batch::parse(&[9]).unwrap_err(), DecodeError::Version(9));
        assert_eq!(
            Batch::parse(&[VERSION, 5, b'a']).unwrap_err(),
            DecodeError::Truncated
        );
        assert_eq!(
            Batch::parse(&good[..good.len() - 1]).unwrap_err(),
            DecodeError::Ragged
        );
        // A latitude of 100°.
        let lat_at = 2 + 1 + 8 + 24;
        let mut bad = good.clone();
        bad[lat_at..lat_at + 4].copy_from_slice(&1_000_000_000i32.to_le_bytes());
        let batch = Batch::parse(&bad).unwrap();
        assert_eq!(
            batch.replicas().next().unwrap().unwrap_err(),
            DecodeError::Position
        );
        // Every prefix of a good batch either parses or is refused.
        for cut in 0..good.len() {
            let _ = Batch::parse(&good[..cut]).map(|b| b.replicas().count());
        }
        assert_eq!(parse_snapshot_entry(&[0; 3]), Err(DecodeError::Ragged));
    }
}
