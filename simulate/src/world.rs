//! One run: couriers, kitchens and customers around the real engine and the
//! real matcher loop, on tokio's paused clock.
//!
//! Time: a current-thread runtime starts paused. The world keeps its own
//! event queue (orders, food ready, courier answers, arrivals, pings) and
//! sleeps until the next event; the matcher's loop sleeps until its own
//! deadlines (offer timeouts, retries, batch windows). With every task
//! asleep tokio jumps the clock to the earliest deadline, so both run at
//! exactly their virtual instants and three hours take seconds.
//!
//! Determinism (same seed, same report): one thread; ids derived from
//! indices (the matcher's maps hash them); at an instant where both have
//! work the matcher goes first (the world yields before acting) and then
//! hears the world's actions before the clock moves (the world waits until
//! the matcher has read every engine change). Couriers always answer before
//! the offer timeout: offers that lapse at the same instant would be
//! handled in the order of their random offer ids.
//!
//! What the world does as the real clients would: couriers go on duty and
//! ping the engine every `ping_interval_s` with their position on the road;
//! a restaurant accepting an order puts it on the engine's order board and
//! asks the matcher to dispatch it (as `api::live` does); couriers answer
//! offers through `Matcher::accept`/`decline`; pickup and delivery are
//! order status changes on the engine, which frees the courier.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use engine::{
    Availability, Change, DriverId, Handle, OfferId, OrderId, OrderStatus, OrderTrack, Ping,
    RestaurantId, UserId,
};
use matcher::Matcher;
use rand::Rng;
use rand::rngs::StdRng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::city::{City, Drive, Paths};
use crate::config::{PolicySpec, Scenario};
use crate::demand::{Demand, stream, true_time_factors};
use crate::report::{EtaLeg, OrderLog};

/// The Unix time the run starts at, ms (2027-01-15 08:00 UTC); only the
/// engine's timestamps see it.
const EPOCH_MS: i64 = 1_800_000_000_000;
/// Stacking: couriers bound for other restaurants looked at per order
/// (the nearest to its restaurant), as the live matcher's
/// `STACK_CANDIDATES`.
const STACK_CANDIDATES: usize = 8;
/// Sub-seed of the couriers' answers (see `demand::stream`).
const ANSWERS_STREAM: u64 = 0x27d4_eb2f_1656_67c5;
/// Yields while waiting for the matcher to read the engine's changes; the
/// loop reads them in one turn unless tokio's budget makes it yield.
const MAX_SETTLE_YIELDS: usize = 64;
/// Id spaces: order, courier and party ids are these tags in the high 64
/// bits and an index in the low ones.
const ORDER_TAG: u128 = 1 << 64;
const COURIER_TAG: u128 = 2 << 64;
const CUSTOMER_TAG: u128 = 3 << 64;
const RESTAURANT_TAG: u128 = 4 << 64;

/// Something that happens at an instant of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Order `i` is accepted by its restaurant and needs a courier.
    Order(usize),
    /// Order `i`'s food is ready.
    Ready(usize),
    /// A courier answers an offer.
    Answer {
        courier: usize,
        offer_id: OfferId,
        accept: bool,
    },
    /// A courier reaches the restaurant of its order.
    AtRestaurant(usize),
    /// A courier has the food and leaves for the door.
    PickedUp(usize),
    /// A courier has handed the food over at the door.
    Delivered(usize),
    /// Every courier pings.
    Pings,
}

/// Where a courier is in its round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    /// Free, standing at the end of its drive.
    Idle,
    /// Driving to the restaurant.
    ToRestaurant,
    /// At the restaurant, waiting for the food or handing it over.
    AtRestaurant,
    /// Driving to the door, or handing over there.
    ToDoor,
}

