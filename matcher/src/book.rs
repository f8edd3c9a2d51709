//! The offer book: pending and recently ended offers, and the orders being
//! dispatched. Pure state: deadlines are plain values passed in by the caller.

use std::collections::BTreeSet;
use std::sync::Arc;

use engine::{DriverId, LatLng, Offer, OfferId, OrderId};
use rustc_hash::FxHashMap;

/// Where an offer is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferState {
    Pending,
    Accepted,
    Declined,
    Expired,
    Withdrawn,
}

impl OfferState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("no such offer")]
    NotFound,
    #[error("the offer was made to another driver")]
    NotYours,
    #[error("the offer is no longer pending")]
    NotPending(OfferState),
    #[error("the order cannot be assigned: {0}")]
    Assign(engine::Error),
}

pub(crate) struct OfferRecord<T> {
    pub offer: Arc<Offer>,
    pub state: OfferState,
    /// When a pending offer expires, or when an ended one is forgotten.
    pub until: T,
}

/// An order being dispatched.
pub(crate) struct Dispatch<T> {
    pub pickup: LatLng,
    pub dropoff: LatLng,
    /// Drivers who declined or let the offer lapse, each until when: not
    /// asked again before then (a cooldown, so a lone driver gets the order
    /// back later rather than never).
    pub excluded: FxHashMap<DriverId, T>,
    pub pending_offer: Option<OfferId>,
    /// Set while nobody could be found: when to search again.
    pub retry_at: Option<T>,
    /// Offers of this order that ended without an accept.
    pub attempts: u32,
    /// When the search started (the caller's clock; for "so long without a
    /// driver") and the same instant in Unix ms (for people).
    pub started: T,
    pub since_ms: i64,
    /// Set once the order was raised to dispatchers (Unix ms).
    pub raised_at_ms: Option<i64>,
    /// When its [`Timer::Raise`] is due, so ending the dispatch removes it.
    pub raise_at: Option<T>,
    /// Prep-aware: when the food is expected to be ready; `None` when it is
    /// (or the matcher does not hold offers for it).
    pub ready_at: Option<T>,
    /// [`Dispatch::ready_at`] in Unix ms, for people (`DispatchView`).
    pub ready_at_ms: Option<i64>,
    /// In a cluster: the region's fencing token this node dispatches the
    /// order under (see `crate::fence`); `None` on one node.
    pub fence: Option<engine::Fence>,
}

impl<T: Ord + Copy> Dispatch<T> {
    pub fn new(pickup: LatLng, dropoff: LatLng, started: T, since_ms: i64) -> Self {
        Self {
            pickup,
            dropoff,
            excluded: FxHashMap::default(),
            pending_offer: None,
            retry_at: None,
            attempts: 0,
            started,
            since_ms,
            raised_at_ms: None,
            raise_at: None,
            ready_at: None,
            ready_at_ms: None,
            fence: None,
        }
    }

    /// Whether `driver_id` may be offered this order at `now`.
    pub fn may_offer(&self, driver_id: DriverId, now: T) -> bool {
        self.excluded
            .get(&driver_id)
            .is_none_or(|&until| until <= now)
    }

    /// The earliest end of a cooldown still running at `now`.
    pub fn next_cooldown_end(&self, now: T) -> Option<T> {
        self.excluded.values().copied().filter(|&t| t > now).min()
    }
}

/// `T` is the caller's instant type (tokio's in the matcher, integers in tests).
pub(crate) struct Book<T: Ord + Copy> {
    pub offers: FxHashMap<OfferId, OfferRecord<T>>,
    pub held_by: FxHashMap<DriverId, OfferId>,
    pub dispatches: FxHashMap<OrderId, Dispatch<T>>,
    /// Timers in deadline order; stale entries are skipped when they fire.
    pub timers: BTreeSet<(T, Timer)>,
    /// When the next batch is solved (batched policy); `None` while no
    /// batch is pending, i.e. the matcher is idle and may offer at once.
    pub batch_at: Option<T>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    OfferDeadline(OfferId),
    Retry(OrderId),
    Forget(OfferId),
    /// The order has waited long enough to be raised to dispatchers.
    Raise(OrderId),
    /// The batch window ended: solve one assignment for every waiting order.
    Batch,
}

impl<T: Ord + Copy> Book<T> {
    pub fn new() -> Self {
        Self {
            offers: FxHashMap::default(),
            held_by: FxHashMap::default(),
            dispatches: FxHashMap::default(),
            timers: BTreeSet::new(),
            batch_at: None,
        }
    }

    pub fn next_deadline(&self) -> Option<T> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Removes and returns every timer due at `now`.
    pub fn take_due(&mut self, now: T) -> Vec<Timer> {
        let mut due = Vec::new();
        while let Some(&(t, timer)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            due.push(timer);
        }
        due
    }

