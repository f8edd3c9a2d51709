//! Engine hot paths. Run: `cargo bench -p bench --bench engine`.
//! Ids are stable (`engine/<operation>/<scenario>/<parameters>`): keep them
//! so results compare across commits.

use bench::{City, Fleet};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::{Config, DriverStatus, Engine, StatusFilter, cells};
use std::hint::black_box;

const SEED: u64 = 20_261_121;
const FLEET: usize = 100_000;

fn loaded_engine(fleet: &Fleet) -> Engine {
    loaded_engine_with(fleet, Config::default())
}

fn loaded_engine_with(fleet: &Fleet, config: Config) -> Engine {
    let mut engine = Engine::new(config);
    for p in fleet.initial_pings() {
        engine.apply_ping(&p, p.recorded_at_ms);
    }
    engine
}

/// Pings applied per second on one core, including each ping's H3 cell
/// and each driver's ping budget (`drivers=100k`), and without the budget
/// (`drivers=100k/no_ping_budget`): what the flood limit costs a ping.
fn update(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/update");
    let batch = 10_000;
    group.throughput(Throughput::Elements(batch as u64));
    let unlimited = Config {
        max_pings_per_s: 0,
        ..Config::default()
    };
    for (name, config) in [
        ("drivers=100k", Config::default()),
        ("drivers=100k/no_ping_budget", unlimited),
    ] {
        let mut fleet = Fleet::uniform(SEED, FLEET, City::gothenburg_30km());
        let mut engine = loaded_engine_with(&fleet, config);
        group.bench_function(BenchmarkId::new("city_30km", name), |b| {
            b.iter_batched(
                || fleet.next_pings(batch),
                |pings| {
                    for p in &pings {
                        black_box(engine.apply_ping(p, p.recorded_at_ms));
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The ping write path through the shared `Handle` with `readers` tasks
/// draining the `Moved` stream as the live side does (the gateway's
/// fan-out, the arrival fences, the breadcrumbs): what one more reader of
/// the stream costs a ping (publishing happens under the engine's lock).
fn update_with_readers(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/update_with_readers");
    let batch = 10_000;
    group.throughput(Throughput::Elements(batch as u64));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a runtime");
    for readers in [0, 1, 2, 3] {
        let mut fleet = Fleet::uniform(SEED, FLEET, City::gothenburg_30km());
        let handle = engine::Handle::new(Config::default());
        for p in fleet.initial_pings() {
            handle.apply_ping(&p, p.recorded_at_ms);
        }
        let stop = tokio_util::sync::CancellationToken::new();
        for _ in 0..readers {
            let mut moves = handle.subscribe_moves();
            let stop = stop.clone();
            runtime.spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        m = moves.recv_direct() => {
                            if matches!(m, Err(engine::RecvError::Closed)) {
                                return;
                            }
                            black_box(&m);
                        }
                    }
                }
            });
        }
        let id = BenchmarkId::new("city_30km", format!("drivers=100k/readers={readers}"));
        group.bench_function(id, |b| {
            b.iter_batched(
                || fleet.next_pings(batch),
                |pings| {
                    for p in &pings {
                        black_box(handle.apply_ping(p, p.recorded_at_ms));
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
        stop.cancel();
    }
    group.finish();
}

/// Nearest-k queries: the design target is nearest 10 available within 3 km
/// among 100k drivers in a 30 × 30 km city in ≤ 10 µs.
fn nearby(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/nearby");
    let city = City::gothenburg_30km();
    let scenarios = [
        ("city_30km", Fleet::uniform(SEED, FLEET, city)),
        (
            "dense_downtown",
            Fleet::with_downtown(SEED, FLEET, city, 0.5, 2_000.0),
        ),
    ];
    for (name, mut fleet) in scenarios {
        let engine = loaded_engine(&fleet);
        let centres: Vec<_> = (0..1024).map(|_| city.random_point(fleet.rng())).collect();
        for (k, radius_m) in [(10, 3_000.0), (1, 3_000.0), (50, 3_000.0), (10, 500.0)] {
            let id = BenchmarkId::new(name, format!("k={k}/r={radius_m}m"));
            let mut i = 0;
            group.bench_function(id, |b| {
                b.iter(|| {
                    i = (i + 1) % centres.len();
                    black_box(engine.nearest(
                        centres[i],
                        radius_m,
                        k,
                        StatusFilter::Only(DriverStatus::Available),
                    ))
                })
            });
        }
    }
    // An empty region: nobody within the radius, the search must give up fast.
    let fleet = Fleet::uniform(SEED, FLEET, City::gothenburg_30km());
    let engine = loaded_engine(&fleet);
    let far = City::gothenburg_30km().offset(60_000.0, 0.0);
    group.bench_function(BenchmarkId::new("empty_region", "k=10/r=3000m"), |b| {
        b.iter(|| black_box(engine.nearest(far, 3_000.0, 10, StatusFilter::Any)))
    });
    group.finish();
}

fn bbox(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/bbox");
    let city = City::gothenburg_30km();
    let fleet = Fleet::uniform(SEED, FLEET, city);
    let engine = loaded_engine(&fleet);
    for side_m in [1_000.0, 5_000.0] {
        let h = side_m / 2.0;
        let (sw, ne) = (city.offset(-h, -h), city.offset(h, h));
        let bbox = engine::BBox::new(sw.lng, sw.lat, ne.lng, ne.lat).expect("valid box");
        group.bench_function(
            BenchmarkId::new("city_30km", format!("side={side_m}m")),
            |b| b.iter(|| black_box(engine.within(bbox, usize::MAX, StatusFilter::Any))),
        );
    }
    group.finish();
}

fn h3(c: &mut Criterion) {
    let mut fleet = Fleet::uniform(SEED, 1024, City::gothenburg_30km());
    let city = fleet.city;
    let points: Vec<_> = (0..1024).map(|_| city.random_point(fleet.rng())).collect();
    let mut i = 0;
    c.bench_function("engine/h3/cell_of", |b| {
        b.iter(|| {
            i = (i + 1) % points.len();
            black_box(cells::cell_of(points[i]))
        })
    });
}

criterion_group!(benches, update, update_with_readers, nearby, bbox, h3);
criterion_main!(benches);
