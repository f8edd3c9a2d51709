//! The city's roads as the demo's actors see them: the shipped road graph,
//! snapping a point to a road node, drawing places on the roads, and the
//! fastest drive between two places (Dijkstra on the graph, the same
//! travel times the matcher ranks couriers by).
//!
//! Everything the demo places (restaurants, doors, couriers' starts)
//! stands on a graph node, so a drive is a node path.

use std::path::Path;

use rand::Rng;
use routing::{LatLng, RoadGraph, Seed, Snapper};

use crate::route::{NOT_A_NODE, Route};

/// Metres per degree of latitude (mean Earth radius).
const M_PER_DEG_LAT: f64 = routing::geo::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// A drawn point farther than this from every road is off the map (water,
/// parks): drawn again.
const MAX_SNAP_M: f64 = 150.0;
/// Draws of a place before giving up on a disk (mostly water, or off the
/// map entirely).
const PLACE_TRIES: usize = 200;

/// The road graph and its snapping index, shared read-only by every actor.
pub struct Map {
    graph: RoadGraph,
    snapper: Snapper,
    centre: LatLng,
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
        Map {
            snapper: Snapper::new(&graph),
            graph,
            centre: LatLng { lat, lng },
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

    /// The fastest drive from `from` to node `to` at the roads' speeds
    /// times `speed_factor`. `from` may be part-way along a road: the
    /// drive first goes to `from`'s node. Standing still when there is no
    /// path (impossible on the graph's one strongly connected component).
    /// A Dijkstra over the city (milliseconds): callers run it off the
    /// async threads.
    pub fn drive(&self, from: LatLng, from_node: u32, to: u32, speed_factor: f64) -> Route {
        let scale = 1.0 / speed_factor;
        let mut legs = vec![(from, NOT_A_NODE, 0u64)];
        let start = self.graph.position(from_node);
        // The first leg runs at the speed of the road out of `from_node`
        // (a short stretch: `from` lies on a road that touches it).
        let first_ms = {
            let d = from.distance_m(start);
            let mps = self
                .graph
                .arcs_from(from_node)
                .first()
                .map(|arc| {
                    let len = start.distance_m(self.graph.position(arc.head));
                    len / (f64::from(arc.time_ms.max(1)) / 1000.0)
                })
                .unwrap_or(10.0)
                .max(1.0);
            (d / (mps * speed_factor) * 1000.0).round() as u64
        };
        legs.push((start, from_node, first_ms));
        if from_node != to {
            let seeds = [Seed {
                node: from_node,
                offset_ms: 0,
            }];
            let targets = [Seed {
                node: to,
                offset_ms: 0,
            }];
            if let Some((nodes, _)) = routing::dijkstra::path(&self.graph, &seeds, &targets) {
                let mut at_ms = first_ms;
                for pair in nodes.windows(2) {
                    let arc_ms = self
                        .graph
                        .arcs_from(pair[0])
                        .iter()
                        .filter(|a| a.head == pair[1])
                        .map(|a| a.time_ms)
                        .min()
                        .unwrap_or(0);
                    at_ms += (f64::from(arc_ms) * scale).round() as u64;
                    legs.push((self.graph.position(pair[1]), pair[1], at_ms));
                }
            }
        }
        // Times only grow, and `legs` is not empty: never `None`.
        Route::new(legs).unwrap_or_else(|| Route::stay(start, from_node))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use routing::tags::Directions;
    use routing::{RoadClass, Way};

    use super::*;

    /// A 3 × 3 grid of two-way streets, 0.001° apart (≈ 111 m north, 60 m
    /// east), at 36 km/h (10 m/s).
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
        for i in 0..3 {
            ways.push(Way {
                class: RoadClass::Residential,
                speed_kmh: 36,
                directions: two_way,
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
    fn drives_along_roads_at_their_speed() {
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
        let route = map.drive(from.position, from.node, to.node, 1.0);
        assert_eq!(route.end(), to.position);
        // Two blocks north (≈ 222 m) and two east (≈ 119 m) at 10 m/s.
        let s = route.duration_ms() as f64 / 1000.0;
        assert!((32.0..36.0).contains(&s), "{s} s");
        // Every fix lies on a grid line and moves at most 10 m a second.
        let mut prev = route.fix(0).position;
        for t in (0..=route.duration_ms()).step_by(1000) {
            let f = route.fix(t);
            let on_line = |x: f64| ((x * 1000.0).round() - x * 1000.0).abs() < 1e-6;
            assert!(on_line(f.position.lat) || on_line(f.position.lng), "{f:?}");
            // (10 m/s give or take the graph's rounding of lengths to decimetres.)
            assert!(f.position.distance_m(prev) <= 10.05, "{f:?}");
            prev = f.position;
        }
        let fast = map.drive(from.position, from.node, to.node, 2.0);
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
        let route = map.drive(between, node.node, to.node, 1.0);
        assert_eq!(route.fix(0).position, between);
        // ≈ 56 m to the node, then ≈ 119 m east.
        let s = route.duration_ms() as f64 / 1000.0;
        assert!((16.0..19.0).contains(&s), "{s} s");
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
