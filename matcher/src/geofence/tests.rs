use std::path::PathBuf;

use engine::{DriverId, LatLng, OrderId};
use routing::RoadGraph;

use super::*;

fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).unwrap()
}

/// A point `north_m` north and `east_m` east of `p`.
fn offset(p: LatLng, north_m: f64, east_m: f64) -> LatLng {
    ll(
        p.lat + north_m / M_PER_DEG_LAT,
        p.lng + east_m / (M_PER_DEG_LAT * p.lat.to_radians().cos()),
    )
}

/// A tiny deterministic generator (xorshift64*), so the jitter is the same
/// on every run; uniform in [-1, 1).
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

#[test]
fn entering_fires_once_and_jitter_at_the_edge_does_not_fire_again() {
    let restaurant = ll(57.7000, 11.9700);
    let door = ll(57.7100, 11.9800);
    let (order, driver, other) = (OrderId::new(), DriverId::new(), DriverId::new());
    let mut fences = Fences::default();
    fences.add_order(order, driver, restaurant, door);
    assert_eq!(fences.len(), 2);

    assert!(
        fences
            .check(driver, offset(restaurant, 200.0, 0.0))
            .is_empty()
    );
    // Another driver at the restaurant is not this order's arrival.
    assert!(fences.check(other, restaurant).is_empty());
    assert_eq!(
        fences.check(driver, offset(restaurant, 40.0, 0.0)),
        vec![Arrival {
            order_id: order,
            kind: FenceKind::Restaurant
        }]
    );
    // Back and forth across the edge, within the margin, then far away and
    // back: never again for this order.
    for north_m in [60.0, 45.0, 75.0, 30.0, 500.0, 10.0, 0.0] {
        assert!(
            fences
                .check(driver, offset(restaurant, north_m, 0.0))
                .is_empty(),
            "{north_m}"
        );
    }
    assert_eq!(
        fences.check(driver, offset(door, 0.0, -20.0)),
        vec![Arrival {
            order_id: order,
            kind: FenceKind::Customer
        }]
    );
    fences.remove_order(order);
    assert!(fences.is_empty());
    assert!(fences.check(driver, door).is_empty());
}

#[test]
fn hysteresis_needs_the_margin_to_leave() {
    let center = ll(57.7, 11.97);
    let (order, driver) = (OrderId::new(), DriverId::new());
    let mut fences = Fences::new(50.0, 30.0);
    fences.add_order(order, driver, center, ll(57.8, 12.0));
    let inside = |f: &Fences| f.fences[&(order, FenceKind::Restaurant)].inside;
    fences.check(driver, offset(center, 49.0, 0.0));
    assert!(inside(&fences));
    fences.check(driver, offset(center, 0.0, 79.0));
    assert!(inside(&fences), "within radius + margin is still inside");
    fences.check(driver, offset(center, 0.0, -81.0));
    assert!(!inside(&fences), "beyond radius + margin has left");
}

#[test]
fn two_orders_at_one_restaurant_arrive_together() {
    let restaurant = ll(57.7, 11.97);
    let driver = DriverId::new();
    let (a, b) = (OrderId::new(), OrderId::new());
    let mut fences = Fences::default();
    fences.add_order(a, driver, restaurant, ll(57.71, 11.98));
    fences.add_order(b, driver, restaurant, ll(57.69, 11.96));
    let mut got: Vec<OrderId> = fences
        .check(driver, restaurant)
        .into_iter()
        .map(|x| x.order_id)
        .collect();
    got.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(got, want);
}

/// The shipped Gothenburg graph (what the product ships, not `../shared`).
fn gothenburg() -> RoadGraph {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gothenburg_roads_2016.hxroads");
    routing::load::read_graph(&path).expect("the shipped Gothenburg graph loads")
}

/// A drivable path of at least `min_m` following arcs from the first node
/// that has one long enough, as positions.
fn road_path(graph: &RoadGraph, min_m: f64) -> Vec<routing::LatLng> {
    for start in (0..graph.node_count() as u32).step_by(97) {
        let mut seen = std::collections::HashSet::from([start]);
        let mut path = vec![graph.position(start)];
        let (mut node, mut length_m) = (start, 0.0);
        while length_m < min_m {
            let Some(arc) = graph
                .arcs_from(node)
                .iter()
                .find(|a| !seen.contains(&a.head))
            else {
                break;
            };
            seen.insert(arc.head);
            let next = graph.position(arc.head);
            length_m += path[path.len() - 1].distance_m(next);
            path.push(next);
            node = arc.head;
        }
        if length_m >= min_m {
            return path;
        }
    }
    panic!("no drivable path of {min_m} m in the graph");
}

