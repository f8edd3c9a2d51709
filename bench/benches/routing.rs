//! Road travel-time queries on the shipped Gothenburg graph
//! (`data/gothenburg_roads_2016.hxroads`, 47k nodes, 85k arcs). Run:
//! `cargo bench -p bench --bench routing`. Ids are stable:
//!
//! - `routing/one_to_many/1x1000`: `Router::one_to_many` from one snapped
//!   position to 1,000 (PHAST: one upward search, one sweep).
//! - `routing/many_to_one/1000x1`: the reverse, e.g. every courier to a
//!   restaurant.
//! - `routing/many_to_many/100x100`: `Router::many_to_many` (OSRM's bucket
//!   table), 100 × 100 snapped positions.
//! - `routing/snap/1000`: 1,000 positions snapped to the nearest road.
//! - `routing/load/gothenburg`: reading and checking the graph file
//!   (`routing::load::read_graph`, 0.5 MB).
//! - `routing/compare/<impl>/<shape>`: the same node-level questions
//!   answered by our CH (`ours_buckets`, `ours_phast`), the `cch` crate
//!   (customizable CH, inertial-flow order, `distance_matrix`) and the
//!   `fast_paths` crate (CH, one-to-one only: a table is one query per
//!   pair). Answers are checked equal before timing.
//! - `routing/prepare/<impl>`: preprocessing the graph (10 samples).
//!
//! Positions: uniform in the graph's bounding box, snapped, those farther
//! than 200 m from a road redrawn; nodes for `compare`: the snapped
//! segments' first nodes. Seeded (`bench::SEED`).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use routing::{Config, ContractionHierarchy, LatLng, RoadGraph, Router, Seed, Snap, UNREACHABLE};

fn graph_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gothenburg_roads_2016.hxroads")
}

fn router() -> Router {
    let graph = routing::load::read_graph(&graph_path()).expect("the shipped Gothenburg graph");
    Router::new(graph, Config::default())
}

fn snaps(router: &Router, rng: &mut StdRng, count: usize) -> Vec<Snap> {
    let nodes = router.graph().nodes();
    let lat = nodes.iter().fold((90.0f64, -90.0f64), |(a, b), p| {
        (a.min(p.lat), b.max(p.lat))
    });
    let lng = nodes.iter().fold((180.0f64, -180.0f64), |(a, b), p| {
        (a.min(p.lng), b.max(p.lng))
    });
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let p = LatLng {
            lat: rng.random_range(lat.0..=lat.1),
            lng: rng.random_range(lng.0..=lng.1),
        };
        if let Some(s) = router.snap(p) {
            out.push(s);
        }
    }
    out
}

/// `cch`'s input: the graph's arcs in CSR form, with coordinates for its
/// inertial-flow order.
fn cch_input(graph: &RoadGraph) -> (cch::graph::Graph, Vec<u32>) {
    let n = graph.node_count();
    let (mut first_out, mut head, mut weight) = (vec![0u32], Vec::new(), Vec::new());
    let mut tail = Vec::new();
    for v in 0..n as u32 {
        for a in graph.arcs_from(v) {
            tail.push(v);
            head.push(a.head);
            weight.push(a.time_ms);
        }
        first_out.push(head.len() as u32);
    }
    let lat: Vec<f32> = graph.nodes().iter().map(|p| p.lat as f32).collect();
    let lng: Vec<f32> = graph.nodes().iter().map(|p| p.lng as f32).collect();
    let order = cch::inertial_order(n as u32, &tail, &head, &lat, &lng);
    (
        cch::graph::Graph {
            first_out,
            head,
            weight,
        },
        order,
    )
}

fn fast_paths_input(graph: &RoadGraph) -> fast_paths::InputGraph {
    let mut input = fast_paths::InputGraph::new();
    for v in 0..graph.node_count() as u32 {
        for a in graph.arcs_from(v) {
            input.add_edge(v as usize, a.head as usize, a.time_ms as usize);
        }
    }
    input.freeze();
    input
}

fn queries(c: &mut Criterion) {
    let router = router();
    let mut rng = StdRng::seed_from_u64(bench::SEED);
    let from = snaps(&router, &mut rng, 100);
    let to = snaps(&router, &mut rng, 1_000);
    let mut g = c.benchmark_group("routing");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("one_to_many/1x1000", |b| {
        b.iter(|| black_box(router.one_to_many(&from[0], &to)))
    });
    g.bench_function("many_to_one/1000x1", |b| {
        b.iter(|| black_box(router.many_to_one(&to, &from[0])))
    });
    g.bench_function("many_to_many/100x100", |b| {
        b.iter(|| black_box(router.many_to_many(&from, &to[..100])))
    });
    let points: Vec<LatLng> = to.iter().map(|s| s.point).collect();
    g.bench_function("snap/1000", |b| {
        b.iter(|| points.iter().filter_map(|&p| router.snap(p)).count())
    });
    let path = graph_path();
    g.bench_function("load/gothenburg", |b| {
        b.iter(|| routing::load::read_graph(&path).map(|g| g.node_count()))
    });
    g.finish();
}

