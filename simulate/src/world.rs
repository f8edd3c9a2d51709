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
    /// Stacking: a second order from the same restaurant, delivered after
    /// `order`.
    second: Option<usize>,
    /// When the courier reaches (or reached) the restaurant of `order`,
    /// ms of the run.
    arrival_ms: u64,
    /// The pickup is scheduled (the food of every order carried is ready
    /// and the courier is there).
    pickup_scheduled: bool,
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
    /// Per stack, what it really cost the first customer: how much later
    /// the courier left the restaurant than with the first order alone.
    pub stack_delays_ms: Vec<u64>,
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
            stack_delays_ms: Vec::new(),
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
                    arrival_ms: 0,
                    pickup_scheduled: false,
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
                if let Some(c) = self.stack_candidate(i) {
                    self.stack(c, i, at_ms);
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
                let Some(i) = self.couriers[c].order else {
                    return;
                };
                self.couriers[c].leg = Leg::AtRestaurant;
                self.log[i].arrived_ms = Some(at_ms);
                if let Some(k) = self.couriers[c].second {
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
                self.log[i].picked_ms = Some(at_ms);
                let _ = self
                    .engine
                    .set_order_status(order_id(i), OrderStatus::PickedUp, now);
                if let Some(k) = self.couriers[c].second {
                    self.log[k].picked_ms = Some(at_ms);
                    let _ = self
                        .engine
                        .set_order_status(order_id(k), OrderStatus::PickedUp, now);
                    // What the stack cost the first customer: the courier
                    // left later than the first order alone would have let.
                    let handover = self.scenario.pickup_handover_s * 1000;
                    let alone = self.log[i]
                        .ready_ms
                        .max(self.log[i].arrived_ms.unwrap_or(0))
                        + handover;
                    self.stack_delays_ms.push(at_ms.saturating_sub(alone));
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
        let restaurant = self.demand.restaurants[self.demand.orders[i].restaurant];
        let from = self.couriers[c].drive.end();
        let drive = self.paths.drive(self.city.graph(), from, restaurant);
        let arrive = at_ms + drive.duration_ms();
        let predicted = self.predict(from, restaurant);
        let courier = &mut self.couriers[c];
        courier.order = Some(i);
        courier.leg = Leg::ToRestaurant;
        courier.drive = drive;
        courier.drive_start_ms = at_ms;
        courier.predicted = predicted;
        courier.arrival_ms = arrive;
        self.schedule(arrive, Event::AtRestaurant(c));
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

    /// Stacking: the courier order `i` may ride along with, if any: one
    /// carrying a single order of the same restaurant, not yet picked up
    /// (driving there or waiting), whose first customer's added delay
    /// ([`crate::stack::added_delay_ms`] on the expected ready times and
    /// the courier's arrival) stays within the bound; the one whose
    /// customer it delays least (then the lowest index).
    fn stack_candidate(&self, i: usize) -> Option<usize> {
        let bound = self.stack_max_delay_ms?;
        let restaurant = self.demand.orders[i].restaurant;
        self.couriers
            .iter()
            .enumerate()
            .filter_map(|(c, courier)| {
                let j = courier.order?;
                let eligible = courier.second.is_none()
                    && !courier.pickup_scheduled
                    && matches!(courier.leg, Leg::ToRestaurant | Leg::AtRestaurant)
                    && self.demand.orders[j].restaurant == restaurant;
                let (first, second) = (self.expected_ready_ms[j], self.expected_ready_ms[i]);
                (eligible && crate::stack::may_stack(first, courier.arrival_ms, second, bound))
                    .then(|| {
                        (
                            crate::stack::added_delay_ms(first, courier.arrival_ms, second),
                            c,
                        )
                    })
            })
            .min()
            .map(|(_, c)| c)
    }

    /// Gives order `i` to courier `c` as its second (see [`World::stack_candidate`]).
    fn stack(&mut self, c: usize, i: usize, at_ms: u64) {
        self.stacked += 1;
        let courier = &mut self.couriers[c];
        courier.second = Some(i);
        self.log[i].courier = Some(c);
        self.log[i].accepted_ms = Some(at_ms);
        if courier.leg == Leg::AtRestaurant {
            self.log[i].arrived_ms = Some(at_ms);
        }
    }

    /// Schedules courier `c`'s pickup once it is at the restaurant and the
    /// food of every order it carries is ready.
    fn try_pickup(&mut self, c: usize, at_ms: u64) {
        let courier = &self.couriers[c];
        if courier.leg != Leg::AtRestaurant || courier.pickup_scheduled {
            return;
        }
        let ready = [courier.order, courier.second]
            .into_iter()
            .flatten()
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
