//! The matcher's dispatch decision. Run: `cargo bench -p bench --bench matcher`.
//! Ids are stable (`matcher/dispatch/<scenario>/<parameters>`): keep them so
//! results compare across commits.
//!
//! One decision is `Matcher::dispatch` of an order waiting on the engine's
//! board (status `Accepted`, where the api starts dispatching): read the
//! order, find the nearest available driver holding no other offer (nearest
//! 16 under the engine lock, the radius doubling from 3 km up to 24 km while
//! nobody is found), open the offer in the book and publish it on the
//! engine's change stream. It is the time from "the restaurant accepted" to
//! "an offer is on its way to a driver", and the engine lock it takes is the
//! one every ping needs.
//!
//! Every iteration must do the same work, so each decision is undone with
//! `Matcher::withdraw` (the offer ends, its driver is free again and is
//! chosen again next time). Two ids per scenario:
//! - `.../decision`: `dispatch` alone. Each call is timed by itself
//!   (`iter_custom`) and the withdraw runs outside the timed region; the two
//!   clock reads per call add a few tens of nanoseconds (TSC clock).
//! - `.../decision+withdraw`: dispatch and withdraw timed as one block,
//!   without per-call clock reads: the cost of a dispatch that is undone.
//!
//! Orders: 1,024 orders at seeded restaurants (`bench::menus`: half within
//! 5 km of the centre, half anywhere in the city), dispatched in turn. A
//! receiver of the change stream stays subscribed and never drained, as the
//! offer publisher and the gateway are in the server (the stream overwrites
//! its oldest events when full). The book keeps ended offers for 10 minutes
//! and only the timer loop (not run here) forgets them, so the bench starts
//! a fresh matcher at each sample and every 1,024 decisions, outside the
//! timed region: the book never holds more than 1,024 ended offers. No
//! metrics recorder is installed, so the offer counters cost nothing here.
//!
//! Scenarios:
//! - `city_30km/drivers=100k`: 100,000 drivers uniform in the 30 × 30 km city
//!   (`engine/nearby/city_30km`'s fleet); every order finds its driver in
//!   the first 3 km search.
//! - `city_30km_stacking/drivers=100k`: the 100,000 drivers with
//!   `matcher.stacking` on: before the nearest free driver, each decision
//!   looks for a busy courier bound for the same kitchen (none here: the
//!   cost of looking, the kitchen's orders on the board read by index).
//! - `sparse/drivers=10`: 10 drivers in the same city; the search widens.
//!   Of the 1,024 orders, 542 find their driver in the first search (3 km),
//!   275 in the second (6 km), 182 in the third (12 km) and 25 in the
//!   fourth (24 km).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bench::{City, EPOCH_MS, Fleet, SEED, menus};
use criterion::{Bencher, BenchmarkId, Criterion, criterion_group, criterion_main};
use engine::{Handle, OrderId, OrderStatus, OrderTrack, RestaurantId, UserId};
use matcher::Matcher;
use rand::Rng;
use rand::rngs::StdRng;
use uuid::Uuid;

/// Orders on the board, dispatched in turn; also the decisions one matcher
/// makes before the bench replaces it (see the module doc).
const ORDERS: usize = 1_024;
/// The server clock of every decision (offers expire 30 s later).
const NOW_MS: i64 = EPOCH_MS + 1_000;

fn loaded_handle(fleet: &Fleet) -> Handle {
    let handle = Handle::new(engine::Config::default());
    handle.apply_pings(&fleet.initial_pings(), fleet.clock_ms);
    handle
}