    pub fn open_offer(&mut self, offer: Arc<Offer>, deadline: T) {
        let id = offer.offer_id;
        self.held_by.insert(offer.driver_id, id);
        if let Some(d) = self.dispatches.get_mut(&offer.order_id) {
            d.pending_offer = Some(id);
            d.retry_at = None;
        }
        self.timers.insert((deadline, Timer::OfferDeadline(id)));
        self.offers.insert(
            id,
            OfferRecord {
                offer,
                state: OfferState::Pending,
                until: deadline,
            },
        );
    }

    /// Checks that `offer_id` is pending and was made to `driver_id`.
    pub fn pending_for(
        &self,
        offer_id: OfferId,
        driver_id: DriverId,
    ) -> Result<&Arc<Offer>, OfferError> {
        let rec = self.offers.get(&offer_id).ok_or(OfferError::NotFound)?;
        if rec.offer.driver_id != driver_id {
            return Err(OfferError::NotYours);
        }
        if rec.state != OfferState::Pending {
            return Err(OfferError::NotPending(rec.state));
        }
        Ok(&rec.offer)
    }

    /// Ends a pending offer; `forget_at` is when the ended record is
    /// dropped. An offer declined or left to expire also needs
    /// [`Book::cool_down`].
    pub fn close_offer(
        &mut self,
        offer_id: OfferId,
        state: OfferState,
        forget_at: T,
    ) -> Option<Arc<Offer>> {
        let rec = self.offers.get_mut(&offer_id)?;
        if rec.state != OfferState::Pending {
            return None;
        }
        rec.state = state;
        rec.until = forget_at;
        let offer = rec.offer.clone();
        if self.held_by.get(&offer.driver_id) == Some(&offer_id) {
            self.held_by.remove(&offer.driver_id);
        }
        if let Some(d) = self.dispatches.get_mut(&offer.order_id)
            && d.pending_offer == Some(offer_id)
        {
            d.pending_offer = None;
        }
        self.timers.insert((forget_at, Timer::Forget(offer_id)));
        Some(offer)
    }

    /// Counts an offer of its order that ended without an accept, and
    /// excludes its driver from that order until `excluded_until`.
    pub fn cool_down(&mut self, offer: &Offer, excluded_until: T) {
        if let Some(d) = self.dispatches.get_mut(&offer.order_id) {
            d.excluded.insert(offer.driver_id, excluded_until);
            d.attempts = d.attempts.saturating_add(1);
        }
    }

    /// Stops dispatching `order_id`, with its pending raise and retry
    /// timers (so they do not pile up). What the dispatch held.
    pub fn end_dispatch(&mut self, order_id: OrderId) -> Option<Dispatch<T>> {
        let d = self.dispatches.remove(&order_id)?;
        if let Some(at) = d.raise_at {
            self.timers.remove(&(at, Timer::Raise(order_id)));
        }
        if let Some(at) = d.retry_at {
            self.timers.remove(&(at, Timer::Retry(order_id)));
        }
        Some(d)
    }

    pub fn forget(&mut self, offer_id: OfferId) {
        if self
            .offers
            .get(&offer_id)
            .is_some_and(|r| r.state != OfferState::Pending)
        {
            self.offers.remove(&offer_id);
        }
    }

    pub fn schedule_retry(&mut self, order_id: OrderId, at: T) {
        if let Some(d) = self.dispatches.get_mut(&order_id) {
            d.retry_at = Some(at);
            self.timers.insert((at, Timer::Retry(order_id)));
        }
    }

    pub fn schedule_raise(&mut self, order_id: OrderId, at: T) {
        if let Some(d) = self.dispatches.get_mut(&order_id) {
            d.raise_at = Some(at);
            self.timers.insert((at, Timer::Raise(order_id)));
        }
    }

    /// Schedules the next batch at `at`, unless one is pending already (a
    /// pending batch is never postponed, so orders wait one window at most).
    pub fn schedule_batch(&mut self, at: T) {
        if self.batch_at.is_none() {
            self.batch_at = Some(at);
            self.timers.insert((at, Timer::Batch));
        }
    }

    /// Takes the pending batch if it is due at `now` (a stale timer, or
    /// one already taken, gives `false`).
    pub fn take_batch(&mut self, now: T) -> bool {
        if self.batch_at.is_some_and(|at| at <= now) {
            self.batch_at = None;
            return true;
        }
        false
    }

    /// How many orders wait without a pending offer, counting at most to
    /// `cap` (the idle check needs only "one or more than one").
    pub fn waiting_up_to(&self, cap: usize) -> usize {
        self.dispatches
            .values()
            .filter(|d| d.pending_offer.is_none())
            .take(cap)
            .count()
    }

    /// Orders with no pending offer that are waiting for a driver, oldest
    /// first (then by id, so runs repeat): a driver freed while several
    /// wait goes to the one that has waited longest, not to whichever the
    /// hash map yields first.
    pub fn waiting_orders(&self) -> Vec<OrderId> {
        let mut waiting: Vec<(T, OrderId)> = self
            .dispatches
            .iter()
            .filter(|(_, d)| d.pending_offer.is_none())
            .map(|(id, d)| (d.started, *id))
            .collect();
        waiting.sort_unstable();
        waiting.into_iter().map(|(_, id)| id).collect()
    }
}
