//! Timing in the live matcher: waiting orders are served oldest first, and
//! prep-aware holds (offers wait until the courier would arrive about when
//! the food is ready). Paused tokio time throughout.

use engine::{
    Availability, Change, Config as EngineConfig, DriverId, Handle, LatLng, OrderId, OrderStatus,
    OrderTrack, Ping, RestaurantId, UserId,
};

use super::*;

const NOW_MS: i64 = 1_763_700_000_000;
const PICKUP: (f64, f64) = (57.7000, 11.9700);

/// A driver `metres_north` of the pickup, pinging now.
fn driver_at(engine: &Handle, metres_north: f64) -> DriverId {
    let id = DriverId::new();
    let position = LatLng::new(PICKUP.0 + metres_north / 111_195.0, PICKUP.1).unwrap();
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

/// An order of `restaurant` the restaurant has accepted.
fn accepted_order(engine: &Handle, restaurant: RestaurantId) -> OrderId {
    let order_id = OrderId::new();
    engine.track_order(OrderTrack {
        order_id,
        customer_id: UserId::new(),
        restaurant_id: restaurant,
        restaurant_owner_id: UserId::new(),
        status: OrderStatus::Accepted,
        driver_id: None,
        pickup: LatLng::new(PICKUP.0, PICKUP.1).unwrap(),
        dropoff: LatLng::new(57.71, 11.98).unwrap(),
        updated_at_ms: NOW_MS,
        version: 0,
    });
    order_id
}

fn policies(prep_aware: bool) -> [Config; 2] {
    let base = Config {
        prep_aware,
        prep_slack_s: 60,
        // Retries only when a driver frees up (or a batch runs), so no
        // retry timer races the freed driver in the fairness test.
        retry_interval_ms: 60_000,
        ..Config::default()
    };
    [
        base.clone(),
        Config {
            policy: PolicyKind::Batched,
            ..base
        },
    ]
}

/// The first offer on the change stream, as (order, driver), and how long
/// after `since` it came.
async fn first_offer(
    changes: &mut engine::Receiver<Change>,
    since: Instant,
) -> (OrderId, DriverId, Duration) {
    loop {
        if let Change::Offer(o) = changes.recv_direct().await.unwrap() {
            return (o.order_id, o.driver_id, since.elapsed());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_freed_driver_goes_to_the_order_that_waited_longest() {
    for config in policies(false) {
        let engine = Handle::new(EngineConfig::default());
        let matcher = Matcher::new(engine.clone(), config.clone());
        let driver = driver_at(&engine, 100.0);
        engine.set_availability(driver, Availability::Offline, NOW_MS);
        let shutdown = CancellationToken::new();
        let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
        // Five orders at the same pickup, a second apart: the hash map's
        // order is random, so a pass by chance is one in five.
        let mut orders = Vec::new();
        for _ in 0..5 {
            let o = accepted_order(&engine, RestaurantId::new());
            matcher.dispatch(o, NOW_MS).unwrap();
            orders.push(o);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut changes = engine.subscribe_changes();
        engine.set_availability(driver, Availability::Available, NOW_MS);
        let (order, to, _) = first_offer(&mut changes, Instant::now()).await;
        assert_eq!((order, to), (orders[0], driver), "{:?}", config.policy);
        shutdown.cancel();
        loop_task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_offer_waits_until_the_courier_would_arrive_as_the_food_is_ready() {
    for config in policies(true) {
        let engine = Handle::new(EngineConfig::default());
        let matcher = Matcher::new(engine.clone(), config.clone());
        // 1,000 m by crow-fly at 25 km/h: 144 s away.
        let driver = driver_at(&engine, 1_000.0);
        let order = accepted_order(&engine, RestaurantId::new());
        let mut changes = engine.subscribe_changes();
        let shutdown = CancellationToken::new();
        let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
        let started = Instant::now();
        // Ready in 10 minutes: offered once 600 − 60 s slack − 144 s
        // travel = 396 s have passed.
        matcher
            .dispatch_ready_at(order, NOW_MS, Some(NOW_MS + 600_000))
            .unwrap();
        assert_eq!(matcher.pending_offer(order), None);
        let (o, d, after) = first_offer(&mut changes, started).await;
        assert_eq!((o, d), (order, driver));
        let window = Duration::from_secs(config.batch_window_s);
        assert!(
            after >= Duration::from_secs(395) && after <= Duration::from_secs(396) + window,
            "{:?}: {after:?}",
            config.policy
        );
        shutdown.cancel();
        loop_task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn without_prep_awareness_or_once_ready_the_offer_goes_at_once() {
    for config in policies(false) {
        let engine = Handle::new(EngineConfig::default());
        let matcher = Matcher::new(engine.clone(), config);
        let driver = driver_at(&engine, 1_000.0);
        let order = accepted_order(&engine, RestaurantId::new());
        matcher
            .dispatch_ready_at(order, NOW_MS, Some(NOW_MS + 600_000))
            .unwrap();
        assert_eq!(
            matcher.pending_offer(order).map(|o| o.driver_id),
            Some(driver)
        );
    }
    for config in policies(true) {
        let engine = Handle::new(EngineConfig::default());
        let matcher = Matcher::new(engine.clone(), config.clone());
        let driver = driver_at(&engine, 1_000.0);
        let order = accepted_order(&engine, RestaurantId::new());
        let mut changes = engine.subscribe_changes();
        let shutdown = CancellationToken::new();
        let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
        let started = Instant::now();
        matcher
            .dispatch_ready_at(order, NOW_MS, Some(NOW_MS + 600_000))
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(matcher.pending_offer(order), None);
        // The kitchen was faster than it said: the hold ends now.
        engine
            .set_order_status(order, OrderStatus::ReadyForPickup, NOW_MS + 30_000)
            .unwrap();
        let (o, d, after) = first_offer(&mut changes, started).await;
        assert_eq!((o, d), (order, driver));
        let window = Duration::from_secs(config.batch_window_s);
        assert!(
            after <= Duration::from_secs(30) + window,
            "{:?}: {after:?}",
            config.policy
        );
        shutdown.cancel();
        loop_task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_hold_follows_the_restaurants_history() {
    for config in policies(true) {
        let engine = Handle::new(EngineConfig::default());
        let matcher = Matcher::new(engine.clone(), config.clone());
        let restaurant = RestaurantId::new();
        // The default (10 min) until five preparations were seen; then
        // their median, 5 min.
        assert_eq!(matcher.prep_estimate_ms(restaurant), 600_000);
        for (i, prep_s) in [290, 300, 300, 310, 900].into_iter().enumerate() {
            let accepted = NOW_MS - 3_600_000 + i as i64 * 60_000;
            matcher.observe_prep(restaurant, accepted, accepted + prep_s * 1000);
        }
        assert_eq!(matcher.prep_estimate_ms(restaurant), 300_000);
        let driver = driver_at(&engine, 1_000.0);
        let order = accepted_order(&engine, restaurant);
        let mut changes = engine.subscribe_changes();
        let shutdown = CancellationToken::new();
        let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
        let started = Instant::now();
        matcher.dispatch(order, NOW_MS).unwrap();
        // 300 − 60 − 144 = 96 s.
        let (o, d, after) = first_offer(&mut changes, started).await;
        assert_eq!((o, d), (order, driver));
        let window = Duration::from_secs(config.batch_window_s);
        assert!(
            after >= Duration::from_secs(95) && after <= Duration::from_secs(96) + window,
            "{:?}: {after:?}",
            config.policy
        );
        shutdown.cancel();
        loop_task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_hold_counts_from_the_ready_time_given_not_from_the_dispatch() {
    for config in policies(true) {
        let engine = Handle::new(EngineConfig::default());
        let matcher = Matcher::new(engine.clone(), config.clone());
        driver_at(&engine, 1_000.0);
        // Held: ready in 10 minutes, shown as such.
        let held = accepted_order(&engine, RestaurantId::new());
        matcher
            .dispatch_ready_at(held, NOW_MS, Some(NOW_MS + 600_000))
            .unwrap();
        let view = matcher.dispatch_state(held).unwrap();
        assert_eq!(view.ready_at_ms, Some(NOW_MS + 600_000));
        assert_eq!(matcher.pending_offer(held), None, "{:?}", config.policy);
        // Accepted 20 minutes before a restart: its food was due 10
        // minutes ago, so nothing holds it (a dispatch counting the
        // preparation from now would hold it 10 more minutes). A matcher
        // of its own, idle, so the batched policy offers at once too.
        let engine = Handle::new(EngineConfig::default());
        let matcher = Matcher::new(engine.clone(), config.clone());
        let driver = driver_at(&engine, 1_000.0);
        let restored = accepted_order(&engine, RestaurantId::new());
        matcher
            .dispatch_ready_at(restored, NOW_MS, Some(NOW_MS - 600_000))
            .unwrap();
        assert_eq!(
            matcher.pending_offer(restored).map(|o| o.driver_id),
            Some(driver),
            "{:?}",
            config.policy
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_expected_ready_time_is_shown_until_the_food_is_ready() {
    let config = Config {
        prep_aware: true,
        ..Config::default()
    };
    let engine = Handle::new(EngineConfig::default());
    let matcher = Matcher::new(engine.clone(), config);
    let restaurant = RestaurantId::new();
    let order = accepted_order(&engine, restaurant);
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
    // From the restaurant's estimate (the default: no history yet).
    matcher.dispatch(order, NOW_MS).unwrap();
    assert_eq!(
        matcher.dispatch_state(order).unwrap().ready_at_ms,
        Some(NOW_MS + 600_000)
    );
    engine
        .set_order_status(order, OrderStatus::ReadyForPickup, NOW_MS + 1_000)
        .unwrap();
    // The loop hears of it on the change stream (paused time: the sleeps
    // only let it run).
    for _ in 0..100 {
        if matcher.dispatch_state(order).unwrap().ready_at_ms.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(matcher.dispatch_state(order).unwrap().ready_at_ms, None);
    // Without prep-awareness nothing is held, so nothing is shown.
    let plain = Matcher::new(engine.clone(), Config::default());
    let other = accepted_order(&engine, restaurant);
    plain.dispatch(other, NOW_MS).unwrap();
    assert_eq!(plain.dispatch_state(other).unwrap().ready_at_ms, None);
    shutdown.cancel();
    loop_task.await.unwrap();
}