/// Puts an order from each of `ORDERS` seeded restaurants on the board,
/// delivered within 3 km of the restaurant.
fn tracked_orders(handle: &Handle, fleet: &mut Fleet) -> Vec<OrderId> {
    let city = fleet.city;
    let rng = fleet.rng();
    let id = |rng: &mut StdRng| Uuid::from_u128(rng.random());
    menus::restaurants(SEED, ORDERS, 0, city)
        .into_iter()
        .map(|r| {
            let order_id = OrderId::from(id(rng));
            let customer_id = UserId::from(id(rng));
            let restaurant_owner_id = UserId::from(id(rng));
            let near = City {
                centre: bench::lat_lng(r.location),
                size_m: 6_000.0,
            };
            let dropoff = near.random_point(rng);
            handle.track_order(OrderTrack {
                order_id,
                customer_id,
                restaurant_id: RestaurantId::from(r.id),
                restaurant_owner_id,
                status: OrderStatus::Accepted,
                driver_id: None,
                pickup: bench::lat_lng(r.location),
                dropoff,
                updated_at_ms: EPOCH_MS,
                version: 0,
            });
            order_id
        })
        .collect()
}

fn new_matcher(handle: &Handle, stacking: bool) -> Matcher {
    Matcher::new(
        handle.clone(),
        matcher::Config {
            stacking,
            ..matcher::Config::default()
        },
    )
}

/// Every order gets an offer, so every iteration measures a decision that
/// found a driver (not a scheduled retry).
fn check_every_order_is_offered(handle: &Handle, orders: &[OrderId], stacking: bool) {
    let matcher = new_matcher(handle, stacking);
    for &order_id in orders {
        matcher
            .dispatch(order_id, NOW_MS)
            .expect("the order is on the board");
        assert!(
            matcher.pending_offer(order_id).is_some(),
            "order {order_id} found no driver"
        );
        matcher.withdraw(order_id);
    }
}

/// `dispatch` alone, each call timed by itself.
fn decision(b: &mut Bencher<'_>, handle: &Handle, orders: &[OrderId], stacking: bool) {
    b.iter_custom(|iters| {
        let mut timed = Duration::ZERO;
        let mut matcher = new_matcher(handle, stacking);
        for i in 0..iters as usize {
            let order_id = orders[i % orders.len()];
            if i > 0 && i % orders.len() == 0 {
                matcher = new_matcher(handle, stacking);
            }
            let start = Instant::now();
            let outcome = matcher.dispatch(black_box(order_id), NOW_MS);
            timed += start.elapsed();
            let _ = black_box(outcome);
            matcher.withdraw(order_id);
        }
        timed
    })
}

/// `dispatch` then `withdraw`, timed in blocks of up to `ORDERS` pairs.
fn decision_and_withdraw(b: &mut Bencher<'_>, handle: &Handle, orders: &[OrderId], stacking: bool) {
    b.iter_custom(|iters| {
        let mut timed = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            let block = &orders[..left.min(orders.len())];
            let matcher = new_matcher(handle, stacking);
            let start = Instant::now();
            for &order_id in block {
                let _ = black_box(matcher.dispatch(black_box(order_id), NOW_MS));
                matcher.withdraw(order_id);
            }
            timed += start.elapsed();
            left -= block.len();
        }
        timed
    })
}

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("matcher/dispatch");
    let city = City::gothenburg_30km();
    let scenarios = [
        (
            "city_30km",
            "drivers=100k",
            Fleet::uniform(SEED, 100_000, city),
            false,
        ),
        (
            "city_30km_stacking",
            "drivers=100k",
            Fleet::uniform(SEED, 100_000, city),
            true,
        ),
        (
            "sparse",
            "drivers=10",
            Fleet::uniform(SEED, 10, city),
            false,
        ),
    ];
    for (name, drivers, mut fleet, stacking) in scenarios {
        let handle = loaded_handle(&fleet);
        let orders = tracked_orders(&handle, &mut fleet);
        check_every_order_is_offered(&handle, &orders, stacking);
        let _changes = handle.subscribe_changes();
        group.bench_function(BenchmarkId::new(name, format!("{drivers}/decision")), |b| {
            decision(b, &handle, &orders, stacking)
        });
        group.bench_function(
            BenchmarkId::new(name, format!("{drivers}/decision+withdraw")),
            |b| decision_and_withdraw(b, &handle, &orders, stacking),
        );
    }
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