struct Courier {
    id: DriverId,
    leg: Leg,
    /// The current drive (standing still: a drive of one node).
    drive: Drive,
    /// When `drive` started, ms of the run.
    drive_start_ms: u64,
    /// The order carried, from accept to delivery.
    order: Option<usize>,
    /// The current drive's predicted time on the nominal map and on the
    /// learned speeds, ms (measured runs only).
    predicted: Option<(u64, u64)>,
    /// Stacking: a second order, from the same restaurant or one on the
    /// way, delivered after `order`.
    second: Option<usize>,
    /// Orders still to pick up, in the order of the round: the courier
    /// drives to the restaurant of the first and picks up there every
    /// order of that restaurant (one stop for one kitchen).
    stops: Vec<usize>,
    /// When the courier reaches (or reached) the restaurant it drives to
    /// (of `stops[0]`), ms of the run; an arrival event at another instant
    /// is stale (the round changed).
    arrival_ms: u64,
    /// The pickup is scheduled (the food of every order of this stop is
    /// ready and the courier is there).
    pickup_scheduled: bool,
    /// Stacking: when the first customer would have been served by the
    /// courier with the first order alone, ms of the run (the stack's
    /// true cost is measured against it at the first delivery).
    alone_door_ms: Option<u64>,
    /// An order delivered while a stacked one is still carried: the
    /// engine hears of its delivery with the last one (it would free the
    /// courier otherwise).
    delivered_held: Option<usize>,
}

/// ETAs against the couriers' true speeds (`Scenario::road_speed_spread`).
struct Learning {
    learner: routing::learn::SpeedLearner,
    /// The map with the learned speeds (the nominal one until the first
    /// relearning).
    learned: Arc<routing::Router>,
    /// `RoadGraph::arc_segments` of the nominal graph.
    arc_segments: Vec<u32>,
    since_relearn: usize,
}

/// The run's state outside the engine and the matcher.
pub(crate) struct World<'a> {
    city: &'a City,
    scenario: &'a Scenario,
    demand: &'a Demand,
    engine: Handle,
    matcher: Matcher,
    /// Restaurants quote the true ready time with the dispatch request.
    ready_quoted: bool,
    /// Stacking's bound on the first customer's added delay, ms; `None`:
    /// no stacking.
    stack_max_delay_ms: Option<u64>,
    /// Per order, when its food was expected ready at dispatch (the
    /// quoted time, or acceptance + the restaurant's estimate), ms.
    expected_ready_ms: Vec<u64>,
    /// Orders stacked onto a courier's first one.
    pub stacked: u64,
    /// Of them, from another restaurant than the first order's (on the
    /// way).
    pub stacked_on_the_way: u64,
    /// Per stack, what it really cost the first customer: how much later
    /// the first door was reached than with the first order alone.
    pub stack_delays_ms: Vec<u64>,
    /// The fresh courier's arrival assumed when none is idle
    /// (`matcher.quote_courier_default_s`), ms.
    no_courier_ms: u64,
    paths: Paths,
    answers: StdRng,
    couriers: Vec<Courier>,
    /// Per order, what happened when.
    pub log: Vec<OrderLog>,
    /// Driven legs with their predicted times (with a road speed spread).
    pub eta_legs: Vec<EtaLeg>,
    learning: Option<Learning>,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    /// The instant the run started (the paused clock).
    start: Instant,
    seq: u64,
    /// Orders placed and not delivered.
    open: usize,
    /// Orders not yet placed.
    to_place: usize,
    /// Offers made.
    pub offers: u64,
    /// Offers the couriers declined.
    pub declines: u64,
    /// Answers the matcher refused (the offer had ended).
    pub late_answers: u64,
    /// Offers to a courier that was not free, or accepts that gave a
    /// courier a second order: the conservation checks, 0 when all is well.
    pub violations: u64,
    /// Engine changes missed because the world fell behind the stream.
    pub missed_changes: u64,
    /// When the loop stopped, ms of the run.
    ended_ms: u64,
}

fn order_id(i: usize) -> OrderId {
    OrderId(Uuid::from_u128(ORDER_TAG | i as u128))
}

fn courier_id(c: usize) -> DriverId {
    DriverId(Uuid::from_u128(COURIER_TAG | c as u128))
}

/// The index in an id made by [`order_id`] or [`courier_id`] with `tag`.
fn index_of(uuid: Uuid, tag: u128) -> Option<usize> {
    let v = uuid.as_u128();
    (v >> 64 == tag >> 64).then_some((v & u128::from(u64::MAX)) as usize)
}

fn to_engine(p: routing::LatLng) -> engine::LatLng {
    engine::LatLng {
        lat: p.lat,
        lng: p.lng,
    }
}

