use std::sync::Arc;

use engine::{
    Availability, Change, Config as EngineConfig, DriverId, Handle, LatLng, OfferEnd, OrderId,
    OrderStatus, OrderTrack, Ping, RestaurantId, UserId,
};

use super::*;

const NOW_MS: i64 = 1_763_700_000_000;
/// Restaurant in central Gothenburg; drivers are placed north of it.
const PICKUP: (f64, f64) = (57.7000, 11.9700);

fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).unwrap()
}

/// A driver `metres_north` of the pickup, pinging now.
fn driver_at(engine: &Handle, metres_north: f64) -> DriverId {
    let id = DriverId::new();
    let ping = Ping {
        driver_id: id,
        position: ll(PICKUP.0 + metres_north / 111_195.0, PICKUP.1),
        recorded_at_ms: NOW_MS,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    };
    engine.apply_ping(&ping, NOW_MS);
    id
}

fn tracked_order(engine: &Handle) -> OrderId {
    let order_id = OrderId::new();
    engine.track_order(OrderTrack {
        order_id,
        customer_id: UserId::new(),
        restaurant_id: RestaurantId::new(),
        restaurant_owner_id: UserId::new(),
        status: OrderStatus::Placed,
        driver_id: None,
        pickup: ll(PICKUP.0, PICKUP.1),
        dropoff: ll(57.71, 11.98),
        updated_at_ms: NOW_MS,
    });
    order_id
}

fn setup(config: Config) -> (Handle, Matcher) {
    let engine = Handle::new(EngineConfig::default());
    let matcher = Matcher::new(engine.clone(), config);
    (engine, matcher)
}

fn offered_to(matcher: &Matcher, order: OrderId) -> Option<DriverId> {
    matcher.pending_offer(order).map(|o| o.driver_id)
}

#[test]
fn offers_nearest_then_next_on_decline() {
    let (engine, matcher) = setup(Config::default());
    let far = driver_at(&engine, 900.0);
    let near = driver_at(&engine, 100.0);
    let mid = driver_at(&engine, 400.0);
    let order = tracked_order(&engine);
    matcher.dispatch(order, NOW_MS).unwrap();

    let mut expected = vec![near, mid, far];
    expected.reverse();
    while let Some(want) = expected.pop() {
        let offer = matcher.pending_offer(order).expect("an offer is pending");
        assert_eq!(offer.driver_id, want);
        assert_eq!(offer.expires_at_ms, NOW_MS + 30_000);
        matcher.decline(offer.offer_id, want, NOW_MS).unwrap();
    }
    // Everyone declined: the order waits for new supply.
    assert_eq!(offered_to(&matcher, order), None);
    assert_eq!(matcher.dispatching(), 1);
}

#[test]
fn widens_the_radius_when_nobody_is_near() {
    let (engine, matcher) = setup(Config::default());
    let far = driver_at(&engine, 10_000.0);
    let order = tracked_order(&engine);
    matcher.dispatch(order, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, order), Some(far));
}

#[test]
fn nobody_beyond_max_radius_is_offered() {
    let (engine, matcher) = setup(Config::default());
    driver_at(&engine, 30_000.0);
    let order = tracked_order(&engine);
    matcher.dispatch(order, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, order), None);
}

#[test]
fn busy_offline_and_offer_holding_drivers_are_skipped() {
    let (engine, matcher) = setup(Config::default());
    let off_duty = driver_at(&engine, 50.0);
    engine.set_availability(off_duty, Availability::Offline, NOW_MS);
    let holder = driver_at(&engine, 100.0);
    let free = driver_at(&engine, 500.0);

    let first = tracked_order(&engine);
    matcher.dispatch(first, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, first), Some(holder));
    // `holder` already holds an offer: the second order goes to `free`.
    let second = tracked_order(&engine);
    matcher.dispatch(second, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, second), Some(free));
}

#[test]
fn accept_assigns_once_and_answers_are_checked() {
    let (engine, matcher) = setup(Config::default());
    let driver = driver_at(&engine, 100.0);
    let other = driver_at(&engine, 200.0);
    let order = tracked_order(&engine);
    matcher.dispatch(order, NOW_MS).unwrap();
    let offer = matcher.pending_offer(order).unwrap();

    assert_eq!(
        matcher.accept(offer.offer_id, other, NOW_MS),
        Err(OfferError::NotYours)
    );
    assert_eq!(
        matcher.accept(engine::OfferId::new(), driver, NOW_MS),
        Err(OfferError::NotFound)
    );
    let track = matcher.accept(offer.offer_id, driver, NOW_MS).unwrap();
    assert_eq!(track.driver_id, Some(driver));
    assert_eq!(
        engine.driver(driver).unwrap().status,
        engine::DriverStatus::Busy
    );
    assert_eq!(
        matcher.accept(offer.offer_id, driver, NOW_MS),
        Err(OfferError::NotPending(OfferState::Accepted))
    );
    assert_eq!(
        matcher.decline(offer.offer_id, driver, NOW_MS),
        Err(OfferError::NotPending(OfferState::Accepted))
    );
    assert_eq!(matcher.dispatching(), 0);
}

