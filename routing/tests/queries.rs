//! Travel times of the contraction hierarchy and the router equal plain
//! Dijkstra on the same graph: on the shipped Gothenburg graph and on small
//! random graphs with one-way streets, from nodes and from snapped points.

use std::path::PathBuf;
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use routing::dijkstra::dijkstra;
use routing::tags::Directions;
use routing::{
    Config, LatLng, LengthSeed, RoadClass, RoadGraph, Router, Seed, Snap, UNREACHABLE, Way, load,
};

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(file)
}

/// The shipped graph with its hierarchy, built once for all tests.
static GOTHENBURG: LazyLock<Router> = LazyLock::new(|| {
    let graph = load::read_graph(&data("gothenburg_roads_2016.hxroads")).expect("shipped graph");
    Router::new(graph, Config::default())
});

fn config(seed: u64, cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn node(v: u32) -> Vec<Seed> {
    vec![Seed {
        node: v,
        offset_ms: 0,
    }]
}

/// Checks every node-level query of `router` between the given nodes
/// against one Dijkstra per source.
fn check_nodes(router: &Router, sources: &[u32], targets: &[u32]) {
    let graph = router.graph();
    let ch = router.hierarchy();
    let src: Vec<Vec<Seed>> = sources.iter().map(|&v| node(v)).collect();
    let dst: Vec<Vec<Seed>> = targets.iter().map(|&v| node(v)).collect();
    let table = ch.many_to_many(&src, &dst);
    for (i, &s) in sources.iter().enumerate() {
        let reference = dijkstra(graph, &node(s));
        let expected: Vec<u32> = targets.iter().map(|&t| reference[t as usize]).collect();
        assert_eq!(table.row(i), expected.as_slice(), "many_to_many from {s}");
        assert_eq!(
            ch.one_to_many(&node(s), &dst),
            expected,
            "one_to_many from {s}"
        );
    }
    for (j, &t) in targets.iter().enumerate() {
        let column: Vec<u32> = (0..sources.len()).map(|i| table.row(i)[j]).collect();
        assert_eq!(ch.many_to_one(&src, &node(t)), column, "many_to_one to {t}");
    }
}

/// The reference time between two snapped points: Dijkstra from the
/// source's entry nodes, plus the way out to the target, or straight
/// along a shared segment.
fn reference(router: &Router, from: &Snap, to: &Snap) -> Option<u32> {
    let all = dijkstra(router.graph(), &router.source_seeds(from));
    let via_graph = router
        .target_seeds(to)
        .iter()
        .map(|t| all[t.node as usize].saturating_add(t.offset_ms))
        .min()
        .unwrap_or(UNREACHABLE);
    let s = router.graph().segments()[from.segment as usize];
    let along = to.fraction - from.fraction;
    let direct = if from.segment == to.segment
        && ((along >= 0.0 && s.forward) || (along <= 0.0 && s.backward))
    {
        (along.abs() * f64::from(s.time_ms())).round() as u32
    } else {
        UNREACHABLE
    };
    Some(via_graph.min(direct)).filter(|&t| t != UNREACHABLE)
}

fn check_snaps(router: &Router, from: &[Snap], to: &[Snap]) {
    let table = router.many_to_many(from, to);
    for (i, f) in from.iter().enumerate() {
        let expected: Vec<Option<u32>> = to.iter().map(|t| reference(router, f, t)).collect();
        let row: Vec<Option<u32>> = (0..to.len()).map(|j| table.get(i, j)).collect();
        assert_eq!(row, expected, "many_to_many from {f:?}");
        assert_eq!(
            router.one_to_many(f, to),
            expected,
            "one_to_many from {f:?}"
        );
    }
    for (j, t) in to.iter().enumerate() {
        let column: Vec<Option<u32>> = (0..from.len()).map(|i| table.get(i, j)).collect();
        assert_eq!(router.many_to_one(from, t), column, "many_to_one to {t:?}");
    }
}

/// Random points over the area of the graph, snapped (some are not covered).
fn random_snaps(router: &Router, rng: &mut StdRng, count: usize) -> Vec<Snap> {
    let nodes = router.graph().nodes();
    let (lat_min, lat_max) = nodes.iter().fold((90.0f64, -90.0f64), |(a, b), p| {
        (a.min(p.lat), b.max(p.lat))
    });
    let (lng_min, lng_max) = nodes.iter().fold((180.0f64, -180.0f64), |(a, b), p| {
        (a.min(p.lng), b.max(p.lng))
    });
    let mut snaps = Vec::new();
    while snaps.len() < count {
        let p = LatLng {
            lat: rng.random_range(lat_min..=lat_max),
            lng: rng.random_range(lng_min..=lng_max),
        };
        if let Some(s) = router.snap(p) {
            snaps.push(s);
        }
    }
    snaps
}

#[test]
fn the_shipped_graph_is_what_the_tool_builds_from_the_shipped_geojson() {
    let ways = load::read_ways(&data("gothenburg_roads_2016.geojson.gz")).unwrap();
    let built = RoadGraph::from_ways(ways).unwrap();
    assert_eq!(
        &built,
        GOTHENBURG.graph(),
        "rebuild data/gothenburg_roads_2016.hxroads with hexdash-roads"
    );
    let path = std::env::temp_dir().join(format!("hexdash-routing-{}.hxroads", std::process::id()));
    load::write_graph(&path, &built).unwrap();
    let read = load::read_graph(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(read.unwrap(), built);
}

proptest! {
    #![proptest_config(config(0x6074_e4b0, 12))]

    #[test]
    fn gothenburg_node_times_equal_dijkstra(seed in any::<u64>()) {
        let router = &*GOTHENBURG;
        let mut rng = StdRng::seed_from_u64(seed);
        let n = router.graph().node_count() as u32;
        let sources: Vec<u32> = (0..6).map(|_| rng.random_range(0..n)).collect();
        let targets: Vec<u32> = (0..40).map(|_| rng.random_range(0..n)).collect();
        check_nodes(router, &sources, &targets);
    }

    #[test]
    fn gothenburg_snapped_times_equal_dijkstra(seed in any::<u64>()) {
        let router = &*GOTHENBURG;
        let mut rng = StdRng::seed_from_u64(seed);
        let from = random_snaps(router, &mut rng, 4);
        let to = random_snaps(router, &mut rng, 30);
        check_snaps(router, &from, &to);
    }
}

/// A random street grid of `k × k` crossings 50–150 m apart, each block
/// side present with probability 0.8, one-way (either way) with 0.3, at a
/// random speed.
fn random_grid(rng: &mut StdRng) -> Option<Router> {
    let k = rng.random_range(2..7);
    let origin = LatLng {
        lat: 57.70,
        lng: 11.97,
    };
    let at = |i: usize, j: usize| LatLng {
        lat: origin.lat + i as f64 * 0.001,
        lng: origin.lng + j as f64 * 0.0018,
    };
    let mut ways = Vec::new();
    for i in 0..k {
        for j in 0..k {
            for (di, dj) in [(0, 1), (1, 0)] {
                if i + di >= k || j + dj >= k || !rng.random_bool(0.8) {
                    continue;
                }
                let (forward, backward) = match rng.random_range(0..10) {
                    0..=1 => (true, false),
                    2 => (false, true),
                    _ => (true, true),
                };
                // A bend in the middle: snapping has two segments per side.
                let (a, b) = (at(i, j), at(i + di, j + dj));
                let mid = LatLng {
                    lat: (a.lat + b.lat) / 2.0 + 0.0001,
                    lng: (a.lng + b.lng) / 2.0,
                };
                ways.push(Way {
                    class: RoadClass::Residential,
                    speed_kmh: rng.random_range(5..80),
                    directions: Directions { forward, backward },
                    points: vec![a, mid, b],
                });
            }
        }
    }
    RoadGraph::from_ways(ways)
        .ok()
        .map(|g| Router::new(g, Config::default()))
}

proptest! {
    #![proptest_config(config(0x5ca1_ab1e, 300))]

    #[test]
    fn random_graph_times_equal_dijkstra(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let Some(router) = random_grid(&mut rng) else { return Ok(()) };
        let all: Vec<u32> = (0..router.graph().node_count() as u32).collect();
        check_nodes(&router, &all, &all);
        let from = random_snaps(&router, &mut rng, 5);
        let to = random_snaps(&router, &mut rng, 5);
        check_snaps(&router, &from, &to);
    }
}

/// A block 100 m × ~100 m whose north side is one-way eastwards.
fn block() -> (Router, [LatLng; 4]) {
    let sw = LatLng {
        lat: 57.700,
        lng: 11.970,
    };
    let se = LatLng {
        lat: 57.700,
        lng: 11.9717,
    };
    let ne = LatLng {
        lat: 57.701,
        lng: 11.9717,
    };
    let nw = LatLng {
        lat: 57.701,
        lng: 11.970,
    };
    let street = |points: Vec<LatLng>, forward, backward| Way {
        class: RoadClass::Residential,
        speed_kmh: 36,
        directions: Directions { forward, backward },
        points,
    };
    let graph = RoadGraph::from_ways([
        street(vec![sw, se], true, true),
        street(vec![se, ne], true, true),
        street(vec![nw, ne], true, false),
        street(vec![nw, sw], true, true),
    ])
    .unwrap();
    (Router::new(graph, Config::default()), [sw, se, ne, nw])
}

#[test]
fn one_way_streets_are_driven_only_their_way() {
    let (router, [sw, se, ne, nw]) = block();
    let time = |a: LatLng, b: LatLng| router.travel_time_or_crow_fly_ms(a, b);
    let side = time(sw, se);
    assert!((9_000..12_000).contains(&side), "{side}");
    // With the one-way: straight along the north side.
    assert!(time(nw, ne).abs_diff(side) < 500);
    // Against it: round the three other sides.
    let around = time(ne, se) + time(se, sw) + time(sw, nw);
    assert!(
        time(ne, nw).abs_diff(around) <= 2,
        "{} vs {around}",
        time(ne, nw)
    );
    // From the middle of the one-way back to its start: on to NE, round.
    let mid = LatLng {
        lat: 57.701,
        lng: 11.97085,
    };
    let back = time(mid, nw);
    assert!(back > around + side / 3, "{back}");
    // And onwards: half a side.
    assert!(time(mid, ne).abs_diff(side / 2) < 500);
}

#[test]
fn points_off_the_map_fall_back_to_crow_fly() {
    let (router, [sw, ..]) = block();
    let far = LatLng {
        lat: 57.72,
        lng: 11.99,
    };
    assert!(router.snap(far).is_none());
    assert_eq!(
        router.travel_time_or_crow_fly_ms(sw, far),
        routing::crow_fly_time_ms(sw, far, routing::CROW_FLY_SPEED_MPS)
    );
}

/// For every node, the fastest time from `source` and the shortest and
/// longest road length among the fastest paths (decimetres): the bounds a
/// length-carrying query must fall within (ties between equally fast paths
/// may be broken either way).
fn fastest_length_bounds(graph: &RoadGraph, source: u32) -> Vec<(u32, u32, u32)> {
    let dist = dijkstra(graph, &node(source));
    let mut arcs: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); graph.node_count()];
    for s in graph.segments() {
        if s.forward {
            arcs[s.a as usize].push((s.b, s.time_ms(), s.length_dm));
        }
        if s.backward {
            arcs[s.b as usize].push((s.a, s.time_ms(), s.length_dm));
        }
    }
    let mut order: Vec<u32> = (0..graph.node_count() as u32)
        .filter(|&v| dist[v as usize] != UNREACHABLE)
        .collect();
    // Arcs take at least 1 ms: the tight arcs form a DAG in time order.
    order.sort_by_key(|&v| dist[v as usize]);
    let mut bounds = vec![(UNREACHABLE, u32::MAX, 0u32); graph.node_count()];
    bounds[source as usize] = (0, 0, 0);
    for v in order {
        let (d, lo, hi) = bounds[v as usize];
        if lo == u32::MAX {
            continue;
        }
        for &(h, t, l) in &arcs[v as usize] {
            if d + t == dist[h as usize] {
                let b = &mut bounds[h as usize];
                b.0 = dist[h as usize];
                b.1 = b.1.min(lo + l);
                b.2 = b.2.max(hi + l);
            }
        }
    }
    bounds
}

