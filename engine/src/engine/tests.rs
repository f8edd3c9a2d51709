use std::collections::HashMap;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::ids::{RestaurantId, UserId};

const T0: i64 = 1_763_700_000_000;

fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).unwrap()
}

fn ping(driver_id: DriverId, lat: f64, lng: f64, ts: i64) -> Ping {
    Ping {
        driver_id,
        position: ll(lat, lng),
        recorded_at_ms: ts,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    }
}

fn order(engine: &mut Engine) -> OrderId {
    let order_id = OrderId::new();
    engine.track_order(OrderTrack {
        order_id,
        customer_id: UserId::new(),
        restaurant_id: RestaurantId::new(),
        restaurant_owner_id: UserId::new(),
        status: OrderStatus::Placed,
        driver_id: None,
        pickup: ll(57.70, 11.97),
        dropoff: ll(57.71, 11.98),
        updated_at_ms: T0,
        version: 0,
    });
    order_id
}

#[test]
fn ping_outcomes() {
    let mut e = Engine::new(Config::default());
    let d = DriverId::new();
    let check =
        |e: &mut Engine, p: Ping, want: Applied| assert_eq!(e.apply_ping(&p, T0), want, "{p:?}");
    check(&mut e, ping(d, 57.70, 11.97, T0), Applied::Moved);
    check(&mut e, ping(d, 57.70, 11.97, T0), Applied::Duplicate);
    check(&mut e, ping(d, 57.7001, 11.97, T0), Applied::Stale);
    check(&mut e, ping(d, 57.7001, 11.97, T0 - 1), Applied::Stale);
    check(&mut e, ping(d, 57.7002, 11.97, T0 + 1000), Applied::Moved);
    // 11 km in one second.
    check(
        &mut e,
        ping(d, 57.80, 11.97, T0 + 2000),
        Applied::ImplausibleJump,
    );
    // The refused jump left the last fix in place.
    assert_eq!(
        e.driver(d).unwrap().fix.unwrap().position,
        ll(57.7002, 11.97)
    );
    // 11 km in ten minutes is fine.
    check(&mut e, ping(d, 57.80, 11.97, T0 + 600_000), Applied::Moved);
}

#[test]
fn repeated_jumps_reanchor() {
    let mut e = Engine::new(Config::default());
    let d = DriverId::new();
    e.apply_ping(&ping(d, 57.70, 11.97, T0), T0);
    for i in 1..=JUMPS_BEFORE_REANCHOR as i64 {
        assert_eq!(
            e.apply_ping(&ping(d, 59.0, 18.0, T0 + i * 1000), T0),
            Applied::ImplausibleJump
        );
    }
    assert_eq!(
        e.apply_ping(&ping(d, 59.0, 18.0, T0 + 10_000), T0),
        Applied::Moved
    );
}

#[test]
fn presence_expires_after_the_timeout() {
    let mut e = Engine::new(Config {
        presence_timeout_s: 30,
        ..Config::default()
    });
    let mut changes = e.subscribe_changes();
    let d = DriverId::new();
    e.apply_ping(&ping(d, 57.70, 11.97, T0), T0);
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Available);
    assert_eq!(e.expire(T0 + 29_999), 0);
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Available);
    assert_eq!(e.expire(T0 + 30_000), 1);
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Offline);
    assert!(
        e.nearest(
            ll(57.70, 11.97),
            1000.0,
            10,
            StatusFilter::Only(DriverStatus::Available)
        )
        .is_empty()
    );
    // The next ping brings the driver back.
    e.apply_ping(&ping(d, 57.70, 11.97, T0 + 40_000), T0 + 40_000);
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Available);

    let statuses: Vec<_> = std::iter::from_fn(|| changes.try_recv().ok())
        .filter_map(|c| match c {
            Change::DriverStatus { status, .. } => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            DriverStatus::Available,
            DriverStatus::Offline,
            DriverStatus::Available
        ]
    );
}

