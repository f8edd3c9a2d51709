//! The matcher handle and its timer loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clock::{Clock, Ids, SystemClock};

use engine::{
    DriverId, DriverStatus, Fence, Handle, NearbyDriver, Offer, OfferEnd, OfferId, OrderId,
    OrderTrack, StatusFilter, Unassigned,
};
use parking_lot::Mutex;
use routing::UNREACHABLE;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::assign::{
    BatchConfig, Batched, CrowFly, DriverIdx, Free, Policy, RoadTimes, TravelTimes, Waiting,
};
use crate::book::{Book, Dispatch, OfferError, OfferState, Timer};
use crate::eta::{ReadyTimes, RoadEta};
use crate::fence::Gate;
use crate::prep::{PrepConfig, PrepEstimator};

/// Which dispatch policy chooses drivers (`matcher.policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Each order is offered at once to its nearest free driver, one order
    /// at a time (the first version's behaviour).
    #[default]
    Greedy,
    /// Every `batch_window_s`, one min-cost assignment over all waiting
    /// orders and free drivers ([`crate::assign::Batched`]); an order
    /// arriving while the matcher is idle is offered at once.
    Batched,
}

/// The matcher's settings (`[matcher]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Silence for this long counts as a decline. Default 60 s: a courier
    /// on a bike or scooter has to stop safely before touching the phone,
    /// and courier apps give 30 to 60 s; a lapse costs little now that the
    /// order comes back after `reoffer_cooldown_s`.
    pub offer_timeout_s: u64,
    /// First search radius around the pickup.
    pub initial_radius_m: f64,
    /// The radius doubles up to this; beyond it the order waits.
    pub max_radius_m: f64,
    /// How often an order nobody could take searches again (sooner when a
    /// driver becomes available).
    pub retry_interval_ms: u64,
    /// A driver who declined an order or let its offer lapse is not offered
    /// that order again for this long; after it, once available (pinging,
    /// on duty, free), they are, so an order with one driver near is never
    /// stranded. Long enough for the order to try everyone else first.
    /// 0: no cooldown, a driver who declined may be offered the order again
    /// at once (the nearest one is, if nobody else is free).
    pub reoffer_cooldown_s: u64,
    /// Raise an order to dispatchers once this many offers of it ended
    /// without an accept (0: never by count). The matcher keeps offering it.
    pub unassigned_after_offers: u32,
    /// Raise an order to dispatchers once it has waited this long for a
    /// driver (0: never by time). Three minutes: well inside a restaurant's
    /// preparation time, so a dispatcher can still find someone.
    pub unassigned_after_s: u64,
    /// `greedy` (default: today's behaviour, kept until the city simulator
    /// proves the batched policy on this code) or `batched`.
    pub policy: PolicyKind,
    /// Batched: seconds between batches; orders that arrive while a batch
    /// is pending wait for it, unmatched ones for the next. 0 counts as 1.
    /// 2 s: long enough to see several orders and drivers together, short
    /// against a pickup time of minutes.
    pub batch_window_s: u64,
    /// Batched: candidate drivers per order, the nearest by the engine's
    /// index (then ranked by travel time); the solver's work grows with
    /// orders × candidates.
    pub batch_candidates: usize,
    /// Batched: age credit, thousandths of a second of travel per second
    /// waited; 500 means an order that waited two minutes accepts a driver
    /// one minute farther, so old orders are not starved by new ones.
    pub batch_age_weight_permille: u64,
    /// Batched: an order rather waits for a later batch than takes a
    /// driver farther than this (travel time after its age credit).
    pub batch_max_pickup_s: u64,
    /// Prep-aware timing: an order whose food will not be ready for a
    /// while is held until its best courier would reach the restaurant
    /// about when it is (travel time to the pickup ≥ remaining preparation
    /// − `prep_slack_s`), so couriers do not stand at the pass. The ready
    /// time comes with the dispatch request ([`Matcher::dispatch_ready_at`])
    /// or from the restaurant's history ([`Matcher::observe_prep`]); the
    /// order is released at once when it turns ready for pickup. Off by
    /// default until operators have tried it in `hexdash simulate`.
    pub prep_aware: bool,
    /// Prep-aware: the courier may arrive this long before the food is
    /// expected. 60 s covers the courier's answer (5–25 s) and estimates
    /// that run early, without much standing.
    pub prep_slack_s: u64,
    /// Prep-aware: the preparation estimate for a restaurant without
    /// enough history that declared none (accepted → ready for pickup;
    /// see [`Matcher::declare_prep`]). 10 min, the low end of
    /// usual kitchen times, so an unknown restaurant is not made to wait
    /// for its courier.
    pub prep_default_s: u64,
    /// Prep-aware: observed preparations a restaurant needs before its own
    /// median replaces what it declared (or `prep_default_s`).
    pub prep_min_samples: usize,
    /// Prep-aware: the latest observations per restaurant the median is
    /// taken over.
    pub prep_window: usize,
    /// A road graph (`.hxroads`, built by `hexdash-roads`) for travel times
    /// to the pickup in the batched policy and prep-aware holds, and for
    /// customer ETAs ([`Matcher::etas`]); positions it does not cover
    /// fall back to crow-fly. Unset: crow-fly everywhere (see README).
    pub roads: Option<PathBuf>,
    /// Arrival fences (`crate::arrivals`): a courier with an order who
    /// comes within this many metres of the restaurant (before pickup) or
    /// of the customer's door (after) raises `arrived_at_restaurant` /
    /// `arrived_at_customer`, once per order and stop. 50 m: a courier
    /// parks within a block of the door, and city GPS is good to 10–30 m.
    /// 0: no fences, no arrivals.
    pub arrival_radius_m: f64,
    /// Customer ETAs (`crate::eta`): an order's road ETA is recomputed at
    /// most this often per order (and when its status changes); in
    /// between it counts down. 10 s: a courier moves 50–150 m meanwhile,
    /// and a road query per watched order every 10 s stays small next to
    /// the pings.
    pub eta_interval_s: u64,
    /// Quotes before ordering (`crate::quote`): the courier's travel time
    /// to the restaurant assumed when no courier is available within
    /// `max_radius_m`. 5 minutes: a courier finishing a delivery nearby
    /// is typically free and there within that.
    pub quote_courier_default_s: u64,
    /// With `roads`: learn each road class's true speed from driven legs
    /// (courier → restaurant and restaurant → door, each ended by the
    /// courier's arrival fence, so it needs `arrival_radius_m` > 0) and
    /// measure with the learned speeds (`crate::speeds`). Bounded and
    /// smoothed; in memory only (a restart starts from the map's speeds).
    pub learn_speeds: bool,
    /// Learned speeds are put to use (a new road hierarchy, about a second
    /// for a city, built off the request path) after every this many legs.
    pub speed_relearn_legs: usize,
    /// Stacking: a courier carrying one order that is not yet picked up
    /// may be offered a second order (a stacked offer,
    /// `Offer::stacked_with`) from the same restaurant or from one on its
    /// way (picked up before or after the first, the first customer
    /// delivered first), when [`crate::stack::plan`] allows it: on road
    /// travel times, the expected ready times and the nearest free
    /// courier's arrival, the first customer's added delay stays within
    /// `stack_delay_bound_s`, and so does the second customer's against
    /// that free courier. Such a courier is preferred to a free one (that
    /// is the point: a free courier stays free). The store's accept then
    /// allows the second order (see the README). Off by default: the
    /// simulator measured it costing the second customers time
    /// (docs/DISPATCH.md, "Stacking").
    pub stacking: bool,
    /// Stacking: the bound on each customer's added delay, seconds (the
    /// first's against the courier alone, the second's against a fresh
    /// courier). 300: about the spread of a kitchen's preparation time.
    pub stack_delay_bound_s: u64,
}

