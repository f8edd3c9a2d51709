use std::time::Duration;

use engine::{
    Arrival, Config as EngineConfig, DriverId, Handle, LatLng, OrderId, OrderStatus, OrderTrack,
    Ping, RestaurantId, UserId,
};

use super::*;

const T0: i64 = 1_763_700_000_000;
const RESTAURANT: (f64, f64) = (57.7000, 11.9700);
/// 400 m north of the restaurant: a courier heading there from the north
/// passes it.
const DOOR: (f64, f64) = (57.7036, 11.9700);

fn ll(p: (f64, f64)) -> LatLng {
    LatLng::new(p.0, p.1).unwrap()
}

/// `metres` north of the restaurant.
fn north(metres: f64) -> LatLng {
    LatLng::new(RESTAURANT.0 + metres / 111_195.0, RESTAURANT.1).unwrap()
}

fn track(order_id: OrderId, driver_id: Option<DriverId>, status: OrderStatus) -> OrderTrack {
    OrderTrack {
        order_id,
        customer_id: UserId::new(),
        restaurant_id: RestaurantId::new(),
        restaurant_owner_id: UserId::new(),
        status,
        driver_id,
        pickup: ll(RESTAURANT),
        dropoff: ll(DOOR),
        updated_at_ms: T0,
        version: 0,
    }
}

fn moved(driver_id: DriverId, order_id: Option<OrderId>, position: LatLng, at_ms: i64) -> Moved {
    Moved {
        driver_id,
        position,
        previous: None,
        cell: engine::cells::cell_of(position),
        previous_cell: None,
        recorded_at_ms: at_ms,
        heading_deg: None,
        speed_mps: None,
        status: engine::DriverStatus::Busy,
        order_id,
        stacked_order: None,
    }
}

/// Kinds of the arrivals `tracker` raises for the fixes at `metres` north
/// of the restaurant.
fn drive(tracker: &mut Tracker, driver: DriverId, order: OrderId, metres: &[f64]) -> Vec<Arrival> {
    metres
        .iter()
        .enumerate()
        .flat_map(|(i, &m)| tracker.on_move(&moved(driver, Some(order), north(m), T0 + i as i64)))
        .map(|a| {
            assert_eq!((a.order_id, a.driver_id), (order, driver));
            a.arrival
        })
        .collect()
}

#[test]
fn the_fence_follows_the_order_and_each_stop_fires_once() {
    let mut tracker = Tracker::new(50.0);
    let (order, driver) = (OrderId::new(), DriverId::new());
    // Not assigned: no fence.
    tracker.on_order(&track(order, None, OrderStatus::Accepted));
    assert!(tracker.is_empty());
    tracker.on_order(&track(order, Some(driver), OrderStatus::Accepted));
    assert_eq!(tracker.len(), 1, "one fence at a time");
    // On the way in from the north, past the customer's door (400 m): no
    // arrival at the customer before pickup; one at the restaurant.
    let got = drive(
        &mut tracker,
        driver,
        order,
        &[800.0, 400.0, 200.0, 40.0, 0.0],
    );
    assert_eq!(got, [Arrival::ArrivedAtRestaurant]);
    // Status steps while there keep the fence as it is: no second one,
    // even after leaving and coming back.
    tracker.on_order(&track(order, Some(driver), OrderStatus::Preparing));
    tracker.on_order(&track(order, Some(driver), OrderStatus::ReadyForPickup));
    assert!(drive(&mut tracker, driver, order, &[300.0, 10.0]).is_empty());
    // Picked up: the door's fence instead.
    tracker.on_order(&track(order, Some(driver), OrderStatus::PickedUp));
    assert_eq!(tracker.len(), 1);
    let got = drive(
        &mut tracker,
        driver,
        order,
        &[0.0, 200.0, 380.0, 400.0, 390.0],
    );
    assert_eq!(got, [Arrival::ArrivedAtCustomer]);
    tracker.on_order(&track(order, Some(driver), OrderStatus::Delivered));
    assert!(tracker.is_empty());
}