impl<'a> World<'a> {
    /// Runs `policy` on the scenario to its end; the world afterwards
    /// holds the log.
    pub(crate) async fn run(
        city: &'a City,
        scenario: &'a Scenario,
        demand: &'a Demand,
        policy: &PolicySpec,
    ) -> World<'a> {
        let engine = Handle::new(engine::Config::default());
        let mut changes = engine.subscribe_changes();
        let mut config = policy.matcher.clone();
        config.roads = None;
        let matcher = Matcher::with_router(engine.clone(), config, Some(city.router().clone()));
        let shutdown = CancellationToken::new();
        let matcher_loop = tokio::spawn(matcher.clone().run(shutdown.clone()));
        let start = Instant::now();

        let mut world = World {
            city,
            scenario,
            demand,
            engine,
            matcher,
            ready_quoted: policy.ready_quoted,
            stack_max_delay_ms: policy.stack_max_delay_s.map(|s| s.saturating_mul(1000)),
            expected_ready_ms: vec![0; demand.orders.len()],
            stacked: 0,
            stacked_on_the_way: 0,
            stack_delays_ms: Vec::new(),
            no_courier_ms: policy.matcher.quote_courier_default_s.saturating_mul(1000),
            paths: Paths::with_class_factors(
                city.graph(),
                scenario.speed_factor,
                &true_time_factors(scenario),
            ),
            answers: stream(scenario.seed, ANSWERS_STREAM),
            couriers: demand
                .courier_starts
                .iter()
                .enumerate()
                .map(|(c, &node)| Courier {
                    id: courier_id(c),
                    leg: Leg::Idle,
                    drive: Drive::stay(node),
                    drive_start_ms: 0,
                    order: None,
                    predicted: None,
                    second: None,
                    stops: Vec::new(),
                    arrival_ms: 0,
                    pickup_scheduled: false,
                    alone_door_ms: None,
                    delivered_held: None,
                })
                .collect(),
            log: demand.orders.iter().map(OrderLog::new).collect(),
            eta_legs: Vec::new(),
            learning: (scenario.road_speed_spread > 0.0).then(|| Learning {
                learner: routing::learn::SpeedLearner::new(Default::default()),
                learned: city.router().clone(),
                arc_segments: city.graph().arc_segments(),
                since_relearn: 0,
            }),
            queue: BinaryHeap::new(),
            start,
            seq: 0,
            open: 0,
            to_place: demand.orders.len(),
            offers: 0,
            declines: 0,
            late_answers: 0,
            violations: 0,
            missed_changes: 0,
            ended_ms: 0,
        };
        world.pings(0);
        for c in &world.couriers {
            world
                .engine
                .set_availability(c.id, Availability::Available, EPOCH_MS);
        }
        world.schedule(scenario.ping_interval_s * 1000, Event::Pings);
        for (i, o) in demand.orders.iter().enumerate() {
            world.schedule(o.at_ms, Event::Order(i));
        }

