//! The run's fixed inputs, drawn from the seed before anything runs: where
//! restaurants and couriers start, and every order (when, from where, to
//! where, how long the kitchen takes). Policies compared on one seed see
//! exactly the same city and the same orders.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::city::{City, Paths};
use crate::config::{Load, Scenario};

/// Sub-seeds of the independent random streams, so that changing how one
/// is drawn (say, more restaurants) leaves the others alone.
const PLACES_STREAM: u64 = 0x9e37_79b9_7f4a_7c15;
const ORDERS_STREAM: u64 = 0xc2b2_ae3d_27d4_eb4f;
const ARRIVALS_STREAM: u64 = 0x1656_67b1_9e37_79f9;
/// Orders whose legs estimate the courier time per order for
/// [`Load::Utilisation`].
const ESTIMATE_SAMPLE: usize = 200;

/// A random stream of the run: `seed` mixed with a stream's constant.
pub(crate) fn stream(seed: u64, constant: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ constant)
}

/// Sub-seed of the couriers' true speeds per road class.
const SPEEDS_STREAM: u64 = 0x1656_67b1_9e37_79f9;

/// How much longer than the map says each road class really takes
/// (`Scenario::road_speed_spread`), by class code; all 1 without spread.
pub fn true_time_factors(scenario: &Scenario) -> [f64; routing::CLASSES] {
    let spread = scenario.road_speed_spread;
    if spread <= 0.0 {
        return [1.0; routing::CLASSES];
    }
    let mut rng = stream(scenario.seed, SPEEDS_STREAM);
    std::array::from_fn(|_| rng.random_range(1.0 - spread..=1.0 + spread))
}

/// One order of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderPlan {
    /// When the restaurant accepts it and the matcher starts, ms from the
    /// start of the run.
    pub at_ms: u64,
    /// Index of its restaurant.
    pub restaurant: usize,
    /// The customer's door (a graph node).
    pub door: u32,
    /// Kitchen time from `at_ms` to ready for pickup, milliseconds.
    pub prep_ms: u64,
}

/// Where things are and what will be ordered.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// Restaurant nodes.
    pub restaurants: Vec<u32>,
    /// Where each courier starts (near a restaurant: couriers wait where
    /// the orders come from).
    pub courier_starts: Vec<u32>,
    /// Orders by time.
    pub orders: Vec<OrderPlan>,
    /// Orders per hour the arrivals were drawn at.
    pub orders_per_hour: f64,
    /// Estimated courier time per order, seconds (see
    /// `service_estimate_s`).
    pub service_estimate_s: f64,
}

impl Demand {
    /// Draws the scenario's city and orders.
    pub fn draw(city: &City, scenario: &Scenario) -> Demand {
        let mut places = stream(scenario.seed, PLACES_STREAM);
        let any = city.graph().node_count() as u32 / 2;
        let restaurants: Vec<u32> = (0..scenario.restaurants)
            .map(|_| city.node_in_disk(&mut places, city.centre(), scenario.city_radius_m, any))
            .collect();
        let courier_starts: Vec<u32> = (0..scenario.couriers)
            .map(|_| {
                let r = restaurants[places.random_range(0..restaurants.len())];
                city.node_in_disk(&mut places, city.position(r), 1_000.0, r)
            })
            .collect();

        // Where and what first, when afterwards: the rate may depend on
        // the legs (utilisation), the legs never on the rate.
        let mut what = stream(scenario.seed, ORDERS_STREAM);
        let mut draw_order = || {
            let restaurant = what.random_range(0..restaurants.len());
            let r = restaurants[restaurant];
            let door =
                city.node_in_disk(&mut what, city.position(r), scenario.delivery_radius_m, r);
            let prep_s = what.random_range(scenario.prep_min_s..=scenario.prep_max_s);
            (restaurant, door, prep_s * 1000)
        };
        let mut planned: Vec<(usize, u32, u64)> =
            (0..ESTIMATE_SAMPLE).map(|_| draw_order()).collect();
        let service_estimate_s = service_estimate_s(city, scenario, &restaurants, &planned);
        let orders_per_hour = match scenario.load {
            Load::OrdersPerHour(r) => r,
            Load::Utilisation(u) => u * scenario.couriers as f64 * 3600.0 / service_estimate_s,
        };

        let mut when = stream(scenario.seed, ARRIVALS_STREAM);
        let mean_gap_ms = 3_600_000.0 / orders_per_hour;
        let end_ms = scenario.duration_s * 1000;
        let mut orders = Vec::new();
        let mut t = 0.0f64;
        loop {
            // Exponential gaps: Poisson arrivals. 1 - u is in (0, 1].
            t += -mean_gap_ms * (1.0 - when.random::<f64>()).ln();
            if t >= end_ms as f64 {
                break;
            }
            let i = orders.len();
            if i >= planned.len() {
                planned.push(draw_order());
            }
            let (restaurant, door, prep_ms) = planned[i];
            orders.push(OrderPlan {
                at_ms: t as u64,
                restaurant,
                door,
                prep_ms,
            });
        }
        Demand {
            restaurants,
            courier_starts,
            orders,
            orders_per_hour,
            service_estimate_s,
        }
    }
}

/// Estimated courier time per order, seconds, the same for every policy:
/// a courier offered the order at once drives to the restaurant from the
/// previous order's door (wherever its last delivery ended; a smart
/// policy finds nearer ones, so the measured utilisation usually comes
/// out below the nominal one), waits for the food if it is not ready,
/// hands over, drives to the door and hands over.
fn service_estimate_s(
    city: &City,
    scenario: &Scenario,
    restaurants: &[u32],
    sample: &[(usize, u32, u64)],
) -> f64 {
    let graph = city.graph();
    let mut paths =
        Paths::with_class_factors(graph, scenario.speed_factor, &true_time_factors(scenario));
    let mut total_ms = 0u64;
    for (i, &(r, door, prep_ms)) in sample.iter().enumerate() {
        let restaurant = restaurants[r];
        let previous_door = sample[(i + sample.len() - 1) % sample.len()].1;
        let to_pickup = paths.drive(graph, previous_door, restaurant).duration_ms();
        total_ms += to_pickup.max(prep_ms);
        total_ms += paths.drive(graph, restaurant, door).duration_ms();
    }
    let handovers_s = (scenario.pickup_handover_s + scenario.dropoff_handover_s) as f64;
    (total_ms as f64 / 1000.0 / sample.len().max(1) as f64 + handovers_s).max(1.0)
}
