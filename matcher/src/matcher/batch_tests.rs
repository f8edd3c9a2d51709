//! The batched policy in the live matcher: the window, the idle path,
//! road times, and accepts racing batches.

use std::sync::Arc;

use engine::{
    Change, Config as EngineConfig, DriverId, Handle, LatLng, OrderId, OrderStatus, OrderTrack,
    Ping, RestaurantId, UserId,
};

use super::*;

const NOW_MS: i64 = 1_763_700_000_000;
/// Central Gothenburg, on the shipped road graph.
const ORIGIN: (f64, f64) = (57.7000, 11.9700);

/// A point `north_m` north and `east_m` east of [`ORIGIN`].
fn at(north_m: f64, east_m: f64) -> LatLng {
    LatLng::new(
        ORIGIN.0 + north_m / 111_195.0,
        ORIGIN.1 + east_m / (111_195.0 * ORIGIN.0.to_radians().cos()),
    )
    .unwrap()
}

fn driver_at(engine: &Handle, position: LatLng) -> DriverId {
    let id = DriverId::new();
    engine.apply_ping(
        &Ping {
            driver_id: id,
            position,
            recorded_at_ms: NOW_MS,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        },
        NOW_MS,
    );
    id
}

fn order_at(engine: &Handle, pickup: LatLng) -> OrderId {
    let order_id = OrderId::new();
    engine.track_order(OrderTrack {
        order_id,
        customer_id: UserId::new(),
        restaurant_id: RestaurantId::new(),
        restaurant_owner_id: UserId::new(),
        status: OrderStatus::Placed,
        driver_id: None,
        pickup,
        dropoff: at(1_000.0, 1_000.0),
        updated_at_ms: NOW_MS,
        version: 0,
    });
    order_id
}

fn batched() -> Config {
    Config {
        policy: PolicyKind::Batched,
        batch_window_s: 2,
        ..Config::default()
    }
}

fn setup(config: Config) -> (Handle, Matcher) {
    let engine = Handle::new(EngineConfig::default());
    let matcher = Matcher::new(engine.clone(), config);
    (engine, matcher)
}

fn offered_to(matcher: &Matcher, order: OrderId) -> Option<DriverId> {
    matcher.pending_offer(order).map(|o| o.driver_id)
}

/// The next `n` offers on the change stream, as (order, driver).
async fn offers(changes: &mut engine::Receiver<Change>, n: usize) -> Vec<(OrderId, DriverId)> {
    let mut got = Vec::new();
    while got.len() < n {
        if let Change::Offer(o) = changes.recv_direct().await.unwrap() {
            got.push((o.order_id, o.driver_id));
        }
    }
    got
}

#[tokio::test(start_paused = true)]
async fn the_batch_offers_after_the_window_and_pairs_optimally() {
    let (engine, matcher) = setup(batched());
    // Both orders wait: nobody is free yet.
    let south = order_at(&engine, at(0.0, 0.0));
    let north = order_at(&engine, at(1_000.0, 0.0));
    let started = Instant::now();
    matcher.dispatch(south, NOW_MS).unwrap();
    matcher.dispatch(north, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, south), None);
    // The oldest order's nearest driver is `middle` (500 m), which would
    // leave `north` 1,600 m from `below`; the batch pairs them crosswise
    // for 1,100 m in all.
    let middle = driver_at(&engine, at(500.0, 0.0));
    let below = driver_at(&engine, at(-600.0, 0.0));
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));

    let mut got = offers(&mut changes, 2).await;
    got.sort_by_key(|&(o, _)| o == north);
    assert_eq!(got, vec![(south, below), (north, middle)]);
    let waited = Instant::now().duration_since(started);
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    shutdown.cancel();
    loop_task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_order_arriving_while_idle_is_offered_at_once_and_a_burst_waits() {
    let (engine, matcher) = setup(batched());
    let near = driver_at(&engine, at(100.0, 0.0));
    let next = driver_at(&engine, at(300.0, 0.0));
    let shutdown = CancellationToken::new();
    let mut changes = engine.subscribe_changes();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));

    let started = Instant::now();
    let first = order_at(&engine, at(0.0, 0.0));
    matcher.dispatch(first, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, first), Some(near), "idle: at once");
    // A second order inside the window that the first one opened waits.
    let second = order_at(&engine, at(0.0, 0.0));
    matcher.dispatch(second, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, second), None, "waits for the batch");
    assert_eq!(offers(&mut changes, 2).await[1], (second, next));
    let waited = Instant::now().duration_since(started);
    assert!(waited >= Duration::from_secs(2), "{waited:?}");

    // The batch left nothing waiting: after the window the matcher is
    // idle again, and a new order is offered at once.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(matcher.inner.book.lock().batch_at, None);
    let third_driver = driver_at(&engine, at(-200.0, 0.0));
    let third = order_at(&engine, at(0.0, 0.0));
    matcher.dispatch(third, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, third), Some(third_driver));
    shutdown.cancel();
    loop_task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_declined_order_inside_a_window_waits_for_the_batch() {
    let (engine, matcher) = setup(batched());
    let near = driver_at(&engine, at(100.0, 0.0));
    let next = driver_at(&engine, at(400.0, 0.0));
    let order = order_at(&engine, at(0.0, 0.0));
    let shutdown = CancellationToken::new();
    let mut changes = engine.subscribe_changes();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
    matcher.dispatch(order, NOW_MS).unwrap();
    let offer = matcher.pending_offer(order).unwrap();
    assert_eq!(offer.driver_id, near);
    matcher.decline(offer.offer_id, near, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, order), None);
    let got = offers(&mut changes, 2).await;
    assert_eq!(got[1], (order, next), "the decliner cools down");
    shutdown.cancel();
    loop_task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn road_times_from_the_shipped_graph_drive_the_batch() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data/gothenburg_roads_2016.hxroads");
    let graph = routing::load::read_graph(&path).unwrap();
    let router = Arc::new(routing::Router::new(graph, routing::Config::default()));
    let engine = Handle::new(EngineConfig::default());
    let matcher = Matcher::with_router(engine.clone(), batched(), Some(router));
    // Two orders in one batch (nobody free at first), two drivers.
    let a = order_at(&engine, at(0.0, 0.0));
    let b = order_at(&engine, at(-800.0, 300.0));
    matcher.dispatch(a, NOW_MS).unwrap();
    matcher.dispatch(b, NOW_MS).unwrap();
    let d1 = driver_at(&engine, at(-150.0, 0.0));
    let d2 = driver_at(&engine, at(-900.0, 300.0));
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
    let mut got = offers(&mut changes, 2).await;
    got.sort_by_key(|&(o, _)| o == b);
    assert_eq!(got, vec![(a, d1), (b, d2)]);
    shutdown.cancel();
    loop_task.await.unwrap();
}