#[test]
fn declared_availability_wins_over_pings() {
    let mut e = Engine::new(Config::default());
    let d = DriverId::new();
    assert_eq!(
        e.set_availability(d, Availability::Offline, T0),
        DriverStatus::Offline
    );
    e.apply_ping(&ping(d, 57.70, 11.97, T0), T0);
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Offline);
    assert_eq!(
        e.set_availability(d, Availability::Available, T0),
        DriverStatus::Available
    );
}

#[test]
fn assignment_is_exclusive_and_released_on_close() {
    let mut e = Engine::new(Config::default());
    let (a, b) = (DriverId::new(), DriverId::new());
    e.apply_ping(&ping(a, 57.70, 11.97, T0), T0);
    e.apply_ping(&ping(b, 57.70, 11.98, T0), T0);
    let (o1, o2) = (order(&mut e), order(&mut e));

    assert_eq!(e.assign(o1, a, T0).unwrap().driver_id, Some(a));
    assert_eq!(e.assign(o1, b, T0), Err(Error::OrderTaken(a)));
    assert_eq!(e.assign(o2, a, T0), Err(Error::DriverBusy(o1)));
    assert_eq!(e.assign(OrderId::new(), b, T0), Err(Error::UnknownOrder));
    assert_eq!(e.assign(o2, DriverId::new(), T0), Err(Error::UnknownDriver));
    assert_eq!(e.driver(a).unwrap().status, DriverStatus::Busy);

    // Pings of a busy driver carry its order.
    let mut moves = e.subscribe_moves();
    e.apply_ping(&ping(a, 57.7001, 11.97, T0 + 1000), T0 + 1000);
    assert_eq!(moves.try_recv().unwrap().order_id, Some(o1));

    e.set_order_status(o1, OrderStatus::PickedUp, T0).unwrap();
    assert_eq!(e.driver(a).unwrap().status, DriverStatus::Busy);
    e.set_order_status(o1, OrderStatus::Delivered, T0).unwrap();
    assert_eq!(e.driver(a).unwrap().status, DriverStatus::Available);
    assert_eq!(e.driver(a).unwrap().current_order, None);
    assert_eq!(
        e.assign(o1, b, T0),
        Err(Error::OrderClosed(OrderStatus::Delivered))
    );

    e.assign(o2, b, T0).unwrap();
    e.unassign(o2, T0).unwrap();
    assert_eq!(e.driver(b).unwrap().status, DriverStatus::Available);
    assert_eq!(e.order(o2).unwrap().driver_id, None);
}

/// The compensation of a refused accept takes the order only from the
/// driver it names: an order a dispatcher gave another driver meanwhile
/// stays with that driver.
#[test]
fn unassign_if_takes_the_order_only_from_its_driver() {
    let mut e = Engine::new(Config::default());
    let (a, b) = (DriverId::new(), DriverId::new());
    e.apply_ping(&ping(a, 57.70, 11.97, T0), T0);
    e.apply_ping(&ping(b, 57.70, 11.98, T0), T0);
    let o = order(&mut e);
    e.assign(o, b, T0).unwrap();
    assert_eq!(e.unassign_if(o, a, T0), Ok(None));
    assert_eq!(e.order(o).unwrap().driver_id, Some(b));
    assert_eq!(e.driver(b).unwrap().current_order, Some(o));
    let taken = e.unassign_if(o, b, T0).unwrap().unwrap();
    assert_eq!(taken.driver_id, None);
    assert_eq!(e.driver(b).unwrap().status, DriverStatus::Available);
    assert_eq!(
        e.unassign_if(OrderId::new(), b, T0),
        Err(Error::UnknownOrder)
    );
}

