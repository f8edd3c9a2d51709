use std::path::PathBuf;

use engine::{DriverId, RestaurantId, UserId};

use super::*;

const T0: i64 = 1_763_700_000_000;

fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).unwrap()
}

fn track(status: OrderStatus) -> OrderTrack {
    OrderTrack {
        order_id: OrderId::new(),
        customer_id: UserId::new(),
        restaurant_id: RestaurantId::new(),
        restaurant_owner_id: UserId::new(),
        status,
        driver_id: Some(DriverId::new()),
        pickup: ll(57.7000, 11.9700),
        dropoff: ll(57.7100, 11.9700),
        updated_at_ms: T0,
        version: 0,
    }
}

#[test]
fn crow_fly_without_roads_waiting_for_the_food() {
    let ready = ReadyTimes::default();
    let etas = RoadEta::new(None, Arc::new(clock::SystemClock), ready.clone(), 10_000);
    let order = track(OrderStatus::Preparing);
    let courier = ll(57.6950, 11.9700);
    let to_pickup = engine::eta::eta_s(courier, order.pickup);
    let to_door = engine::eta::eta_s(order.pickup, order.dropoff);
    // The food is ready in 20 minutes: longer than the drive there.
    ready.lock().insert(order.order_id, T0 + 1_200_000);
    let eta = etas.order_eta_at(&order, courier, T0).unwrap();
    assert_eq!(eta.next_stop_s, to_pickup);
    assert_eq!(eta.door_s, 1_200 + to_door);
    // Within the interval: counted down, not recomputed (the courier's
    // new position is not looked at yet).
    let eta = etas.order_eta_at(&order, order.pickup, T0 + 4_000).unwrap();
    assert_eq!(eta.next_stop_s, to_pickup - 4);
    assert_eq!(eta.door_s, 1_200 + to_door - 4);
    // After it: recomputed from the courier where it is now.
    let eta = etas
        .order_eta_at(&order, order.pickup, T0 + 10_000)
        .unwrap();
    assert_eq!(eta.next_stop_s, 0);
    assert_eq!(eta.door_s, 1_190 + to_door);
}

#[test]
fn a_status_change_recomputes_at_once() {
    let etas = RoadEta::new(
        None,
        Arc::new(clock::SystemClock),
        ReadyTimes::default(),
        60_000,
    );
    let mut order = track(OrderStatus::ReadyForPickup);
    let eta = etas.order_eta_at(&order, order.pickup, T0).unwrap();
    assert_eq!(eta.next_stop_s, 0);
    order.status = OrderStatus::PickedUp;
    let eta = etas.order_eta_at(&order, order.pickup, T0 + 1_000).unwrap();
    let to_door = engine::eta::eta_s(order.pickup, order.dropoff);
    assert_eq!((eta.next_stop_s, eta.door_s), (to_door, to_door));
    order.status = OrderStatus::Delivered;
    assert_eq!(etas.order_eta_at(&order, order.dropoff, T0 + 2_000), None);
    assert!(
        etas.cache.lock().is_empty(),
        "closed orders leave the cache"
    );
}

/// The shipped Gothenburg graph (what the product ships, not `../shared`).
fn gothenburg() -> Arc<routing::Router> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gothenburg_roads_2016.hxroads");
    let graph = routing::load::read_graph(&path).expect("the shipped Gothenburg graph loads");
    Arc::new(routing::Router::new(graph, routing::Config::default()))
}

#[test]
fn on_the_roads_with_a_router() {
    let router = gothenburg();
    let etas = RoadEta::new(
        Some(Arc::new(crate::speeds::Roads::new(
            router.clone(),
            false,
            1,
        ))),
        Arc::new(clock::SystemClock),
        ReadyTimes::default(),
        10_000,
    );
    let order = track(OrderStatus::Accepted);
    let courier = ll(57.6950, 11.9650);
    let road_s = |a: LatLng, b: LatLng| {
        router
            .travel_time_or_crow_fly_ms(to_routing(a), to_routing(b))
            .div_ceil(1000)
    };
    let eta = etas.order_eta_at(&order, courier, T0).unwrap();
    assert_eq!(eta.next_stop_s, road_s(courier, order.pickup));
    // No ready time known: the food is taken as ready when the courier is
    // there.
    assert_eq!(
        eta.door_s,
        road_s(courier, order.pickup) + road_s(order.pickup, order.dropoff)
    );
    // Central Gothenburg is on the map: road times, not the crow-fly
    // placeholder (streets are longer than the straight line, speeds
    // differ), and more than zero.
    assert!(eta.next_stop_s > 0);
    assert_ne!(eta.next_stop_s, engine::eta::eta_s(courier, order.pickup));
}