#[test]
fn only_the_orders_courier_arrives() {
    let mut tracker = Tracker::new(50.0);
    let (order, driver, other) = (OrderId::new(), DriverId::new(), DriverId::new());
    tracker.on_order(&track(order, Some(driver), OrderStatus::Preparing));
    assert!(
        tracker
            .on_move(&moved(other, None, north(0.0), T0))
            .is_empty()
    );
    // Reassigned: the old courier no longer counts, the new one arrives.
    tracker.on_order(&track(order, None, OrderStatus::Preparing));
    tracker.on_order(&track(order, Some(other), OrderStatus::Preparing));
    assert!(drive(&mut tracker, driver, order, &[0.0]).is_empty());
    assert_eq!(
        drive(&mut tracker, other, order, &[0.0]),
        [Arrival::ArrivedAtRestaurant]
    );
}

#[test]
fn a_resync_drops_what_left_the_board_and_keeps_what_fired() {
    let mut tracker = Tracker::new(50.0);
    let (a, b, driver_a, driver_b) = (
        OrderId::new(),
        OrderId::new(),
        DriverId::new(),
        DriverId::new(),
    );
    tracker.on_order(&track(a, Some(driver_a), OrderStatus::Accepted));
    tracker.on_order(&track(b, Some(driver_b), OrderStatus::Accepted));
    assert_eq!(
        drive(&mut tracker, driver_a, a, &[0.0]),
        [Arrival::ArrivedAtRestaurant]
    );
    // `b` was cancelled while the changes were lost; `a` is still there.
    tracker.resync(&[track(a, Some(driver_a), OrderStatus::Preparing)]);
    assert_eq!(tracker.len(), 1);
    assert!(drive(&mut tracker, driver_a, a, &[200.0, 0.0]).is_empty());
    assert!(drive(&mut tracker, driver_b, b, &[0.0]).is_empty());
}

/// The task on a real engine: an order assigned before it started (as
/// after a restart) and pings applied to the engine raise one arrival per
/// stop on the change stream, also when the pickup is stepped before the
/// task has looked at the pings that reached the restaurant.
#[tokio::test]
async fn the_task_publishes_one_arrival_per_stop_on_the_change_stream() {
    let engine = Handle::new(EngineConfig::default());
    let (order, driver) = (OrderId::new(), DriverId::new());
    let ping = |metres: f64, at_ms: i64| Ping {
        driver_id: driver,
        position: north(metres),
        recorded_at_ms: at_ms,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    };
    engine.apply_ping(&ping(1_000.0, T0), T0);
    engine.track_order(track(order, Some(driver), OrderStatus::Accepted));
    assert!(Arrivals::new(engine.clone(), 0.0).is_none(), "0 m: off");
    let arrivals = Arrivals::new(engine.clone(), 50.0).unwrap();
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    // `run` subscribes and fences the assigned order before it returns;
    // the task itself first runs when this test awaits (one thread).
    let task = tokio::spawn(arrivals.run(shutdown.clone()));
    for (i, metres) in [600.0, 300.0, 100.0, 30.0, 5.0, 40.0, 0.0]
        .iter()
        .enumerate()
    {
        engine.apply_ping(&ping(*metres, T0 + 10_000 * (i as i64 + 1)), T0);
    }
    engine
        .set_order_status(order, OrderStatus::PickedUp, T0 + 100_000)
        .unwrap();
    let mut next_arrival = async || loop {
        let change = tokio::time::timeout(Duration::from_secs(10), changes.recv_direct())
            .await
            .expect("the arrival comes")
            .unwrap();
        if let Change::Arrived(a) = change {
            assert_eq!((a.order_id, a.driver_id), (order, driver));
            return a;
        }
    };
    let first = next_arrival().await;
    assert_eq!(first.arrival, Arrival::ArrivedAtRestaurant);
    assert_eq!(first.at_ms, T0 + 40_000, "the first fix within 50 m");
    // The door, 400 m north: its arrival comes after every restaurant one
    // the pings above could raise.
    for (i, metres) in [100.0, 300.0, 398.0].iter().enumerate() {
        engine.apply_ping(&ping(*metres, T0 + 200_000 + 10_000 * i as i64), T0);
    }
    assert_eq!(next_arrival().await.arrival, Arrival::ArrivedAtCustomer);
    shutdown.cancel();
    task.await.unwrap();
}

