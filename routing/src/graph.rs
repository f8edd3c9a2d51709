//! The road graph: nodes where road geometry bends or meets, segments
//! between consecutive points of a way (with class, speed and allowed
//! directions), and the directed arcs queries run on.

use rustc_hash::FxHashMap;

use crate::Error;
use crate::geo::LatLng;
use crate::tags::{Directions, RoadClass};

/// Number of road classes ([`RoadClass::ALL`]).
pub const CLASSES: usize = RoadClass::ALL.len();

/// Segments shorter than this are duplicate points in the source data;
/// they would only add nodes.
const MIN_SEGMENT_M: f64 = 0.05;

/// Coordinates are stored in units of 1e-7 degree (OSM's own precision,
/// about 1 cm), so a graph survives its file format unchanged.
pub(crate) const COORD_SCALE: f64 = 1e7;

/// A way as the loaders hand it over: a polyline with its tags interpreted.
#[derive(Debug, Clone)]
pub struct Way {
    /// Road class from the `highway` tag.
    pub class: RoadClass,
    /// Travel speed, km/h (`maxspeed` or the class default).
    pub speed_kmh: u8,
    /// Allowed directions relative to the order of `points`.
    pub directions: Directions,
    /// The geometry; consecutive points become segments.
    pub points: Vec<LatLng>,
}

/// A straight piece of road between two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First node (in the way's direction).
    pub a: u32,
    /// Second node.
    pub b: u32,
    /// Length, decimetres (integer, so travel times are exact and
    /// reproducible across machines).
    pub length_dm: u32,
    /// Travel speed, km/h, never 0.
    pub speed_kmh: u8,
    /// Road class, kept so speeds per class can be changed later.
    pub class: RoadClass,
    /// Traffic may go from `a` to `b`.
    pub forward: bool,
    /// Traffic may go from `b` to `a`.
    pub backward: bool,
}

impl Segment {
    /// Time to drive the whole segment, milliseconds (at least 1, so the
    /// graph has no zero-weight cycles).
    pub fn time_ms(&self) -> u32 {
        // dm / (km/h) = 0.36 s = 360 ms per (dm per km/h); fits in u64.
        let ms = u64::from(self.length_dm) * 360 / u64::from(self.speed_kmh.max(1));
        u32::try_from(ms).unwrap_or(u32::MAX).max(1)
    }
}

/// A directed arc of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arc {
    /// Node the arc leads to.
    pub head: u32,
    /// Travel time, milliseconds.
    pub time_ms: u32,
}

/// A directed road graph: nodes with positions, the segments they came
/// from, and outgoing arcs in compressed (CSR) form.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadGraph {
    nodes: Vec<LatLng>,
    segments: Vec<Segment>,
    /// `arcs[first_out[n]..first_out[n + 1]]` leave node `n`.
    first_out: Vec<u32>,
    arcs: Vec<Arc>,
}

impl RoadGraph {
    /// Builds a graph from ways. Ways join where they share exactly equal
    /// coordinates (after rounding to 1e-7 degree). Only the largest
    /// strongly connected component is kept, so every kept node can reach
    /// every other one and a snapped point is never stuck on an island or
    /// behind a one-way dead end.
    pub fn from_ways(ways: impl IntoIterator<Item = Way>) -> Result<RoadGraph, Error> {
        let mut ids: FxHashMap<(i32, i32), u32> = FxHashMap::default();
        let mut nodes: Vec<LatLng> = Vec::new();
        let mut segments: Vec<Segment> = Vec::new();
        for way in ways {
            let Directions { forward, backward } = way.directions;
            if !(forward || backward) || way.speed_kmh == 0 {
                continue;
            }
            let mut prev: Option<u32> = None;
            for p in way.points {
                let Some(key) = quantize(p) else { continue };
                let id = *ids.entry(key).or_insert_with(|| {
                    nodes.push(dequantize(key));
                    // The id space is u32: city extracts have far fewer
                    // points (Gothenburg ~50k, a country ~100M).
                    (nodes.len() - 1) as u32
                });
                if let Some(a) = prev {
                    let length_m = nodes[a as usize].distance_m(nodes[id as usize]);
                    if a == id || length_m < MIN_SEGMENT_M {
                        continue; // keep `prev`: the duplicate point is skipped
                    }
                    segments.push(Segment {
                        a,
                        b: id,
                        length_dm: (length_m * 10.0).round() as u32,
                        speed_kmh: way.speed_kmh,
                        class: way.class,
                        forward,
                        backward,
                    });
                }
                prev = Some(id);
            }
        }
        let keep = largest_strong_component(nodes.len(), &segments);
        let mut remap = vec![u32::MAX; nodes.len()];
        let mut kept = Vec::new();
        for (i, p) in nodes.iter().enumerate() {
            if keep[i] {
                remap[i] = kept.len() as u32;
                kept.push(*p);
            }
        }
        let segments: Vec<Segment> = segments
            .into_iter()
            .filter(|s| keep[s.a as usize] && keep[s.b as usize])
            .map(|s| Segment {
                a: remap[s.a as usize],
                b: remap[s.b as usize],
                ..s
            })
            .collect();
        if segments.is_empty() {
            return Err(Error::NoRoads);
        }
        Ok(RoadGraph::from_parts(kept, segments))
    }

