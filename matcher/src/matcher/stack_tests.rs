//! Stacking on the live path (`Config::stacking`): which busy couriers are
//! offered a second order, under both policies, and what an accept of a
//! stacked offer does; a random walk of offers, answers and closes holds
//! the invariants.

use engine::{
    Config as EngineConfig, DriverId, Handle, LatLng, OrderId, OrderStatus, OrderTrack, Ping,
    RestaurantId, UserId,
};

use super::*;

const NOW_MS: i64 = 1_763_700_000_000;
/// The restaurant, central Gothenburg; couriers are placed north of it.
const PICKUP: (f64, f64) = (57.7000, 11.9700);

fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).unwrap()
}

fn driver_at(engine: &Handle, metres_north: f64) -> DriverId {
    let id = DriverId::new();
    engine.apply_ping(
        &Ping {
            driver_id: id,
            position: ll(PICKUP.0 + metres_north / 111_195.0, PICKUP.1),
            recorded_at_ms: NOW_MS,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        },
        NOW_MS,
    );
    id
}

fn order_from(engine: &Handle, restaurant: RestaurantId) -> OrderId {
    order_at(engine, restaurant, ll(PICKUP.0, PICKUP.1), ll(57.71, 11.98))
}

/// An accepted order of `restaurant` at `pickup` to `dropoff`.
fn order_at(engine: &Handle, restaurant: RestaurantId, pickup: LatLng, dropoff: LatLng) -> OrderId {
    let order_id = OrderId::new();
    engine.track_order(OrderTrack {
        order_id,
        customer_id: UserId::new(),
        restaurant_id: restaurant,
        restaurant_owner_id: UserId::new(),
        status: OrderStatus::Accepted,
        driver_id: None,
        pickup,
        dropoff,
        updated_at_ms: NOW_MS,
        version: 0,
    });
    order_id
}

fn config(policy: PolicyKind, stacking: bool) -> Config {
    Config {
        policy,
        stacking,
        ..Config::default()
    }
}

/// Lets the policy offer what waits: the batched policy's pending batch
/// runs now (the loop would run it at the window's end).
fn settle(matcher: &Matcher) {
    if matcher.inner.batched.is_some() {
        matcher.run_batch(Instant::now());
    }
}

/// A matcher with a courier (`first`, 100 m away) holding order 1 of
/// `kitchen` (accepted, ready at `first_ready_ms`) and a free courier
/// (`free`, 500 m away).
struct World {
    engine: Handle,
    matcher: Matcher,
    kitchen: RestaurantId,
    first: DriverId,
    free: DriverId,
    order1: OrderId,
}

fn world(policy: PolicyKind, stacking: bool, first_ready_ms: i64) -> World {
    let engine = Handle::new(EngineConfig::default());
    // The batch reads the matcher's clock: the tests' instants.
    let matcher = Matcher::new(engine.clone(), config(policy, stacking))
        .with_clock(Arc::new(clock::ManualClock::new(NOW_MS)));
    let kitchen = RestaurantId::new();
    let first = driver_at(&engine, 100.0);
    let order1 = order_from(&engine, kitchen);
    matcher
        .dispatch_ready_at(order1, NOW_MS, Some(first_ready_ms))
        .unwrap();
    let offer = matcher.pending_offer(order1).expect("order 1 offered");
    assert_eq!(offer.driver_id, first);
    assert_eq!(offer.stacked_with, None, "a plain offer");
    matcher.accept(offer.offer_id, first, NOW_MS).unwrap();
    let free = driver_at(&engine, 500.0);
    World {
        engine,
        matcher,
        kitchen,
        first,
        free,
        order1,
    }
}

/// Dispatches a second order from `restaurant`, ready at `ready_ms`, and
/// returns its offer.
fn second_offer(w: &World, restaurant: RestaurantId, ready_ms: i64) -> (OrderId, Arc<Offer>) {
    let order2 = order_from(&w.engine, restaurant);
    w.matcher
        .dispatch_ready_at(order2, NOW_MS, Some(ready_ms))
        .unwrap();
    settle(&w.matcher);
    let offer = w.matcher.pending_offer(order2).expect("order 2 offered");
    (order2, offer)
}

const POLICIES: [PolicyKind; 2] = [PolicyKind::Greedy, PolicyKind::Batched];

