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
        version: 0,
    });
    order_id
}

fn setup(config: Config) -> (Handle, Matcher) {
    let engine = Handle::new(EngineConfig::default());
    let matcher = Matcher::new(engine.clone(), config);
    (engine, matcher)
}

/// The default configuration with each policy: behaviour that both share
/// (an order arriving while the matcher is idle is offered at once by the
/// batched policy too) is tested with both.
fn both_policies() -> [Config; 2] {
    [
        Config::default(),
        Config {
            policy: PolicyKind::Batched,
            ..Config::default()
        },
    ]
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
        let timeout_ms = Config::default().offer_timeout_s as i64 * 1000;
        assert_eq!(offer.expires_at_ms, NOW_MS + timeout_ms);
        matcher.decline(offer.offer_id, want, NOW_MS).unwrap();
    }
    // Everyone declined: the order waits for new supply, or for the first
    // decliner's cooldown to end.
    assert_eq!(offered_to(&matcher, order), None);
    assert_eq!(matcher.dispatching(), 1);
    let view = matcher.dispatch_state(order).unwrap();
    assert_eq!((view.state, view.attempts), (DispatchState::Searching, 3));
}

#[test]
fn widens_the_radius_when_nobody_is_near() {
    for config in both_policies() {
        let (engine, matcher) = setup(config.clone());
        let far = driver_at(&engine, 10_000.0);
        let order = tracked_order(&engine);
        matcher.dispatch(order, NOW_MS).unwrap();
        assert_eq!(offered_to(&matcher, order), Some(far));
    }
}

