//! The city: a road graph with its router, where things stand on it, and
//! the paths couriers drive.
//!
//! Everything the simulation places (restaurants, doors, couriers between
//! trips) stands on a graph node, so a courier's drive is a node path and
//! the matcher's road times (snapped positions on the same graph) agree
//! with what the courier then drives.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use routing::{LatLng, RoadGraph, Router};

/// Metres per degree of latitude (mean Earth radius).
const M_PER_DEG_LAT: f64 = routing::geo::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// Tries at drawing a point inside a disk that lies on the map before
/// settling for the disk's centre (a disk mostly over water).
const PLACE_TRIES: usize = 50;

/// A road graph ready for the simulation: the router the matcher uses and
/// the graph couriers drive.
#[derive(Clone)]
pub struct City {
    router: Arc<Router>,
    centre: LatLng,
}

impl City {
    /// Reads a graph file (`data/*.hxroads`) and contracts it (about a
    /// second for Gothenburg).
    pub fn load(path: &Path) -> Result<City, routing::Error> {
        let graph = routing::load::read_graph(path)?;
        Ok(City::new(Arc::new(Router::new(
            graph,
            routing::Config::default(),
        ))))
    }

    /// The city of `router`'s graph; its centre is the mean of the nodes.
    pub fn new(router: Arc<Router>) -> City {
        let nodes = router.graph().nodes();
        let n = nodes.len().max(1) as f64;
        let (lat, lng) = nodes
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p.lat / n, b + p.lng / n));
        City {
            router,
            centre: LatLng { lat, lng },
        }
    }

    /// The router the matcher measures road times with.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// The road graph.
    pub fn graph(&self) -> &RoadGraph {
        self.router.graph()
    }

    /// Where restaurants cluster: the mean position of the graph's nodes.
    pub fn centre(&self) -> LatLng {
        self.centre
    }

    /// Position of a node.
    pub fn position(&self, node: u32) -> LatLng {
        self.graph().position(node)
    }

    /// A node near a point drawn uniformly from the disk of `radius_m`
    /// around `centre` (the node nearest to where the point snaps onto a
    /// road); `fallback` when no draw lands near a road.
    pub fn node_in_disk(
        &self,
        rng: &mut impl Rng,
        centre: LatLng,
        radius_m: f64,
        fallback: u32,
    ) -> u32 {
        let m_per_deg_lng = M_PER_DEG_LAT * centre.lat.to_radians().cos().max(1e-6);
        for _ in 0..PLACE_TRIES {
            let r = radius_m * rng.random::<f64>().sqrt();
            let theta = std::f64::consts::TAU * rng.random::<f64>();
            let p = LatLng {
                lat: centre.lat + r * theta.sin() / M_PER_DEG_LAT,
                lng: centre.lng + r * theta.cos() / m_per_deg_lng,
            };
            if let Some(snap) = self.router.snap(p) {
                let s = self.graph().segments()[snap.segment as usize];
                return if snap.fraction < 0.5 { s.a } else { s.b };
            }
        }
        fallback
    }
}

/// A drive along a node path: where the courier is at any time of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Drive {
    /// Nodes from start to end (one node for a drive of zero length).
    nodes: Vec<u32>,
    /// Time from the start to each node, milliseconds.
    at_ms: Vec<u64>,
}

impl Drive {
    /// The nodes driven through, start to end.
    pub fn nodes(&self) -> &[u32] {
        &self.nodes
    }

    /// Standing at `node`.
    pub fn stay(node: u32) -> Drive {
        Drive {
            nodes: vec![node],
            at_ms: vec![0],
        }
    }

