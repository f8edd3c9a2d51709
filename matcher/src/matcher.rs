//! The matcher handle and its timer loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::{
    DriverId, DriverStatus, Handle, Offer, OfferEnd, OfferId, OrderId, OrderTrack, StatusFilter,
    Unassigned,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::book::{Book, Dispatch, OfferError, OfferState, Timer};

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("the order is not on the engine's order board")]
    UnknownOrder,
}

/// Candidates fetched per nearest query before filtering out drivers who
/// declined or hold another offer; doubled while all are filtered out.
const FIRST_CANDIDATES: usize = 16;
/// Upper bound on candidates per query: beyond this many unusable drivers
/// at one radius, widen the radius instead.
const MAX_CANDIDATES: usize = 4_096;
/// How long an ended offer is remembered, so a late answer gets "expired"
/// rather than "not found".
const ENDED_OFFER_MEMORY: Duration = Duration::from_secs(600);
/// A driver becoming available retries waiting orders at most this often:
/// at fleet scale availability changes constantly.
const SUPPLY_RETRY_MIN_GAP: Duration = Duration::from_millis(250);

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
/// Orders raised to dispatchers (counter) and raised now (gauge).
const UNASSIGNED_TOTAL: &str = "hexdash_orders_unassigned_total";
const UNASSIGNED: &str = "hexdash_orders_unassigned";

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
}

#[derive(Clone)]
pub struct Matcher {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Handle,
    config: Config,
    book: Mutex<Book<Instant>>,
    /// Wakes the loop when a new, possibly earlier, deadline exists.
    wake: Notify,
}

impl Matcher {
    pub fn new(engine: Handle, config: Config) -> Self {
        describe();
        Self {
            inner: Arc::new(Inner {
                engine,
                config,
                book: Mutex::new(Book::new()),
                wake: Notify::new(),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Starts offering a tracked order to drivers. Idempotent: an order
    /// already being dispatched, already assigned or closed is left alone.
    pub fn dispatch(&self, order_id: OrderId, now_ms: i64) -> Result<(), DispatchError> {
        let track = self
            .inner
            .engine
            .order(order_id)
            .ok_or(DispatchError::UnknownOrder)?;
        if track.driver_id.is_some() || track.status.is_terminal() {
            return Ok(());
        }
        let mut book = self.inner.book.lock();
        if book.dispatches.contains_key(&order_id) {
            return Ok(());
        }
        let now = Instant::now();
        book.dispatches.insert(
            order_id,
            Dispatch::new(track.pickup, track.dropoff, now, now_ms),
        );
        if self.inner.config.unassigned_after_s > 0 {
            let after = Duration::from_secs(self.inner.config.unassigned_after_s);
            book.schedule_raise(order_id, deadline(now, after));
        }
        self.offer_next(&mut book, order_id, now_ms, now);
        drop(book);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Accepts a pending offer: the order is assigned to the driver in the
    /// engine, atomically with the checks.
    pub fn accept(
        &self,
        offer_id: OfferId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<OrderTrack, OfferError> {
        let mut book = self.inner.book.lock();
        let order_id = book.pending_for(offer_id, driver_id)?.order_id;
        let now = Instant::now();
        match self.inner.engine.assign(order_id, driver_id, now_ms) {
            Ok(track) => {
                book.close_offer(offer_id, OfferState::Accepted, now + ENDED_OFFER_MEMORY);
                self.end_dispatch(&mut book, order_id, now_ms, "assigned");
                metrics::counter!(OFFERS_TOTAL, "outcome" => "accepted").increment(1);
                Ok(track)
            }
            Err(e @ engine::Error::DriverBusy(_)) => {
                // The driver took another order meanwhile: as a decline.
                self.end_unanswered(&mut book, offer_id, OfferState::Declined, now, now_ms);
                self.offer_next(&mut book, order_id, now_ms, now);
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
        self.offer_next(&mut book, order_id, now_ms, now);
        drop(book);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Stops dispatching an order (cancelled, or assigned another way); a
    /// pending offer is withdrawn and its driver told.
    pub fn withdraw(&self, order_id: OrderId) {
        let mut book = self.inner.book.lock();
        let Some(dispatch) = self.end_dispatch(&mut book, order_id, now_ms(), "withdrawn") else {
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
                _ = sleep => self.fire_due(Instant::now()),
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
                    Ok(_) => {}
                    Err(engine::RecvError::Closed) => return,
                },
            }
        }
    }

    fn fire_due(&self, now: Instant) {
        let now_ms = now_ms();
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
                    self.offer_next(&mut book, offer.order_id, now_ms, now);
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
            }
        }
    }

    fn retry_waiting(&self, now: Instant) {
        let now_ms = now_ms();
        let mut book = self.inner.book.lock();
        for order_id in book.waiting_orders() {
            self.offer_next(&mut book, order_id, now_ms, now);
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
        let Some(dispatch) = book.dispatches.get(&order_id) else {
            return;
        };
        if dispatch.pending_offer.is_some() {
            return;
        }
        let (pickup, dropoff) = (dispatch.pickup, dispatch.dropoff);
        let cooled = dispatch.next_cooldown_end(now);
        let Some(driver_id) = self.find_driver(book, order_id, now) else {
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
        let timeout = Duration::from_secs(self.inner.config.offer_timeout_s).min(NEVER);
        let offer = Arc::new(Offer {
            offer_id: OfferId::new(),
            order_id,
            driver_id,
            pickup,
            dropoff,
            expires_at_ms: now_ms
                .saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)),
        });
        book.open_offer(offer.clone(), deadline(now, timeout));
        metrics::counter!(OFFERS_TOTAL, "outcome" => "made").increment(1);
        self.inner.engine.publish_offer(offer);
    }

    fn find_driver(
        &self,
        book: &Book<Instant>,
        order_id: OrderId,
        now: Instant,
    ) -> Option<DriverId> {
        let dispatch = book.dispatches.get(&order_id)?;
        let config = &self.inner.config;
        let mut radius_m = config.initial_radius_m.min(config.max_radius_m);
        loop {
            let mut limit = FIRST_CANDIDATES;
            loop {
                let found = self.inner.engine.nearest(
                    dispatch.pickup,
                    radius_m,
                    limit,
                    StatusFilter::Only(DriverStatus::Available),
                );
                let exhausted = found.len() < limit;
                let usable = found
                    .into_iter()
                    .map(|n| n.driver_id)
                    .find(|&d| dispatch.may_offer(d, now) && !book.held_by.contains_key(&d));
                if usable.is_some() {
                    return usable;
                }
                if exhausted || limit >= MAX_CANDIDATES {
                    break;
                }
                limit *= 2;
            }
            if radius_m >= config.max_radius_m {
                return None;
            }
            radius_m = (radius_m * 2.0).min(config.max_radius_m);
        }
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
