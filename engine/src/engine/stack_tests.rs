//! Stacking: the second slot's rules, its release, and a random walk
//! holding the invariants (never more than two orders per driver, never
//! two drivers per order, a second only beside a first still at its
//! kitchen, which may be another one: stacking on the way).

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::ids::{RestaurantId, UserId};

const T0: i64 = 1_763_700_000_000;

fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).unwrap()
}

fn courier(e: &mut Engine, lat: f64) -> DriverId {
    let d = DriverId::new();
    e.apply_ping(
        &Ping {
            driver_id: d,
            position: ll(lat, 11.97),
            recorded_at_ms: T0,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        },
        T0,
    );
    d
}

fn order_from(e: &mut Engine, restaurant: RestaurantId) -> OrderId {
    let order_id = OrderId::new();
    e.track_order(OrderTrack {
        order_id,
        customer_id: UserId::new(),
        restaurant_id: restaurant,
        restaurant_owner_id: UserId::new(),
        status: OrderStatus::Accepted,
        driver_id: None,
        pickup: ll(57.70, 11.97),
        dropoff: ll(57.71, 11.98),
        updated_at_ms: T0,
        version: 0,
    });
    order_id
}

#[test]
fn a_second_order_rides_along_from_any_kitchen() {
    let mut e = Engine::new(Config::default());
    let (kitchen, other_kitchen) = (RestaurantId::new(), RestaurantId::new());
    let d = courier(&mut e, 57.70);
    let (o1, o2, o3, elsewhere) = (
        order_from(&mut e, kitchen),
        order_from(&mut e, kitchen),
        order_from(&mut e, kitchen),
        order_from(&mut e, other_kitchen),
    );
    // A free driver: a stacked assignment is a plain one.
    assert_eq!(e.assign_stacked(o1, d, T0).unwrap().driver_id, Some(d));
    assert_eq!(e.stack_base(d).map(|t| t.order_id), Some(o1));
    // The plain assignment still refuses a busy driver.
    assert_eq!(e.assign(o2, d, T0), Err(Error::DriverBusy(o1)));
    // Another kitchen's order rides along (one on the way: whether it is
    // is the matcher's rule), on another driver like this one.
    let e2 = courier(&mut e, 57.705);
    let o4 = order_from(&mut e, kitchen);
    e.assign(o4, e2, T0).unwrap();
    assert_eq!(
        e.assign_stacked(elsewhere, e2, T0).unwrap().driver_id,
        Some(e2)
    );
    assert_eq!(
        e.driver(e2).unwrap().orders().collect::<Vec<_>>(),
        [o4, elsewhere]
    );
    // The same kitchen's does.
    assert_eq!(e.assign_stacked(o2, d, T0).unwrap().driver_id, Some(d));
    let view = e.driver(d).unwrap();
    assert_eq!(
        (view.current_order, view.stacked_order),
        (Some(o1), Some(o2))
    );
    assert_eq!(view.orders().collect::<Vec<_>>(), [o1, o2]);
    // Never a third.
    assert_eq!(e.assign_stacked(o3, d, T0), Err(Error::DriverBusy(o1)));
    assert_eq!(e.stack_base(d), None);
    // Pings carry both orders, so both customers see the courier.
    let mut moves = e.subscribe_moves();
    e.apply_ping(
        &Ping {
            driver_id: d,
            position: ll(57.7001, 11.97),
            recorded_at_ms: T0 + 1000,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        },
        T0 + 1000,
    );
    let m = moves.try_recv().unwrap();
    assert_eq!((m.order_id, m.stacked_order), (Some(o1), Some(o2)));
}

#[test]
fn no_order_rides_along_with_one_picked_up() {
    let mut e = Engine::new(Config::default());
    let kitchen = RestaurantId::new();
    let d = courier(&mut e, 57.70);
    let (o1, o2) = (order_from(&mut e, kitchen), order_from(&mut e, kitchen));
    e.assign(o1, d, T0).unwrap();
    e.set_order_status(o1, OrderStatus::PickedUp, T0).unwrap();
    assert_eq!(e.stack_base(d), None);
    assert_eq!(e.assign_stacked(o2, d, T0), Err(Error::DriverBusy(o1)));
    assert_eq!(e.order(o2).unwrap().driver_id, None);
}