#[test]
fn nobody_beyond_max_radius_is_offered() {
    for config in both_policies() {
        let (engine, matcher) = setup(config.clone());
        driver_at(&engine, 30_000.0);
        let order = tracked_order(&engine);
        matcher.dispatch(order, NOW_MS).unwrap();
        assert_eq!(offered_to(&matcher, order), None);
    }
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
    for config in both_policies() {
        let (engine, matcher) = setup(config.clone());
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
}

#[test]
fn concurrent_accepts_assign_exactly_once() {
    for config in both_policies() {
        let (engine, matcher) = setup(config.clone());
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
}

#[test]
fn accept_after_assignment_elsewhere_withdraws() {
    for config in both_policies() {
        let (engine, matcher) = setup(config.clone());
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
}

#[tokio::test(start_paused = true)]
async fn silence_until_the_deadline_moves_the_order_on() {
    for config in both_policies() {
        let (engine, matcher) = setup(Config {
            policy: config.policy,
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
}

#[tokio::test(start_paused = true)]
async fn a_waiting_order_is_offered_when_a_driver_becomes_available() {
    for config in both_policies() {
        let (engine, matcher) = setup(config.clone());
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
}

#[test]
fn withdraw_tells_the_driver() {
    for config in both_policies() {
        let (engine, matcher) = setup(config.clone());
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
}

#[test]
fn dispatch_needs_a_tracked_order() {
    for config in both_policies() {
        let (_engine, matcher) = setup(config.clone());
        assert_eq!(
            matcher.dispatch(OrderId::new(), NOW_MS),
            Err(DispatchError::UnknownOrder)
        );
    }
}

/// Waits for the next offer of `order` on the change stream, noting offer
/// ends on the way. Bounded in (paused) tokio time, so a missing offer fails
/// instead of hanging.
async fn next_offer_of(
    changes: &mut engine::Receiver<Change>,
    order: OrderId,
    within: Duration,
) -> Option<Arc<engine::Offer>> {
    tokio::time::timeout(within, async {
        loop {
            if let Change::Offer(o) = changes.recv_direct().await.unwrap()
                && o.order_id == order
            {
                return o;
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(start_paused = true)]
async fn a_lapsed_offer_is_made_again_after_the_cooldown() {
    let (engine, matcher) = setup(Config::default());
    let driver = driver_at(&engine, 100.0);
    let order = tracked_order(&engine);
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));

    matcher.dispatch(order, NOW_MS).unwrap();
    let first = next_offer_of(&mut changes, order, Duration::ZERO)
        .await
        .expect("offered at once");
    assert_eq!(first.driver_id, driver);
    // The driver stays silent: the offer lapses, nobody else is near.
    loop {
        if let Change::OfferEnded { offer_id, end, .. } = changes.recv_direct().await.unwrap() {
            assert_eq!((offer_id, end), (first.offer_id, OfferEnd::Expired));
            break;
        }
    }
    let lapsed_at = Instant::now();
    // The driver's app keeps pinging: it is available again.
    let ping = Ping {
        driver_id: driver,
        position: ll(PICKUP.0 + 0.001, PICKUP.1),
        recorded_at_ms: NOW_MS + 40_000,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    };
    engine.apply_ping(&ping, NOW_MS + 40_000);

    let again = next_offer_of(&mut changes, order, Duration::from_secs(600))
        .await
        .expect("the stranded order is offered again");
    assert_eq!(again.driver_id, driver);
    assert_ne!(again.offer_id, first.offer_id);
    assert_eq!(offered_to(&matcher, order), Some(driver));
    // Not before the cooldown: the retry timer aims at its end.
    let cooldown = Duration::from_secs(Config::default().reoffer_cooldown_s);
    assert_eq!(Instant::now().duration_since(lapsed_at), cooldown);
    // And the driver can take it this time.
    let track = matcher.accept(again.offer_id, driver, NOW_MS).unwrap();
    assert_eq!(track.driver_id, Some(driver));
    shutdown.cancel();
    loop_task.await.unwrap();
}

#[test]
fn a_decliner_is_not_asked_again_during_the_cooldown() {
    let (engine, matcher) = setup(Config::default());
    let driver = driver_at(&engine, 100.0);
    let order = tracked_order(&engine);
    matcher.dispatch(order, NOW_MS).unwrap();
    let offer = matcher.pending_offer(order).unwrap();
    matcher.decline(offer.offer_id, driver, NOW_MS).unwrap();
    // Supply news (the driver pings, turns available) does not bring it
    // back before the cooldown ends.
    matcher.retry_waiting(Instant::now());
    assert_eq!(offered_to(&matcher, order), None);
    let later = Instant::now() + Duration::from_secs(Config::default().reoffer_cooldown_s);
    matcher.retry_waiting(later);
    assert_eq!(offered_to(&matcher, order), Some(driver));
}

#[tokio::test(start_paused = true)]
async fn a_driver_back_from_silence_gets_the_waiting_order() {
    // The README walk-through typed slowly: the driver pinged, went quiet
    // past the presence timeout, the restaurant accepted, the driver pings
    // again.
    let (engine, matcher) = setup(Config::default());
    let driver = driver_at(&engine, 100.0);
    let presence_ms = EngineConfig::default().presence_timeout_s as i64 * 1000;
    assert_eq!(engine.expire(NOW_MS + presence_ms), 1);
    let order = tracked_order(&engine);
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
    matcher.dispatch(order, NOW_MS + presence_ms).unwrap();
    assert_eq!(offered_to(&matcher, order), None);
    assert_eq!(
        matcher.dispatch_state(order).map(|v| v.state),
        Some(DispatchState::Searching)
    );

    let back_ms = NOW_MS + presence_ms + 5_000;
    let ping = Ping {
        driver_id: driver,
        position: ll(PICKUP.0 + 0.001, PICKUP.1),
        recorded_at_ms: back_ms,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    };
    engine.apply_ping(&ping, back_ms);
    // Well before the next periodic retry: the supply news brought it.
    let offer = next_offer_of(&mut changes, order, Duration::from_millis(100))
        .await
        .expect("offered as soon as the driver is back");
    assert_eq!(offer.driver_id, driver);
    shutdown.cancel();
    loop_task.await.unwrap();
}

/// The next `Unassigned` news on the change stream, bounded in tokio time.
async fn next_unassigned(
    changes: &mut engine::Receiver<Change>,
    within: Duration,
) -> Option<engine::Unassigned> {
    tokio::time::timeout(within, async {
        loop {
            if let Change::Unassigned(u) = changes.recv_direct().await.unwrap() {
                return u;
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(start_paused = true)]
async fn an_order_nobody_takes_is_raised_after_so_many_offers() {
    let (engine, matcher) = setup(Config {
        unassigned_after_offers: 2,
        unassigned_after_s: 0,
        ..Config::default()
    });
    let near = driver_at(&engine, 100.0);
    let far = driver_at(&engine, 600.0);
    let order = tracked_order(&engine);
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
    matcher.dispatch(order, NOW_MS).unwrap();

    // The near driver declines, the far one lets the offer lapse.
    let first = matcher.pending_offer(order).unwrap();
    matcher.decline(first.offer_id, near, NOW_MS).unwrap();
    assert_eq!(
        matcher.dispatch_state(order).unwrap().unassigned_at_ms,
        None
    );
    assert_eq!(offered_to(&matcher, order), Some(far));
    let raised = next_unassigned(&mut changes, Duration::from_secs(600))
        .await
        .expect("raised to dispatchers");
    assert_eq!(raised.order_id, order);
    assert_eq!(raised.attempts, 2);
    assert!(!raised.resolved);
    assert_eq!(raised.pickup, ll(PICKUP.0, PICKUP.1));
    let view = matcher.dispatch_state(order).unwrap();
    assert_eq!(view.attempts, 2);
    assert_eq!(view.since_ms, NOW_MS);
    assert!(view.unassigned_at_ms.is_some());

    // Raised, the order still has a way forward: the near driver gets it
    // back after the cooldown, takes it, and dispatchers hear it resolved.
    let again = next_offer_of(&mut changes, order, Duration::from_secs(600))
        .await
        .expect("offered again");
    assert_eq!(again.driver_id, near);
    matcher.accept(again.offer_id, near, NOW_MS).unwrap();
    let resolved = next_unassigned(&mut changes, Duration::ZERO)
        .await
        .expect("resolved news");
    assert_eq!((resolved.order_id, resolved.resolved), (order, true));
    assert_eq!(matcher.dispatch_state(order), None);
    shutdown.cancel();
    loop_task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_order_with_nobody_near_is_raised_after_so_long_and_only_once() {
    let (engine, matcher) = setup(Config {
        unassigned_after_s: 180,
        ..Config::default()
    });
    let order = tracked_order(&engine);
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(matcher.clone().run(shutdown.clone()));
    let started = Instant::now();
    matcher.dispatch(order, NOW_MS).unwrap();

    let raised = next_unassigned(&mut changes, Duration::from_secs(600))
        .await
        .expect("raised to dispatchers");
    assert_eq!((raised.order_id, raised.attempts), (order, 0));
    assert_eq!(
        Instant::now().duration_since(started),
        Duration::from_secs(180)
    );
    // Nothing more while it keeps waiting; cancelling it resolves it.
    assert_eq!(
        next_unassigned(&mut changes, Duration::from_secs(3_600)).await,
        None
    );
    matcher.withdraw(order);
    let resolved = next_unassigned(&mut changes, Duration::ZERO).await.unwrap();
    assert!(resolved.resolved);
    assert_eq!(matcher.dispatching(), 0);
    shutdown.cancel();
    loop_task.await.unwrap();
}

#[test]
fn huge_timeouts_mean_never_rather_than_a_panic() {
    for config in both_policies() {
        let (engine, matcher) = setup(Config {
            policy: config.policy,
            offer_timeout_s: u64::MAX,
            retry_interval_ms: u64::MAX,
            reoffer_cooldown_s: u64::MAX,
            unassigned_after_s: u64::MAX,
            ..Config::default()
        });
        let driver = driver_at(&engine, 100.0);
        let order = tracked_order(&engine);
        matcher.dispatch(order, NOW_MS).unwrap();
        let offer = matcher.pending_offer(order).expect("an offer is pending");
        assert_eq!(offer.driver_id, driver);
        assert!(offer.expires_at_ms > NOW_MS);
        matcher.decline(offer.offer_id, driver, NOW_MS).unwrap();
        // The decliner cools down for good; the order waits.
        assert_eq!(offered_to(&matcher, order), None);
        assert_eq!(matcher.dispatching(), 1);
    }
}

#[test]
fn ending_a_dispatch_leaves_no_timers_of_its_order() {
    let (engine, matcher) = setup(Config::default());
    let order = tracked_order(&engine);
    // Nobody near: a raise and a retry timer are pending.
    matcher.dispatch(order, NOW_MS).unwrap();
    let of_order = |m: &Matcher| {
        m.inner
            .book
            .lock()
            .timers
            .iter()
            .filter(|(_, t)| matches!(t, Timer::Raise(o) | Timer::Retry(o) if *o == order))
            .count()
    };
    assert_eq!(of_order(&matcher), 2);
    matcher.withdraw(order);
    assert_eq!(of_order(&matcher), 0);
}

/// Counts counters by name and labels, for one test (a local recorder).
#[derive(Default)]
struct Counters(
    parking_lot::Mutex<std::collections::HashMap<String, Arc<std::sync::atomic::AtomicU64>>>,
);

impl Counters {
    fn cell(&self, key: String) -> Arc<std::sync::atomic::AtomicU64> {
        self.0.lock().entry(key).or_default().clone()
    }

    fn get(&self, name: &str, outcome: &str) -> u64 {
        let cell = self.cell(format!("{name}{{outcome={outcome}}}"));
        cell.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let cell = self.cell(format!("{}{{{}}}", key.name(), labels.join(",")));
        metrics::Counter::from_arc(cell)
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn an_accept_that_finds_the_driver_busy_is_counted_as_a_decline() {
    let counters = Counters::default();
    metrics::with_local_recorder(&counters, || {
        let (engine, matcher) = setup(Config::default());
        let driver = driver_at(&engine, 100.0);
        let order = tracked_order(&engine);
        matcher.dispatch(order, NOW_MS).unwrap();
        let offer = matcher.pending_offer(order).expect("an offer is pending");
        // The driver took another order meanwhile.
        let other = tracked_order(&engine);
        engine.assign(other, driver, NOW_MS).unwrap();

        let answer = matcher.accept(offer.offer_id, driver, NOW_MS);
        assert!(
            matches!(
                answer,
                Err(OfferError::Assign(engine::Error::DriverBusy(_)))
            ),
            "{answer:?}"
        );
        let attempts = matcher.dispatch_state(order).map(|v| v.attempts);
        assert_eq!(attempts, Some(1));
        assert_eq!(counters.get(OFFERS_TOTAL, "declined"), 1);
    });
}

/// A node's leases as a test sets them: the token it holds for every
/// region (`None`: it leads nothing), and the regions it was asked about.
#[derive(Default)]
struct TestGate {
    token: parking_lot::Mutex<Option<i64>>,
    wanted: parking_lot::Mutex<Vec<engine::Region>>,
}

impl crate::fence::Gate for TestGate {
    fn fence_for(&self, pickup: LatLng) -> Option<Fence> {
        let region = engine::Region::of_point(pickup, engine::cells::CellResolution::Five);
        match *self.token.lock() {
            Some(epoch) => Some(Fence { region, epoch }),
            None => {
                self.wanted.lock().push(region);
                None
            }
        }
    }

    fn is_current(&self, fence: &Fence) -> bool {
        *self.token.lock() == Some(fence.epoch)
    }
}

#[test]
fn a_clustered_matcher_offers_only_under_a_current_token() {
    let (engine, matcher) = setup(Config::default());
    let gate = Arc::new(TestGate::default());
    let matcher = matcher.with_gate(gate.clone());
    let near = driver_at(&engine, 100.0);
    let far = driver_at(&engine, 400.0);
    let region =
        engine::Region::of_point(ll(PICKUP.0, PICKUP.1), engine::cells::CellResolution::Five);

    // Not led here: nothing dispatched, the region noted.
    let order = tracked_order(&engine);
    matcher.dispatch(order, NOW_MS).unwrap();
    assert_eq!(matcher.dispatching(), 0);
    assert_eq!(*gate.wanted.lock(), [region]);

    // Led with token 1: offered. The lease then moves on (token 2): the
    // offer out is still answered, with the token it was made under, for
    // the store to refuse.
    *gate.token.lock() = Some(1);
    matcher.dispatch(order, NOW_MS).unwrap();
    let offer = matcher.pending_offer(order).unwrap();
    assert_eq!(offer.driver_id, near);
    *gate.token.lock() = Some(2);
    let (track, fence) = matcher.accept_fenced(offer.offer_id, near, NOW_MS).unwrap();
    assert_eq!(track.driver_id, Some(near));
    assert_eq!(fence, Some(Fence { region, epoch: 1 }));

    // Under token 2, a second order goes to the other driver; the lease is
    // lost, the driver declines: no new offer, the dispatch ends.
    let second = tracked_order(&engine);
    matcher.dispatch(second, NOW_MS).unwrap();
    let offer = matcher.pending_offer(second).unwrap();
    assert_eq!(offer.driver_id, far);
    *gate.token.lock() = None;
    matcher.decline(offer.offer_id, far, NOW_MS).unwrap();
    assert_eq!(matcher.pending_offer(second), None);
    assert_eq!(matcher.dispatching(), 0);

    // Taken again (token 3): the order is dispatched afresh.
    *gate.token.lock() = Some(3);
    matcher.dispatch(second, NOW_MS).unwrap();
    assert_eq!(matcher.dispatching(), 1);
}