    /// Assembles a graph from validated nodes and segments (endpoints in
    /// range), deriving the arcs.
    pub(crate) fn from_parts(nodes: Vec<LatLng>, segments: Vec<Segment>) -> RoadGraph {
        let mut directed: Vec<(u32, Arc)> = Vec::with_capacity(segments.len() * 2);
        for s in &segments {
            let time_ms = s.time_ms();
            if s.forward {
                directed.push((s.a, Arc { head: s.b, time_ms }));
            }
            if s.backward {
                directed.push((s.b, Arc { head: s.a, time_ms }));
            }
        }
        let (first_out, arcs) = csr(nodes.len(), directed);
        RoadGraph {
            nodes,
            segments,
            first_out,
            arcs,
        }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of directed arcs.
    pub fn arc_count(&self) -> usize {
        self.arcs.len()
    }

    /// The position of `node`.
    pub fn position(&self, node: u32) -> LatLng {
        self.nodes[node as usize]
    }

    /// All node positions, by node id.
    pub fn nodes(&self) -> &[LatLng] {
        &self.nodes
    }

    /// All segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Arcs leaving `node`.
    pub fn arcs_from(&self, node: u32) -> &[Arc] {
        let n = node as usize;
        &self.arcs[self.first_out[n] as usize..self.first_out[n + 1] as usize]
    }

    /// The segment each arc comes from, in the order of the arcs (arcs of
    /// node `n` are `arc_segments()[first_arc(n)..first_arc(n + 1)]`).
    pub fn arc_segments(&self) -> Vec<u32> {
        // `from_parts`' order: per segment forward then backward, grouped
        // by tail with a stable sort (what `csr` does).
        let mut directed: Vec<(u32, u32)> = Vec::with_capacity(self.arcs.len());
        for (i, s) in self.segments.iter().enumerate() {
            // Fewer than 2^32 segments (ids are u32).
            if s.forward {
                directed.push((s.a, i as u32));
            }
            if s.backward {
                directed.push((s.b, i as u32));
            }
        }
        directed.sort_by_key(|(tail, _)| *tail);
        directed.into_iter().map(|(_, seg)| seg).collect()
    }

    /// Index of the first arc leaving `node` (see [`RoadGraph::arc_segments`]).
    pub fn first_arc(&self, node: u32) -> usize {
        self.first_out[node as usize] as usize
    }

    /// The same roads with each class's travel times multiplied by
    /// `time_factors[class]` (speeds divided by it, whole km/h from 1 to
    /// 255): the graph learned speeds describe (`crate::learn`).
    pub fn with_time_factors(&self, time_factors: &[f64; CLASSES]) -> RoadGraph {
        let segments = self
            .segments
            .iter()
            .map(|s| {
                let f = time_factors[s.class as usize];
                let f = if f.is_finite() && f > 0.0 { f } else { 1.0 };
                let speed = (f64::from(s.speed_kmh) / f).round().clamp(1.0, 255.0) as u8;
                Segment {
                    speed_kmh: speed,
                    ..*s
                }
            })
            .collect();
        RoadGraph::from_parts(self.nodes.clone(), segments)
    }

    /// The nominal driving time of a path through `nodes` (consecutive
    /// nodes joined by an arc; the fastest one where several join them),
    /// split by road class, milliseconds.
    pub fn class_times_ms(&self, nodes: &[u32], arc_segments: &[u32]) -> [u64; CLASSES] {
        let mut by_class = [0u64; CLASSES];
        for pair in nodes.windows(2) {
            let (u, v) = (pair[0], pair[1]);
            let first = self.first_arc(u);
            let best = self
                .arcs_from(u)
                .iter()
                .enumerate()
                .filter(|(_, a)| a.head == v)
                .min_by_key(|(_, a)| a.time_ms);
            if let Some((k, a)) = best {
                let seg = self.segments[arc_segments[first + k] as usize];
                by_class[seg.class as usize] += u64::from(a.time_ms);
            }
        }
        by_class
    }

    /// Total length of the road segments, kilometres.
    pub fn length_km(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| f64::from(s.length_dm))
            .sum::<f64>()
            / 10_000.0
    }
}

/// Groups `(tail, arc)` pairs by tail into CSR offsets and arcs, each
/// node's arcs sorted by head (deterministic order).
pub(crate) fn csr<T: Copy>(n: usize, mut items: Vec<(u32, T)>) -> (Vec<u32>, Vec<T>) {
    items.sort_by_key(|(tail, _)| *tail);
    let mut first = vec![0u32; n + 1];
    for (tail, _) in &items {
        first[*tail as usize + 1] += 1;
    }
    for i in 0..n {
        first[i + 1] += first[i];
    }
    (first, items.into_iter().map(|(_, a)| a).collect())
}

