//! One batch of the batched dispatch policy (`matcher::assign::Batched`):
//! 2,000 waiting orders × 10,000 free drivers. Run:
//! `cargo bench -p bench --bench assign`. Ids are stable:
//!
//! - `matcher/assign/2000x10000`: crow-fly. Drivers are the seeded
//!   uniform fleet of the 30 × 30 km city (`bench::Fleet`), pickups a
//!   second seeded fleet in the same city, order ages 0–5 minutes. One
//!   iteration is a whole `Policy::assign`: the k = 8 nearest drivers per
//!   order (grid), their crow-fly times, costs, and the exact solver.
//! - `matcher/assign/2000x10000/roads`: the same on road times
//!   (`RoadTimes` over `routing::Router`) on the shipped Gothenburg graph
//!   (`data/gothenburg_roads_2016.hxroads`). Drivers and pickups are
//!   seeded random graph nodes, so all of them snap; the iteration
//!   includes snapping and the many-to-many tables.
//!
//! Before timing, the bench prints how many orders each variant assigns
//! and the share of the time in travel times (and, on roads, in snapping
//! every position), from one untimed run.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bench::{City, Fleet, SEED};
use criterion::{Criterion, criterion_group, criterion_main};
use matcher::assign::{
    BatchConfig, Batched, CrowFly, Free, Policy, RoadTimes, TravelTimes, Waiting,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use routing::{Config, LatLng, Router};

const ORDERS: usize = 2_000;
const DRIVERS: usize = 10_000;
/// Oldest order in the batch, milliseconds.
const MAX_AGE_MS: u64 = 5 * 60 * 1000;

fn ll(p: engine::LatLng) -> LatLng {
    LatLng {
        lat: p.lat,
        lng: p.lng,
    }
}

fn city_batch() -> (Vec<Waiting>, Vec<Free>) {
    let city = City::gothenburg_30km();
    let mut rng = StdRng::seed_from_u64(SEED);
    let drivers = Fleet::uniform(SEED, DRIVERS, city)
        .positions
        .into_iter()
        .map(|p| Free { position: ll(p) })
        .collect();
    let orders = Fleet::uniform(SEED + 1, ORDERS, city)
        .positions
        .into_iter()
        .map(|p| Waiting {
            pickup: ll(p),
            age_ms: rng.random_range(0..MAX_AGE_MS),
            hold_ms: 0,
        })
        .collect();
    (orders, drivers)
}

fn road_batch(router: &Router) -> (Vec<Waiting>, Vec<Free>) {
    let nodes = router.graph().nodes();
    let mut rng = StdRng::seed_from_u64(SEED + 2);
    let node = |rng: &mut StdRng| nodes[rng.random_range(0..nodes.len())];
    let drivers = (0..DRIVERS)
        .map(|_| Free {
            position: node(&mut rng),
        })
        .collect();
    let orders = (0..ORDERS)
        .map(|_| Waiting {
            pickup: node(&mut rng),
            age_ms: rng.random_range(0..MAX_AGE_MS),
            hold_ms: 0,
        })
        .collect();
    (orders, drivers)
}

/// One untimed run, reporting what the batch decides and where the time
/// goes (candidates + travel times vs the whole).
fn describe(name: &str, orders: &[Waiting], drivers: &[Free], travel: &dyn TravelTimes) {
    let policy = Batched::default();
    let t = Instant::now();
    let pairs = policy.assign(orders, drivers, travel);
    let whole = t.elapsed();
    let positions: Vec<LatLng> = drivers.iter().map(|d| d.position).collect();
    let pickups: Vec<LatLng> = orders.iter().map(|o| o.pickup).collect();
    // Travel times alone for the crow-fly candidates (an approximation of
    // the step inside assign: the same pairs, without grid or solver).
    let k = BatchConfig::default().k_candidates;
    let candidates: Vec<Vec<usize>> = pickups
        .iter()
        .map(|&p| {
            let mut all: Vec<(f64, usize)> = positions
                .iter()
                .enumerate()
                .map(|(i, d)| (d.distance_m(p), i))
                .collect();
            all.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
            all[..k].iter().map(|&(_, i)| i).collect()
        })
        .collect();
    let t = Instant::now();
    black_box(travel.times_ms(&positions, &pickups, &candidates));
    let times = t.elapsed();
    eprintln!(
        "{name}: {} of {} orders assigned; one untimed batch {whole:?}, of which travel times ≈ {times:?}",
        pairs.len(),
        orders.len()
    );
}

fn assign(c: &mut Criterion) {
    let mut g = c.benchmark_group("matcher/assign");
    g.sample_size(10);
    let (orders, drivers) = city_batch();
    let crow = CrowFly::default();
    describe("2000x10000", &orders, &drivers, &crow);
    let policy = Batched::default();
    g.bench_function("2000x10000", |b| {
        b.iter(|| black_box(policy.assign(&orders, &drivers, &crow)).len())
    });

    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gothenburg_roads_2016.hxroads");
    let graph = routing::load::read_graph(&path).expect("the shipped Gothenburg graph");
    let router = Router::new(graph, Config::default());
    let (orders, drivers) = road_batch(&router);
    let roads = RoadTimes { router: &router };
    describe("2000x10000/roads", &orders, &drivers, &roads);
    let t = Instant::now();
    let snapped = (orders.iter().map(|o| o.pickup))
        .chain(drivers.iter().map(|d| d.position))
        .filter_map(|p| router.snap(p))
        .count();
    eprintln!(
        "2000x10000/roads: snapping all {snapped} positions alone {:?}",
        t.elapsed()
    );
    g.bench_function("2000x10000/roads", |b| {
        b.iter(|| black_box(policy.assign(&orders, &drivers, &roads)).len())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = assign
}
criterion_main!(benches);