#[test]
fn closing_one_order_leaves_the_other() {
    for first_closes in [true, false] {
        let mut e = Engine::new(Config::default());
        let kitchen = RestaurantId::new();
        let d = courier(&mut e, 57.70);
        let (o1, o2) = (order_from(&mut e, kitchen), order_from(&mut e, kitchen));
        e.assign(o1, d, T0).unwrap();
        e.assign_stacked(o2, d, T0).unwrap();
        let (closed, left) = if first_closes { (o1, o2) } else { (o2, o1) };
        e.set_order_status(o1, OrderStatus::PickedUp, T0).unwrap();
        e.set_order_status(o2, OrderStatus::PickedUp, T0).unwrap();
        e.set_order_status(closed, OrderStatus::Delivered, T0)
            .unwrap();
        let view = e.driver(d).unwrap();
        assert_eq!(
            view.status,
            DriverStatus::Busy,
            "first closes: {first_closes}"
        );
        assert_eq!((view.current_order, view.stacked_order), (Some(left), None));
        e.set_order_status(left, OrderStatus::Delivered, T0)
            .unwrap();
        let view = e.driver(d).unwrap();
        assert_eq!(view.status, DriverStatus::Available);
        assert_eq!(view.orders().count(), 0);
    }
    // Unassigning the second (a dispatcher, or a refused accept) frees
    // only its slot.
    let mut e = Engine::new(Config::default());
    let kitchen = RestaurantId::new();
    let d = courier(&mut e, 57.70);
    let (o1, o2) = (order_from(&mut e, kitchen), order_from(&mut e, kitchen));
    e.assign(o1, d, T0).unwrap();
    e.assign_stacked(o2, d, T0).unwrap();
    assert_eq!(e.unassign_if(o2, d, T0).unwrap().unwrap().driver_id, None);
    let view = e.driver(d).unwrap();
    assert_eq!((view.current_order, view.stacked_order), (Some(o1), None));
    assert_eq!(view.status, DriverStatus::Busy);
}

#[test]
fn nearest_stackable_finds_busy_couriers_of_the_kitchen() {
    let mut e = Engine::new(Config::default());
    let (kitchen, other_kitchen) = (RestaurantId::new(), RestaurantId::new());
    let near = courier(&mut e, 57.701);
    let far = courier(&mut e, 57.71);
    let wrong_kitchen = courier(&mut e, 57.7005);
    let free = courier(&mut e, 57.7001);
    let picked = courier(&mut e, 57.7002);
    let o_near = order_from(&mut e, kitchen);
    let o_far = order_from(&mut e, kitchen);
    let o_other = order_from(&mut e, other_kitchen);
    let o_picked = order_from(&mut e, kitchen);
    e.assign(o_near, near, T0).unwrap();
    e.assign(o_far, far, T0).unwrap();
    e.assign(o_other, wrong_kitchen, T0).unwrap();
    e.assign(o_picked, picked, T0).unwrap();
    e.set_order_status(o_picked, OrderStatus::PickedUp, T0)
        .unwrap();
    let found: Vec<(DriverId, OrderId)> = e
        .nearest_stackable(ll(57.70, 11.97), kitchen, 5_000.0, 10)
        .into_iter()
        .map(|(n, first)| (n.driver_id, first.order_id))
        .collect();
    assert_eq!(found, [(near, o_near), (far, o_far)]);
    let _ = free;
    assert_eq!(
        e.nearest_stackable(ll(57.70, 11.97), kitchen, 5_000.0, 1)
            .len(),
        1
    );
}

/// On the way: busy couriers near a restaurant who hold one order not
/// picked up, from any kitchen, nearest first; not those with two orders,
/// one picked up, or farther than the radius.
#[test]
fn nearest_stack_bases_finds_couriers_of_any_kitchen() {
    let mut e = Engine::new(Config::default());
    let (kitchen, other_kitchen) = (RestaurantId::new(), RestaurantId::new());
    let near = courier(&mut e, 57.701);
    let other = courier(&mut e, 57.703);
    let two = courier(&mut e, 57.7005);
    let picked = courier(&mut e, 57.7002);
    let far = courier(&mut e, 57.80);
    let free = courier(&mut e, 57.7001);
    let o_near = order_from(&mut e, kitchen);
    let o_other = order_from(&mut e, other_kitchen);
    let (o_two, o_two2) = (order_from(&mut e, kitchen), order_from(&mut e, kitchen));
    let o_picked = order_from(&mut e, kitchen);
    let o_far = order_from(&mut e, kitchen);
    e.assign(o_near, near, T0).unwrap();
    e.assign(o_other, other, T0).unwrap();
    e.assign(o_two, two, T0).unwrap();
    e.assign_stacked(o_two2, two, T0).unwrap();
    e.assign(o_picked, picked, T0).unwrap();
    e.set_order_status(o_picked, OrderStatus::PickedUp, T0)
        .unwrap();
    e.assign(o_far, far, T0).unwrap();
    let found: Vec<(DriverId, OrderId)> = e
        .nearest_stack_bases(ll(57.70, 11.97), 5_000.0, 10)
        .into_iter()
        .map(|(n, first)| (n.driver_id, first.order_id))
        .collect();
    assert_eq!(found, [(near, o_near), (other, o_other)]);
    let _ = free;
    assert_eq!(e.nearest_stack_bases(ll(57.70, 11.97), 5_000.0, 1).len(), 1);
}