    /// How long the drive takes, milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.at_ms.last().copied().unwrap_or(0)
    }

    /// Where it ends.
    pub fn end(&self) -> u32 {
        self.nodes.last().copied().unwrap_or(0)
    }

    /// The drive cut at the first node reached at or after `elapsed_ms`
    /// (where a courier changing its plan can turn).
    pub fn until(&self, elapsed_ms: u64) -> Drive {
        let i = self
            .at_ms
            .partition_point(|&t| t < elapsed_ms)
            .min(self.nodes.len().saturating_sub(1));
        Drive {
            nodes: self.nodes[..=i].to_vec(),
            at_ms: self.at_ms[..=i].to_vec(),
        }
    }

    /// This drive, then `next` (which starts where this one ends).
    pub fn join(mut self, next: &Drive) -> Drive {
        let offset = self.duration_ms();
        for (&node, &t) in next.nodes.iter().zip(&next.at_ms).skip(1) {
            self.nodes.push(node);
            self.at_ms.push(offset + t);
        }
        self
    }

    /// Position `elapsed_ms` after the start: on the straight line between
    /// the two nodes the courier is between (the graph keeps every shape
    /// point as a node), at the end once there.
    pub fn position(&self, graph: &RoadGraph, elapsed_ms: u64) -> LatLng {
        let i = self.at_ms.partition_point(|&t| t <= elapsed_ms);
        if i == 0 {
            return graph.position(self.nodes[0]);
        }
        if i >= self.nodes.len() {
            return graph.position(self.end());
        }
        let (a, b) = (
            graph.position(self.nodes[i - 1]),
            graph.position(self.nodes[i]),
        );
        let span = (self.at_ms[i] - self.at_ms[i - 1]).max(1) as f64;
        let f = (elapsed_ms - self.at_ms[i - 1]) as f64 / span;
        LatLng {
            lat: a.lat + (b.lat - a.lat) * f,
            lng: a.lng + (b.lng - a.lng) * f,
        }
    }
}

/// Shortest paths by travel time (Dijkstra stopping at the target), with
/// its arrays kept between searches: a run searches thousands of paths on
/// a graph of tens of thousands of nodes.
pub struct Paths {
    dist: Vec<u64>,
    prev: Vec<u32>,
    /// Search number that last wrote each node's entries, so a search does
    /// not clear the arrays.
    stamp: Vec<u32>,
    search: u32,
    /// Multiplies every arc time (couriers slower or faster than cars).
    time_factor: f64,
    /// Multiplies each arc's time (by index, `RoadGraph::first_arc`): the
    /// true speed of its road class against the map's; empty: 1.
    arc_factors: Vec<f64>,
}

impl Paths {
    /// Arrays for `graph`; drives take the graph's time ÷ `speed_factor`.
    pub fn new(graph: &RoadGraph, speed_factor: f64) -> Paths {
        let n = graph.node_count();
        Paths {
            dist: vec![0; n],
            prev: vec![0; n],
            stamp: vec![0; n],
            search: 0,
            time_factor: 1.0 / speed_factor,
            arc_factors: Vec::new(),
        }
    }

    /// [`Paths::new`] with each road class's times multiplied by
    /// `class_time_factors` (true speeds that differ from the map's).
    pub fn with_class_factors(
        graph: &RoadGraph,
        speed_factor: f64,
        class_time_factors: &[f64; routing::CLASSES],
    ) -> Paths {
        let segments = graph.segments();
        let arc_factors = graph
            .arc_segments()
            .into_iter()
            .map(|s| class_time_factors[segments[s as usize].class as usize])
            .collect();
        Paths {
            arc_factors,
            ..Paths::new(graph, speed_factor)
        }
    }