#[test]
fn tracking_an_assigned_order_binds_its_driver() {
    let mut e = Engine::new(Config::default());
    let d = DriverId::new();
    let o = OrderId::new();
    let track = OrderTrack {
        order_id: o,
        customer_id: UserId::new(),
        restaurant_id: RestaurantId::new(),
        restaurant_owner_id: UserId::new(),
        status: OrderStatus::PickedUp,
        driver_id: Some(d),
        pickup: ll(57.70, 11.97),
        dropoff: ll(57.71, 11.98),
        updated_at_ms: T0,
        version: 0,
    };
    e.track_order(track.clone());
    assert_eq!(e.driver(d).unwrap().current_order, Some(o));
    e.apply_ping(&ping(d, 57.70, 11.97, T0), T0);
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Busy);
    // A second open order naming the same driver does not displace the first.
    let other = OrderTrack {
        order_id: OrderId::new(),
        ..track
    };
    e.track_order(other);
    assert_eq!(e.driver(d).unwrap().current_order, Some(o));
}

#[test]
fn closed_orders_are_forgotten_after_retention() {
    let mut e = Engine::new(Config {
        closed_order_retention_s: 60,
        ..Config::default()
    });
    let o = order(&mut e);
    e.set_order_status(o, OrderStatus::Cancelled, T0).unwrap();
    e.expire(T0 + 59_000);
    assert!(e.order(o).is_some());
    e.expire(T0 + 61_000);
    assert!(e.order(o).is_none());
}

#[test]
fn moves_stream_overflow_drops_oldest() {
    let mut e = Engine::new(Config {
        moves_capacity: 4,
        ..Config::default()
    });
    let mut rx = e.subscribe_moves();
    let d = DriverId::new();
    for i in 0..10 {
        e.apply_ping(&ping(d, 57.70 + i as f64 * 1e-4, 11.97, T0 + i * 1000), T0);
    }
    assert!(matches!(
        rx.try_recv(),
        Err(async_broadcast::TryRecvError::Overflowed(6))
    ));
    let last: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|m| m.recorded_at_ms)
        .collect();
    assert_eq!(last, [T0 + 6000, T0 + 7000, T0 + 8000, T0 + 9000]);
}

#[test]
fn cells_follow_the_driver() {
    let mut e = Engine::new(Config::default());
    let d = DriverId::new();
    e.apply_ping(&ping(d, 57.70, 11.97, T0), T0);
    let first = e.driver(d).unwrap().fix.unwrap().cell;
    assert_eq!(e.drivers_in_cell(first), [d]);
    e.apply_ping(&ping(d, 57.72, 11.99, T0 + 600_000), T0);
    let second = e.driver(d).unwrap().fix.unwrap().cell;
    assert_ne!(first, second);
    assert!(e.drivers_in_cell(first).is_empty());
    assert_eq!(e.drivers_in_cell(second), [d]);
    assert_eq!(second, cells::cell_of(ll(57.72, 11.99)));
}

// ---- index versus brute force ----

/// The truth the index must match: every driver's position and status.
struct Model {
    drivers: HashMap<DriverId, (LatLng, DriverStatus)>,
}

impl Model {
    fn nearest(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
        filter: StatusFilter,
    ) -> Vec<(DriverId, f64)> {
        let mut all: Vec<_> = self
            .drivers
            .iter()
            .filter(|(_, (_, s))| filter.keeps(*s))
            .map(|(id, (p, _))| (*id, haversine_m(center, *p)))
            .filter(|(_, d)| *d <= radius_m)
            .collect();
        all.sort_by(|a, b| (a.1, a.0).partial_cmp(&(b.1, b.0)).unwrap());
        all.truncate(limit);
        all
    }

    fn within(&self, bbox: BBox, filter: StatusFilter) -> Vec<DriverId> {
        let mut ids: Vec<_> = self
            .drivers
            .iter()
            .filter(|(_, (p, s))| bbox.contains(*p) && filter.keeps(*s))
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }
}