impl Config {
    /// The batched policy's settings.
    pub fn batch(&self) -> BatchConfig {
        BatchConfig {
            k_candidates: self.batch_candidates.max(1),
            unmatched_cost_ms: self.batch_max_pickup_s.saturating_mul(1000),
            age_weight_permille: self.batch_age_weight_permille,
            batch_window_ms: self.batch_window().as_millis() as u64,
        }
    }

    /// The preparation estimator's settings.
    pub fn prep(&self) -> PrepConfig {
        PrepConfig {
            default_ms: self.prep_default_s.saturating_mul(1000),
            min_samples: self.prep_min_samples,
            window: self.prep_window,
        }
    }

    /// Time between batches, at least a second.
    fn batch_window(&self) -> Duration {
        Duration::from_secs(self.batch_window_s.max(1))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            offer_timeout_s: 60,
            initial_radius_m: 3_000.0,
            max_radius_m: 24_000.0,
            retry_interval_ms: 2_000,
            reoffer_cooldown_s: 60,
            unassigned_after_offers: 3,
            unassigned_after_s: 180,
            policy: PolicyKind::Greedy,
            batch_window_s: 2,
            batch_candidates: 8,
            batch_age_weight_permille: 500,
            batch_max_pickup_s: 20 * 60,
            prep_aware: false,
            prep_slack_s: 60,
            prep_default_s: 10 * 60,
            prep_min_samples: 5,
            prep_window: 20,
            roads: None,
            arrival_radius_m: crate::geofence::DEFAULT_RADIUS_M,
            eta_interval_s: 10,
            quote_courier_default_s: 300,
            learn_speeds: true,
            speed_relearn_legs: 200,
            stacking: false,
            stack_delay_bound_s: crate::stack::DEFAULT_MAX_DELAY_S,
        }
    }
}

/// Where the search for a driver stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchState {
    /// No offer is out: nobody free is near, or everyone near is cooling
    /// down after declining it.
    Searching,
    /// An offer is out and waits for its driver's answer.
    Offered,
}

/// An order the matcher is finding a driver for, as people see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchView {
    /// Whether an offer is out.
    pub state: DispatchState,
    /// Offers of the order that ended without an accept.
    pub attempts: u32,
    /// When the search started (this process's), Unix ms.
    pub since_ms: i64,
    /// When the order was raised to dispatchers, Unix ms; `None` while it
    /// has not been.
    pub unassigned_at_ms: Option<i64>,
    /// Prep-aware: when the food is expected to be ready, Unix ms (the
    /// first offer is held until a courier would arrive about then);
    /// `None` when the order is not held (prep-aware off, or the food is
    /// ready).
    pub ready_at_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("the order is not on the engine's order board")]
    UnknownOrder,
}

/// Candidates fetched per nearest query before filtering out drivers who
/// declined or hold another offer; doubled while all are filtered out.
const FIRST_CANDIDATES: usize = 16;
/// Stacking: busy couriers looked at per order, of the same kitchen and
/// again of others on the way (the nearest first); each costs up to seven
/// travel-time queries.
const STACK_CANDIDATES: usize = 8;
/// Upper bound on candidates per query: beyond this many unusable drivers
/// at one radius, widen the radius instead.
const MAX_CANDIDATES: usize = 4_096;
/// How long an ended offer is remembered, so a late answer gets "expired"
/// rather than "not found".
const ENDED_OFFER_MEMORY: Duration = Duration::from_secs(600);
/// A driver becoming available retries waiting orders at most this often:
/// at fleet scale availability changes constantly.
const SUPPLY_RETRY_MIN_GAP: Duration = Duration::from_millis(250);

/// Prep-aware: a held order (greedy) is looked at again at least this
/// often, since its nearest courier may be taken meanwhile.
const HOLD_RECHECK: Duration = Duration::from_secs(15);

/// Deadlines further ahead than this are as good as never; settings
/// beyond it are cut to it, since adding a huge duration to the clock
/// panics. About 30 years.
const NEVER: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// `now + after`, at most [`NEVER`] ahead.
fn deadline(now: Instant, after: Duration) -> Instant {
    // `NEVER` added to a monotonic clock (counting from boot, or at worst
    // from the epoch) does not overflow, so `now` itself is never returned.
    now.checked_add(after.min(NEVER)).unwrap_or(now)
}

/// Offers made and how they ended, by `outcome`.
const OFFERS_TOTAL: &str = "hexdash_offers_total";
/// Dispatches ended because their node no longer leads the order's
/// region (another node dispatches them now).
const FENCED_OUT_TOTAL: &str = "hexdash_matcher_dispatches_fenced_out_total";
/// Orders raised to dispatchers (counter) and raised now (gauge).
const UNASSIGNED_TOTAL: &str = "hexdash_orders_unassigned_total";
const UNASSIGNED: &str = "hexdash_orders_unassigned";
/// Orders in each batch (histogram), the solver's time per batch
/// (histogram, seconds) and orders a batch left waiting (gauge).
const BATCH_ORDERS: &str = "hexdash_matcher_batch_orders";
const BATCH_SOLVE_SECONDS: &str = "hexdash_matcher_batch_solve_seconds";
const BATCH_LEFT_WAITING: &str = "hexdash_matcher_batch_orders_left_waiting";

/// HELP text of the matcher's metrics (see [`crate::describe_metrics`]).
pub(crate) fn describe() {
    metrics::describe_counter!(
        OFFERS_TOTAL,
        "Offers of orders to drivers, by outcome (made, accepted, declined, expired)"
    );
    metrics::describe_counter!(
        UNASSIGNED_TOTAL,
        "Orders raised to dispatchers because no driver took them in time"
    );
    metrics::describe_gauge!(
        UNASSIGNED,
        "Orders raised to dispatchers that still have no driver"
    );
    metrics::describe_histogram!(
        BATCH_ORDERS,
        "Waiting orders in each batch of the batched policy"
    );
    metrics::describe_histogram!(
        BATCH_SOLVE_SECONDS,
        metrics::Unit::Seconds,
        "Time to compute one batch: candidates, travel times and the assignment"
    );
    metrics::describe_gauge!(
        crate::speeds::ROAD_TIME_FACTOR,
        "Learned travel-time factor per road class (actual ÷ map time; 1: the map's speed)"
    );
    metrics::describe_counter!(
        crate::speeds::SPEED_LEGS_TOTAL,
        "Driven legs (accept or pickup to the arrival fence) road speeds were learned from"
    );
    metrics::describe_counter!(
        FENCED_OUT_TOTAL,
        "Dispatches ended because this node no longer leads the order's region"
    );
    metrics::describe_gauge!(
        BATCH_LEFT_WAITING,
        "Orders the last batch left waiting for the next one"
    );
}

