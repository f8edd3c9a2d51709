//! Road travel times for hexdash: a road graph derived from OpenStreetMap,
//! snapping positions onto it, and fast one-to-many and many-to-many
//! queries on a contraction hierarchy.
//!
//! Parts:
//! - [`tags`]: which OSM `highway` classes cars drive, their speeds,
//!   `maxspeed` and `oneway` parsing.
//! - [`graph`]: [`RoadGraph`], nodes, [`Segment`]s (class, speed,
//!   directions) and directed arcs weighted in milliseconds; built from
//!   [`Way`]s keeping the largest strongly connected component.
//! - [`format`](mod@format): the compact versioned graph file (`data/*.hxroads`).
//! - [`snap`]: [`Snapper`], an R-tree over segments; a [`Snap`] is a
//!   position part-way along a segment.
//! - [`ch`]: [`ContractionHierarchy`], OSRM's bucket table for many-to-many
//!   and PHAST sweeps for one-to-many.
//! - [`dijkstra`]: the plain reference search.
//! - [`learn`]: [`learn::SpeedLearner`], per-road-class corrections of the
//!   nominal speeds learned from driven legs (predicted vs actual), and
//!   [`RoadGraph::with_time_factors`] to apply them.
//! - [`geo`]: [`LatLng`] and the one crow-fly formula
//!   ([`crow_fly_time_ms`]), the fallback where no road is near.
//! - [`Router`]: the above put together, what callers use.
//! - `load` (with the `pbf` feature also `.osm.pbf`): reading GeoJSON,
//!   PBF and graph files. The only module that touches the file system;
//!   the `hexdash-roads` tool builds graph files with it.

pub mod ch;
pub mod dijkstra;
pub mod format;
pub mod geo;
pub mod graph;
pub mod learn;
pub mod load;
pub mod snap;
pub mod tags;

pub use ch::{ContractionHierarchy, LengthSeed, TimeLength};
pub use geo::{CROW_FLY_SPEED_MPS, LatLng, crow_fly_time_ms};
pub use graph::{CLASSES, RoadGraph, Segment, Way};
pub use snap::{Snap, Snapper};
pub use tags::RoadClass;

/// The time of "no path", milliseconds.
pub const UNREACHABLE: u32 = u32::MAX;

/// What can go wrong building or reading a road graph.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input had no drivable roads connected to each other.
    #[error("no drivable roads in the input")]
    NoRoads,
    /// A graph file that is not one, or is damaged.
    #[error("invalid road graph file: {0}")]
    Format(String),
    /// A graph file of another format version.
    #[error(
        "road graph file version {found}, this build reads version {supported}; rebuild it with hexdash-roads"
    )]
    Version {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// Input that is not the GeoJSON expected.
    #[error("invalid GeoJSON: {0}")]
    GeoJson(String),
    /// An `.osm.pbf` the reader refused.
    #[error("invalid OSM PBF: {0}")]
    Pbf(String),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// A start (or end) of a search: a graph node and the time already spent
/// reaching it (or still needed after it), milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    /// Graph node id.
    pub node: u32,
    /// Time to add, milliseconds.
    pub offset_ms: u32,
}

/// The one or two seeds of a snapped position (one per direction the
/// segment allows), kept inline: tables build thousands of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeds {
    seeds: [Seed; 2],
    len: usize,
}

impl Seeds {
    fn new() -> Seeds {
        Seeds {
            seeds: [Seed {
                node: 0,
                offset_ms: 0,
            }; 2],
            len: 0,
        }
    }

    fn push(&mut self, seed: Seed) {
        // At most two pushes: one per direction of a segment.
        self.seeds[self.len] = seed;
        self.len += 1;
    }
}

impl AsRef<[Seed]> for Seeds {
    fn as_ref(&self) -> &[Seed] {
        &self.seeds[..self.len]
    }
}

impl std::ops::Deref for Seeds {
    type Target = [Seed];
    fn deref(&self) -> &[Seed] {
        self.as_ref()
    }
}

/// Travel times from sources (rows) to targets (columns), milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    targets: usize,
    times_ms: Vec<u32>,
}

impl Matrix {
    pub(crate) fn unreachable(sources: usize, targets: usize) -> Matrix {
        Matrix {
            targets,
            times_ms: vec![UNREACHABLE; sources * targets],
        }
    }