/// A seeded fleet around a city centre, with some moves, some off-duty and
/// some busy drivers, mirrored in a `Model`.
fn fleet(seed: u64, size: usize, spread_deg: f64) -> (Engine, Model, StdRng) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut e = Engine::new(Config::default());
    let mut model = Model {
        drivers: HashMap::new(),
    };
    let centre = (57.70, 11.97);
    let ids: Vec<DriverId> = (0..size).map(|_| DriverId::new()).collect();
    for round in 0..3 {
        for id in &ids {
            if round > 0 && rng.random_bool(0.5) {
                continue;
            }
            // Some drivers cluster on a few points, exercising ties.
            let (lat, lng) = if rng.random_bool(0.1) {
                (centre.0 + 0.001 * rng.random_range(0..3) as f64, centre.1)
            } else {
                (
                    centre.0 + rng.random_range(-spread_deg..spread_deg),
                    centre.1 + rng.random_range(-spread_deg..spread_deg) * 1.8,
                )
            };
            let ts = T0 + round * 6 * 3_600_000;
            assert_eq!(e.apply_ping(&ping(*id, lat, lng, ts), ts), Applied::Moved);
        }
    }
    for id in &ids {
        if rng.random_bool(0.2) {
            e.set_availability(*id, Availability::Offline, T0);
        }
    }
    for id in ids.iter().take(size / 10) {
        let o = order(&mut e);
        let _ = e.assign(o, *id, T0);
    }
    for id in &ids {
        let v = e.driver(*id).unwrap();
        model
            .drivers
            .insert(*id, (v.fix.unwrap().position, v.status));
    }
    (e, model, rng)
}

