//! The road graph file format (`.hxroads`), in memory: encode to and decode
//! from bytes. Files are read and written by [`crate::load`].
//!
//! Layout: the 8-byte magic `HXROADS\n`, a little-endian `u32` format
//! version, the node and segment counts (`u32` each), then one gzip stream
//! (its CRC guards the body) of columns, all little-endian:
//! node latitudes and longitudes (`i32`, 1e-7 degree), segment first and
//! second nodes (`u32`), lengths (`u32`, decimetres), speeds (`u8`, km/h),
//! road classes (`u8`, [`RoadClass`] codes) and direction flags (`u8`:
//! bit 0 forward, bit 1 backward). Columns compress better than records.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::Error;
use crate::geo::LatLng;
use crate::graph::{COORD_SCALE, RoadGraph, Segment, dequantize};
use crate::tags::RoadClass;

/// First bytes of every graph file.
pub const MAGIC: &[u8; 8] = b"HXROADS\n";

/// The format version this build writes and reads. Bump it on any change
/// of the layout; old files are then refused with a clear error.
pub const VERSION: u32 = 1;

/// Magic, version, node count, segment count.
const HEADER_LEN: usize = 8 + 4 + 4 + 4;

/// Bytes per node and per segment in the body.
const NODE_BYTES: usize = 8;
const SEGMENT_BYTES: usize = 15;

/// Largest body accepted, bytes: a country-sized graph (~100M segments) is
/// below it, and a corrupt count cannot make the decoder allocate without
/// bound.
const MAX_BODY_BYTES: u64 = 4 << 30;

/// Encodes a graph as a file body.
pub fn encode(graph: &RoadGraph) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + graph.node_count() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(graph.node_count() as u32).to_le_bytes());
    out.extend_from_slice(&(graph.segments().len() as u32).to_le_bytes());
    let mut body = Vec::with_capacity(
        graph.node_count() * NODE_BYTES + graph.segments().len() * SEGMENT_BYTES,
    );
    let nodes = graph.nodes();
    // Node coordinates are on the 1e-7 grid (`RoadGraph::from_ways`), so
    // rounding gives back the exact integers.
    for p in nodes {
        body.extend_from_slice(&((p.lat * COORD_SCALE).round() as i32).to_le_bytes());
    }
    for p in nodes {
        body.extend_from_slice(&((p.lng * COORD_SCALE).round() as i32).to_le_bytes());
    }
    let segments = graph.segments();
    for s in segments {
        body.extend_from_slice(&s.a.to_le_bytes());
    }
    for s in segments {
        body.extend_from_slice(&s.b.to_le_bytes());
    }
    for s in segments {
        body.extend_from_slice(&s.length_dm.to_le_bytes());
    }
    body.extend(segments.iter().map(|s| s.speed_kmh));
    body.extend(segments.iter().map(|s| s.class as u8));
    body.extend(
        segments
            .iter()
            .map(|s| u8::from(s.forward) | u8::from(s.backward) << 1),
    );
    let mut gz = GzEncoder::new(out, Compression::best());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&body);
    gz.finish().unwrap_or_default()
}

/// Decodes and validates a graph file.
pub fn decode(bytes: &[u8]) -> Result<RoadGraph, Error> {
    let bad = |reason: &str| Error::Format(reason.to_owned());
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(bad("not a hexdash road graph (wrong magic)"));
    }
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = word(8);
    if version != VERSION {
        return Err(Error::Version {
            found: version,
            supported: VERSION,
        });
    }
    let (n, m) = (word(12) as usize, word(16) as usize);
    let expected = (n as u64) * NODE_BYTES as u64 + (m as u64) * SEGMENT_BYTES as u64;
    if expected > MAX_BODY_BYTES {
        return Err(bad("counts too large"));
    }
    // Grown as the stream inflates, not sized by the header: a damaged
    // count must not make us allocate gigabytes up front.
    let mut body = Vec::new();
    GzDecoder::new(&bytes[HEADER_LEN..])
        .take(expected + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::Format(format!("body: {e}")))?;
    if body.len() as u64 != expected {
        return Err(bad("body length does not match the counts"));
    }
    let mut at = 0;
    let mut column = |width: usize, count: usize| {
        let slice = &body[at..at + width * count];
        at += width * count;
        slice
    };
    let i32s = |s: &[u8]| -> Vec<i32> {
        s.chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let u32s = |s: &[u8]| -> Vec<u32> {
        s.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let lats = i32s(column(4, n));
    let lngs = i32s(column(4, n));
    let (a, b, len) = (u32s(column(4, m)), u32s(column(4, m)), u32s(column(4, m)));
    let (speed, class, flags) = (column(1, m), column(1, m), column(1, m));
    let mut nodes = Vec::with_capacity(n);
    for (&lat, &lng) in lats.iter().zip(&lngs) {
        let p = dequantize((lat, lng));
        LatLng::new(p.lat, p.lng).ok_or_else(|| bad("node position out of range"))?;
        nodes.push(p);
    }
    let mut segments = Vec::with_capacity(m);
    for i in 0..m {
        if a[i] as usize >= n || b[i] as usize >= n {
            return Err(bad("segment refers to a missing node"));
        }
        if speed[i] == 0 || flags[i] & 3 == 0 || flags[i] > 3 {
            return Err(bad("segment without speed or direction"));
        }
        segments.push(Segment {
            a: a[i],
            b: b[i],
            length_dm: len[i],
            speed_kmh: speed[i],
            class: RoadClass::from_code(class[i]).ok_or_else(|| bad("unknown road class"))?,
            forward: flags[i] & 1 != 0,
            backward: flags[i] & 2 != 0,
        });
    }
    Ok(RoadGraph::from_parts(nodes, segments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::way;

    fn sample() -> RoadGraph {
        RoadGraph::from_ways([
            way(
                &[(57.70, 11.97), (57.701, 11.97), (57.701, 11.971)],
                true,
                true,
            ),
            way(&[(57.701, 11.971), (57.70, 11.97)], true, false),
        ])
        .unwrap()
    }

    #[test]
    fn a_graph_round_trips() {
        let graph = sample();
        let bytes = encode(&graph);
        assert_eq!(decode(&bytes).unwrap(), graph);
    }

    #[test]
    fn damaged_files_are_refused() {
        let bytes = encode(&sample());
        assert!(matches!(decode(b"hello"), Err(Error::Format(_))));
        let mut wrong_version = bytes.clone();
        wrong_version[8] = 99;
        assert!(matches!(
            decode(&wrong_version),
            Err(Error::Version { found: 99, .. })
        ));
        let mut wrong_count = bytes.clone();
        wrong_count[12] += 1;
        assert!(matches!(decode(&wrong_count), Err(Error::Format(_))));
        let truncated = &bytes[..bytes.len() - 10];
        assert!(matches!(decode(truncated), Err(Error::Format(_))));
    }
}
