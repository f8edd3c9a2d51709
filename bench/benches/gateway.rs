//! The tracking fan-out: what one engine batch of moves costs the gateway's
//! fan-out task (subscription index, box checks, mailbox pushes) plus what
//! the clients' writers spend encoding the frames it leaves. Run:
//! `cargo bench -p bench --bench gateway`. Ids are stable
//! (`gateway/fanout/<scenario>/<parameters>`).
//!
//! - `one_move`: one driver's update to N dispatchers whose boxes all
//!   contain it (the copy-per-subscriber cost).
//! - `city_batch`: the load test's track run in process: 10,000 drivers
//!   in central Gothenburg, 1,000 dispatchers on 1 km boxes, batches of 256
//!   moves as the fan-out task takes them.

use bench::{City, Fleet, SEED};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::cells::cell_of;
use engine::{BBox, DriverStatus, LatLng, Moved, Ping};
use std::hint::black_box;
use ws_gateway::bench_support::FanoutBench;

/// Moves per fan-out round (the task's batch size).
const BATCH: usize = 256;

/// A `side_m` box centred on `c`.
fn bbox_around(c: LatLng, side_m: f64) -> BBox {
    let half_lat = side_m / 2.0 / 111_320.0;
    let half_lng = half_lat / c.lat.to_radians().cos();
    BBox {
        min: LatLng {
            lat: c.lat - half_lat,
            lng: c.lng - half_lng,
        },
        max: LatLng {
            lat: c.lat + half_lat,
            lng: c.lng + half_lng,
        },
    }
}

fn moved(ping: &Ping, previous: Option<LatLng>) -> Moved {
    Moved {
        driver_id: ping.driver_id,
        position: ping.position,
        previous,
        cell: cell_of(ping.position),
        previous_cell: previous.map(cell_of),
        recorded_at_ms: ping.recorded_at_ms,
        heading_deg: None,
        speed_mps: ping.speed_mps,
        status: DriverStatus::Available,
        order_id: None,
        stacked_order: None,
    }
}

fn one_move(c: &mut Criterion) {
    let mut group = c.benchmark_group("gateway/fanout/one_move");
    let city = City::gothenburg_30km();
    for dispatchers in [1, 100, 1_000, 10_000] {
        let mut fleet = Fleet::uniform(SEED, 1, city);
        let at = fleet.positions[0];
        let mut bench = FanoutBench::new(engine::Handle::new(engine::Config::default()));
        let near = City {
            centre: at,
            size_m: 400.0,
        };
        for _ in 0..dispatchers {
            bench.watch_area(bbox_around(near.random_point(fleet.rng()), 1_000.0));
        }
        group.throughput(Throughput::Elements(dispatchers as u64));
        let id = BenchmarkId::new("box=1000m", format!("dispatchers={dispatchers}"));
        group.bench_function(id, |b| {
            b.iter(|| {
                let previous = fleet.positions[0];
                let ping = fleet.next_pings(1).remove(0);
                bench.deliver(&[moved(&ping, Some(previous))]);
                black_box(bench.drain())
            })
        });
    }
    group.finish();
}

fn city_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("gateway/fanout/city_batch");
    let city = City {
        size_m: 14_000.0,
        ..City::gothenburg_30km()
    };
    let mut fleet = Fleet::uniform(SEED, 10_000, city);
    let mut bench = FanoutBench::new(engine::Handle::new(engine::Config::default()));
    for _ in 0..1_000 {
        bench.watch_area(bbox_around(city.random_point(fleet.rng()), 1_000.0));
    }
    group.throughput(Throughput::Elements(BATCH as u64));
    let id = BenchmarkId::new("drivers=10k", "dispatchers=1000/box=1000m");
    group.bench_function(id, |b| {
        b.iter_batched(
            || {
                let before = fleet.positions.clone();
                let pings = fleet.next_pings(BATCH);
                let index: std::collections::HashMap<_, _> =
                    fleet.drivers.iter().zip(before).collect();
                pings
                    .iter()
                    .map(|p| moved(p, index.get(&p.driver_id).copied()))
                    .collect::<Vec<_>>()
            },
            |moves| {
                bench.deliver(&moves);
                black_box(bench.drain())
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, one_move, city_batch);
criterion_main!(benches);