    pub(crate) fn row_mut(&mut self, source: usize) -> &mut [u32] {
        &mut self.times_ms[source * self.targets..(source + 1) * self.targets]
    }

    /// Time from source `i` to target `j`, `None` without a path.
    pub fn get(&self, i: usize, j: usize) -> Option<u32> {
        let t = self.times_ms[i * self.targets + j];
        (t != UNREACHABLE).then_some(t)
    }

    /// Times from source `i` to every target ([`UNREACHABLE`] without a path).
    pub fn row(&self, i: usize) -> &[u32] {
        &self.times_ms[i * self.targets..(i + 1) * self.targets]
    }
}

/// A trip between two positions: how long it takes and how far it is on
/// the roads (the fastest path's length), or by crow-fly where the map
/// does not cover an end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    /// Driving time, milliseconds.
    pub time_ms: u32,
    /// Distance, metres: along the fastest road path, or the great-circle
    /// distance when `on_roads` is false.
    pub distance_m: f64,
    /// Whether both ends were on the map (else crow-fly time and distance).
    pub on_roads: bool,
}

/// Settings of a [`Router`].
#[derive(Debug, Clone)]
pub struct Config {
    /// A position farther than this from every road is not covered by the
    /// map, and callers use the crow-fly fallback. 200 m: a delivery
    /// address is rarely farther from its street (large buildings, yards),
    /// and beyond it the road position says little about the trip.
    pub max_snap_distance_m: f64,
    /// Speed of the crow-fly fallback, m/s.
    pub crow_fly_speed_mps: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_snap_distance_m: 200.0,
            crow_fly_speed_mps: CROW_FLY_SPEED_MPS,
        }
    }
}

/// Road travel times: the graph, its snapping index and its contraction
/// hierarchy. Built once (about a second for a city) and shared read-only.
#[derive(Debug)]
pub struct Router {
    graph: RoadGraph,
    snapper: Snapper,
    ch: ContractionHierarchy,
    config: Config,
    /// The segment of each arc ([`RoadGraph::arc_segments`]).
    arc_segments: Vec<u32>,
}

impl Router {
    /// Indexes and contracts `graph`.
    pub fn new(graph: RoadGraph, config: Config) -> Router {
        let snapper = Snapper::new(&graph);
        let ch = ContractionHierarchy::build(&graph);
        let arc_segments = graph.arc_segments();
        Router {
            graph,
            snapper,
            ch,
            config,
            arc_segments,
        }
    }

    /// The road graph.
    pub fn graph(&self) -> &RoadGraph {
        &self.graph
    }

    /// The contraction hierarchy (node-level queries).
    pub fn hierarchy(&self) -> &ContractionHierarchy {
        &self.ch
    }

    /// The nearest road position within `max_snap_distance_m`, `None` when
    /// the map does not cover `p`.
    pub fn snap(&self, p: LatLng) -> Option<Snap> {
        self.snapper.snap(p, self.config.max_snap_distance_m)
    }

    /// Where a trip starting at `snap` enters the graph: the segment's end
    /// nodes it may drive to, with the time for the rest of the segment.
    pub fn source_seeds(&self, snap: &Snap) -> Seeds {
        let s = self.graph.segments()[snap.segment as usize];
        let part = |f: f64| (f * f64::from(s.time_ms())).round() as u32;
        let mut seeds = Seeds::new();
        if s.forward {
            seeds.push(Seed {
                node: s.b,
                offset_ms: part(1.0 - snap.fraction),
            });
        }
        if s.backward {
            seeds.push(Seed {
                node: s.a,
                offset_ms: part(snap.fraction),
            });
        }
        seeds
    }

    /// Where a trip ending at `snap` leaves the graph: the end nodes it may
    /// come from, with the time still to drive along the segment.
    pub fn target_seeds(&self, snap: &Snap) -> Seeds {
        let s = self.graph.segments()[snap.segment as usize];
        let part = |f: f64| (f * f64::from(s.time_ms())).round() as u32;
        let mut seeds = Seeds::new();
        if s.forward {
            seeds.push(Seed {
                node: s.a,
                offset_ms: part(snap.fraction),
            });
        }
        if s.backward {
            seeds.push(Seed {
                node: s.b,
                offset_ms: part(1.0 - snap.fraction),
            });
        }
        seeds
    }

