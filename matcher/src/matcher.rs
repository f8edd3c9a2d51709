//! The matcher handle and its timer loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::{
    DriverId, DriverStatus, Handle, Offer, OfferEnd, OfferId, OrderId, OrderTrack, StatusFilter,
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
    /// Silence for this long counts as a decline.
    pub offer_timeout_s: u64,
    /// First search radius around the pickup.
    pub initial_radius_m: f64,
    /// The radius doubles up to this; beyond it the order waits.
    pub max_radius_m: f64,
    /// How often an order nobody could take searches again (sooner when a
    /// driver becomes available).
    pub retry_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            offer_timeout_s: 30,
            initial_radius_m: 3_000.0,
            max_radius_m: 24_000.0,
            retry_interval_ms: 2_000,
        }
    }
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
        book.dispatches.insert(
            order_id,
            Dispatch {
                pickup: track.pickup,
                dropoff: track.dropoff,
                excluded: Default::default(),
                pending_offer: None,
                retry_at: None,
            },
        );
        self.offer_next(&mut book, order_id, now_ms, Instant::now());
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
                book.dispatches.remove(&order_id);
                metrics::counter!("hexdash_offers_total", "outcome" => "accepted").increment(1);
                Ok(track)
            }
            Err(e @ engine::Error::DriverBusy(_)) => {
                // The driver took another order meanwhile: as a decline.
                book.close_offer(offer_id, OfferState::Declined, now + ENDED_OFFER_MEMORY);
                self.offer_next(&mut book, order_id, now_ms, now);
                Err(OfferError::Assign(e))
            }
            Err(e) => {
                // The order was assigned another way or closed: stop.
                book.close_offer(offer_id, OfferState::Withdrawn, now + ENDED_OFFER_MEMORY);
                book.dispatches.remove(&order_id);
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
        book.close_offer(offer_id, OfferState::Declined, now + ENDED_OFFER_MEMORY);
        metrics::counter!("hexdash_offers_total", "outcome" => "declined").increment(1);
        self.offer_next(&mut book, order_id, now_ms, now);
        drop(book);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Stops dispatching an order (cancelled, or assigned another way); a
    /// pending offer is withdrawn and its driver told.
    pub fn withdraw(&self, order_id: OrderId) {
        let mut book = self.inner.book.lock();
        let Some(dispatch) = book.dispatches.remove(&order_id) else {
            return;
        };
        if let Some(offer_id) = dispatch.pending_offer
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

    /// Fires offer timeouts and retries until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut changes = self.inner.engine.subscribe_changes();
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
                        book.close_offer(offer_id, OfferState::Expired, now + ENDED_OFFER_MEMORY)
                    else {
                        continue; // answered before the deadline
                    };
                    metrics::counter!("hexdash_offers_total", "outcome" => "expired").increment(1);
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

    /// Offers `order_id` to the nearest available driver who has not had it
    /// and holds no other offer, widening the radius; if there is none,
    /// schedules a retry.
    fn offer_next(&self, book: &mut Book<Instant>, order_id: OrderId, now_ms: i64, now: Instant) {
        let Some(dispatch) = book.dispatches.get(&order_id) else {
            return;
        };
        if dispatch.pending_offer.is_some() {
            return;
        }
        let (pickup, dropoff) = (dispatch.pickup, dispatch.dropoff);
        let Some(driver_id) = self.find_driver(book, order_id) else {
            book.schedule_retry(
                order_id,
                now + Duration::from_millis(self.inner.config.retry_interval_ms),
            );
            return;
        };
        let timeout = Duration::from_secs(self.inner.config.offer_timeout_s);
        let offer = Arc::new(Offer {
            offer_id: OfferId::new(),
            order_id,
            driver_id,
            pickup,
            dropoff,
            expires_at_ms: now_ms + timeout.as_millis() as i64,
        });
        book.open_offer(offer.clone(), now + timeout);
        metrics::counter!("hexdash_offers_total", "outcome" => "made").increment(1);
        self.inner.engine.publish_offer(offer);
    }

    fn find_driver(&self, book: &Book<Instant>, order_id: OrderId) -> Option<DriverId> {
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
                    .find(|d| !dispatch.excluded.contains(d) && !book.held_by.contains_key(d));
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