fn compare(c: &mut Criterion) {
    let router = router();
    let graph = router.graph();
    let ours = router.hierarchy();
    let mut rng = StdRng::seed_from_u64(bench::SEED);
    let node = |s: &Snap| graph.segments()[s.segment as usize].a;
    let sources: Vec<u32> = snaps(&router, &mut rng, 100).iter().map(node).collect();
    let targets: Vec<u32> = snaps(&router, &mut rng, 1_000).iter().map(node).collect();
    let seeds = |nodes: &[u32]| -> Vec<Vec<Seed>> {
        nodes
            .iter()
            .map(|&v| {
                vec![Seed {
                    node: v,
                    offset_ms: 0,
                }]
            })
            .collect()
    };
    let (src, dst) = (seeds(&sources), seeds(&targets));

    let (cch_graph, order) = cch_input(graph);
    let cch_structure = cch::Cch::build(&cch_graph, &order);
    let cch_metric = cch_structure.customize(&cch_graph.weight);
    let (cv, mv) = (cch_structure.view(), cch_metric.view());
    let fast_input = fast_paths_input(graph);
    let fast = fast_paths::prepare(&fast_input);
    let mut calculator = fast_paths::create_calculator(&fast);

    // Same answers before timing.
    let ours_table = ours.many_to_many(&src, &dst[..100]);
    let cch_table = cch::distance_matrix(&cv, &mv, &sources, &targets[..100]);
    for i in 0..sources.len() {
        for j in 0..100 {
            let expected = ours_table.row(i)[j];
            let c = cch_table[i * 100 + j];
            assert_eq!(
                if c == cch::INF_WEIGHT { UNREACHABLE } else { c },
                expected,
                "cch {i} {j}"
            );
            let f = calculator.calc_path(&fast, sources[i] as usize, targets[j] as usize);
            assert_eq!(
                f.map_or(UNREACHABLE, |p| p.get_weight() as u32),
                expected,
                "fast_paths {i} {j}"
            );
        }
    }
    assert_eq!(ours.one_to_many(&src[0], &dst[..100]), ours_table.row(0));

    let mut g = c.benchmark_group("routing/compare");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("ours_buckets/1x1000", |b| {
        b.iter(|| black_box(ours.many_to_many(&src[..1], &dst)))
    });
    g.bench_function("ours_phast/1x1000", |b| {
        b.iter(|| black_box(ours.one_to_many(&src[0], &dst)))
    });
    g.bench_function("cch/1x1000", |b| {
        b.iter(|| black_box(cch::distance_matrix(&cv, &mv, &sources[..1], &targets)))
    });
    g.bench_function("fast_paths/1x1000", |b| {
        b.iter(|| {
            targets
                .iter()
                .map(|&t| {
                    calculator
                        .calc_path(&fast, sources[0] as usize, t as usize)
                        .map_or(0, |p| p.get_weight())
                })
                .sum::<usize>()
        })
    });
    g.bench_function("ours_buckets/100x100", |b| {
        b.iter(|| black_box(ours.many_to_many(&src, &dst[..100])))
    });
    g.bench_function("ours_phast/100x100", |b| {
        b.iter(|| {
            src.iter()
                .map(|s| ours.one_to_many(s, &dst[..100]))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("cch/100x100", |b| {
        b.iter(|| black_box(cch::distance_matrix(&cv, &mv, &sources, &targets[..100])))
    });
    g.sample_size(10);
    g.bench_function("fast_paths/100x100", |b| {
        b.iter(|| {
            let mut sum = 0;
            for &s in &sources {
                for &t in &targets[..100] {
                    sum += calculator
                        .calc_path(&fast, s as usize, t as usize)
                        .map_or(0, |p| p.get_weight());
                }
            }
            sum
        })
    });
    g.finish();

    let mut g = c.benchmark_group("routing/prepare");
    g.sample_size(10);
    g.bench_function("ours", |b| {
        b.iter(|| black_box(ContractionHierarchy::build(graph)))
    });
    g.bench_function("cch_order+build+customize", |b| {
        b.iter(|| {
            let (input, order) = cch_input(graph);
            let structure = cch::Cch::build(&input, &order);
            black_box(structure.customize(&input.weight));
        })
    });
    g.bench_function("cch_customize", |b| {
        b.iter(|| black_box(cch_structure.customize(&cch_graph.weight)))
    });
    g.bench_function("fast_paths", |b| {
        b.iter(|| black_box(fast_paths::prepare(&fast_input)))
    });
    g.finish();
}

criterion_group!(benches, queries, compare);
criterion_main!(benches);
