use std::path::PathBuf;
use std::sync::Arc;

use engine::{Config as EngineConfig, DriverId, Handle, Ping};

use super::*;
use crate::Config;

const NOW_MS: i64 = 1_763_700_000_000;

fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).unwrap()
}

fn driver_at(engine: &Handle, at: LatLng) -> DriverId {
    let id = DriverId::new();
    engine.apply_ping(
        &Ping {
            driver_id: id,
            position: at,
            recorded_at_ms: NOW_MS,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        },
        NOW_MS,
    );
    id
}

fn gothenburg() -> Arc<routing::Router> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gothenburg_roads_2016.hxroads");
    let graph = routing::load::read_graph(&path).expect("the shipped Gothenburg graph loads");
    Arc::new(routing::Router::new(graph, routing::Config::default()))
}

#[test]
fn without_roads_the_live_etas_crow_fly_and_the_default_courier() {
    let engine = Handle::new(EngineConfig::default());
    let config = Config {
        quote_courier_default_s: 420,
        prep_default_s: 600,
        ..Config::default()
    };
    let matcher = Matcher::new(engine.clone(), config);
    let (a, b) = (RestaurantId::new(), RestaurantId::new());
    let (at_a, at_b) = (ll(57.7000, 11.9700), ll(57.7100, 11.9800));
    matcher.declare_prep(a, 900);
    let door = ll(57.7050, 11.9750);
    let routes = matcher.routes_to(&[at_a, at_b], door);
    assert!(!routes[0].on_roads);
    assert_eq!(routes[0].distance_m, engine::haversine_m(at_a, door));
    assert_eq!(routes[0].time_ms, engine::eta::eta_s(at_a, door) * 1000);
    // Nobody on duty: the default courier time; the declared or default
    // preparation.
    let legs = matcher.pickup_legs(&[(a, at_a), (b, at_b)]);
    assert_eq!(
        legs,
        vec![
            PickupLegs {
                prep_s: 900,
                courier_s: 420,
                courier_found: false
            },
            PickupLegs {
                prep_s: 600,
                courier_s: 420,
                courier_found: false
            },
        ]
    );
    // A courier 1 km north of A: the nearest to both, its crow-fly time.
    let courier = ll(57.7090, 11.9700);
    driver_at(&engine, courier);
    let legs = matcher.pickup_legs(&[(a, at_a), (b, at_b)]);
    assert!(legs.iter().all(|l| l.courier_found));
    assert_eq!(legs[0].courier_s, engine::eta::eta_s(courier, at_a));
    assert_eq!(legs[1].courier_s, engine::eta::eta_s(courier, at_b));
    // Learned preparation replaces the declared one.
    for _ in 0..5 {
        matcher.observe_prep(a, NOW_MS, NOW_MS + 300_000);
    }
    assert_eq!(matcher.pickup_legs(&[(a, at_a)])[0].prep_s, 300);
}

#[test]
fn on_the_roads_the_nearest_courier_by_road_and_the_road_distance() {
    let router = gothenburg();
    let engine = Handle::new(EngineConfig::default());
    let matcher = Matcher::with_router(engine.clone(), Config::default(), Some(router.clone()));
    let r = RestaurantId::new();
    let at = ll(57.7000, 11.9700);
    let door = ll(57.7080, 11.9650);
    let route = matcher.routes_to(&[at], door)[0];
    assert!(route.on_roads);
    let expected = router.routes_to(&[to_routing(at)], to_routing(door))[0];
    assert_eq!(route, expected);
    assert!(route.distance_m > engine::haversine_m(at, door));
    let near = ll(57.7040, 11.9700);
    let far = ll(57.7150, 11.9700);
    driver_at(&engine, far);
    driver_at(&engine, near);
    let legs = matcher.pickup_legs(&[(r, at)])[0];
    assert!(legs.courier_found);
    let by_road = router
        .travel_time_or_crow_fly_ms(to_routing(near), to_routing(at))
        .div_ceil(1000);
    assert_eq!(legs.courier_s, by_road);
}