#[test]
fn a_busy_courier_of_the_same_kitchen_takes_the_second_order_within_the_bound() {
    for policy in POLICIES {
        let w = world(policy, true, NOW_MS + 600_000);
        // Ready 2 minutes after the first: the first customer waits 2
        // minutes more, within the 5-minute bound.
        let (order2, offer) = second_offer(&w, w.kitchen, NOW_MS + 720_000);
        assert_eq!(
            offer.driver_id, w.first,
            "{policy:?}: the courier there already"
        );
        assert_eq!(
            offer.stacked_with,
            Some(w.order1),
            "{policy:?}: marked stacked"
        );
        let track = w.matcher.accept(offer.offer_id, w.first, NOW_MS).unwrap();
        assert_eq!(track.driver_id, Some(w.first));
        let view = w.engine.driver(w.first).unwrap();
        assert_eq!(
            view.orders().collect::<Vec<_>>(),
            [w.order1, order2],
            "{policy:?}"
        );
        assert_eq!(view.status, DriverStatus::Busy);
        // A third order of the kitchen: the courier is full; the free one
        // gets it.
        let (_, third) = second_offer(&w, w.kitchen, NOW_MS + 720_000);
        assert_eq!(
            (third.driver_id, third.stacked_with),
            (w.free, None),
            "{policy:?}"
        );
    }
}

#[test]
fn no_stacking_when_it_is_off() {
    for policy in POLICIES {
        let w = world(policy, false, NOW_MS + 600_000);
        let (_, offer) = second_offer(&w, w.kitchen, NOW_MS + 600_000);
        assert_eq!(
            (offer.driver_id, offer.stacked_with),
            (w.free, None),
            "{policy:?}"
        );
    }
}

#[test]
fn no_stacking_past_the_bound() {
    for policy in POLICIES {
        let w = world(policy, true, NOW_MS + 60_000);
        // Ready 6 minutes after the first (and after the courier's
        // arrival): 6 minutes more for the first customer, past 5.
        let (_, offer) = second_offer(&w, w.kitchen, NOW_MS + 420_000);
        assert_eq!(
            (offer.driver_id, offer.stacked_with),
            (w.free, None),
            "{policy:?}"
        );
    }
    // Exactly at the bound still stacks; the bound is a setting.
    let w = world(PolicyKind::Greedy, true, NOW_MS + 60_000);
    let (_, offer) = second_offer(&w, w.kitchen, NOW_MS + 360_000);
    assert_eq!(offer.driver_id, w.first);
}

#[test]
fn no_stacking_once_the_first_order_is_picked_up() {
    for policy in POLICIES {
        let w = world(policy, true, NOW_MS + 600_000);
        w.engine
            .set_order_status(w.order1, OrderStatus::PickedUp, NOW_MS)
            .unwrap();
        let (_, offer) = second_offer(&w, w.kitchen, NOW_MS + 600_000);
        assert_eq!(
            (offer.driver_id, offer.stacked_with),
            (w.free, None),
            "{policy:?}"
        );
    }
}

/// Dispatches a second order from another restaurant at `pickup` to
/// `dropoff`, ready at `ready_ms`, and returns its offer.
fn offer_from(w: &World, pickup: LatLng, dropoff: LatLng, ready_ms: i64) -> (OrderId, Arc<Offer>) {
    let order2 = order_at(&w.engine, RestaurantId::new(), pickup, dropoff);
    w.matcher
        .dispatch_ready_at(order2, NOW_MS, Some(ready_ms))
        .unwrap();
    settle(&w.matcher);
    let offer = w.matcher.pending_offer(order2).expect("order 2 offered");
    (order2, offer)
}

/// A point `metres_north` north and `metres_east` east of the pickup.
fn near_pickup(metres_north: f64, metres_east: f64) -> LatLng {
    ll(
        PICKUP.0 + metres_north / 111_195.0,
        PICKUP.1 + metres_east / (111_195.0 * PICKUP.0.to_radians().cos()),
    )
}