/// The shared handle: offers, answers, and the loop at the edge.
#[derive(Clone)]
pub struct Matcher {
    pub(crate) inner: Arc<Inner>,
    /// Wall-clock stamps (offer expiry, unassigned alerts) come from the
    /// app's injected clock ([`Matcher::with_clock`]); the timers stay on
    /// tokio's time, which tests pause.
    clock: Arc<dyn Clock>,
    /// Makes offer ids (UUIDv7 from `clock`).
    ids: Arc<Ids>,
    /// In a cluster, the node's leases: which regions it dispatches and
    /// under which token ([`Matcher::with_gate`]); `None` on one node.
    gate: Option<Arc<dyn Gate>>,
}

pub(crate) struct Inner {
    pub(crate) engine: Handle,
    pub(crate) config: Config,
    book: Mutex<Book<Instant>>,
    /// Wakes the loop when a new, possibly earlier, deadline exists.
    wake: Notify,
    /// The batched policy, when `config.policy` asks for it.
    batched: Option<Batched>,
    /// Road travel times for the batched policy, prep-aware holds, ETAs
    /// and quotes, with the learned speeds; crow-fly without.
    pub(crate) roads: Option<Arc<crate::speeds::Roads>>,
    /// Preparation times per restaurant (prep-aware timing).
    pub(crate) prep: Mutex<PrepEstimator>,
    /// When each open order's food is expected ready, for the customer
    /// ETAs (`crate::eta`); dropped once it is ready, picked up or closed.
    ready_times: ReadyTimes,
    /// The customer ETA source, made by the first [`Matcher::etas`]: a
    /// stacked accept drops both orders' cached ETAs from it (their round
    /// changed).
    etas: std::sync::OnceLock<Arc<RoadEta>>,
}

impl Matcher {
    /// A matcher with crow-fly travel times.
    pub fn new(engine: Handle, config: Config) -> Self {
        Self::with_router(engine, config, None)
    }

    /// A matcher whose batched policy measures travel to the pickup on
    /// `router`'s roads (the caller loads `config.roads`: the matcher does
    /// no file I/O).
    pub fn with_router(
        engine: Handle,
        config: Config,
        router: Option<Arc<routing::Router>>,
    ) -> Self {
        describe();
        let batched = (config.policy == PolicyKind::Batched).then(|| Batched {
            config: config.batch(),
        });
        let prep = Mutex::new(PrepEstimator::new(config.prep()));
        let roads = router.map(|r| {
            Arc::new(crate::speeds::Roads::new(
                r,
                config.learn_speeds,
                config.speed_relearn_legs,
            ))
        });
        Self {
            inner: Arc::new(Inner {
                engine,
                config,
                book: Mutex::new(Book::new()),
                wake: Notify::new(),
                batched,
                roads,
                prep,
                ready_times: ReadyTimes::default(),
                etas: std::sync::OnceLock::new(),
            }),
            clock: Arc::new(SystemClock),
            ids: Arc::new(Ids::new(Arc::new(SystemClock))),
            gate: None,
        }
    }