/// A stacking courier with orders from two restaurants (the second 200 m
/// north of the first, the courier 200 m beyond it, both foods in 10
/// minutes): both ETAs follow one round, R2 (passed first), R1, the first
/// door, the second. The second customer's door comes after the first's
/// by the drive between the doors; the first's waits for the food. Once
/// the first is delivered, the second's ETA is a plain one again.
#[test]
fn a_stacking_couriers_second_customer_waits_for_the_first_delivery() {
    let engine = engine::Handle::new(engine::Config::default());
    let ready = ReadyTimes::default();
    let etas = RoadEta::new(None, Arc::new(clock::SystemClock), ready.clone(), 10_000)
        .with_engine(engine.clone());
    let (r1, r2) = (ll(57.7000, 11.9700), ll(57.7018, 11.9700));
    let (d1, d2) = (ll(57.6950, 11.9850), ll(57.6940, 11.9870));
    let courier = ll(57.7036, 11.9700);
    let driver = DriverId::new();
    engine.apply_ping(
        &engine::Ping {
            driver_id: driver,
            position: courier,
            recorded_at_ms: T0,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        },
        T0,
    );
    let order = |pickup: LatLng, dropoff: LatLng| {
        let t = OrderTrack {
            pickup,
            dropoff,
            driver_id: None,
            status: OrderStatus::Accepted,
            ..track(OrderStatus::Accepted)
        };
        engine.track_order(t.clone());
        ready.lock().insert(t.order_id, T0 + 600_000);
        t.order_id
    };
    let (first, second) = (order(r1, d1), order(r2, d2));
    engine.assign(first, driver, T0).unwrap();
    engine.assign_stacked(second, driver, T0).unwrap();
    let s = engine::eta::eta_s;
    let eta1 = etas
        .order_eta_at(&engine.order(first).unwrap(), courier, T0)
        .unwrap();
    let eta2 = etas
        .order_eta_at(&engine.order(second).unwrap(), courier, T0)
        .unwrap();
    // R2 first: reached from here; R1 after R2's food (600 s) and the
    // drive back; then the doors.
    assert_eq!(eta2.next_stop_s, s(courier, r2));
    assert_eq!(eta1.next_stop_s, 600 + s(r2, r1));
    assert_eq!(eta1.door_s, 600 + s(r2, r1) + s(r1, d1));
    assert_eq!(eta2.door_s, eta1.door_s + s(d1, d2));
    // Without the stack, the second customer's door: its food, then its
    // restaurant to its door, sooner (D2 lies just beyond D1: little).
    assert!(eta2.door_s > 600 + s(r2, d2));

    // Both picked up, the courier at D1's side: the second's door after
    // the first's.
    for o in [first, second] {
        engine
            .set_order_status(o, OrderStatus::PickedUp, T0 + 1)
            .unwrap();
    }
    let eta2 = etas
        .order_eta_at(&engine.order(second).unwrap(), r1, T0 + 700_000)
        .unwrap();
    assert_eq!(eta2.door_s, s(r1, d1) + s(d1, d2));
    assert_eq!(eta2.next_stop_s, eta2.door_s);
    // The first delivered: the second's is a plain ETA from here.
    engine
        .set_order_status(first, OrderStatus::Delivered, T0 + 2)
        .unwrap();
    let eta2 = etas
        .order_eta_at(&engine.order(second).unwrap(), d1, T0 + 800_000)
        .unwrap();
    assert_eq!((eta2.next_stop_s, eta2.door_s), (s(d1, d2), s(d1, d2)));
}