/// Another restaurant 200 m north of the first, behind the courier (100
/// m north) on its way: the detour costs the first customer seconds, so
/// the courier bound for the first kitchen is offered the order (marked
/// stacked, with the other restaurant as its pickup) and takes both.
#[test]
fn a_busy_courier_takes_a_second_order_from_a_restaurant_on_its_way() {
    for policy in POLICIES {
        let w = world(policy, true, NOW_MS + 600_000);
        let r2 = near_pickup(200.0, 0.0);
        let (order2, offer) = offer_from(&w, r2, ll(57.71, 11.98), NOW_MS + 600_000);
        assert_eq!(
            (offer.driver_id, offer.stacked_with, offer.pickup),
            (w.first, Some(w.order1), r2),
            "{policy:?}"
        );
        w.matcher.accept(offer.offer_id, w.first, NOW_MS).unwrap();
        let view = w.engine.driver(w.first).unwrap();
        assert_eq!(
            view.orders().collect::<Vec<_>>(),
            [w.order1, order2],
            "{policy:?}"
        );
    }
}

/// A restaurant 2.5 km east: the detour would cost the first customer
/// about 8 minutes, past the 5-minute bound; the free courier gets it.
#[test]
fn no_stacking_from_a_restaurant_off_the_way() {
    for policy in POLICIES {
        let w = world(policy, true, NOW_MS + 600_000);
        let (_, offer) = offer_from(
            &w,
            near_pickup(0.0, 2_500.0),
            ll(57.71, 11.98),
            NOW_MS + 600_000,
        );
        assert_eq!(
            (offer.driver_id, offer.stacked_with),
            (w.free, None),
            "{policy:?}"
        );
    }
}

/// The second customer's door on the far side of the kitchen from the
/// first's: riding along (the first door, then across) would bring it
/// about 6 minutes later than the free courier 500 m away would, past the
/// bound, so the free courier gets it, from the same kitchen too; with the
/// bound raised past that, the busy courier does.
#[test]
fn no_stacking_that_serves_the_second_customer_much_worse_than_a_free_courier() {
    let far_side = ll(57.69, 11.96);
    for policy in POLICIES {
        let w = world(policy, true, NOW_MS + 600_000);
        let (_, offer) = offer_from(&w, near_pickup(0.0, 0.0), far_side, NOW_MS + 600_000);
        assert_eq!(
            (offer.driver_id, offer.stacked_with),
            (w.free, None),
            "{policy:?}"
        );
    }
    let engine = Handle::new(EngineConfig::default());
    let matcher = Matcher::new(
        engine.clone(),
        Config {
            stack_delay_bound_s: 600,
            ..config(PolicyKind::Greedy, true)
        },
    )
    .with_clock(Arc::new(clock::ManualClock::new(NOW_MS)));
    let first = driver_at(&engine, 100.0);
    let order1 = order_from(&engine, RestaurantId::new());
    matcher
        .dispatch_ready_at(order1, NOW_MS, Some(NOW_MS + 600_000))
        .unwrap();
    let offer = matcher.pending_offer(order1).unwrap();
    matcher.accept(offer.offer_id, first, NOW_MS).unwrap();
    driver_at(&engine, 500.0);
    let order2 = order_at(
        &engine,
        RestaurantId::new(),
        near_pickup(0.0, 0.0),
        far_side,
    );
    matcher
        .dispatch_ready_at(order2, NOW_MS, Some(NOW_MS + 600_000))
        .unwrap();
    let offer = matcher.pending_offer(order2).unwrap();
    assert_eq!((offer.driver_id, offer.stacked_with), (first, Some(order1)));
}

/// The first order left the kitchen between the stacked offer and its
/// accept: the engine refuses the second slot, the accept counts as a
/// decline and the order goes on to the free courier.
#[test]
fn a_stacked_accept_after_the_pickup_is_refused() {
    let w = world(PolicyKind::Greedy, true, NOW_MS + 600_000);
    let (order2, offer) = second_offer(&w, w.kitchen, NOW_MS + 600_000);
    assert_eq!(offer.stacked_with, Some(w.order1));
    w.engine
        .set_order_status(w.order1, OrderStatus::PickedUp, NOW_MS)
        .unwrap();
    assert!(matches!(
        w.matcher.accept(offer.offer_id, w.first, NOW_MS),
        Err(OfferError::Assign(engine::Error::DriverBusy(_)))
    ));
    assert_eq!(w.engine.order(order2).unwrap().driver_id, None);
    assert_eq!(
        w.matcher.pending_offer(order2).map(|o| o.driver_id),
        Some(w.free)
    );
}

