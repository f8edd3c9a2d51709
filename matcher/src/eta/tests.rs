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