    /// The time along one segment when both ends of a trip are on it and
    /// its direction allows driving straight there.
    fn direct_ms(&self, from: &Snap, to: &Snap) -> u32 {
        if from.segment != to.segment {
            return UNREACHABLE;
        }
        let s = self.graph.segments()[from.segment as usize];
        let along = to.fraction - from.fraction;
        if (along >= 0.0 && s.forward) || (along <= 0.0 && s.backward) {
            (along.abs() * f64::from(s.time_ms())).round() as u32
        } else {
            UNREACHABLE
        }
    }

    /// Driving time between two road positions, `None` without a path
    /// (impossible inside one strongly connected graph, kept for safety).
    pub fn travel_time_ms(&self, from: &Snap, to: &Snap) -> Option<u32> {
        self.many_to_many(std::slice::from_ref(from), std::slice::from_ref(to))
            .get(0, 0)
    }

    /// Driving times from one position to many (PHAST: one sweep).
    pub fn one_to_many(&self, from: &Snap, to: &[Snap]) -> Vec<Option<u32>> {
        let targets: Vec<Seeds> = to.iter().map(|t| self.target_seeds(t)).collect();
        let times = self.ch.one_to_many(&self.source_seeds(from), &targets);
        times
            .into_iter()
            .zip(to)
            .map(|(t, snap)| Some(t.min(self.direct_ms(from, snap))).filter(|&t| t != UNREACHABLE))
            .collect()
    }

    /// Driving times from many positions to one (PHAST backwards), e.g.
    /// every candidate courier to a restaurant.
    pub fn many_to_one(&self, from: &[Snap], to: &Snap) -> Vec<Option<u32>> {
        let sources: Vec<Seeds> = from.iter().map(|s| self.source_seeds(s)).collect();
        let times = self.ch.many_to_one(&sources, &self.target_seeds(to));
        times
            .into_iter()
            .zip(from)
            .map(|(t, snap)| Some(t.min(self.direct_ms(snap, to))).filter(|&t| t != UNREACHABLE))
            .collect()
    }

    /// Driving times from every source to every target (bucket table).
    pub fn many_to_many(&self, from: &[Snap], to: &[Snap]) -> Matrix {
        let sources: Vec<Seeds> = from.iter().map(|s| self.source_seeds(s)).collect();
        let targets: Vec<Seeds> = to.iter().map(|t| self.target_seeds(t)).collect();
        let mut matrix = self.ch.many_to_many(&sources, &targets);
        // Trips within one segment: only pairs sharing a segment, found
        // through a map rather than comparing all pairs.
        let mut on_segment: rustc_hash::FxHashMap<u32, Vec<usize>> = Default::default();
        for (j, t) in to.iter().enumerate() {
            on_segment.entry(t.segment).or_default().push(j);
        }
        for (i, f) in from.iter().enumerate() {
            let row = matrix.row_mut(i);
            for &j in on_segment.get(&f.segment).map_or(&[][..], Vec::as_slice) {
                row[j] = row[j].min(self.direct_ms(f, &to[j]));
            }
        }
        matrix
    }

    /// The length seeds of a trip starting at `snap` (as
    /// [`Router::source_seeds`], with the rest of the segment's length).
    fn source_length_seeds(&self, snap: &Snap) -> Vec<LengthSeed> {
        let s = self.graph.segments()[snap.segment as usize];
        let dm = |f: f64| (f * f64::from(s.length_dm)).round() as u32;
        let fractions = [(s.b, 1.0 - snap.fraction), (s.a, snap.fraction)];
        self.source_seeds(snap)
            .iter()
            .map(|&seed| LengthSeed {
                seed,
                offset_dm: dm(fractions
                    .iter()
                    .find(|(node, _)| *node == seed.node)
                    .map_or(0.0, |f| f.1)),
            })
            .collect()
    }

    /// The length seeds of a trip ending at `snap`.
    fn target_length_seeds(&self, snap: &Snap) -> Vec<LengthSeed> {
        let s = self.graph.segments()[snap.segment as usize];
        let dm = |f: f64| (f * f64::from(s.length_dm)).round() as u32;
        let fractions = [(s.a, snap.fraction), (s.b, 1.0 - snap.fraction)];
        self.target_seeds(snap)
            .iter()
            .map(|&seed| LengthSeed {
                seed,
                offset_dm: dm(fractions
                    .iter()
                    .find(|(node, _)| *node == seed.node)
                    .map_or(0.0, |f| f.1)),
            })
            .collect()
    }