/// A tiny deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Pending offers in the book: at most one per driver and one per order,
/// and `held_by` names exactly them.
fn check_book(matcher: &Matcher, seed: u64) {
    let book = matcher.inner.book.lock();
    let mut orders = std::collections::HashSet::new();
    let mut drivers = std::collections::HashSet::new();
    for (id, rec) in &book.offers {
        if rec.state != OfferState::Pending {
            continue;
        }
        assert!(
            orders.insert(rec.offer.order_id),
            "seed {seed}: order offered twice"
        );
        assert!(
            drivers.insert(rec.offer.driver_id),
            "seed {seed}: driver offered twice"
        );
        assert_eq!(
            book.held_by.get(&rec.offer.driver_id),
            Some(id),
            "seed {seed}"
        );
        assert_eq!(
            book.dispatches
                .get(&rec.offer.order_id)
                .and_then(|d| d.pending_offer),
            Some(*id),
            "seed {seed}"
        );
    }
    assert_eq!(book.held_by.len(), drivers.len(), "seed {seed}");
}

/// Batches solved while three threads accept and decline the offers they
/// see (two of them often answering the same offer at once) never assign
/// a driver twice or an order twice, and every accept that succeeded is
/// the engine's assignment.
#[test]
fn accepts_racing_batches_never_assign_twice() {
    for seed in 1..=6u64 {
        let config = Config {
            reoffer_cooldown_s: 0,
            ..batched()
        };
        let (engine, matcher) = setup(config);
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let drivers: Vec<DriverId> = (0..30)
            .map(|_| driver_at(&engine, at(3_000.0 * rng.unit(), 3_000.0 * rng.unit())))
            .collect();
        let orders: Vec<OrderId> = (0..45)
            .map(|_| order_at(&engine, at(3_000.0 * rng.unit(), 3_000.0 * rng.unit())))
            .collect();
        for &o in &orders {
            matcher.dispatch(o, NOW_MS).unwrap();
        }
        let accepted = parking_lot::Mutex::new(Vec::new());
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..150 {
                    matcher.run_batch(Instant::now());
                    check_book(&matcher, seed);
                    std::thread::yield_now();
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            for t in 0..3u64 {
                let (matcher, orders, accepted, done) = (&matcher, &orders, &accepted, &done);
                s.spawn(move || {
                    let mut rng = Rng(((seed << 8) | t).wrapping_mul(0x2545_f491) | 1);
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        // Threads 0 and 1 scan in the same order, so they
                        // often answer the same offer together.
                        let start = if t == 2 { rng.next() as usize } else { 0 };
                        for i in 0..orders.len() {
                            let o = orders[(start + i) % orders.len()];
                            let Some(offer) = matcher.pending_offer(o) else {
                                continue;
                            };
                            if rng.next() % 10 < 3 {
                                let _ = matcher.decline(offer.offer_id, offer.driver_id, NOW_MS);
                            } else if let Ok(track) =
                                matcher.accept(offer.offer_id, offer.driver_id, NOW_MS)
                            {
                                assert_eq!(track.driver_id, Some(offer.driver_id));
                                accepted.lock().push((o, offer.driver_id));
                            }
                            break;
                        }
                    }
                });
            }
        });
        check_book(&matcher, seed);
        let accepted = accepted.into_inner();
        let mut by_order = std::collections::HashSet::new();
        let mut by_driver = std::collections::HashSet::new();
        for &(o, d) in &accepted {
            assert!(by_order.insert(o), "seed {seed}: order {o} accepted twice");
            assert!(
                by_driver.insert(d),
                "seed {seed}: driver {d} accepted twice"
            );
            assert_eq!(engine.order(o).unwrap().driver_id, Some(d), "seed {seed}");
            assert_eq!(
                engine.driver(d).unwrap().current_order,
                Some(o),
                "seed {seed}"
            );
        }
        let assigned = orders
            .iter()
            .filter(|&&o| engine.order(o).unwrap().driver_id.is_some())
            .count();
        assert_eq!(assigned, accepted.len(), "seed {seed}");
        assert!(
            !accepted.is_empty() && accepted.len() <= drivers.len(),
            "seed {seed}: {} accepted",
            accepted.len()
        );
    }
}