fn assert_nearest_matches(e: &Engine, model: &Model, rng: &mut StdRng, spread_deg: f64, seed: u64) {
    let center = ll(
        57.70 + rng.random_range(-spread_deg..spread_deg),
        11.97 + rng.random_range(-spread_deg..spread_deg),
    );
    let radius_m = [50.0, 300.0, 1_000.0, 3_000.0, 50_000.0, 1e8][rng.random_range(0..6)];
    let limit = [1, 3, 10, 50][rng.random_range(0..4)];
    let filter = [
        StatusFilter::Any,
        StatusFilter::Only(DriverStatus::Available),
        StatusFilter::Only(DriverStatus::Busy),
    ][rng.random_range(0..3)];
    let got: Vec<_> = e
        .nearest(center, radius_m, limit, filter)
        .iter()
        .map(|n| (n.driver_id, n.distance_m))
        .collect();
    let want = model.nearest(center, radius_m, limit, filter);
    assert_eq!(
        got, want,
        "seed {seed}: nearest({center:?}, {radius_m}, {limit}, {filter:?})"
    );

    let (a, b) = (
        rng.random_range(-spread_deg..spread_deg),
        rng.random_range(-spread_deg..spread_deg),
    );
    let (c, d) = (
        rng.random_range(-spread_deg..spread_deg),
        rng.random_range(-spread_deg..spread_deg),
    );
    let bbox = BBox::new(
        11.97 + a.min(b),
        57.70 + c.min(d),
        11.97 + a.max(b),
        57.70 + c.max(d),
    )
    .unwrap();
    let mut got: Vec<_> = e
        .within(bbox, usize::MAX, filter)
        .iter()
        .map(|v| v.driver_id)
        .collect();
    got.sort();
    assert_eq!(
        got,
        model.within(bbox, filter),
        "seed {seed}: within({bbox:?}, {filter:?})"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Thousands of random fleets, small and large spreads (dense downtown to
    /// a whole region), each queried against a brute-force scan.
    #[test]
    fn index_equals_brute_force(seed in any::<u64>(), size in 0usize..120, spread in prop::sample::select(vec![0.002, 0.02, 0.2, 2.0])) {
        let (e, model, mut rng) = fleet(seed, size, spread);
        for _ in 0..4 {
            assert_nearest_matches(&e, &model, &mut rng, spread, seed);
        }
    }
}

#[test]
fn index_equals_brute_force_on_a_city_fleet() {
    let seed = 20261121;
    let (e, model, mut rng) = fleet(seed, 5_000, 0.14);
    for _ in 0..300 {
        assert_nearest_matches(&e, &model, &mut rng, 0.14, seed);
    }
}

/// The race the board's versions close: the payments saga's late update
/// (`paid`, version 2) lands after the restaurant's accept (version 3).
#[test]
fn an_older_version_never_overwrites_a_newer_one() {
    let mut e = Engine::new(Config::default());
    let o = order(&mut e);
    let at = |status, version| OrderTrack {
        status,
        version,
        ..e_order(o)
    };
    fn e_order(o: OrderId) -> OrderTrack {
        OrderTrack {
            order_id: o,
            customer_id: UserId::new(),
            restaurant_id: RestaurantId::new(),
            restaurant_owner_id: UserId::new(),
            status: OrderStatus::Placed,
            driver_id: None,
            pickup: ll(57.70, 11.97),
            dropoff: ll(57.71, 11.98),
            updated_at_ms: T0,
            version: 0,
        }
    }
    assert!(e.track_order(at(OrderStatus::Placed, 1)));
    assert!(e.track_order(at(OrderStatus::Accepted, 3)));
    assert!(!e.track_order(at(OrderStatus::Paid, 2)), "older refused");
    assert!(
        !e.track_order(at(OrderStatus::Paid, 3)),
        "same version refused"
    );
    assert_eq!(e.order(o).unwrap().status, OrderStatus::Accepted);
    assert_eq!(e.order(o).unwrap().version, 3);
    // An unversioned update applies and keeps the version held.
    assert!(e.track_order(at(OrderStatus::Preparing, 0)));
    assert_eq!(e.order(o).unwrap().version, 3);
    assert!(e.track_order(at(OrderStatus::ReadyForPickup, 4)));
    assert_eq!(e.order(o).unwrap().status, OrderStatus::ReadyForPickup);
}

#[test]
fn tracking_a_closed_order_frees_its_driver() {
    let mut e = Engine::new(Config::default());
    let d = DriverId::new();
    e.apply_ping(&ping(d, 57.70, 11.97, T0), T0);
    let track = OrderTrack {
        order_id: OrderId::new(),
        customer_id: UserId::new(),
        restaurant_id: RestaurantId::new(),
        restaurant_owner_id: UserId::new(),
        status: OrderStatus::PickedUp,
        driver_id: Some(d),
        pickup: ll(57.70, 11.97),
        dropoff: ll(57.71, 11.98),
        updated_at_ms: T0,
        version: 5,
    };
    assert!(e.track_order(track.clone()));
    assert_eq!(e.driver(d).unwrap().current_order, Some(track.order_id));
    assert!(e.track_order(OrderTrack {
        status: OrderStatus::Delivered,
        version: 6,
        ..track
    }));
    assert_eq!(e.driver(d).unwrap().current_order, None);
}

#[test]
fn census_inputs_count_available_couriers_and_waiting_orders() {
    let mut e = Engine::new(Config::default());
    let free = DriverId::new();
    let busy = DriverId::new();
    let silent = DriverId::new();
    for d in [free, busy] {
        e.set_availability(d, Availability::Available, T0);
        e.apply_ping(&ping(d, 57.70, 11.97, T0), T0);
    }
    // Available but never pinged: counted by status, not as supply.
    e.set_availability(silent, Availability::Available, T0);
    let waiting = order(&mut e);
    let carried = order(&mut e);
    e.assign(carried, busy, T0).unwrap();
    let inputs = e.census_inputs();
    assert_eq!(inputs.supply, vec![cells::cell_of(ll(57.70, 11.97))]);
    assert_eq!(inputs.waiting_pickups, vec![ll(57.70, 11.97)]);
    assert_eq!(
        inputs.statuses,
        crate::census::StatusCounts {
            available: 1,
            busy: 1,
            offline: 1
        }
    );
    let open: Vec<OrderId> = {
        let mut v: Vec<OrderId> = e.open_orders().iter().map(|t| t.order_id).collect();
        v.sort();
        v
    };
    let mut want = vec![waiting, carried];
    want.sort();
    assert_eq!(open, want);
    assert_eq!((e.pings_applied(), e.orders_opened()), (2, 2));
}

fn replica(driver_id: DriverId, lat: f64, ts: i64, seen: i64) -> Replica {
    Replica {
        driver_id,
        fix: Some(crate::replica::ReplicaFix {
            position: ll(lat, 11.97),
            recorded_at_ms: ts,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        }),
        seen_at_ms: seen,
        availability: Availability::Available,
        availability_at_ms: 0,
    }
}

#[test]
fn replicas_move_drivers_but_never_touch_their_orders() {
    let mut e = Engine::new(Config::default());
    let mut changes = e.subscribe_changes();
    let d = DriverId::new();
    let apply = |e: &mut Engine, r: &Replica, now: i64| {
        let cell = r.fix.map(|f| cells::cell_of(f.position));
        e.apply_replica(r, cell, now)
    };
    assert_eq!(
        apply(&mut e, &replica(d, 57.70, T0, T0), T0),
        Applied::Moved
    );
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Available);
    assert!(
        matches!(
            changes.try_recv(),
            Ok(Change::DriverStatus { remote: true, .. })
        ),
        "its own node records it"
    );
    // An older fix is stale; a far jump is not refused (the origin checked).
    assert_eq!(
        apply(&mut e, &replica(d, 57.80, T0 - 1, T0), T0),
        Applied::Stale
    );
    assert_eq!(
        apply(
            &mut e,
            &replica(d, 57.80, T0 + 1_000, T0 + 1_000),
            T0 + 1_000
        ),
        Applied::Moved
    );
    assert_eq!(
        e.nearest(ll(57.80, 11.97), 100.0, 5, StatusFilter::Any)
            .len(),
        1
    );

    // Assigned on this node's board: a replica keeps it busy.
    let o = order(&mut e);
    e.assign(o, d, T0 + 1_000).unwrap();
    assert_eq!(
        apply(
            &mut e,
            &replica(d, 57.801, T0 + 2_000, T0 + 2_000),
            T0 + 2_000
        ),
        Applied::Moved
    );
    let view = e.driver(d).unwrap();
    assert_eq!(
        (view.status, view.current_order),
        (DriverStatus::Busy, Some(o))
    );

    // Declarations: the newest wins, whichever way it came.
    e.set_availability(d, Availability::Offline, T0 + 3_000);
    let older = Replica {
        availability_at_ms: T0 + 2_500,
        ..replica(d, 57.801, T0 + 2_000, 0)
    };
    apply(&mut e, &older, T0 + 3_500);
    assert_eq!(e.driver(d).unwrap().availability, Availability::Offline);
    let newer = Replica {
        fix: None,
        availability_at_ms: T0 + 4_000,
        ..older
    };
    apply(&mut e, &newer, T0 + 4_000);
    assert_eq!(e.driver(d).unwrap().availability, Availability::Available);

    // Presence comes from the origin's last hearing, and expires here.
    let timeout_ms = Config::default().presence_timeout_s as i64 * 1000;
    e.unassign(o, T0 + 4_000).unwrap();
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Available);
    e.expire(T0 + 2_000 + timeout_ms);
    assert_eq!(e.driver(d).unwrap().status, DriverStatus::Offline);
    // A snapshot entry older than the timeout places it, offline.
    let late = DriverId::new();
    apply(&mut e, &replica(late, 57.7, T0, T0), T0 + timeout_ms + 1);
    assert_eq!(e.driver(late).unwrap().status, DriverStatus::Offline);
    assert_eq!(e.replicas_applied(), 4);
    assert_eq!(e.pings_applied(), 0, "local pings only");
}