    /// The same matcher dispatching only the orders of regions `gate` says
    /// this node leads, each under its region's fencing token (a cluster;
    /// see [`crate::fence`]). Call before cloning.
    pub fn with_gate(mut self, gate: Arc<dyn Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Whether the dispatch of `order_id` was made under a token this node
    /// no longer holds: then it is ended (the new leader dispatches the
    /// order) and no offer is made. An offer already out stays until it is
    /// answered or lapses: an accept of it carries the old token, which
    /// the database refuses.
    fn fenced_out(&self, book: &mut Book<Instant>, order_id: OrderId, now_ms: i64) -> bool {
        let (Some(gate), Some(fence)) = (
            &self.gate,
            book.dispatches.get(&order_id).and_then(|d| d.fence),
        ) else {
            return false;
        };
        if gate.is_current(&fence) {
            return false;
        }
        self.end_dispatch(book, order_id, now_ms, "region lost");
        metrics::counter!(FENCED_OUT_TOTAL).increment(1);
        true
    }

    /// The same matcher stamping offers and alerts with `clock` (the app's
    /// injected clock; the system clock by default). Call before cloning.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.ids = Arc::new(Ids::new(clock.clone()));
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The road router to measure with now (with the learned speeds);
    /// `None` without a graph.
    pub fn router(&self) -> Option<Arc<routing::Router>> {
        self.inner.roads.as_ref().map(|r| r.current())
    }

    /// The road graph and its learned speeds; `None` without a graph.
    pub fn roads(&self) -> Option<&Arc<crate::speeds::Roads>> {
        self.inner.roads.as_ref()
    }

    /// Starts offering a tracked order to drivers. Idempotent: an order
    /// already being dispatched, already assigned or closed is left alone.
    /// With `prep_aware`, the food is expected after the restaurant's
    /// estimated preparation time from now (the caller dispatches when the
    /// restaurant accepts); [`Matcher::dispatch_ready_at`] says when.
    pub fn dispatch(&self, order_id: OrderId, now_ms: i64) -> Result<(), DispatchError> {
        self.dispatch_ready_at(order_id, now_ms, None)
    }

    /// [`Matcher::dispatch`], with when the food is expected to be ready
    /// (Unix ms: the restaurant's word, or its acceptance plus its
    /// estimate); `None`: from its history, counted from now. `prep_aware`
    /// matchers hold the offer until the best courier would arrive about
    /// then; every matcher keeps it for the customer ETAs
    /// ([`Matcher::etas`]) until the food is ready.
    pub fn dispatch_ready_at(
        &self,
        order_id: OrderId,
        now_ms: i64,
        ready_at_ms: Option<i64>,
    ) -> Result<(), DispatchError> {
        self.dispatch_excluding(order_id, now_ms, ready_at_ms, None)
    }

    /// [`Matcher::dispatch_ready_at`], with `excluded` (a driver a
    /// dispatcher took the order from) cooling down for the order from
    /// the start, as if it had declined it: the order goes to someone else
    /// first and comes back to that driver only after
    /// `reoffer_cooldown_s`, if nobody else took it.
    pub fn dispatch_excluding(
        &self,
        order_id: OrderId,
        now_ms: i64,
        ready_at_ms: Option<i64>,
        excluded: Option<DriverId>,
    ) -> Result<(), DispatchError> {
        let track = self
            .inner
            .engine
            .order(order_id)
            .ok_or(DispatchError::UnknownOrder)?;
        if track.driver_id.is_some() || track.status.is_terminal() {
            return Ok(());
        }
        // In a cluster, only the region's leader dispatches (another node's
        // order is noted: this node tries to take its region).
        let fence = match &self.gate {
            Some(gate) => match gate.fence_for(track.pickup) {
                Some(fence) => Some(fence),
                None => return Ok(()),
            },
            None => None,
        };
        let mut book = self.inner.book.lock();
        if let Some(existing) = book.dispatches.get(&order_id) {
            if existing.fence == fence {
                return Ok(());
            }
            // Dispatched under an older lease of the region: start again
            // under the new token (a pending offer of the old one is
            // withdrawn, its accept would be refused anyway).
            let stale = existing.pending_offer;
            self.end_dispatch(&mut book, order_id, now_ms, "region taken again");
            if let Some(offer_id) = stale
                && let Some(offer) = book.close_offer(
                    offer_id,
                    OfferState::Withdrawn,
                    Instant::now() + ENDED_OFFER_MEMORY,
                )
            {
                self.inner
                    .engine
                    .publish_offer_end(offer_id, offer.driver_id, OfferEnd::Withdrawn);
            }
        }
        let now = Instant::now();
        let mut dispatch = Dispatch::new(track.pickup, track.dropoff, now, now_ms);
        dispatch.fence = fence;
        if let Some(driver_id) = excluded {
            let cooldown = Duration::from_secs(self.inner.config.reoffer_cooldown_s);
            dispatch.excluded.insert(driver_id, deadline(now, cooldown));
        }
        let cooking = !matches!(
            track.status,
            engine::OrderStatus::ReadyForPickup | engine::OrderStatus::PickedUp
        );
        let ready_ms = ready_at_ms.or_else(|| {
            self.inner.config.prep_aware.then(|| {
                let est = self.inner.prep.lock().estimate_ms(track.restaurant_id);
                now_ms.saturating_add(i64::try_from(est).unwrap_or(i64::MAX))
            })
        });
        if let Some(ready_ms) = ready_ms.filter(|_| cooking) {
            self.inner.ready_times.lock().insert(order_id, ready_ms);
            if self.inner.config.prep_aware {
                let ahead = u64::try_from(ready_ms.saturating_sub(now_ms)).unwrap_or(0);
                dispatch.ready_at = Some(deadline(now, Duration::from_millis(ahead)));
                dispatch.ready_at_ms = Some(ready_ms);
            }
        }
        book.dispatches.insert(order_id, dispatch);
        if self.inner.config.unassigned_after_s > 0 {
            let after = Duration::from_secs(self.inner.config.unassigned_after_s);
            book.schedule_raise(order_id, deadline(now, after));
        }
        self.order_waits(&mut book, order_id, now_ms, now);
        drop(book);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Records that an order of `restaurant` went from accepted
    /// (`accepted_at_ms`) to ready for pickup (`ready_at_ms`), for the
    /// prep-aware estimates. Durations that are not positive are ignored.
    pub fn observe_prep(
        &self,
        restaurant: engine::RestaurantId,
        accepted_at_ms: i64,
        ready_at_ms: i64,
    ) {
        if let Ok(ms) = u64::try_from(ready_at_ms.saturating_sub(accepted_at_ms))
            && ms > 0
        {
            self.inner.prep.lock().observe(restaurant, ms);
        }
    }

    /// Records what `restaurant` says its preparation takes: the estimate
    /// until it has `prep_min_samples` observations of its own.
    pub fn declare_prep(&self, restaurant: engine::RestaurantId, prep_s: u32) {
        self.inner
            .prep
            .lock()
            .declare(restaurant, u64::from(prep_s).saturating_mul(1000));
    }

    /// The restaurant's expected preparation time now, ms.
    pub fn prep_estimate_ms(&self, restaurant: engine::RestaurantId) -> u64 {
        self.inner.prep.lock().estimate_ms(restaurant)
    }

    /// Records when `order_id`'s food is expected ready (Unix ms) for the
    /// customer ETAs, for an order not dispatched here (one restored with
    /// its driver). Dispatches record theirs themselves.
    pub fn expect_ready(&self, order_id: OrderId, ready_at_ms: i64) {
        self.inner.ready_times.lock().insert(order_id, ready_at_ms);
    }

    /// Customer ETAs on this matcher's roads and ready times, on its clock
    /// (see [`crate::eta`]; call after [`Matcher::with_clock`]): one source
    /// per matcher, the same on every call, so its users share its cache.
    pub fn etas(&self) -> Arc<RoadEta> {
        self.inner
            .etas
            .get_or_init(|| {
                let interval_ms = self.inner.config.eta_interval_s.saturating_mul(1000);
                Arc::new(
                    RoadEta::new(
                        self.inner.roads.clone(),
                        self.clock.clone(),
                        self.inner.ready_times.clone(),
                        i64::try_from(interval_ms).unwrap_or(i64::MAX),
                    )
                    .with_engine(self.inner.engine.clone()),
                )
            })
            .clone()
    }

    /// The food of `order_id` is ready: a held order is offered now.
    fn food_ready(&self, order_id: OrderId) {
        let now = Instant::now();
        let mut book = self.inner.book.lock();
        let Some(d) = book.dispatches.get_mut(&order_id) else {
            return;
        };
        d.ready_at_ms = None;
        if d.ready_at.take().is_none() || d.pending_offer.is_some() {
            return;
        }
        self.order_waits(&mut book, order_id, self.clock.now_ms(), now);
    }

    /// Accepts a pending offer: the order is assigned to the driver in the
    /// engine, atomically with the checks.
    pub fn accept(
        &self,
        offer_id: OfferId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<OrderTrack, OfferError> {
        self.accept_fenced(offer_id, driver_id, now_ms)
            .map(|(track, _)| track)
    }

    /// [`Matcher::accept`], with the fencing token the order was
    /// dispatched under (`None` on one node): the store must record the
    /// assignment only while it is still the region's epoch.
    pub fn accept_fenced(
        &self,
        offer_id: OfferId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<(OrderTrack, Option<Fence>), OfferError> {
        let mut book = self.inner.book.lock();
        let offer = book.pending_for(offer_id, driver_id)?;
        let (order_id, stacked_with) = (offer.order_id, offer.stacked_with);
        let stacked = stacked_with.is_some();
        let fence = book.dispatches.get(&order_id).and_then(|d| d.fence);
        let now = Instant::now();
        // A stacked offer takes the driver's second slot (the engine checks
        // the first is still at its kitchen); a plain one needs a free
        // driver. Either way the order gets one driver, under the engine's
        // lock.
        let assigned = if stacked {
            self.inner
                .engine
                .assign_stacked(order_id, driver_id, now_ms)
        } else {
            self.inner.engine.assign(order_id, driver_id, now_ms)
        };
        match assigned {
            Ok(track) => {
                if let (Some(first), Some(etas)) = (stacked_with, self.inner.etas.get()) {
                    // One round for both now: their ETAs change at once.
                    etas.forget(first);
                    etas.forget(order_id);
                }
                if let (Some(roads), Some(first)) = (&self.inner.roads, stacked_with) {
                    // A stacking courier's drives pass the other stop: not
                    // legs to learn speeds from (the first's included).
                    roads.order_closed(first);
                } else if let (Some(roads), Some(fix)) = (
                    &self.inner.roads,
                    self.inner.engine.driver(driver_id).and_then(|v| v.fix),
                ) {
                    roads.leg_started(
                        order_id,
                        fix.position,
                        track.pickup,
                        now_ms,
                        engine::Arrival::ArrivedAtRestaurant,
                    );
                }
                book.close_offer(offer_id, OfferState::Accepted, now + ENDED_OFFER_MEMORY);
                self.end_dispatch(&mut book, order_id, now_ms, "assigned");
                metrics::counter!(OFFERS_TOTAL, "outcome" => "accepted").increment(1);
                Ok((track, fence))
            }
            Err(e @ engine::Error::DriverBusy(_)) => {
                // The driver took another order meanwhile: as a decline.
                self.end_unanswered(&mut book, offer_id, OfferState::Declined, now, now_ms);
                self.order_waits(&mut book, order_id, now_ms, now);
                drop(book);
                self.inner.wake.notify_one();
                Err(OfferError::Assign(e))
            }
            Err(e) => {
                // The order was assigned another way or closed: stop.
                book.close_offer(offer_id, OfferState::Withdrawn, now + ENDED_OFFER_MEMORY);
                self.end_dispatch(&mut book, order_id, now_ms, "no longer needs a driver");
                Err(OfferError::Assign(e))
            }
        }
    }

    /// Declines a pending offer; the order moves on to the next driver.
    pub fn decline(
        &self,
        offer_id: OfferId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<(), OfferError> {
        let mut book = self.inner.book.lock();
        let order_id = book.pending_for(offer_id, driver_id)?.order_id;
        let now = Instant::now();
        self.end_unanswered(&mut book, offer_id, OfferState::Declined, now, now_ms);
        self.order_waits(&mut book, order_id, now_ms, now);
        drop(book);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Stops dispatching an order (cancelled, or assigned another way); a
    /// pending offer is withdrawn and its driver told.
    pub fn withdraw(&self, order_id: OrderId) {
        self.inner.ready_times.lock().remove(&order_id);
        let mut book = self.inner.book.lock();
        let Some(dispatch) =
            self.end_dispatch(&mut book, order_id, self.clock.now_ms(), "withdrawn")
        else {
            return;
        };
        let now = Instant::now();
        if let Some(offer_id) = dispatch.pending_offer
            && let Some(offer) =
                book.close_offer(offer_id, OfferState::Withdrawn, now + ENDED_OFFER_MEMORY)
        {
            self.inner
                .engine
                .publish_offer_end(offer_id, offer.driver_id, OfferEnd::Withdrawn);
        }
    }

    /// Withdraws the pending offer `driver_id` holds, if any (a dispatcher
    /// set the driver offline): the driver is told, cools down for that
    /// order as after a decline, and the order moves on to the next
    /// driver. The order it was for.
    pub fn withdraw_offer_to(&self, driver_id: DriverId, now_ms: i64) -> Option<OrderId> {
        let mut book = self.inner.book.lock();
        let offer_id = *book.held_by.get(&driver_id)?;
        let now = Instant::now();
        let offer = self.end_unanswered(&mut book, offer_id, OfferState::Withdrawn, now, now_ms)?;
        self.order_waits(&mut book, offer.order_id, now_ms, now);
        drop(book);
        self.inner
            .engine
            .publish_offer_end(offer_id, driver_id, OfferEnd::Withdrawn);
        self.inner.wake.notify_one();
        Some(offer.order_id)
    }

    /// The state of an offer, while it is remembered.
    pub fn offer_state(&self, offer_id: OfferId) -> Option<(Arc<Offer>, OfferState)> {
        self.inner
            .book
            .lock()
            .offers
            .get(&offer_id)
            .map(|r| (r.offer.clone(), r.state))
    }

    /// The pending offer of an order, if any.
    pub fn pending_offer(&self, order_id: OrderId) -> Option<Arc<Offer>> {
        let book = self.inner.book.lock();
        let id = book.dispatches.get(&order_id)?.pending_offer?;
        book.offers.get(&id).map(|r| r.offer.clone())
    }

    /// Orders being dispatched (waiting or with a pending offer).
    pub fn dispatching(&self) -> usize {
        self.inner.book.lock().dispatches.len()
    }

    /// Where the search for a driver for `order_id` stands; `None` when the
    /// matcher is not looking (not yet accepted, assigned, or closed).
    pub fn dispatch_state(&self, order_id: OrderId) -> Option<DispatchView> {
        let book = self.inner.book.lock();
        let d = book.dispatches.get(&order_id)?;
        Some(DispatchView {
            state: if d.pending_offer.is_some() {
                DispatchState::Offered
            } else {
                DispatchState::Searching
            },
            attempts: d.attempts,
            since_ms: d.since_ms,
            unassigned_at_ms: d.raised_at_ms,
            ready_at_ms: d.ready_at_ms,
        })
    }

    /// Fires offer timeouts and retries until `shutdown`. Subscribes to the
    /// engine's changes when called, not at the first poll, so a driver
    /// becoming available between spawning the loop and its first turn is
    /// not missed.
    pub fn run(self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        let changes = self.inner.engine.subscribe_changes();
        self.run_with(changes, shutdown)
    }

    async fn run_with(
        self,
        mut changes: engine::Receiver<engine::Change>,
        shutdown: CancellationToken,
    ) {
        let mut last_supply_retry = Instant::now() - SUPPLY_RETRY_MIN_GAP;
        loop {
            let next = self.inner.book.lock().next_deadline();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = sleep => {
                    let now = Instant::now();
                    if self.fire_due(now) {
                        self.run_batch(now);
                    }
                }
                _ = self.inner.wake.notified() => {}
                change = changes.recv_direct() => match change {
                    Ok(engine::Change::DriverStatus { status: DriverStatus::Available, .. })
                    | Err(engine::RecvError::Overflowed(_)) => {
                        let now = Instant::now();
                        if now.duration_since(last_supply_retry) >= SUPPLY_RETRY_MIN_GAP {
                            last_supply_retry = now;
                            self.retry_waiting(now);
                        }
                    }
                    Ok(engine::Change::Order(track))
                        if track.status == engine::OrderStatus::ReadyForPickup =>
                    {
                        self.inner.ready_times.lock().remove(&track.order_id);
                        self.food_ready(track.order_id);
                    }
                    Ok(engine::Change::Order(track))
                        if track.status == engine::OrderStatus::PickedUp
                            || track.status.is_terminal() =>
                    {
                        self.inner.ready_times.lock().remove(&track.order_id);
                        if let Some(roads) = &self.inner.roads {
                            // A stacking courier's drive to a door may
                            // pass the other door first: not a leg to
                            // learn speeds from.
                            let stacked = track.driver_id.is_some_and(|d| {
                                self.inner
                                    .engine
                                    .driver(d)
                                    .is_some_and(|v| v.stacked_order.is_some())
                            });
                            if track.status == engine::OrderStatus::PickedUp && stacked {
                                roads.order_closed(track.order_id);
                            } else if track.status == engine::OrderStatus::PickedUp {
                                roads.leg_started(
                                    track.order_id,
                                    track.pickup,
                                    track.dropoff,
                                    track.updated_at_ms,
                                    engine::Arrival::ArrivedAtCustomer,
                                );
                            } else {
                                roads.order_closed(track.order_id);
                            }
                        }
                    }
                    Ok(engine::Change::Arrived(a)) => {
                        if let Some(roads) = &self.inner.roads {
                            roads.arrived(a.order_id, a.arrival, a.at_ms);
                        }
                    }
                    Ok(_) => {}
                    Err(engine::RecvError::Closed) => return,
                },
            }
        }
    }

    /// Fires every timer due at `now`; whether a batch is due (the caller
    /// runs it outside the book's lock).
    fn fire_due(&self, now: Instant) -> bool {
        let now_ms = self.clock.now_ms();
        let mut batch_due = false;
        let mut book = self.inner.book.lock();
        for timer in book.take_due(now) {
            match timer {
                Timer::OfferDeadline(offer_id) => {
                    let Some(offer) =
                        self.end_unanswered(&mut book, offer_id, OfferState::Expired, now, now_ms)
                    else {
                        continue; // answered before the deadline
                    };
                    self.inner.engine.publish_offer_end(
                        offer_id,
                        offer.driver_id,
                        OfferEnd::Expired,
                    );
                    self.order_waits(&mut book, offer.order_id, now_ms, now);
                }
                Timer::Retry(order_id) => {
                    let due = book
                        .dispatches
                        .get(&order_id)
                        .and_then(|d| d.retry_at)
                        .is_some_and(|at| at <= now);
                    if due {
                        self.offer_next(&mut book, order_id, now_ms, now);
                    }
                }
                Timer::Forget(offer_id) => book.forget(offer_id),
                // Checks the time itself: raising is decided there alone
                // (ending a dispatch removes its timer).
                Timer::Raise(order_id) => self.raise_if_stranded(&mut book, order_id, now, now_ms),
                Timer::Batch => batch_due |= book.take_batch(now),
            }
        }
        batch_due
    }

    fn retry_waiting(&self, now: Instant) {
        let now_ms = self.clock.now_ms();
        let mut book = self.inner.book.lock();
        for order_id in book.waiting_orders() {
            self.order_waits(&mut book, order_id, now_ms, now);
        }
    }

    /// `order_id` has no pending offer and needs one. Greedy: offered at
    /// once. Batched: offered at once when the matcher is idle (no batch
    /// pending and no other order waiting), which opens a window so a
    /// burst that follows is batched; otherwise it waits for the pending
    /// batch.
    fn order_waits(&self, book: &mut Book<Instant>, order_id: OrderId, now_ms: i64, now: Instant) {
        if self.inner.batched.is_none() {
            self.offer_next(book, order_id, now_ms, now);
            return;
        }
        if book.batch_at.is_none() && book.waiting_up_to(2) == 1 {
            self.offer_next(book, order_id, now_ms, now);
        }
        book.schedule_batch(deadline(now, self.inner.config.batch_window()));
    }

    /// Solves one batch: every waiting order, its candidates (the nearest
    /// usable drivers by the engine's index), travel times and the policy's
    /// assignment, then offers through the book. The solve runs outside the
    /// book's lock, so answers are not held up by it; each pair is checked
    /// again under the lock before its offer (the order still waits, the
    /// driver is still available, holds no offer and is not cooling down
    /// for it). Orders left over wait for the next window.
    fn run_batch(&self, now: Instant) {
        let Some(policy) = self.inner.batched else {
            return;
        };
        let now_ms = self.clock.now_ms();
        let k = self.inner.config.batch_candidates.max(1);
        let started = std::time::Instant::now();
        let mut order_ids: Vec<OrderId> = Vec::new();
        let mut orders: Vec<Waiting> = Vec::new();
        let mut driver_ids: Vec<DriverId> = Vec::new();
        let mut drivers: Vec<Free> = Vec::new();
        let mut candidates: Vec<Vec<DriverIdx>> = Vec::new();
        {
            let mut book = self.inner.book.lock();
            let mut waiting: Vec<(Instant, OrderId)> = book
                .dispatches
                .iter()
                .filter(|(_, d)| d.pending_offer.is_none())
                .map(|(&id, d)| (d.started, id))
                .collect();
            // Oldest first, so ties in the solver favour them and runs repeat.
            waiting.sort_unstable();
            // Stacking first, as greedy does: an order a courier bound for
            // its kitchen can take along gets that courier's offer and
            // leaves the solve (such couriers are busy, so no candidate of
            // it either).
            if self.inner.config.stacking {
                waiting.retain(|&(_, order_id)| {
                    match self.find_stacker(&book, order_id, now, now_ms) {
                        Some((driver_id, first)) => {
                            self.open_offer(
                                &mut book,
                                order_id,
                                driver_id,
                                Some(first),
                                now_ms,
                                now,
                            );
                            false
                        }
                        None => true,
                    }
                });
            }
            let mut index: rustc_hash::FxHashMap<DriverId, DriverIdx> = Default::default();
            for (started_at, order_id) in waiting {
                let Some(d) = book.dispatches.get(&order_id) else {
                    continue;
                };
                let cands = self
                    .find_drivers(&book, order_id, now, k)
                    .into_iter()
                    .map(|n| {
                        *index.entry(n.driver_id).or_insert_with(|| {
                            driver_ids.push(n.driver_id);
                            drivers.push(Free {
                                position: to_routing(n.position),
                            });
                            drivers.len() - 1
                        })
                    })
                    .collect();
                order_ids.push(order_id);
                orders.push(Waiting {
                    pickup: to_routing(d.pickup),
                    age_ms: now.duration_since(started_at).as_millis() as u64,
                    hold_ms: self.hold_ms(d, now),
                });
                candidates.push(cands);
            }
        }
        if orders.is_empty() {
            metrics::gauge!(BATCH_LEFT_WAITING).set(0.0);
            return;
        }
        let pairs = match self.router() {
            Some(router) => policy.assign_among(
                &orders,
                &drivers,
                &candidates,
                &RoadTimes {
                    router: router.as_ref(),
                },
            ),
            None => policy.assign_among(&orders, &drivers, &candidates, &CrowFly::default()),
        };
        metrics::histogram!(BATCH_ORDERS).record(orders.len() as f64);
        metrics::histogram!(BATCH_SOLVE_SECONDS).record(started.elapsed().as_secs_f64());

        let mut book = self.inner.book.lock();
        for (o, d) in pairs {
            let (order_id, driver_id) = (order_ids[o], driver_ids[d]);
            let still_free = book
                .dispatches
                .get(&order_id)
                .is_some_and(|x| x.pending_offer.is_none() && x.may_offer(driver_id, now))
                && !book.held_by.contains_key(&driver_id)
                && self
                    .inner
                    .engine
                    .driver(driver_id)
                    .is_some_and(|v| v.status == DriverStatus::Available);
            if still_free {
                self.open_offer(&mut book, order_id, driver_id, None, now_ms, now);
            }
        }
        let left = book.waiting_up_to(usize::MAX);
        metrics::gauge!(BATCH_LEFT_WAITING).set(left as f64);
        if left > 0 {
            book.schedule_batch(deadline(now, self.inner.config.batch_window()));
        }
    }

    /// Ends a pending offer its driver declined or let lapse: the attempt
    /// counts (and is counted in `hexdash_offers_total` by `state`), the
    /// driver cools down for this order, and the order may now be raised to
    /// dispatchers.
    fn end_unanswered(
        &self,
        book: &mut Book<Instant>,
        offer_id: OfferId,
        state: OfferState,
        now: Instant,
        now_ms: i64,
    ) -> Option<Arc<Offer>> {
        let cooldown = Duration::from_secs(self.inner.config.reoffer_cooldown_s);
        let offer = book.close_offer(offer_id, state, now + ENDED_OFFER_MEMORY)?;
        book.cool_down(&offer, deadline(now, cooldown));
        // Here, with the attempt, so the metric and the attempts agree
        // (a decline, a lapse, or an accept that found the driver busy).
        metrics::counter!(OFFERS_TOTAL, "outcome" => state.as_str()).increment(1);
        self.raise_if_stranded(book, offer.order_id, now, now_ms);
        Some(offer)
    }

    /// Raises `order_id` to dispatchers (once) when so many offers of it
    /// ended without an accept, or it has waited so long: a WARN line, the
    /// metrics, and the news on the engine's change stream (the gateway
    /// shows it to dispatchers watching the pickup's area).
    fn raise_if_stranded(
        &self,
        book: &mut Book<Instant>,
        order_id: OrderId,
        now: Instant,
        now_ms: i64,
    ) {
        let config = &self.inner.config;
        let Some(d) = book.dispatches.get_mut(&order_id) else {
            return;
        };
        if d.raised_at_ms.is_some() {
            return;
        }
        let waited = now.duration_since(d.started);
        let by_count =
            config.unassigned_after_offers > 0 && d.attempts >= config.unassigned_after_offers;
        let by_time = config.unassigned_after_s > 0
            && waited >= Duration::from_secs(config.unassigned_after_s);
        if !by_count && !by_time {
            return;
        }
        d.raised_at_ms = Some(now_ms);
        tracing::warn!(
            %order_id,
            attempts = d.attempts,
            waited_s = waited.as_secs(),
            "no driver has taken the order: raised to dispatchers (offers continue)"
        );
        metrics::counter!(UNASSIGNED_TOTAL).increment(1);
        metrics::gauge!(UNASSIGNED).increment(1.0);
        self.inner
            .engine
            .publish_unassigned(unassigned(order_id, d, now_ms, false));
    }

    /// Stops dispatching `order_id`; a raised order is lowered again and
    /// dispatchers are told. Returns what the dispatch held.
    fn end_dispatch(
        &self,
        book: &mut Book<Instant>,
        order_id: OrderId,
        now_ms: i64,
        why: &'static str,
    ) -> Option<Dispatch<Instant>> {
        let d = book.end_dispatch(order_id)?;
        if d.raised_at_ms.is_some() {
            tracing::info!(%order_id, attempts = d.attempts, outcome = why, "unassigned order resolved");
            metrics::gauge!(UNASSIGNED).decrement(1.0);
            self.inner
                .engine
                .publish_unassigned(unassigned(order_id, &d, now_ms, true));
        }
        Some(d)
    }

    /// Offers `order_id` to the nearest available driver who is not cooling
    /// down after declining it and holds no other offer, widening the
    /// radius; if there is none, schedules a retry (at the latest when the
    /// first cooldown ends).
    fn offer_next(&self, book: &mut Book<Instant>, order_id: OrderId, now_ms: i64, now: Instant) {
        if self.fenced_out(book, order_id, now_ms) {
            return;
        }
        let Some(dispatch) = book.dispatches.get(&order_id) else {
            return;
        };
        if dispatch.pending_offer.is_some() {
            return;
        }
        let cooled = dispatch.next_cooldown_end(now);
        let hold_ms = self.hold_ms(dispatch, now);
        let pickup = dispatch.pickup;
        // Stacking first: a courier already bound for this kitchen takes
        // the order along (no hold: they are on their way anyway).
        if let Some((driver_id, first)) = self.find_stacker(book, order_id, now, now_ms) {
            self.open_offer(book, order_id, driver_id, Some(first), now_ms, now);
            return;
        }
        let nearest = self.find_drivers(book, order_id, now, 1).first().copied();
        if let Some(n) = nearest
            && hold_ms > 0
        {
            let travel_ms = self.travel_ms(n.position, pickup);
            if travel_ms < hold_ms {
                // Too early: even the nearest courier would stand at the
                // pass. Look again when they would not, or sooner, since
                // the nearest may be taken meanwhile (then the next one,
                // farther, may have to leave earlier). The batched policy
                // looks again at every batch.
                if self.inner.batched.is_none() {
                    let wait = Duration::from_millis(hold_ms - travel_ms).min(HOLD_RECHECK);
                    book.schedule_retry(order_id, deadline(now, wait));
                }
                return;
            }
        }
        let Some(driver_id) = nearest.map(|n| n.driver_id) else {
            if self.inner.batched.is_some() {
                // The pending batch retries every waiting order.
                book.schedule_batch(deadline(now, self.inner.config.batch_window()));
                return;
            }
            let mut at = deadline(
                now,
                Duration::from_millis(self.inner.config.retry_interval_ms),
            );
            if let Some(cooled) = cooled {
                at = at.min(cooled);
            }
            book.schedule_retry(order_id, at);
            return;
        };
        self.open_offer(book, order_id, driver_id, None, now_ms, now);
    }

    /// Offers `order_id` (waiting, no pending offer) to `driver_id` (free,
    /// or with `stacked_with` the one order it carries, holding no offer):
    /// the one place offers are made, for every policy.
    fn open_offer(
        &self,
        book: &mut Book<Instant>,
        order_id: OrderId,
        driver_id: DriverId,
        stacked_with: Option<OrderId>,
        now_ms: i64,
        now: Instant,
    ) {
        if self.fenced_out(book, order_id, now_ms) {
            return;
        }
        let Some(dispatch) = book.dispatches.get(&order_id) else {
            return;
        };
        let (pickup, dropoff) = (dispatch.pickup, dispatch.dropoff);
        let timeout = Duration::from_secs(self.inner.config.offer_timeout_s).min(NEVER);
        let offer = Arc::new(Offer {
            offer_id: self.ids.next(),
            order_id,
            driver_id,
            pickup,
            dropoff,
            expires_at_ms: now_ms
                .saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)),
            relayed: false,
            stacked_with,
        });
        book.open_offer(offer.clone(), deadline(now, timeout));
        metrics::counter!(OFFERS_TOTAL, "outcome" => "made").increment(1);
        self.inner.engine.publish_offer(offer);
    }

    /// Prep-aware: how long the order's offer should still be held for a
    /// courier who is `0` ms away, i.e. the food's remaining preparation
    /// less `prep_slack_s`; 0 when it is not held.
    fn hold_ms(&self, d: &Dispatch<Instant>, now: Instant) -> u64 {
        let Some(ready_at) = d.ready_at else {
            return 0;
        };
        let slack = Duration::from_secs(self.inner.config.prep_slack_s);
        ready_at
            .saturating_duration_since(now)
            .saturating_sub(slack)
            .as_millis() as u64
    }

    /// Travel time from `from` to `to`, ms: on the roads with a router
    /// (crow-fly where they do not reach), crow-fly without.
    fn travel_ms(&self, from: engine::LatLng, to: engine::LatLng) -> u64 {
        let (drivers, pickups, cands) = ([to_routing(from)], [to_routing(to)], [vec![0]]);
        let times = match self.router() {
            Some(router) => RoadTimes {
                router: router.as_ref(),
            }
            .times_ms(&drivers, &pickups, &cands),
            None => CrowFly::default().times_ms(&drivers, &pickups, &cands),
        };
        let t = times
            .first()
            .and_then(|row| row.first())
            .copied()
            .unwrap_or(UNREACHABLE);
        // No road: never "too early", so the order is not held on a guess.
        if t == UNREACHABLE {
            u64::MAX
        } else {
            u64::from(t)
        }
    }

    /// Stacking: the courier `order_id` should ride along with, and the
    /// order it carries. Candidates: busy couriers whose one order, not
    /// yet picked up, is from the same restaurant (within `max_radius_m`),
    /// then those near this order's restaurant whose order is from
    /// another (within `initial_radius_m`: on the way), nearest first, who
    /// hold no offer and are not cooling down for this order. The first
    /// for whom [`crate::stack::plan`] allows the stack (expected ready
    /// times, a ready time not known counting as ready now; travel times
    /// on the roads; the nearest free courier's arrival at the
    /// restaurant, or `quote_courier_default_s` from now without one).
    /// `None` with stacking off.
    fn find_stacker(
        &self,
        book: &Book<Instant>,
        order_id: OrderId,
        now: Instant,
        now_ms: i64,
    ) -> Option<(DriverId, OrderId)> {
        let config = &self.inner.config;
        if !config.stacking {
            return None;
        }
        let dispatch = book.dispatches.get(&order_id)?;
        let track = self.inner.engine.order(order_id)?;
        // From the kitchen's orders on the board (a handful), within the
        // widest search radius; then busy couriers near the kitchen.
        let mut candidates = self.inner.engine.nearest_stackable(
            dispatch.pickup,
            track.restaurant_id,
            config.max_radius_m,
            STACK_CANDIDATES,
        );
        for c in self.inner.engine.nearest_stack_bases(
            dispatch.pickup,
            config.initial_radius_m.min(config.max_radius_m),
            STACK_CANDIDATES,
        ) {
            if !candidates.iter().any(|(n, _)| n.driver_id == c.0.driver_id) {
                candidates.push(c);
            }
        }
        candidates.retain(|(n, _)| {
            dispatch.may_offer(n.driver_id, now) && !book.held_by.contains_key(&n.driver_id)
        });
        if candidates.is_empty() {
            return None;
        }
        let now_u = u64::try_from(now_ms).unwrap_or(0);
        let ready = |id: OrderId| {
            let at = self.inner.ready_times.lock().get(&id).copied();
            u64::try_from(at.unwrap_or(now_ms).max(now_ms)).unwrap_or(0)
        };
        let second_ready = ready(order_id);
        let bound_ms = config.stack_delay_bound_s.saturating_mul(1000);
        let fresh_ms = self
            .find_drivers(book, order_id, now, 1)
            .first()
            .map(|n| self.travel_ms(n.position, dispatch.pickup))
            .filter(|&t| t != u64::MAX)
            .unwrap_or(config.quote_courier_default_s.saturating_mul(1000));
        let second_door_ms = self.travel_ms(dispatch.pickup, dispatch.dropoff);
        if second_door_ms == u64::MAX {
            return None;
        }
        candidates.into_iter().find_map(|(n, first)| {
            let same_place = first.pickup == dispatch.pickup;
            let t = |from, to| self.travel_ms(from, to);
            let courier_first_ms = t(n.position, first.pickup);
            let first_door_ms = t(first.pickup, first.dropoff);
            let legs = crate::stack::Legs {
                courier_first_ms,
                courier_second_ms: if same_place {
                    courier_first_ms
                } else {
                    t(n.position, dispatch.pickup)
                },
                first_second_ms: if same_place {
                    0
                } else {
                    t(first.pickup, dispatch.pickup)
                },
                second_first_ms: if same_place {
                    0
                } else {
                    t(dispatch.pickup, first.pickup)
                },
                first_door_ms,
                second_first_door_ms: if same_place {
                    first_door_ms
                } else {
                    t(dispatch.pickup, first.dropoff)
                },
                doors_ms: t(first.dropoff, dispatch.dropoff),
                second_door_ms,
            };
            let l = &legs;
            let unreachable = [
                l.courier_first_ms,
                l.courier_second_ms,
                l.first_second_ms,
                l.second_first_ms,
                l.first_door_ms,
                l.second_first_door_ms,
                l.doors_ms,
            ]
            .contains(&u64::MAX);
            if unreachable {
                // No road there: no route to bound the delays by.
                return None;
            }
            let stack = crate::stack::Stack {
                now_ms: now_u,
                first_ready_ms: ready(first.order_id),
                second_ready_ms: second_ready,
                fresh_arrival_ms: now_u.saturating_add(fresh_ms),
                legs,
            };
            crate::stack::plan(&stack, bound_ms).map(|_| (n.driver_id, first.order_id))
        })
    }

    /// Up to `k` nearest drivers `order_id` may be offered to now, nearest
    /// first: available, holding no offer, not cooling down for it. The
    /// radius widens from `initial_radius_m` until `k` are found or it
    /// reaches `max_radius_m`.
    fn find_drivers(
        &self,
        book: &Book<Instant>,
        order_id: OrderId,
        now: Instant,
        k: usize,
    ) -> Vec<NearbyDriver> {
        let Some(dispatch) = book.dispatches.get(&order_id) else {
            return Vec::new();
        };
        let config = &self.inner.config;
        let mut radius_m = config.initial_radius_m.min(config.max_radius_m);
        loop {
            let mut limit = FIRST_CANDIDATES
                .max(k.saturating_mul(2))
                .min(MAX_CANDIDATES);
            let usable: Vec<NearbyDriver> = loop {
                let found = self.inner.engine.nearest(
                    dispatch.pickup,
                    radius_m,
                    limit,
                    StatusFilter::Only(DriverStatus::Available),
                );
                let exhausted = found.len() < limit;
                let usable: Vec<NearbyDriver> = found
                    .into_iter()
                    .filter(|n| {
                        dispatch.may_offer(n.driver_id, now)
                            && !book.held_by.contains_key(&n.driver_id)
                    })
                    .take(k)
                    .collect();
                if usable.len() >= k || exhausted || limit >= MAX_CANDIDATES {
                    break usable;
                }
                limit = (limit * 2).min(MAX_CANDIDATES);
            };
            if usable.len() >= k || radius_m >= config.max_radius_m {
                return usable;
            }
            radius_m = (radius_m * 2.0).min(config.max_radius_m);
        }
    }
}

/// The engine's position type as the routing crate's.
pub(crate) fn to_routing(p: engine::LatLng) -> routing::LatLng {
    routing::LatLng {
        lat: p.lat,
        lng: p.lng,
    }
}

/// The news that `order_id` (dispatched as `d`) was raised to dispatchers
/// at `at_ms`, or, `resolved`, that it no longer needs to be.
fn unassigned(order_id: OrderId, d: &Dispatch<Instant>, at_ms: i64, resolved: bool) -> Unassigned {
    Unassigned {
        order_id,
        pickup: d.pickup,
        attempts: d.attempts,
        since_ms: d.since_ms,
        at_ms,
        resolved,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod batch_tests;

#[cfg(test)]
mod timing_tests;

#[cfg(test)]
mod stack_tests;