#[test]
fn a_driver_replayed_along_a_real_road_arrives_once() {
    let graph = gothenburg();
    let path = road_path(&graph, 1_000.0);
    let end = path[path.len() - 1];
    let restaurant = ll(end.lat, end.lng);
    let (order, driver) = (OrderId::new(), DriverId::new());
    let mut fences = Fences::default();
    fences.add_order(order, driver, restaurant, ll(57.65, 11.90));
    // A decoy order of another driver at the same restaurant.
    fences.add_order(
        OrderId::new(),
        DriverId::new(),
        restaurant,
        ll(57.66, 11.91),
    );

    // Pings every 3 m along the road with ±8 m of GPS noise, to the
    // restaurant, then 150 m back the way we came and in again.
    let mut points = Vec::new();
    for w in path.windows(2) {
        let steps = (w[0].distance_m(w[1]) / 3.0).ceil().max(1.0) as usize;
        for i in 0..steps {
            let t = i as f64 / steps as f64;
            points.push(ll(
                w[0].lat + (w[1].lat - w[0].lat) * t,
                w[0].lng + (w[1].lng - w[0].lng) * t,
            ));
        }
    }
    points.push(restaurant);
    let back: Vec<LatLng> = points.iter().rev().take(50).copied().collect();
    points.extend(back.iter().copied());
    points.extend(back.iter().rev().copied());
    let mut jitter = Jitter(0x5eed);
    let mut arrivals = Vec::new();
    for p in points {
        let noisy = offset(p, 8.0 * jitter.next(), 8.0 * jitter.next());
        arrivals.extend(fences.check(driver, noisy));
    }
    assert_eq!(
        arrivals,
        vec![Arrival {
            order_id: order,
            kind: FenceKind::Restaurant
        }],
        "seed 0x5eed"
    );
}

#[test]
fn one_fence_at_a_time_with_set_fence() {
    let restaurant = ll(57.7000, 11.9700);
    // The door lies on the way to the restaurant.
    let door = offset(restaurant, 300.0, 0.0);
    let (order, driver) = (OrderId::new(), DriverId::new());
    let mut fences = Fences::default();
    assert!(!fences.watches(driver));
    assert!(fences.set_fence(order, driver, FenceKind::Restaurant, restaurant));
    assert!(fences.watches(driver));
    assert_eq!(fences.len(), 1);
    // Passing the door before pickup is no arrival.
    assert!(fences.check(driver, door).is_empty());
    assert_eq!(fences.check(driver, restaurant).len(), 1);
    // The same fence again (a status step) keeps its state: no refire.
    assert!(!fences.set_fence(order, driver, FenceKind::Restaurant, restaurant));
    fences.check(driver, offset(restaurant, 500.0, 0.0));
    assert!(fences.check(driver, restaurant).is_empty());
    // Picked up: the door's fence replaces the restaurant's.
    assert!(fences.set_fence(order, driver, FenceKind::Customer, door));
    assert_eq!(fences.len(), 1);
    assert_eq!(
        fences.check(driver, door),
        vec![Arrival {
            order_id: order,
            kind: FenceKind::Customer
        }]
    );
    fences.remove_order(order);
    assert!(fences.is_empty());
    // Still inside the removed fence: checked once more, then forgotten.
    assert!(fences.check(driver, door).is_empty());
    assert!(!fences.watches(driver));
}

#[test]
fn a_new_driver_arrives_afresh() {
    let restaurant = ll(57.7000, 11.9700);
    let (order, first, second) = (OrderId::new(), DriverId::new(), DriverId::new());
    let mut fences = Fences::default();
    fences.set_fence(order, first, FenceKind::Restaurant, restaurant);
    assert_eq!(fences.check(first, restaurant).len(), 1);
    assert!(fences.set_fence(order, second, FenceKind::Restaurant, restaurant));
    assert!(!fences.watches(first) || fences.check(first, restaurant).is_empty());
    assert_eq!(fences.check(second, restaurant).len(), 1);
}
