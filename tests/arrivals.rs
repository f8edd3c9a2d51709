//! Arrival geofences on a real server: a courier replayed over MQTT along a
//! real Gothenburg road into the restaurant's fence (GPS noise, out past
//! the margin and back in) raises exactly one `arrived_at_restaurant`, and
//! after pickup one `arrived_at_customer` at the door: each a `status`
//! message with `arrival` on the order's WebSocket channel and an
//! `order.arrived_at_*` event in the stream.

mod common;

use common::*;
use serde_json::{Value, json};

/// The fence radius this server runs with (`matcher.arrival_radius_m`).
const RADIUS_M: f64 = 40.0;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_195.0;

/// A point `north_m` north and `east_m` east of `p`.
fn offset(p: (f64, f64), north_m: f64, east_m: f64) -> (f64, f64) {
    (
        p.0 + north_m / M_PER_DEG,
        p.1 + east_m / (M_PER_DEG * p.0.to_radians().cos()),
    )
}

/// A deterministic generator (xorshift64*): the same noise every run,
/// uniform in [-1, 1).
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

/// A drivable road of at least `min_m` in the shipped Gothenburg graph
/// (following its one-way arcs), as positions every ~15 m.
fn road(min_m: f64) -> Vec<(f64, f64)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("gothenburg_roads_2016.hxroads");
    let graph = routing::load::read_graph(&path).expect("the shipped graph loads");
    for start in (0..graph.node_count() as u32).step_by(101) {
        let mut seen = std::collections::HashSet::from([start]);
        let mut nodes = vec![graph.position(start)];
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
            length_m += nodes[nodes.len() - 1].distance_m(next);
            nodes.push(next);
            node = arc.head;
        }
        if length_m < min_m {
            continue;
        }
        let mut points = Vec::new();
        for w in nodes.windows(2) {
            let steps = (w[0].distance_m(w[1]) / 15.0).ceil().max(1.0) as usize;
            for i in 0..steps {
                let t = i as f64 / steps as f64;
                points.push((
                    w[0].lat + (w[1].lat - w[0].lat) * t,
                    w[0].lng + (w[1].lng - w[0].lng) * t,
                ));
            }
        }
        let end = nodes[nodes.len() - 1];
        points.push((end.lat, end.lng));
        return points;
    }
    panic!("no road of {min_m} m in the graph");
}

