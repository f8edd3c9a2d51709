use std::path::PathBuf;

use super::*;

fn gothenburg() -> Arc<Router> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gothenburg_roads_2016.hxroads");
    let graph = routing::load::read_graph(&path).expect("the shipped Gothenburg graph loads");
    Arc::new(Router::new(graph, routing::Config::default()))
}

fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).unwrap()
}

/// Legs that take 1.5× what the map says: after `relearn_every` of them
/// the current router predicts longer times, and the nominal one is kept.
#[test]
fn legs_slower_than_the_map_slow_the_current_router_down() {
    let nominal = gothenburg();
    let roads = Roads::new(nominal.clone(), true, 20);
    let points = [
        ll(57.7000, 11.9700),
        ll(57.7080, 11.9650),
        ll(57.6950, 11.9850),
        ll(57.7100, 11.9900),
        ll(57.6900, 11.9600),
    ];
    let time = |r: &Router, a: LatLng, b: LatLng| {
        f64::from(r.travel_time_or_crow_fly_ms(to_routing(a), to_routing(b)))
    };
    let (a, b) = (points[0], points[2]);
    let before = time(&roads.current(), a, b);
    for round in 0..20 {
        for (i, &from) in points.iter().enumerate() {
            let to = points[(i + 1 + round) % points.len()];
            if from == to {
                continue;
            }
            let actual = time(&nominal, from, to) * 1.5;
            roads.learn_from(from, to, actual as u64);
        }
    }
    let after = time(&roads.current(), a, b);
    assert!(
        after > 1.25 * before && after < 1.7 * before,
        "{before} ms → {after} ms"
    );
    assert_eq!(time(&nominal, a, b), before, "the nominal router is kept");
    assert!(roads.time_factors().iter().any(|&f| f > 1.3));
}

#[test]
fn a_leg_counts_only_at_its_own_fence_and_not_when_learning_is_off() {
    let roads = Arc::new(Roads::new(gothenburg(), true, 1));
    let order = OrderId::new();
    let (a, b) = (ll(57.7000, 11.9700), ll(57.7080, 11.9650));
    roads.leg_started(order, a, b, 0, Arrival::ArrivedAtCustomer);
    // Arriving at the restaurant does not end a leg to the door.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async { roads.arrived(order, Arrival::ArrivedAtRestaurant, 600_000) });
    assert_eq!(roads.open.lock().len(), 1);
    roads.order_closed(order);
    assert!(roads.open.lock().is_empty());
    let off = Roads::new(gothenburg(), false, 1);
    off.leg_started(order, a, b, 0, Arrival::ArrivedAtCustomer);
    assert!(off.open.lock().is_empty());
}
