//! Arrival geofences (`matcher::geofence::Fences`): one per-ping check
//! against 10,000 active fences (5,000 assigned orders, a restaurant and a
//! door fence each, 50 m radius, 30 m margin) in the 30 × 30 km city.
//! Run: `cargo bench -p bench --bench geofence`. Ids are stable:
//!
//! - `matcher/geofence/check/10000/away`: a driver pinging a seeded
//!   random point of the city (most pings: between fences).
//! - `matcher/geofence/check/10000/at_fence`: a driver pinging inside
//!   their own restaurant fence (after its arrival fired: the common case
//!   while a courier waits for the food).
//! - `matcher/geofence/check/10000/linear_scan`: the peer, the same `away`
//!   pings checked by a plain scan of all 10,000 circles (the distance
//!   of each, what a first version without an index would do).

use std::hint::black_box;

use bench::{City, Fleet, SEED};
use criterion::{Criterion, criterion_group, criterion_main};
use engine::{DriverId, OrderId};
use matcher::geofence::Fences;

const ORDERS: usize = 5_000;
/// Pings cycled through, so the check does not see one point only.
const PINGS: usize = 1_024;

fn bench(c: &mut Criterion) {
    let city = City::gothenburg_30km();
    let restaurants = Fleet::uniform(SEED, ORDERS, city).positions;
    let doors = Fleet::uniform(SEED + 1, ORDERS, city).positions;
    let pings = Fleet::uniform(SEED + 2, PINGS, city).positions;
    let mut fences = Fences::default();
    let drivers: Vec<DriverId> = (0..ORDERS).map(|_| DriverId::new()).collect();
    for ((&driver, &restaurant), &door) in drivers.iter().zip(&restaurants).zip(&doors) {
        fences.add_order(OrderId::new(), driver, restaurant, door);
    }
    assert_eq!(fences.len(), 2 * ORDERS);
    // Every restaurant fence has fired: the bench measures the check, not
    // first arrivals.
    for (&driver, &restaurant) in drivers.iter().zip(&restaurants) {
        fences.check(driver, restaurant);
    }

    let mut g = c.benchmark_group("matcher/geofence/check/10000");
    let mut i = 0;
    g.bench_function("away", |b| {
        b.iter(|| {
            i = (i + 1) % PINGS;
            black_box(fences.check(drivers[i], black_box(pings[i]))).len()
        })
    });
    g.bench_function("at_fence", |b| {
        b.iter(|| {
            i = (i + 1) % PINGS;
            black_box(fences.check(drivers[i], black_box(restaurants[i]))).len()
        })
    });
    // The peer: every circle's distance, no index.
    let circles: Vec<(engine::LatLng, DriverId)> = restaurants
        .iter()
        .zip(&drivers)
        .chain(doors.iter().zip(&drivers))
        .map(|(&c, &d)| (c, d))
        .collect();
    g.bench_function("linear_scan", |b| {
        b.iter(|| {
            i = (i + 1) % PINGS;
            let (p, me) = (black_box(pings[i]), drivers[i]);
            circles
                .iter()
                .filter(|(c, d)| distance_m(*c, p) <= fences.radius_m && *d == me)
                .count()
        })
    });
    g.finish();
}

/// Equirectangular distance, metres (what `Fences` computes per candidate).
fn distance_m(a: engine::LatLng, b: engine::LatLng) -> f64 {
    const M_PER_DEG: f64 = 111_195.0;
    let y = (a.lat - b.lat) * M_PER_DEG;
    let x = (a.lng - b.lng) * M_PER_DEG * ((a.lat + b.lat) / 2.0).to_radians().cos();
    (x * x + y * y).sqrt()
}

criterion_group!(benches, bench);
criterion_main!(benches);