/// The `arrival` of a `status` message, if it has one.
fn arrival(msg: &Value) -> Option<&str> {
    (msg["type"] == "status").then(|| msg["arrival"].as_str())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_courier_replayed_along_a_road_into_the_fence_arrives_exactly_once() {
    let app = spawn_app_with(|c| c.matcher.arrival_radius_m = RADIUS_M).await;
    let admin = app.admin_token().await;
    let customer = app.signup("customer", "customer").await;
    let owner = app.signup("owner", "restaurant").await;
    let courier = app.signup("courier", "driver").await;

    // The restaurant at the end of a real road; the door 600 m east of it.
    let points = road(700.0);
    let restaurant_at = points[points.len() - 1];
    let door = offset(restaurant_at, 0.0, 600.0);
    let (status, restaurant) = app
        .post(
            "/v1/restaurants",
            Some(&owner.token),
            json!({"name": "Ankomsten", "location": {"lat": restaurant_at.0, "lng": restaurant_at.1}, "address": "Vägen 1"}),
        )
        .await;
    assert_eq!(status, 201, "{restaurant}");
    let restaurant_id = restaurant["restaurant_id"].as_str().unwrap().to_owned();
    let (status, menu) = app
        .post(
            &format!("/v1/restaurants/{restaurant_id}/menu"),
            Some(&owner.token),
            json!({"items": [{"name": "Räksmörgås", "price_cents": 14_500}]}),
        )
        .await;
    assert_eq!(status, 201, "{menu}");
    let dish = menu["items"][0]["menu_item_id"].as_str().unwrap();

    // The courier waits at the start of the road. Fixes are stamped in the
    // past, a second apart (~15 m/s), so the whole replay is plausible.
    let mut driver = MqttDriver::connect(&app, &courier).await;
    let mut ts = now_ms() - 30 * 60 * 1000;
    driver.ping(points[0].0, points[0].1, ts).await;
    let nearby = format!(
        "/v1/drivers/nearby?lat={}&lng={}&radius_m=5000&status=available",
        restaurant_at.0, restaurant_at.1
    );
    eventually(async || {
        let (_, body) = app.get(&nearby, Some(&admin)).await;
        (body["drivers"].as_array()?.len() == 1).then_some(())
    })
    .await;

    // Ordered, watched, accepted by the restaurant and the courier.
    let (status, order) = app
        .post(
            "/v1/orders",
            Some(&customer.token),
            json!({"restaurant_id": restaurant_id,
                   "items": [{"menu_item_id": dish, "quantity": 1}],
                   "delivery": {"lat": door.0, "lng": door.1, "address": "Dörren 2"},
                   "payment": {"method": "card", "token": "tok_ok"}}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    let mut watcher = Watcher::connect(&app, &customer.token).await;
    watcher
        .send(json!({"op": "subscribe", "channel": format!("order:{order_id}")}))
        .await;
    watcher.next_of("subscribed").await;
    let step = async |who: &User, to: &str| {
        let (code, body) = app
            .post(
                &format!("/v1/orders/{order_id}/status"),
                Some(&who.token),
                json!({"status": to}),
            )
            .await;
        assert_eq!(code, 200, "{to}: {body}");
    };
    step(&owner, "accepted").await;
    let offer = driver.next_offer().await;
    assert_eq!(offer["order_id"], order_id.as_str(), "{offer}");
    let (code, body) = app
        .post(
            &format!("/v1/offers/{}/accept", offer["offer_id"].as_str().unwrap()),
            Some(&courier.token),
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{body}");

    // Along the road to the restaurant with ±8 m of GPS noise, then 150 m
    // back the way it came (beyond the fence and its margin) and in again.
    let mut route = points.clone();
    let back: Vec<(f64, f64)> = points.iter().rev().take(10).copied().collect();
    route.extend(back.iter().copied());
    route.extend(back.iter().rev().copied());
    let mut jitter = Jitter(0x5eed);
    for p in &route {
        let noisy = offset(*p, 8.0 * jitter.next(), 8.0 * jitter.next());
        ts += 1_000;
        driver.ping(noisy.0, noisy.1, ts).await;
    }
    // The engine has applied the last fix once the watcher sees it; the
    // pickup below is applied after the fences checked every fix before it.
    let last_ts = ts;
    let mut seen = Vec::new();
    loop {
        let msg = watcher.next().await;
        if msg["type"] == "location" && msg["ts"] == last_ts {
            break;
        }
        seen.push(msg);
    }
    step(&owner, "ready_for_pickup").await;
    step(&courier, "picked_up").await;

    // To the door, in a straight line.
    for i in 1..=40 {
        let p = offset(restaurant_at, 0.0, 15.0 * f64::from(i));
        ts += 1_000;
        driver.ping(p.0, p.1, ts).await;
    }
    loop {
        let msg = watcher.next().await;
        let done = arrival(&msg) == Some("arrived_at_customer");
        seen.push(msg);
        if done {
            break;
        }
    }
    let arrivals: Vec<&Value> = seen.iter().filter(|m| arrival(m).is_some()).collect();
    assert_eq!(
        arrivals
            .iter()
            .map(|m| arrival(m).unwrap())
            .collect::<Vec<_>>(),
        ["arrived_at_restaurant", "arrived_at_customer"],
        "{arrivals:?}"
    );
    let (at_restaurant, at_door) = (arrivals[0], arrivals[1]);
    assert_eq!(at_restaurant["order_id"], order_id.as_str());
    assert_eq!(at_restaurant["driver_id"], courier.id.as_str());
    // Before pickup: the order's status then, unchanged by the arrival.
    assert_eq!(at_restaurant["status"], "accepted");
    assert_eq!(at_door["status"], "picked_up");
    assert!(at_restaurant["at"].as_i64().unwrap() < at_door["at"].as_i64().unwrap());

    // And in the event stream, once each.
    let events_of = async |kind: &str| -> Vec<Value> {
        let (code, body) = app
            .get(
                &format!(
                    "/v1/admin/events?type=order.{kind}&aggregate_kind=order&aggregate_id={order_id}"
                ),
                Some(&admin),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        body["events"].as_array().unwrap().clone()
    };
    let door_events = eventually(async || {
        let events = events_of("arrived_at_customer").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(door_events.len(), 1, "{door_events:?}");
    // Queued before the door's: written by now.
    let restaurant_events = events_of("arrived_at_restaurant").await;
    assert_eq!(restaurant_events.len(), 1, "{restaurant_events:?}");
    let e = &restaurant_events[0];
    assert_eq!(e["actor"], format!("user:{}", courier.id));
    let body = &e["payload"]["body"];
    assert_eq!(body["order_id"], order_id.as_str());
    assert_eq!(body["driver_id"], courier.id.as_str());
    assert_eq!(body["at_ms"], at_restaurant["at"]);
    app.stop().await;
}
