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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