#[test]
fn concurrent_accepts_assign_exactly_once() {
    let (engine, matcher) = setup(Config::default());
    let driver = driver_at(&engine, 100.0);
    let order = tracked_order(&engine);
    matcher.dispatch(order, NOW_MS).unwrap();
    let offer_id = matcher.pending_offer(order).unwrap().offer_id;
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| matcher.accept(offer_id, driver, NOW_MS).is_ok() as usize))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
    assert_eq!(engine.order(order).unwrap().driver_id, Some(driver));
}

#[test]
fn accept_after_assignment_elsewhere_withdraws() {
    let (engine, matcher) = setup(Config::default());
    let driver = driver_at(&engine, 100.0);
    let rival = driver_at(&engine, 5_000.0);
    let order = tracked_order(&engine);
    matcher.dispatch(order, NOW_MS).unwrap();
    let offer = matcher.pending_offer(order).unwrap();
    engine.assign(order, rival, NOW_MS).unwrap();
    assert_eq!(
        matcher.accept(offer.offer_id, driver, NOW_MS),
        Err(OfferError::Assign(engine::Error::OrderTaken(rival)))
    );
    assert_eq!(matcher.dispatching(), 0);
}

#[tokio::test(start_paused = true)]
async fn silence_until_the_deadline_moves_the_order_on() {
    let (engine, matcher) = setup(Config {
        offer_timeout_s: 30,
        ..Config::default()
    });
    let near = driver_at(&engine, 100.0);
    let next = driver_at(&engine, 300.0);
    let order = tracked_order(&engine);
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));

    let started = Instant::now();
    matcher.dispatch(order, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, order), Some(near));

    // Paused time: the runtime jumps to the offer deadline once all is idle.
    let mut saw_expiry = false;
    loop {
        match changes.recv_direct().await.unwrap() {
            Change::OfferEnded {
                driver_id,
                end: OfferEnd::Expired,
                ..
            } => {
                assert_eq!(driver_id, near);
                saw_expiry = true;
            }
            Change::Offer(o) if o.driver_id == next => break,
            _ => {}
        }
    }
    assert!(saw_expiry);
    let waited = Instant::now().duration_since(started);
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "{waited:?}"
    );
    let offer = matcher.pending_offer(order).unwrap();
    assert_eq!(
        matcher.offer_state(offer.offer_id).unwrap().1,
        OfferState::Pending
    );

    shutdown.cancel();
    loop_task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_waiting_order_is_offered_when_a_driver_becomes_available() {
    let (engine, matcher) = setup(Config::default());
    let driver = driver_at(&engine, 100.0);
    engine.set_availability(driver, Availability::Offline, NOW_MS);
    let order = tracked_order(&engine);
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
    let mut changes = engine.subscribe_changes();

    matcher.dispatch(order, NOW_MS).unwrap();
    assert_eq!(offered_to(&matcher, order), None);
    engine.set_availability(driver, Availability::Available, NOW_MS);
    loop {
        if let Change::Offer(o) = changes.recv_direct().await.unwrap() {
            assert_eq!(o.driver_id, driver);
            break;
        }
    }
    shutdown.cancel();
    loop_task.await.unwrap();
}

#[test]
fn withdraw_tells_the_driver() {
    let (engine, matcher) = setup(Config::default());
    let driver = driver_at(&engine, 100.0);
    let order = tracked_order(&engine);
    let mut changes = engine.subscribe_changes();
    matcher.dispatch(order, NOW_MS).unwrap();
    let offer = matcher.pending_offer(order).unwrap();
    matcher.withdraw(order);
    let mut got = Vec::new();
    while let Ok(c) = changes.try_recv() {
        got.push(c);
    }
    assert!(got.contains(&Change::Offer(Arc::clone(&offer))));
    assert!(got.contains(&Change::OfferEnded {
        offer_id: offer.offer_id,
        driver_id: driver,
        end: OfferEnd::Withdrawn
    }));
    assert_eq!(
        matcher.decline(offer.offer_id, driver, NOW_MS),
        Err(OfferError::NotPending(OfferState::Withdrawn))
    );
}

#[test]
fn dispatch_needs_a_tracked_order() {
    let (_engine, matcher) = setup(Config::default());
    assert_eq!(
        matcher.dispatch(OrderId::new(), NOW_MS),
        Err(DispatchError::UnknownOrder)
    );
}