/// The board's orders by restaurant follow the board: closed orders
/// leave the index when they are pruned.
#[test]
fn the_restaurant_index_forgets_pruned_orders() {
    let mut e = Engine::new(Config::default());
    let kitchen = RestaurantId::new();
    let (o1, o2) = (order_from(&mut e, kitchen), order_from(&mut e, kitchen));
    assert_eq!(e.orders.ids_of_restaurant(kitchen), [o1, o2]);
    e.set_order_status(o1, OrderStatus::Cancelled, T0).unwrap();
    e.expire(T0 + 10 * 3_600_000);
    assert_eq!(e.orders.ids_of_restaurant(kitchen), [o2]);
    // Tracked again (a newer record): indexed once.
    let t = e.order(o2).unwrap();
    e.track_order(t);
    assert_eq!(e.orders.ids_of_restaurant(kitchen), [o2]);
}

/// A restart (or a late board update) names a driver on two open orders:
/// the board binds both, first and second, and never a third.
#[test]
fn tracking_binds_a_second_order_but_never_a_third() {
    let mut e = Engine::new(Config::default());
    let kitchen = RestaurantId::new();
    let d = courier(&mut e, 57.70);
    let ids: Vec<OrderId> = (0..3).map(|_| order_from(&mut e, kitchen)).collect();
    for &o in &ids {
        let mut t = e.order(o).unwrap();
        t.driver_id = Some(d);
        e.track_order(t);
    }
    let view = e.driver(d).unwrap();
    assert_eq!(view.orders().collect::<Vec<_>>(), ids[..2]);
}

/// Random assignments (plain and stacked, racing for the same orders and
/// drivers), pickups, deliveries, cancellations and unassignments over a
/// few drivers, orders and kitchens: after every step no driver holds more
/// than two orders, no order is held by two drivers, the board and the
/// drivers agree, a second order only ever joins a first still at its
/// kitchen (any kitchen), and a driver is busy exactly while it holds one.
#[test]
fn random_walk_keeps_drivers_and_orders_consistent() {
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut e = Engine::new(Config::default());
        let kitchens = [RestaurantId::new(), RestaurantId::new()];
        let drivers: Vec<DriverId> = (0..3)
            .map(|i| courier(&mut e, 57.70 + i as f64 * 1e-4))
            .collect();
        let mut orders: Vec<OrderId> = Vec::new();
        for step in 0..120 {
            if orders.len() < 12 && rng.random_bool(0.3) {
                let k = kitchens[rng.random_range(0..kitchens.len())];
                orders.push(order_from(&mut e, k));
            }
            if orders.is_empty() {
                continue;
            }
            let o = orders[rng.random_range(0..orders.len())];
            let d = drivers[rng.random_range(0..drivers.len())];
            // Closed orders stay closed (the store never reopens one; the
            // unversioned tool call would).
            let open = !e.order(o).unwrap().status.is_terminal();
            let _ = match rng.random_range(0..6) {
                0 => e.assign(o, d, T0).map(|_| ()),
                1 | 2 => {
                    // A second joins only a first still at its kitchen.
                    let first = e.driver(d).unwrap().current_order;
                    let first_status = first.map(|f| e.order(f).unwrap().status);
                    let r = e.assign_stacked(o, d, T0).map(|_| ());
                    if r.is_ok()
                        && let Some(status) = first_status
                    {
                        assert!(may_ride_along(status), "seed {seed}, step {step}");
                    }
                    r
                }
                3 | 4 if !open => Ok(()),
                3 => e.set_order_status(o, OrderStatus::PickedUp, T0).map(|_| ()),
                4 => e
                    .set_order_status(
                        o,
                        if rng.random_bool(0.5) {
                            OrderStatus::Delivered
                        } else {
                            OrderStatus::Cancelled
                        },
                        T0,
                    )
                    .map(|_| ()),
                _ => e.unassign_if(o, d, T0).map(|_| ()),
            };
            check(&e, &drivers, &orders, seed, step);
        }
    }
}

fn check(e: &Engine, drivers: &[DriverId], orders: &[OrderId], seed: u64, step: usize) {
    let ctx = format!("seed {seed}, step {step}");
    let mut holder: HashMap<OrderId, DriverId> = HashMap::new();
    for &d in drivers {
        let v = e.driver(d).unwrap();
        let held: Vec<OrderId> = v.orders().collect();
        assert!(held.len() <= 2, "{ctx}: {held:?}");
        assert!(
            v.stacked_order.is_none() || v.current_order.is_some(),
            "{ctx}"
        );
        assert_eq!(v.status == DriverStatus::Busy, !held.is_empty(), "{ctx}");
        for &o in &held {
            assert!(holder.insert(o, d).is_none(), "{ctx}: {o} held twice");
            let t = e.order(o).unwrap();
            assert_eq!(t.driver_id, Some(d), "{ctx}: board disagrees on {o}");
            assert!(!t.status.is_terminal(), "{ctx}: {o} closed but held");
        }
    }
    for &o in orders {
        let t = e.order(o).unwrap();
        if let Some(d) = t.driver_id.filter(|_| !t.status.is_terminal()) {
            assert_eq!(
                holder.get(&o),
                Some(&d),
                "{ctx}: {o} names {d}, who does not hold it"
            );
        }
    }
}