fn quantize(p: LatLng) -> Option<(i32, i32)> {
    LatLng::new(p.lat, p.lng)?;
    // In range after the check above: |lng| * 1e7 <= 1.8e9 < i32::MAX.
    Some((
        (p.lat * COORD_SCALE).round() as i32,
        (p.lng * COORD_SCALE).round() as i32,
    ))
}

pub(crate) fn dequantize((lat, lng): (i32, i32)) -> LatLng {
    LatLng {
        lat: f64::from(lat) / COORD_SCALE,
        lng: f64::from(lng) / COORD_SCALE,
    }
}

/// Marks the nodes of the largest strongly connected component
/// (Kosaraju, with explicit stacks so a long road does not overflow the
/// call stack).
fn largest_strong_component(n: usize, segments: &[Segment]) -> Vec<bool> {
    let mut forward = Vec::new();
    let mut backward = Vec::new();
    for s in segments {
        if s.forward {
            forward.push((s.a, s.b));
            backward.push((s.b, s.a));
        }
        if s.backward {
            forward.push((s.b, s.a));
            backward.push((s.a, s.b));
        }
    }
    let (fwd_first, fwd) = csr(n, forward);
    let (bwd_first, bwd) = csr(n, backward);
    let out = |first: &[u32], v: u32| first[v as usize] as usize..first[v as usize + 1] as usize;
    // Pass 1: finishing order on the forward graph.
    let mut visited = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut stack: Vec<(u32, usize)> = Vec::new();
    for root in 0..n as u32 {
        if visited[root as usize] {
            continue;
        }
        visited[root as usize] = true;
        stack.push((root, fwd_first[root as usize] as usize));
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            let end = out(&fwd_first, v).end;
            if *next < end {
                let w = fwd[*next];
                *next += 1;
                if !visited[w as usize] {
                    visited[w as usize] = true;
                    stack.push((w, fwd_first[w as usize] as usize));
                }
            } else {
                order.push(v);
                stack.pop();
            }
        }
    }
    // Pass 2: components on the reversed graph, in reverse finishing order.
    let mut component = vec![u32::MAX; n];
    let mut sizes: Vec<usize> = Vec::new();
    let mut todo: Vec<u32> = Vec::new();
    for &root in order.iter().rev() {
        if component[root as usize] != u32::MAX {
            continue;
        }
        let id = sizes.len() as u32;
        sizes.push(0);
        component[root as usize] = id;
        todo.push(root);
        while let Some(v) = todo.pop() {
            sizes[id as usize] += 1;
            for &w in &bwd[out(&bwd_first, v)] {
                if component[w as usize] == u32::MAX {
                    component[w as usize] = id;
                    todo.push(w);
                }
            }
        }
    }
    let Some(best) = (0..sizes.len()).max_by_key(|&c| sizes[c]) else {
        return Vec::new();
    };
    component.iter().map(|&c| c as usize == best).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn way(points: &[(f64, f64)], forward: bool, backward: bool) -> Way {
        Way {
            class: RoadClass::Residential,
            speed_kmh: 36, // 10 m/s: 1 m takes 100 ms
            directions: Directions { forward, backward },
            points: points
                .iter()
                .map(|&(lat, lng)| LatLng { lat, lng })
                .collect(),
        }
    }

    #[test]
    fn ways_join_at_equal_coordinates_and_islands_are_dropped() {
        let graph = RoadGraph::from_ways([
            way(&[(57.700, 11.970), (57.701, 11.970)], true, true),
            way(
                &[(57.701, 11.970), (57.701, 11.971), (57.701, 11.971)],
                true,
                true,
            ),
            // an island far away
            way(&[(57.800, 11.970), (57.801, 11.970)], true, true),
        ])
        .unwrap();
        assert_eq!(graph.node_count(), 3);
        assert_eq!(graph.segments().len(), 2);
        assert_eq!(graph.arc_count(), 4);
    }

    #[test]
    fn a_one_way_dead_end_is_not_strongly_connected() {
        let graph = RoadGraph::from_ways([
            way(
                &[(57.700, 11.970), (57.701, 11.970), (57.702, 11.970)],
                true,
                true,
            ),
            // leads out of the component and never back
            way(&[(57.702, 11.970), (57.703, 11.970)], true, false),
        ])
        .unwrap();
        assert_eq!(graph.node_count(), 3);
    }

    #[test]
    fn segment_time_is_length_over_speed() {
        let s = Segment {
            a: 0,
            b: 1,
            length_dm: 1000,
            speed_kmh: 36,
            class: RoadClass::Residential,
            forward: true,
            backward: true,
        };
        assert_eq!(s.time_ms(), 10_000);
        assert_eq!(Segment { length_dm: 0, ..s }.time_ms(), 1);
    }

    #[test]
    fn no_roads_is_an_error() {
        assert!(matches!(RoadGraph::from_ways([]), Err(Error::NoRoads)));
    }
}