    /// The fastest drive from `from` to `to`; standing still when there is
    /// no path (impossible on one strongly connected graph).
    pub fn drive(&mut self, graph: &RoadGraph, from: u32, to: u32) -> Drive {
        if from == to {
            return Drive::stay(from);
        }
        self.search = self.search.wrapping_add(1);
        if self.search == 0 {
            // Stamps wrapped: old entries could look current.
            self.stamp.fill(0);
            self.search = 1;
        }
        let s = self.search;
        let mut heap = BinaryHeap::new();
        self.stamp[from as usize] = s;
        self.dist[from as usize] = 0;
        heap.push(Reverse((0u64, from)));
        let mut found = false;
        while let Some(Reverse((d, v))) = heap.pop() {
            if d > self.dist[v as usize] {
                continue;
            }
            if v == to {
                found = true;
                break;
            }
            let first = graph.first_arc(v);
            for (k, arc) in graph.arcs_from(v).iter().enumerate() {
                let h = arc.head as usize;
                let f = self.arc_factors.get(first + k).copied().unwrap_or(1.0);
                let nd = d + (f64::from(arc.time_ms) * self.time_factor * f).round() as u64;
                if self.stamp[h] != s || nd < self.dist[h] {
                    self.stamp[h] = s;
                    self.dist[h] = nd;
                    self.prev[h] = v;
                    heap.push(Reverse((nd, arc.head)));
                }
            }
        }
        if !found {
            return Drive::stay(from);
        }
        let mut nodes = vec![to];
        let mut at = to;
        while at != from {
            at = self.prev[at as usize];
            nodes.push(at);
        }
        nodes.reverse();
        let at_ms = nodes.iter().map(|&n| self.dist[n as usize]).collect();
        Drive { nodes, at_ms }
    }
}

#[cfg(test)]
mod tests {
    use routing::tags::Directions;
    use routing::{RoadClass, Way};

    use super::*;

    fn line() -> RoadGraph {
        // Three nodes east of each other, two-way.
        let p = |lng| LatLng { lat: 57.7, lng };
        RoadGraph::from_ways([Way {
            class: RoadClass::Residential,
            speed_kmh: 36,
            directions: Directions {
                forward: true,
                backward: true,
            },
            points: vec![p(11.97), p(11.98), p(11.99)],
        }])
        .unwrap()
    }

    #[test]
    fn drive_follows_the_road_and_interpolates() {
        let g = line();
        let mut paths = Paths::new(&g, 1.0);
        let (a, c) = (0..3u32).map(|n| (g.position(n).lng, n)).fold(
            ((f64::MAX, 0), (f64::MIN, 0)),
            |(lo, hi), x| {
                (
                    if x.0 < lo.0 { x } else { lo },
                    if x.0 > hi.0 { x } else { hi },
                )
            },
        );
        let d = paths.drive(&g, a.1, c.1);
        assert_eq!(d.end(), c.1);
        let half = d.position(&g, d.duration_ms() / 2);
        assert!((half.lng - 11.98).abs() < 1e-3, "{half:?}");
        assert_eq!(d.position(&g, d.duration_ms() + 1), g.position(c.1));
        // 1.2 km at 36 km/h (10 m/s): about two minutes.
        assert!((100_000..140_000).contains(&d.duration_ms()), "{d:?}");
        let slow = Paths::new(&g, 0.5).drive(&g, a.1, c.1);
        assert!(slow.duration_ms() > d.duration_ms() * 19 / 10);

        // A turn mid-drive (stacking on the way): cut at the next node,
        // then on to elsewhere; the positions before the cut are kept.
        let head = d.until(d.duration_ms() / 4);
        assert_eq!(head.nodes(), &d.nodes()[..head.nodes().len()]);
        assert!(head.duration_ms() >= d.duration_ms() / 4);
        let back = paths.drive(&g, head.end(), a.1);
        let turned = head.clone().join(&back);
        assert_eq!(turned.end(), a.1);
        assert_eq!(
            turned.duration_ms(),
            head.duration_ms() + back.duration_ms()
        );
        let early = d.duration_ms() / 8;
        assert_eq!(turned.position(&g, early), d.position(&g, early));
        assert_eq!(d.until(0).nodes(), &d.nodes()[..1]);
        assert_eq!(d.until(u64::MAX).nodes(), d.nodes());
    }
}
