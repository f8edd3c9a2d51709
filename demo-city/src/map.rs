//! The city's roads as the demo's couriers ride them: the shipped road
//! graph, snapping a point to a road node, drawing places on the roads, and
//! the shortest ride between two places.
//!
//! Couriers ride mopeds and bikes: every road of the graph both ways (they
//! ignore one-way streets often enough, and the centre's one-way system
//! would otherwise turn a 600 m trip into 3 km), at a moped's town speed
//! ([`COURIER_SPEED_MPS`] times `demo.speed_factor`) rather than the car
//! speeds the matcher estimates with. So a ride is the shortest path by
//! length on the undirected roads.
//!
//! Everything the demo places (restaurants, doors, couriers' starts)
//! stands on a graph node, so a ride is a node path.

use std::path::Path;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::Rng;
use routing::{LatLng, RoadGraph, Snapper};

use crate::route::{NOT_A_NODE, Route};

/// Metres per degree of latitude (mean Earth radius).
const M_PER_DEG_LAT: f64 = routing::geo::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// A drawn point farther than this from every road is off the map (water,
/// parks): drawn again.
const MAX_SNAP_M: f64 = 150.0;
/// Draws of a place before giving up on a disk (mostly water, or off the
/// map entirely).
const PLACE_TRIES: usize = 200;
/// A courier's riding speed in town, m/s (25 km/h: a moped or a fast
/// bike, junctions included).
pub const COURIER_SPEED_MPS: f64 = 25.0 / 3.6;
/// "No path yet" in the ride search.
const FAR: u32 = u32::MAX;

/// The road graph, its snapping index and the couriers' undirected road
/// network, shared read-only by every actor.
pub struct Map {
    graph: RoadGraph,
    snapper: Snapper,
    centre: LatLng,
    /// `targets[offsets[n]..offsets[n + 1]]` are the nodes one road away
    /// from node `n`, either way; `lengths_dm` the roads' lengths.
    offsets: Vec<u32>,
    targets: Vec<u32>,
    lengths_dm: Vec<u32>,
}

/// Why the map cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The graph file is missing or damaged.
    #[error(
        "cannot load the demo city from {path}: {source} (run from the repository root, or name the road graph with --demo-city or HEXDASH_DEMO__CITY)"
    )]
    Load {
        /// The file named by `demo.city`.
        path: String,
        /// What failed.
        source: routing::Error,
    },
    /// No road near where places were drawn.
    #[error("no roads within {radius_m} m of {lat:.5},{lng:.5}")]
    NoRoads {
        /// Degrees north of the disk's centre.
        lat: f64,
        /// Degrees east of the disk's centre.
        lng: f64,
        /// The disk's radius.
        radius_m: f64,
    },
}

/// A place on the roads: a graph node and its position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Place {
    /// Where it is.
    pub position: LatLng,
    /// Its graph node.
    pub node: u32,
}

