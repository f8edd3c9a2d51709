//! The seeded simulation on the shipped Gothenburg graph: repeatable,
//! conserving orders, batched dispatch beating greedy at high load, and
//! prep-aware holding cutting the couriers' wait at the restaurant.

use std::path::Path;

use simulate::{City, Load, PolicySpec, Scenario};

fn gothenburg() -> City {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/gothenburg_roads_2016.hxroads");
    City::load(&path).expect("the shipped graph loads")
}

/// A small city kept busy: 40 couriers, 15 restaurants, 75 minutes of
/// orders of which the first 15 are warm-up.
fn busy(seed: u64) -> Scenario {
    Scenario {
        name: "busy".into(),
        seed,
        couriers: 40,
        restaurants: 15,
        duration_s: 75 * 60,
        warmup_s: 15 * 60,
        drain_s: 30 * 60,
        load: Load::Utilisation(0.95),
        ..Scenario::default()
    }
}

#[test]
fn seeded_run_is_repeatable_conserves_orders_and_batched_beats_greedy() {
    let city = gothenburg();
    let seed = 7;
    let scenario = busy(seed);
    let greedy = PolicySpec::parse("greedy").unwrap();
    let batched = PolicySpec::parse("batched:2").unwrap();
    let reports = simulate::compare(
        &city,
        std::slice::from_ref(&scenario),
        &[greedy.clone(), batched],
    )
    .unwrap();
    let (g, b) = (&reports[0], &reports[1]);
    eprintln!(
        "seed {seed}\n{}",
        serde_json::to_string_pretty(&reports).unwrap()
    );

    // Same seed, same JSON.
    let again = simulate::run(&city, &scenario, &greedy).unwrap();
    assert_eq!(
        serde_json::to_string(&again).unwrap(),
        serde_json::to_string(g).unwrap(),
        "seed {seed}: a second run differs"
    );

    for r in &reports {
        assert_eq!(r.violations, 0, "seed {seed}, {}: conservation", r.policy);
        assert_eq!(
            r.orders_delivered + r.orders_open_at_end,
            r.orders_placed,
            "seed {seed}, {}: every order delivered or open",
            r.policy
        );
        assert!(
            r.orders_measured > 100,
            "seed {seed}: too few orders to compare"
        );
    }
    assert!(
        b.pickup_s.mean < g.pickup_s.mean,
        "seed {seed}: batched mean pickup {} s, greedy {} s",
        b.pickup_s.mean,
        g.pickup_s.mean
    );
}

#[test]
fn prep_aware_holding_cuts_the_couriers_wait_at_the_restaurant() {
    let city = gothenburg();
    let seed = 11;
    let scenario = Scenario {
        load: Load::Utilisation(0.75),
        ..busy(seed)
    };
    // Estimates learned from the restaurants' history, as a live
    // deployment without quoted ready times would have them.
    let plain = PolicySpec::parse("batched:2").unwrap();
    let prep = PolicySpec::parse("batched:2+prep").unwrap();
    let reports =
        simulate::compare(&city, std::slice::from_ref(&scenario), &[plain, prep]).unwrap();
    let (b, p) = (&reports[0], &reports[1]);
    for r in &reports {
        assert_eq!(r.violations, 0, "seed {seed}, {}: conservation", r.policy);
        assert_eq!(
            r.orders_delivered + r.orders_open_at_end,
            r.orders_placed,
            "seed {seed}, {}: every order delivered or open",
            r.policy
        );
    }
    assert!(
        p.courier_wait_s.mean < 0.5 * b.courier_wait_s.mean,
        "seed {seed}: courier wait {} s with prep-aware holding, {} s without",
        p.courier_wait_s.mean,
        b.courier_wait_s.mean
    );
    assert!(
        p.busy_s.mean < b.busy_s.mean,
        "seed {seed}: busy {} s with prep-aware holding, {} s without",
        p.busy_s.mean,
        b.busy_s.mean
    );
}

#[test]
fn learning_road_speeds_cuts_the_eta_error() {
    let city = gothenburg();
    let seed = 13;
    let scenario = Scenario {
        road_speed_spread: 0.3,
        relearn_every_legs: 100,
        // Long enough for a few hundred legs to teach the speeds before
        // the measured window.
        duration_s: 150 * 60,
        warmup_s: 60 * 60,
        ..busy(seed)
    };
    let batched = PolicySpec::parse("batched:2").unwrap();
    let r = simulate::run(&city, &scenario, &batched).unwrap();
    let e = r.eta_errors.as_ref().expect("measured with a speed spread");
    assert!(e.legs > 200, "{e:?}");
    // The map's speeds are off by up to 30% per class; learned ones are
    // close after a few hundred legs.
    assert!(
        e.learned_rel_pct.p50 < 0.5 * e.nominal_rel_pct.p50,
        "seed {seed}: p50 {}% learned vs {}% nominal",
        e.learned_rel_pct.p50,
        e.nominal_rel_pct.p50
    );
    assert!(
        e.learned_rel_pct.p90 < 0.5 * e.nominal_rel_pct.p90,
        "seed {seed}: p90 {}% learned vs {}% nominal",
        e.learned_rel_pct.p90,
        e.nominal_rel_pct.p90
    );
    assert_eq!(r.violations, 0);
    // Without a spread, nothing is measured (the map is the truth).
    let plain = simulate::run(&city, &busy(seed), &batched).unwrap();
    assert!(plain.eta_errors.is_none());
}

#[test]
fn stacking_keeps_the_first_customers_delay_within_its_bound() {
    // Stacks of the same kitchen and, on the way, of another: the first
    // customer's real added delay (detour, extra handover and the second
    // food) stays within the bound.
    let city = gothenburg();
    let seed = 17;
    let scenario = Scenario {
        load: Load::Utilisation(1.1),
        ..busy(seed)
    };
    // Quoted ready times: the expected instants are the true ones, so the
    // bound holds on what really happens.
    let stack = PolicySpec::parse("batched:2+quoted+stack=240").unwrap();
    assert_eq!(stack.stack_max_delay_s, Some(240));
    let r = simulate::run(&city, &scenario, &stack).unwrap();
    assert_eq!(r.violations, 0, "seed {seed}: conservation");
    assert_eq!(r.orders_delivered + r.orders_open_at_end, r.orders_placed);
    assert!(r.orders_stacked > 0, "seed {seed}: nothing stacked");
    // Also from restaurants on the way, not only the same kitchen.
    assert!(
        r.orders_stacked_on_the_way > 0,
        "seed {seed}: nothing stacked on the way"
    );
    assert!(
        r.stack_added_delay_s.max <= 240.0,
        "seed {seed}: a first customer waited {} s more",
        r.stack_added_delay_s.max
    );
    // Off by default.
    let plain = simulate::run(
        &city,
        &scenario,
        &PolicySpec::parse("batched:2+quoted").unwrap(),
    )
    .unwrap();
    assert_eq!(plain.orders_stacked, 0);
}