/// Random dispatches, accepts, declines, pickups and closes over a few
/// couriers and two kitchens (at one place: every stack passes the rule)
/// with stacking on, under both policies: after
/// every step no courier holds more than two orders, no order two
/// couriers, a courier holds at most one pending offer and an order at
/// most one, and the board agrees with the couriers.
#[test]
fn random_answers_never_overload_a_courier_or_share_an_order() {
    for policy in POLICIES {
        for seed in 1..=40u64 {
            random_walk(policy, seed);
        }
    }
}

fn random_walk(policy: PolicyKind, seed: u64) {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let engine = Handle::new(EngineConfig::default());
    let matcher = Matcher::new(
        engine.clone(),
        Config {
            reoffer_cooldown_s: 0,
            ..config(policy, true)
        },
    )
    .with_clock(Arc::new(clock::ManualClock::new(NOW_MS)));
    let kitchens = [RestaurantId::new(), RestaurantId::new()];
    let drivers: Vec<DriverId> = (0..3)
        .map(|i| driver_at(&engine, 100.0 * f64::from(i)))
        .collect();
    let mut orders: Vec<OrderId> = Vec::new();
    for step in 0..150 {
        match next(6) {
            0 if orders.len() < 14 => {
                let o = order_from(&engine, kitchens[next(2) as usize]);
                let ready = NOW_MS + 60_000 * next(8) as i64;
                matcher.dispatch_ready_at(o, NOW_MS, Some(ready)).unwrap();
                orders.push(o);
            }
            1 | 2 => {
                // Some courier answers their pending offer.
                if let Some(&o) = orders.get(next(orders.len().max(1) as u64) as usize)
                    && let Some(offer) = matcher.pending_offer(o)
                {
                    if next(3) == 0 {
                        let _ = matcher.decline(offer.offer_id, offer.driver_id, NOW_MS);
                    } else {
                        let _ = matcher.accept(offer.offer_id, offer.driver_id, NOW_MS);
                    }
                }
            }
            3 => {
                if let Some(&o) = orders.get(next(orders.len().max(1) as u64) as usize)
                    && engine
                        .order(o)
                        .is_some_and(|t| t.driver_id.is_some() && !t.status.is_terminal())
                {
                    let _ = engine.set_order_status(o, OrderStatus::PickedUp, NOW_MS);
                }
            }
            4 => {
                if let Some(&o) = orders.get(next(orders.len().max(1) as u64) as usize)
                    && engine.order(o).is_some_and(|t| !t.status.is_terminal())
                {
                    let closed = if next(2) == 0 {
                        OrderStatus::Delivered
                    } else {
                        OrderStatus::Cancelled
                    };
                    let _ = engine.set_order_status(o, closed, NOW_MS);
                    matcher.withdraw(o);
                }
            }
            _ => {
                settle(&matcher);
                matcher.retry_waiting(Instant::now());
            }
        }
        let ctx = format!("{policy:?}, seed {seed}, step {step}");
        let mut holder: std::collections::HashMap<OrderId, DriverId> = Default::default();
        for &d in &drivers {
            let v = engine.driver(d).unwrap();
            let held: Vec<OrderId> = v.orders().collect();
            assert!(held.len() <= 2, "{ctx}: {held:?}");
            for o in held {
                assert!(holder.insert(o, d).is_none(), "{ctx}: {o} held twice");
                assert_eq!(engine.order(o).unwrap().driver_id, Some(d), "{ctx}");
            }
        }
        let book = matcher.inner.book.lock();
        let mut offered: std::collections::HashSet<DriverId> = Default::default();
        for &o in &orders {
            if let Some(offer) = book
                .dispatches
                .get(&o)
                .and_then(|d| d.pending_offer)
                .and_then(|id| book.offers.get(&id))
            {
                assert!(
                    offered.insert(offer.offer.driver_id),
                    "{ctx}: two offers to a courier"
                );
            }
            let t = engine.order(o).unwrap();
            if let Some(d) = t.driver_id.filter(|_| !t.status.is_terminal()) {
                assert_eq!(holder.get(&o), Some(&d), "{ctx}");
            }
        }
    }
}