/// The task is behind: a courier is assigned, drives into the restaurant's
/// fence and stops there, all before the task looks. The drain before the
/// assignment checks those fixes against no fence; the assignment then
/// checks the courier's last fix, so the arrival still comes (with no
/// further ping to catch it).
#[tokio::test]
async fn a_courier_inside_when_the_fence_goes_up_arrives_without_another_ping() {
    let engine = Handle::new(EngineConfig::default());
    let (order, driver) = (OrderId::new(), DriverId::new());
    let ping = |metres: f64, at_ms: i64| Ping {
        driver_id: driver,
        position: north(metres),
        recorded_at_ms: at_ms,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    };
    engine.apply_ping(&ping(1_000.0, T0), T0);
    let arrivals = Arrivals::new(engine.clone(), 50.0).unwrap();
    let mut changes = engine.subscribe_changes();
    let shutdown = CancellationToken::new();
    // Subscribed with no order assigned; the task runs when the test awaits.
    let task = tokio::spawn(arrivals.run(shutdown.clone()));
    engine.track_order(track(order, Some(driver), OrderStatus::Accepted));
    for (i, metres) in [400.0, 100.0, 0.0].iter().enumerate() {
        engine.apply_ping(&ping(*metres, T0 + 10_000 * (i as i64 + 1)), T0);
    }
    let arrived = loop {
        let change = tokio::time::timeout(Duration::from_secs(10), changes.recv_direct())
            .await
            .expect("the arrival comes")
            .unwrap();
        if let Change::Arrived(a) = change {
            break a;
        }
    };
    assert_eq!((arrived.order_id, arrived.driver_id), (order, driver));
    assert_eq!(arrived.arrival, Arrival::ArrivedAtRestaurant);
    assert_eq!(
        arrived.at_ms,
        T0 + 30_000,
        "the last fix, at the restaurant"
    );
    shutdown.cancel();
    task.await.unwrap();
}

/// A stacking courier with two orders of one restaurant: the restaurant's
/// fence fires once for each order, then each door's once, in the order
/// the courier reaches them (the second door beyond the first).
#[test]
fn a_stacked_courier_arrives_for_each_order() {
    let mut tracker = Tracker::new(50.0);
    let driver = DriverId::new();
    let (first, second) = (OrderId::new(), OrderId::new());
    let far_door = north(800.0);
    let second_track = |status| OrderTrack {
        dropoff: far_door,
        ..track(second, Some(driver), status)
    };
    tracker.on_order(&track(first, Some(driver), OrderStatus::Preparing));
    tracker.on_order(&second_track(OrderStatus::Accepted));
    assert_eq!(tracker.len(), 2);
    let at = |tracker: &mut Tracker, m: f64, t: i64| -> Vec<(OrderId, Arrival)> {
        tracker
            .on_move(&moved(driver, Some(first), north(m), T0 + t))
            .into_iter()
            .map(|a| (a.order_id, a.arrival))
            .collect()
    };
    let mut got = at(&mut tracker, 0.0, 1);
    got.sort_by_key(|&(o, _)| o == second);
    assert_eq!(
        got,
        [
            (first, Arrival::ArrivedAtRestaurant),
            (second, Arrival::ArrivedAtRestaurant)
        ]
    );
    tracker.on_order(&track(first, Some(driver), OrderStatus::PickedUp));
    tracker.on_order(&second_track(OrderStatus::PickedUp));
    assert!(at(&mut tracker, 200.0, 2).is_empty());
    assert_eq!(
        at(&mut tracker, 400.0, 3),
        [(first, Arrival::ArrivedAtCustomer)]
    );
    tracker.on_order(&track(first, Some(driver), OrderStatus::Delivered));
    assert_eq!(tracker.len(), 1, "the second door's fence stays");
    assert!(at(&mut tracker, 600.0, 4).is_empty());
    assert_eq!(
        at(&mut tracker, 800.0, 5),
        [(second, Arrival::ArrivedAtCustomer)]
    );
}