/// The hierarchy's times with lengths to `target` from every node equal
/// Dijkstra's times, with a length of one of the fastest paths.
fn check_lengths(router: &Router, targets: &[u32]) {
    let graph = router.graph();
    let all: Vec<u32> = (0..graph.node_count() as u32).collect();
    let src: Vec<Vec<LengthSeed>> = all
        .iter()
        .map(|&v| {
            vec![LengthSeed {
                seed: node(v)[0],
                offset_dm: 0,
            }]
        })
        .collect();
    let bounds: Vec<Vec<(u32, u32, u32)>> = all
        .iter()
        .map(|&v| fastest_length_bounds(graph, v))
        .collect();
    for &t in targets {
        let target = [LengthSeed {
            seed: node(t)[0],
            offset_dm: 0,
        }];
        let got = router.hierarchy().many_to_one_with_length(&src, &target);
        for (s, tl) in all.iter().zip(got) {
            let (time, lo, hi) = bounds[*s as usize][t as usize];
            assert_eq!(tl.time_ms, time, "time {s} → {t}");
            if time != UNREACHABLE {
                assert!(
                    (lo..=hi).contains(&tl.length_dm),
                    "length {s} → {t}: {} not in {lo}..={hi}",
                    tl.length_dm
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(config(0x1e57_d157, 200))]

    #[test]
    fn random_graph_lengths_are_those_of_fastest_paths(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let Some(router) = random_grid(&mut rng) else { return Ok(()) };
        let all: Vec<u32> = (0..router.graph().node_count() as u32).collect();
        check_lengths(&router, &all);
    }
}

#[test]
fn routes_carry_the_fastest_paths_length_and_fall_back_to_crow_fly() {
    let (router, [sw, se, ne, nw]) = block();
    let far = LatLng {
        lat: 57.72,
        lng: 11.99,
    };
    let routes = router.routes_to(&[sw, ne, nw, far], se);
    let side_m = sw.distance_m(se);
    // SW → SE: one side, straight.
    assert!(routes[0].on_roads);
    assert!((routes[0].distance_m - side_m).abs() < 1.0, "{routes:?}");
    assert_eq!(routes[0].time_ms, router.travel_time_or_crow_fly_ms(sw, se));
    // NE → SE: one side (east).
    assert!((routes[1].distance_m - ne.distance_m(se)).abs() < 1.0);
    // NW → SE: two sides, either way round.
    let two = nw.distance_m(ne) + ne.distance_m(se);
    assert!((routes[2].distance_m - two).abs() < 2.0, "{routes:?}");
    // Off the map: crow-fly.
    assert!(!routes[3].on_roads);
    assert_eq!(routes[3].distance_m, far.distance_m(se));
    // The door off the map: crow-fly for everyone.
    let all_crow = router.routes_to(&[sw], far);
    assert!(!all_crow[0].on_roads);
    assert_eq!(all_crow[0].distance_m, sw.distance_m(far));
    // On Gothenburg, road distances are at least the straight line and
    // their times are the router's.
    let g = &*GOTHENBURG;
    let mut rng = StdRng::seed_from_u64(7);
    let points: Vec<LatLng> = random_snaps(g, &mut rng, 30)
        .iter()
        .map(|s| s.point)
        .collect();
    let door = points[0];
    for (p, r) in points.iter().zip(g.routes_to(&points, door)) {
        assert!(r.on_roads);
        assert!(r.distance_m + 1.0 >= p.distance_m(door), "{p:?}: {r:?}");
        assert_eq!(r.time_ms, g.travel_time_or_crow_fly_ms(*p, door));
    }
}

#[test]
fn class_times_split_the_fastest_path_and_learned_factors_slow_a_class() {
    let g = &*GOTHENBURG;
    let mut rng = StdRng::seed_from_u64(3);
    let points: Vec<LatLng> = random_snaps(g, &mut rng, 20)
        .iter()
        .map(|s| s.point)
        .collect();
    for pair in points.windows(2) {
        let by_class = g.class_times_ms(pair[0], pair[1]).expect("on the map");
        let total: u64 = by_class.iter().sum();
        let time = u64::from(g.travel_time_or_crow_fly_ms(pair[0], pair[1]));
        // The split adds up to the router's time (rounding of the partial
        // segments at both ends aside).
        assert!(total.abs_diff(time) <= 2, "{total} vs {time}");
    }
    // Every residential street twice as slow: trips through them slow down.
    let mut factors = [1.0; routing::CLASSES];
    factors[RoadClass::Residential as usize] = 2.0;
    let slow = g.with_time_factors(&factors);
    let (a, b) = (points[0], points[1]);
    let before = g.class_times_ms(a, b).unwrap();
    let after = u64::from(slow.travel_time_or_crow_fly_ms(a, b));
    let total: u64 = before.iter().sum();
    assert!(after >= total, "{after} < {total}");
    assert!(after <= total + before[RoadClass::Residential as usize] + 1000);
}