        let end_ms = (scenario.duration_s + scenario.drain_s) * 1000;
        loop {
            world.settle(&mut changes).await;
            let Some(&Reverse((next_ms, _, _))) = world.queue.peek() else {
                break;
            };
            if next_ms > end_ms || (world.to_place == 0 && world.open == 0) {
                break;
            }
            let now_ms = world.now_ms();
            if next_ms > now_ms {
                tokio::select! {
                    biased;
                    change = changes.recv_direct() => world.on_change(change),
                    _ = tokio::time::sleep_until(start + Duration::from_millis(next_ms)) => {}
                }
                // Back to `settle`: the matcher's work due at this instant
                // goes before the world's.
                continue;
            }
            while let Some(&Reverse((at_ms, _, event))) = world.queue.peek() {
                if at_ms > now_ms {
                    break;
                }
                world.queue.pop();
                world.handle(event, at_ms);
            }
        }
        world.ended_ms = world.now_ms();
        shutdown.cancel();
        // The loop ends at once on cancel; a panic in it would be a
        // matcher bug the caller should see, not a lost report.
        if let Err(e) = matcher_loop.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        world
    }

    fn schedule(&mut self, at_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at_ms, self.seq, event)));
    }

    /// Lets the matcher run until it has read every engine change (its
    /// timers due now fire in the same turns), reading them too.
    async fn settle(&mut self, changes: &mut engine::Receiver<Change>) {
        for _ in 0..MAX_SETTLE_YIELDS {
            tokio::task::yield_now().await;
            while let Ok(change) = changes.try_recv() {
                self.on_change(Ok(change));
            }
            if changes.is_empty() {
                break;
            }
        }
        tokio::task::yield_now().await;
        while let Ok(change) = changes.try_recv() {
            self.on_change(Ok(change));
        }
    }

    fn on_change(&mut self, change: Result<Change, engine::RecvError>) {
        let change = match change {
            Ok(c) => c,
            Err(engine::RecvError::Overflowed(n)) => {
                self.missed_changes += n;
                return;
            }
            Err(engine::RecvError::Closed) => return,
        };
        let Change::Offer(offer) = change else {
            return;
        };
        let Some(c) = index_of(offer.driver_id.0, COURIER_TAG) else {
            return;
        };
        let now_ms = self.now_ms();
        self.offers += 1;
        if let Some(i) = index_of(offer.order_id.0, ORDER_TAG) {
            self.log[i].offers += 1;
        }
        if self.couriers[c].leg != Leg::Idle {
            self.violations += 1;
        }
        let s = self.scenario;
        let accept = self.answers.random::<f64>() < s.accept_probability;
        let delay_s = self.answers.random_range(s.answer_min_s..=s.answer_max_s);
        self.schedule(
            now_ms + delay_s * 1000,
            Event::Answer {
                courier: c,
                offer_id: offer.offer_id,
                accept,
            },
        );
    }

    /// The run's current time, ms (the paused clock only moves while
    /// every task sleeps).
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn handle(&mut self, event: Event, at_ms: u64) {
        let now = EPOCH_MS + at_ms as i64;
        match event {
            Event::Order(i) => {
                let plan = self.demand.orders[i];
                let restaurant = self.demand.restaurants[plan.restaurant];
                self.engine.track_order(OrderTrack {
                    order_id: order_id(i),
                    customer_id: UserId(Uuid::from_u128(CUSTOMER_TAG | i as u128)),
                    restaurant_id: RestaurantId(Uuid::from_u128(
                        RESTAURANT_TAG | plan.restaurant as u128,
                    )),
                    restaurant_owner_id: UserId(Uuid::from_u128(
                        RESTAURANT_TAG | plan.restaurant as u128,
                    )),
                    status: OrderStatus::Accepted,
                    driver_id: None,
                    pickup: to_engine(self.city.position(restaurant)),
                    dropoff: to_engine(self.city.position(plan.door)),
                    updated_at_ms: now,
                    version: 0,
                });
                self.to_place -= 1;
                self.open += 1;
                self.schedule(at_ms + plan.prep_ms, Event::Ready(i));
                let estimate_ms = if self.ready_quoted {
                    plan.prep_ms
                } else {
                    self.matcher.prep_estimate_ms(RestaurantId(Uuid::from_u128(
                        RESTAURANT_TAG | plan.restaurant as u128,
                    )))
                };
                self.expected_ready_ms[i] = at_ms + estimate_ms;
                if let Some((c, plan)) = self.stack_candidate(i, at_ms) {
                    self.stack(c, i, plan, at_ms);
                    return;
                }
                // As `api` does when a restaurant accepts; a restaurant
                // that quotes its ready time passes it along.
                let ready_at = self.ready_quoted.then(|| now + plan.prep_ms as i64);
                if self
                    .matcher
                    .dispatch_ready_at(order_id(i), now, ready_at)
                    .is_err()
                {
                    self.violations += 1;
                }
            }
            Event::Ready(i) => {
                // What `api` tells the matcher when a kitchen marks an
                // order ready: how long it took since accepting it.
                let plan = self.demand.orders[i];
                self.matcher.observe_prep(
                    RestaurantId(Uuid::from_u128(RESTAURANT_TAG | plan.restaurant as u128)),
                    EPOCH_MS + plan.at_ms as i64,
                    now,
                );
                let _ = self
                    .engine
                    .set_order_status(order_id(i), OrderStatus::ReadyForPickup, now);
                // A courier already waiting takes it now (with a stacked
                // order, once both are ready).
                if let Some(c) = self.log[i].courier {
                    self.try_pickup(c, at_ms);
                }
            }
            Event::Answer {
                courier,
                offer_id,
                accept,
            } => self.answer(courier, offer_id, accept, at_ms),
            Event::AtRestaurant(c) => {
                let courier = &self.couriers[c];
                if courier.leg != Leg::ToRestaurant || courier.arrival_ms != at_ms {
                    // Stale: the round changed (a stack on the way sent
                    // the courier elsewhere first).
                    return;
                }
                let Some(&i) = courier.stops.first() else {
                    return;
                };
                self.couriers[c].leg = Leg::AtRestaurant;
                for k in self.stop_orders(c) {
                    self.log[k].arrived_ms = Some(at_ms);
                }
                self.drive_ended(c, i);
                self.try_pickup(c, at_ms);
            }
            Event::PickedUp(c) => {
                let Some(i) = self.couriers[c].order else {
                    return;
                };
                self.couriers[c].pickup_scheduled = false;
                for k in self.stop_orders(c) {
                    self.log[k].picked_ms = Some(at_ms);
                    let _ = self
                        .engine
                        .set_order_status(order_id(k), OrderStatus::PickedUp, now);
                    self.couriers[c].stops.retain(|&o| o != k);
                }
                if let Some(&next) = self.couriers[c].stops.first() {
                    // On to the other restaurant of a stack on the way.
                    self.drive_to_restaurant(c, next, at_ms);
                    return;
                }
                let from = self.couriers[c].drive.end();
                let drive = self
                    .paths
                    .drive(self.city.graph(), from, self.demand.orders[i].door);
                let done = at_ms + drive.duration_ms() + self.scenario.dropoff_handover_s * 1000;
                let predicted = self.predict(from, self.demand.orders[i].door);
                let courier = &mut self.couriers[c];
                courier.leg = Leg::ToDoor;
                courier.drive = drive;
                courier.drive_start_ms = at_ms;
                courier.predicted = predicted;
                self.schedule(done, Event::Delivered(c));
            }
            Event::Delivered(c) => {
                let Some(i) = self.couriers[c].order.take() else {
                    return;
                };
                self.log[i].delivered_ms = Some(at_ms);
                if let Some(alone) = self.couriers[c].alone_door_ms.take() {
                    // What the stack cost the first customer.
                    self.stack_delays_ms.push(at_ms.saturating_sub(alone));
                }
                self.open -= 1;
                self.drive_ended(c, i);
                if let Some(k) = self.couriers[c].second.take() {
                    // On to the second door; the engine hears of both
                    // deliveries at the end.
                    self.log[k].busy_from_ms = Some(at_ms);
                    let from = self.couriers[c].drive.end();
                    let door = self.demand.orders[k].door;
                    let drive = self.paths.drive(self.city.graph(), from, door);
                    let done =
                        at_ms + drive.duration_ms() + self.scenario.dropoff_handover_s * 1000;
                    let predicted = self.predict(from, door);
                    let courier = &mut self.couriers[c];
                    courier.order = Some(k);
                    courier.delivered_held = Some(i);
                    courier.drive = drive;
                    courier.drive_start_ms = at_ms;
                    courier.predicted = predicted;
                    self.schedule(done, Event::Delivered(c));
                    return;
                }
                if let Some(h) = self.couriers[c].delivered_held.take() {
                    let _ = self
                        .engine
                        .set_order_status(order_id(h), OrderStatus::Delivered, now);
                }
                let courier = &mut self.couriers[c];
                courier.leg = Leg::Idle;
                courier.drive = Drive::stay(courier.drive.end());
                courier.drive_start_ms = at_ms;
                // Delivered closes the order; the engine frees the courier
                // and the matcher hears it is available.
                let _ = self
                    .engine
                    .set_order_status(order_id(i), OrderStatus::Delivered, now);
            }
            Event::Pings => {
                self.pings(at_ms);
                self.schedule(at_ms + self.scenario.ping_interval_s * 1000, Event::Pings);
            }
        }
    }

    fn answer(&mut self, c: usize, offer_id: OfferId, accept: bool, at_ms: u64) {
        let now = EPOCH_MS + at_ms as i64;
        let id = self.couriers[c].id;
        if !accept {
            self.declines += 1;
            if self.matcher.decline(offer_id, id, now).is_err() {
                self.late_answers += 1;
            }
            return;
        }
        let track = match self.matcher.accept(offer_id, id, now) {
            Ok(track) => track,
            Err(_) => {
                self.late_answers += 1;
                return;
            }
        };
        let Some(i) = index_of(track.order_id.0, ORDER_TAG) else {
            return;
        };
        if self.couriers[c].order.is_some() || self.log[i].courier.is_some() {
            self.violations += 1;
            return;
        }
        self.log[i].courier = Some(c);
        self.log[i].accepted_ms = Some(at_ms);
        let courier = &mut self.couriers[c];
        courier.order = Some(i);
        courier.stops = vec![i];
        self.drive_to_restaurant(c, i, at_ms);
    }

    /// Sends courier `c` from where its drive ends to order `i`'s
    /// restaurant.
    fn drive_to_restaurant(&mut self, c: usize, i: usize, at_ms: u64) {
        let restaurant = self.demand.restaurants[self.demand.orders[i].restaurant];
        let from = self.couriers[c].drive.end();
        let drive = self.paths.drive(self.city.graph(), from, restaurant);
        let arrive = at_ms + drive.duration_ms();
        let predicted = self.predict(from, restaurant);
        let courier = &mut self.couriers[c];
        courier.leg = Leg::ToRestaurant;
        courier.drive = drive;
        courier.drive_start_ms = at_ms;
        courier.predicted = predicted;
        courier.arrival_ms = arrive;
        self.schedule(arrive, Event::AtRestaurant(c));
    }

    /// The orders courier `c` picks up at its current stop: those of its
    /// stops from the same restaurant as the first.
    fn stop_orders(&self, c: usize) -> Vec<usize> {
        let stops = &self.couriers[c].stops;
        let Some(&first) = stops.first() else {
            return Vec::new();
        };
        let here = self.demand.orders[first].restaurant;
        stops
            .iter()
            .copied()
            .filter(|&o| self.demand.orders[o].restaurant == here)
            .collect()
    }

    /// Every courier's position at `at_ms`, applied as the ingest applies
    /// a batch.
    fn pings(&mut self, at_ms: u64) {
        let graph = self.city.graph();
        let pings: Vec<Ping> = self
            .couriers
            .iter()
            .map(|c| Ping {
                driver_id: c.id,
                position: to_engine(
                    c.drive
                        .position(graph, at_ms.saturating_sub(c.drive_start_ms)),
                ),
                recorded_at_ms: EPOCH_MS + at_ms as i64,
                heading_deg: None,
                speed_mps: None,
                accuracy_m: None,
            })
            .collect();
        self.engine.apply_pings(&pings, EPOCH_MS + at_ms as i64);
    }

    /// Stacking: the courier order `i` may ride along with, if any, and
    /// its route: of the couriers carrying a single order not yet picked
    /// up (driving to its restaurant or waiting there) of the same
    /// restaurant, or within `matcher.initial_radius_m` of this order's
    /// (on the way; the [`STACK_CANDIDATES`] nearest), those for whom
    /// [`crate::stack::plan`] allows the stack (the expected ready times;
    /// the courier's arrival at its restaurant as driven, other legs on
    /// the map's travel times, as the live matcher measures them; a fresh
    /// courier: the nearest idle one, or `quote_courier_default_s` away),
    /// the one delaying its first customer least (then the earliest second
    /// door, then the lowest index).
    fn stack_candidate(&self, i: usize, at_ms: u64) -> Option<(usize, crate::stack::Plan)> {
        let bound = self.stack_max_delay_ms?;
        let graph = self.city.graph();
        let plan_i = self.demand.orders[i];
        let r2 = self.demand.restaurants[plan_i.restaurant];
        let (r2_at, d2_at) = (self.city.position(r2), self.city.position(plan_i.door));
        let radius_m = self.matcher.config().initial_radius_m;
        let here = |c: &Courier| {
            c.drive
                .position(graph, at_ms.saturating_sub(c.drive_start_ms))
        };
        let mut near: Vec<(f64, usize)> = Vec::new();
        let mut same: Vec<usize> = Vec::new();
        for (c, courier) in self.couriers.iter().enumerate() {
            let Some(j) = courier.order else {
                continue;
            };
            let eligible = courier.second.is_none()
                && !courier.pickup_scheduled
                && matches!(courier.leg, Leg::ToRestaurant | Leg::AtRestaurant);
            if !eligible {
                continue;
            }
            if self.demand.orders[j].restaurant == plan_i.restaurant {
                same.push(c);
            } else {
                let d = here(courier).distance_m(r2_at);
                if d <= radius_m {
                    near.push((d, c));
                }
            }
        }
        if same.is_empty() && near.is_empty() {
            return None;
        }
        near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        near.truncate(STACK_CANDIDATES);
        let router = self.city.router();
        let t = |a: routing::LatLng, b: routing::LatLng| {
            u64::from(router.travel_time_or_crow_fly_ms(a, b))
        };
        // A fresh courier: the nearest idle one (crow-fly), by road.
        let fresh_ms = self
            .couriers
            .iter()
            .filter(|c| c.leg == Leg::Idle)
            .map(here)
            .min_by(|a, b| a.distance_m(r2_at).total_cmp(&b.distance_m(r2_at)))
            .map_or(self.no_courier_ms, |p| t(p, r2_at));
        let second_door_ms = t(r2_at, d2_at);
        same.into_iter()
            .chain(near.into_iter().map(|(_, c)| c))
            .filter_map(|c| {
                let courier = &self.couriers[c];
                let j = courier.order?;
                let plan_j = self.demand.orders[j];
                let r1 = self.demand.restaurants[plan_j.restaurant];
                let (r1_at, d1_at) = (self.city.position(r1), self.city.position(plan_j.door));
                // One stop only for one restaurant: two at the same place
                // are two stops (two handovers).
                let same_place = plan_j.restaurant == plan_i.restaurant;
                let courier_first_ms = courier.arrival_ms.saturating_sub(at_ms);
                let first_door_ms = t(r1_at, d1_at);
                // The extra stop's handover rides on the drive between the
                // restaurants, so the rule prices what really happens.
                let handover = self.scenario.pickup_handover_s * 1000;
                let courier_second_ms = if same_place {
                    courier_first_ms
                } else if courier.leg == Leg::ToRestaurant {
                    // On to the next junction, where it can turn (as
                    // `World::stack` drives it), then by road.
                    let elapsed = at_ms.saturating_sub(courier.drive_start_ms);
                    let head = courier.drive.until(elapsed);
                    head.duration_ms().saturating_sub(elapsed)
                        + t(self.city.position(head.end()), r2_at)
                } else {
                    t(self.city.position(courier.drive.end()), r2_at)
                };
                let legs = crate::stack::Legs {
                    courier_first_ms,
                    courier_second_ms,
                    first_second_ms: if same_place {
                        0
                    } else {
                        t(r1_at, r2_at) + handover
                    },
                    second_first_ms: if same_place {
                        0
                    } else {
                        t(r2_at, r1_at) + handover
                    },
                    first_door_ms,
                    second_first_door_ms: if same_place {
                        first_door_ms
                    } else {
                        t(r2_at, d1_at)
                    },
                    doors_ms: t(d1_at, d2_at),
                    second_door_ms,
                };
                let stack = crate::stack::Stack {
                    now_ms: at_ms,
                    first_ready_ms: self.expected_ready_ms[j],
                    second_ready_ms: self.expected_ready_ms[i],
                    fresh_arrival_ms: at_ms.saturating_add(fresh_ms),
                    legs,
                };
                let plan = crate::stack::plan(&stack, bound)?;
                Some(((plan.first_delay_ms, plan.second_door_ms, c), plan))
            })
            .min_by_key(|&(key, _)| key)
            .map(|((_, _, c), plan)| (c, plan))
    }

    /// Gives order `i` to courier `c` as its second (see
    /// [`World::stack_candidate`]), on `plan`'s route: the same stop, the
    /// second restaurant after the first, or before it (the courier turns
    /// there at the next junction of its drive, or leaves the first
    /// restaurant for it).
    fn stack(&mut self, c: usize, i: usize, plan: crate::stack::Plan, at_ms: u64) {
        self.stacked += 1;
        let j = self.couriers[c].order.unwrap_or(i);
        let (r1, r2) = (
            self.demand.orders[j].restaurant,
            self.demand.orders[i].restaurant,
        );
        // The first customer alone, at the true times: the courier's
        // arrival and the food, the handover, the drive to the door.
        let arrived = match self.couriers[c].leg {
            Leg::AtRestaurant => self.log[j].arrived_ms.unwrap_or(at_ms),
            _ => self.couriers[c].arrival_ms,
        };
        let r1_node = self.demand.restaurants[r1];
        let to_door = self
            .paths
            .drive(self.city.graph(), r1_node, self.demand.orders[j].door)
            .duration_ms();
        self.couriers[c].alone_door_ms = Some(
            self.log[j].ready_ms.max(arrived)
                + self.scenario.pickup_handover_s * 1000
                + to_door
                + self.scenario.dropoff_handover_s * 1000,
        );
        self.log[i].courier = Some(c);
        self.log[i].accepted_ms = Some(at_ms);
        self.couriers[c].second = Some(i);
        if r1 == r2 {
            self.couriers[c].stops.push(i);
            if self.couriers[c].leg == Leg::AtRestaurant {
                self.log[i].arrived_ms = Some(at_ms);
            }
            return;
        }
        self.stacked_on_the_way += 1;
        match plan.pickups {
            crate::stack::Pickups::FirstThenSecond => self.couriers[c].stops.push(i),
            crate::stack::Pickups::SecondThenFirst => {
                self.couriers[c].stops.insert(0, i);
                let courier = &mut self.couriers[c];
                if courier.leg == Leg::ToRestaurant {
                    // Drive on to the next junction, then to R2.
                    let elapsed = at_ms.saturating_sub(courier.drive_start_ms);
                    let head = courier.drive.until(elapsed);
                    let start = courier.drive_start_ms;
                    let r2_node = self.demand.restaurants[r2];
                    let tail = self.paths.drive(self.city.graph(), head.end(), r2_node);
                    let courier = &mut self.couriers[c];
                    courier.drive = head.join(&tail);
                    // Not a leg whose prediction can be checked.
                    courier.predicted = None;
                    courier.arrival_ms = start + courier.drive.duration_ms();
                    let arrive = courier.arrival_ms;
                    self.schedule(arrive, Event::AtRestaurant(c));
                } else {
                    self.drive_to_restaurant(c, i, at_ms);
                }
            }
        }
    }

    /// Schedules courier `c`'s pickup once it is at the restaurant and the
    /// food of every order to pick up there is ready.
    fn try_pickup(&mut self, c: usize, at_ms: u64) {
        let courier = &self.couriers[c];
        if courier.leg != Leg::AtRestaurant || courier.pickup_scheduled {
            return;
        }
        let ready = self
            .stop_orders(c)
            .into_iter()
            .all(|o| self.log[o].ready_ms <= at_ms);
        if ready {
            self.couriers[c].pickup_scheduled = true;
            self.schedule(
                at_ms + self.scenario.pickup_handover_s * 1000,
                Event::PickedUp(c),
            );
        }
    }

    /// A drive's predicted time from node `from` to node `to` on the
    /// nominal map and on the learned speeds, ms; `None` when the run
    /// does not measure ETAs.
    fn predict(&self, from: u32, to: u32) -> Option<(u64, u64)> {
        let learning = self.learning.as_ref()?;
        let (a, b) = (self.city.position(from), self.city.position(to));
        let nominal = self.city.router().travel_time_or_crow_fly_ms(a, b);
        let learned = learning.learned.travel_time_or_crow_fly_ms(a, b);
        Some((u64::from(nominal), u64::from(learned)))
    }

    /// Courier `c` finished the drive of order `i`'s leg: its ETA error is
    /// logged, and the leg teaches the speeds (the nominal time of the road
    /// it drove, by class, against what it took), as a live server learns
    /// from delivered orders.
    fn drive_ended(&mut self, c: usize, i: usize) {
        let Some(learning) = self.learning.as_mut() else {
            return;
        };
        let courier = &mut self.couriers[c];
        let Some((nominal_ms, learned_ms)) = courier.predicted.take() else {
            return;
        };
        let actual_ms = courier.drive.duration_ms();
        self.eta_legs.push(EtaLeg {
            order: i,
            actual_ms,
            nominal_ms,
            learned_ms,
        });
        let by_class = self
            .city
            .graph()
            .class_times_ms(courier.drive.nodes(), &learning.arc_segments);
        if learning.learner.observe(&by_class, actual_ms) {
            learning.since_relearn += 1;
        }
        if learning.since_relearn >= self.scenario.relearn_every_legs.max(1) {
            learning.since_relearn = 0;
            learning.learned = Arc::new(
                self.city
                    .router()
                    .with_time_factors(&learning.learner.time_factors()),
            );
        }
    }

    /// The speeds learned by the end of the run (with a road speed
    /// spread).
    pub(crate) fn learned_time_factors(&self) -> Option<[f64; routing::CLASSES]> {
        self.learning.as_ref().map(|l| l.learner.time_factors())
    }

    /// When the run ended, ms of the run.
    pub(crate) fn ended_ms(&self) -> u64 {
        self.ended_ms
    }
}