impl Map {
    /// Reads a road graph file (`data/*.hxroads`).
    pub fn load(path: &Path) -> Result<Map, MapError> {
        let graph = routing::load::read_graph(path).map_err(|source| MapError::Load {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Map::new(graph))
    }

    /// The map of `graph`; its centre is the mean of the nodes.
    pub fn new(graph: RoadGraph) -> Map {
        let nodes = graph.nodes();
        let n = nodes.len().max(1) as f64;
        let (lat, lng) = nodes
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p.lat / n, b + p.lng / n));
        // Both directions of every segment, in compressed form.
        let mut adjacency: Vec<Vec<(u32, u32)>> = vec![Vec::new(); graph.node_count()];
        for s in graph.segments() {
            adjacency[s.a as usize].push((s.b, s.length_dm));
            adjacency[s.b as usize].push((s.a, s.length_dm));
        }
        let mut offsets = Vec::with_capacity(adjacency.len() + 1);
        let (mut targets, mut lengths_dm) = (Vec::new(), Vec::new());
        offsets.push(0);
        for list in adjacency {
            for (t, len) in list {
                targets.push(t);
                lengths_dm.push(len);
            }
            // Fewer than 2^32 road ends (graph ids are u32).
            offsets.push(targets.len() as u32);
        }
        Map {
            snapper: Snapper::new(&graph),
            graph,
            centre: LatLng { lat, lng },
            offsets,
            targets,
            lengths_dm,
        }
    }

    /// Where the city's restaurants cluster.
    pub fn centre(&self) -> LatLng {
        self.centre
    }

    /// The road node nearest to `p` (the nearer end of the nearest road),
    /// `None` when no road is within 150 m.
    pub fn snap(&self, p: LatLng) -> Option<Place> {
        let snap = self.snapper.snap(p, MAX_SNAP_M)?;
        let s = self.graph.segments()[snap.segment as usize];
        let node = if snap.fraction < 0.5 { s.a } else { s.b };
        Some(Place {
            position: self.graph.position(node),
            node,
        })
    }

    /// A place on the roads drawn uniformly from the ring between `min_m`
    /// and `max_m` around `centre`.
    pub fn place_in_ring(
        &self,
        rng: &mut impl Rng,
        centre: LatLng,
        min_m: f64,
        max_m: f64,
    ) -> Result<Place, MapError> {
        let m_per_deg_lng = M_PER_DEG_LAT * centre.lat.to_radians().cos().max(1e-6);
        for _ in 0..PLACE_TRIES {
            // Uniform in area: the radius goes with the square root.
            let (lo, hi) = ((min_m / max_m).powi(2), 1.0);
            let r = max_m * rng.random_range(lo..=hi).sqrt();
            let theta = std::f64::consts::TAU * rng.random::<f64>();
            let p = LatLng {
                lat: centre.lat + r * theta.sin() / M_PER_DEG_LAT,
                lng: centre.lng + r * theta.cos() / m_per_deg_lng,
            };
            if let Some(place) = self.snap(p) {
                let d = place.position.distance_m(centre);
                if d >= min_m && d <= max_m {
                    return Ok(place);
                }
            }
        }
        Err(MapError::NoRoads {
            lat: centre.lat,
            lng: centre.lng,
            radius_m: max_m,
        })
    }

    /// The shortest ride from `from` to node `to` at
    /// [`COURIER_SPEED_MPS`] times `speed_factor`. `from` may be part-way
    /// along a road: the ride first goes to `from_node` (an end of that
    /// road). Standing still when there is no path (the graph is one
    /// connected component). A Dijkstra over the city (a few
    /// milliseconds): callers run it off the async threads.
    pub fn drive(&self, from: LatLng, from_node: u32, to: u32, speed_factor: f64) -> Route {
        let mps = COURIER_SPEED_MPS * speed_factor;
        let ms = |m: f64| (m / mps * 1000.0).round() as u64;
        let start = self.graph.position(from_node);
        let first_ms = ms(from.distance_m(start));
        let mut legs = vec![(from, NOT_A_NODE, 0u64), (start, from_node, first_ms)];
        if let Some(nodes) = self.shortest_path(from_node, to) {
            let mut metres = 0.0;
            for pair in nodes.windows(2) {
                metres += self
                    .graph
                    .position(pair[0])
                    .distance_m(self.graph.position(pair[1]));
                legs.push((self.graph.position(pair[1]), pair[1], first_ms + ms(metres)));
            }
        }
        // Times only grow, and `legs` is not empty: never `None`.
        Route::new(legs).unwrap_or_else(|| Route::stay(start, from_node))
    }

    /// The nodes of the shortest path by length from `from` to `to`, both
    /// included; `None` without one.
    fn shortest_path(&self, from: u32, to: u32) -> Option<Vec<u32>> {
        let n = self.offsets.len() - 1;
        let (from_i, to_i) = (from as usize, to as usize);
        if from_i >= n || to_i >= n {
            return None;
        }
        let mut dist = vec![FAR; n];
        let mut prev = vec![FAR; n];
        let mut heap = BinaryHeap::new();
        dist[from_i] = 0;
        heap.push(Reverse((0u32, from)));
        while let Some(Reverse((d, v))) = heap.pop() {
            if v == to {
                break;
            }
            if d > dist[v as usize] {
                continue;
            }
            let edges = self.offsets[v as usize] as usize..self.offsets[v as usize + 1] as usize;
            for e in edges {
                let (h, nd) = (self.targets[e], d.saturating_add(self.lengths_dm[e]));
                if nd < dist[h as usize] {
                    dist[h as usize] = nd;
                    prev[h as usize] = v;
                    heap.push(Reverse((nd, h)));
                }
            }
        }
        if dist[to_i] == FAR {
            return None;
        }
        let mut nodes = vec![to];
        let mut at = to;
        while at != from {
            at = prev[at as usize];
            nodes.push(at);
        }
        nodes.reverse();
        Some(nodes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use routing::tags::Directions;
    use routing::{RoadClass, Way};

    use super::*;

    /// A 3 × 3 grid of streets, 0.001° apart (≈ 111 m north, 60 m east);
    /// the northernmost one-way (westward), which couriers ignore.
    pub(crate) fn grid() -> Map {
        let p = |i: u32, j: u32| LatLng {
            lat: 57.70 + f64::from(i) * 0.001,
            lng: 11.97 + f64::from(j) * 0.001,
        };
        let two_way = Directions {
            forward: true,
            backward: true,
        };
        let mut ways = Vec::new();
        let west_only = Directions {
            forward: false,
            backward: true,
        };
        for i in 0..3 {
            ways.push(Way {
                class: RoadClass::Residential,
                speed_kmh: 36,
                directions: if i == 2 { west_only } else { two_way },
                points: (0..3).map(|j| p(i, j)).collect(),
            });
            ways.push(Way {
                class: RoadClass::Residential,
                speed_kmh: 36,
                directions: two_way,
                points: (0..3).map(|j| p(j, i)).collect(),
            });
        }
        Map::new(RoadGraph::from_ways(ways).unwrap())
    }

    #[test]
    fn rides_the_shortest_roads_at_courier_speed_both_ways() {
        let map = grid();
        let from = map
            .snap(LatLng {
                lat: 57.70,
                lng: 11.97,
            })
            .unwrap();
        let to = map
            .snap(LatLng {
                lat: 57.702,
                lng: 11.972,
            })
            .unwrap();
        let speed = 10.0 / COURIER_SPEED_MPS;
        let route = map.drive(from.position, from.node, to.node, speed);
        assert_eq!(route.end(), to.position);
        // Two blocks north (≈ 222 m) and two east (≈ 119 m) at 10 m/s.
        let s = route.duration_ms() as f64 / 1000.0;
        assert!((33.0..35.0).contains(&s), "{s} s");
        // Every fix lies on a grid line and moves at most 10 m a second.
        let mut prev = route.fix(0).position;
        for t in (0..=route.duration_ms()).step_by(1000) {
            let f = route.fix(t);
            let on_line = |x: f64| ((x * 1000.0).round() - x * 1000.0).abs() < 1e-6;
            assert!(on_line(f.position.lat) || on_line(f.position.lng), "{f:?}");
            // (Give or take the rounding of arrival times to the ms.)
            assert!(f.position.distance_m(prev) <= 10.01, "{f:?}");
            prev = f.position;
        }
        // Against the one-way street too: the same length back.
        let back = map.drive(to.position, to.node, from.node, speed);
        assert!(back.duration_ms().abs_diff(route.duration_ms()) <= 2);
        let fast = map.drive(from.position, from.node, to.node, speed * 2.0);
        assert!(fast.duration_ms().abs_diff(route.duration_ms() / 2) <= 2);
    }

    #[test]
    fn a_drive_from_part_way_starts_where_the_courier_is() {
        let map = grid();
        let node = map
            .snap(LatLng {
                lat: 57.701,
                lng: 11.97,
            })
            .unwrap();
        let to = map
            .snap(LatLng {
                lat: 57.701,
                lng: 11.972,
            })
            .unwrap();
        let between = LatLng {
            lat: 57.7005,
            lng: 11.97,
        };
        let route = map.drive(between, node.node, to.node, 10.0 / COURIER_SPEED_MPS);
        assert_eq!(route.fix(0).position, between);
        // ≈ 56 m to the node, then ≈ 119 m east, at 10 m/s.
        let s = route.duration_ms() as f64 / 1000.0;
        assert!((17.0..18.5).contains(&s), "{s} s");
    }

    #[test]
    fn places_fall_in_the_ring_on_a_road() {
        let map = grid();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let centre = LatLng {
            lat: 57.701,
            lng: 11.971,
        };
        for _ in 0..50 {
            let place = map.place_in_ring(&mut rng, centre, 50.0, 150.0).unwrap();
            let d = place.position.distance_m(centre);
            assert!((50.0..=150.0).contains(&d), "{d}");
        }
        let far = LatLng {
            lat: 10.0,
            lng: 10.0,
        };
        assert!(map.place_in_ring(&mut rng, far, 0.0, 100.0).is_err());
    }

    use rand::SeedableRng;
}