    /// Trips from each of `from` to `to`: road time and the length of the
    /// fastest road path when the map covers both ends, crow-fly time and
    /// distance otherwise. One backward sweep for all sources (e.g. every
    /// restaurant of a search page to the customer's door).
    pub fn routes_to(&self, from: &[LatLng], to: LatLng) -> Vec<Route> {
        let crow = |f: LatLng| Route {
            time_ms: crow_fly_time_ms(f, to, self.config.crow_fly_speed_mps),
            distance_m: f.distance_m(to),
            on_roads: false,
        };
        let Some(target) = self.snap(to) else {
            return from.iter().map(|&f| crow(f)).collect();
        };
        let snaps: Vec<Option<Snap>> = from.iter().map(|&f| self.snap(f)).collect();
        let sources: Vec<Vec<LengthSeed>> = snaps
            .iter()
            .map(|s| {
                s.as_ref()
                    .map_or_else(Vec::new, |s| self.source_length_seeds(s))
            })
            .collect();
        let times = self
            .ch
            .many_to_one_with_length(&sources, &self.target_length_seeds(&target));
        from.iter()
            .zip(snaps)
            .zip(times)
            .map(|((&f, snap), mut t)| {
                let Some(snap) = snap else { return crow(f) };
                let direct = self.direct_ms(&snap, &target);
                if direct < t.time_ms {
                    let along = (target.fraction - snap.fraction).abs();
                    let s = self.graph.segments()[snap.segment as usize];
                    t = TimeLength {
                        time_ms: direct,
                        length_dm: (along * f64::from(s.length_dm)).round() as u32,
                    };
                }
                if t.time_ms == UNREACHABLE {
                    return crow(f);
                }
                Route {
                    time_ms: t.time_ms,
                    distance_m: f64::from(t.length_dm) / 10.0,
                    on_roads: true,
                }
            })
            .collect()
    }

    /// This router's roads with each class's times multiplied by
    /// `time_factors` (learned speeds, [`learn`]): a new hierarchy, about
    /// a second for a city, so callers build it off the hot path.
    pub fn with_time_factors(&self, time_factors: &[f64; CLASSES]) -> Router {
        Router::new(
            self.graph.with_time_factors(time_factors),
            self.config.clone(),
        )
    }

    /// This graph's driving time of the fastest path between two
    /// positions, split by road class (ms); `None` when the map does not
    /// cover both. What a driven leg is compared with to learn speeds.
    /// A plain Dijkstra (a few milliseconds on a city): once per
    /// delivered leg, not per query.
    pub fn class_times_ms(&self, from: LatLng, to: LatLng) -> Option<[u64; CLASSES]> {
        let (a, b) = (self.snap(from)?, self.snap(to)?);
        let segs = self.graph.segments();
        let mut by_class = [0u64; CLASSES];
        if self.direct_ms(&a, &b) != UNREACHABLE {
            let s = segs[a.segment as usize];
            by_class[s.class as usize] += u64::from(self.direct_ms(&a, &b));
            return Some(by_class);
        }
        let sources = self.source_seeds(&a);
        let (nodes, end) = dijkstra::path(&self.graph, &sources, &self.target_seeds(&b))?;
        let start = sources.iter().find(|s| s.node == nodes[0])?;
        by_class[segs[a.segment as usize].class as usize] += u64::from(start.offset_ms);
        by_class[segs[b.segment as usize].class as usize] += u64::from(end.offset_ms);
        let along = self.graph.class_times_ms(&nodes, &self.arc_segments);
        for (t, x) in by_class.iter_mut().zip(along) {
            *t += x;
        }
        Some(by_class)
    }

    /// Driving time between two positions, or the crow-fly fallback when
    /// either is not covered by the map.
    pub fn travel_time_or_crow_fly_ms(&self, from: LatLng, to: LatLng) -> u32 {
        match (self.snap(from), self.snap(to)) {
            (Some(a), Some(b)) => self.travel_time_ms(&a, &b),
            _ => None,
        }
        .unwrap_or_else(|| crow_fly_time_ms(from, to, self.config.crow_fly_speed_mps))
    }
}
