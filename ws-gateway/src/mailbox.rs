//! One client's outbox: what the fan-out and the client's own reader leave
//! for the client's writer. Pushing never waits, so a slow client can only
//! ever cost memory bounded by the limits below, never time elsewhere.
//!
//! Three compartments, drained in this order by the writer:
//! - **control** (status, acks, errors): a FIFO bounded by
//!   [`MailboxLimits::control`]. Overflow closes the mailbox with
//!   [`CloseReason::SlowConsumer`] (the client is told and disconnected):
//!   silently losing a status change is worse than a reconnect.
//! - **locations**: latest-position-wins per (order, driver), bounded by
//!   [`MailboxLimits::locations`]; a newer fix replaces an unsent one
//!   (counted as coalesced); a new key beyond the limit is dropped.
//! - **area**: latest-state-wins per driver for the next `drivers` frame,
//!   bounded by [`MailboxLimits::area`]; a new driver beyond the limit is
//!   dropped until the frame is sent.
//!
//! A stalled client therefore holds at most `control` messages plus one
//! position per key, however long it stalls.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;

use engine::{DriverId, OrderId};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use contract::ws::AreaDriver;

use crate::protocol::Outgoing;

/// A pending `location`: one per order and driver.
pub(crate) type LocationKey = (OrderId, DriverId);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MailboxLimits {
    pub control: usize,
    pub locations: usize,
    pub area: usize,
}

/// Why a mailbox stopped accepting messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The control queue overflowed; pending messages were discarded.
    SlowConsumer,
    /// The server is shutting down; pending messages are still flushed.
    GoingAway,
    /// An admin banned the user; pending messages are discarded.
    Banned,
}

/// What happened to one push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Replaced an unsent entry of the same key.
    Coalesced,
    /// Older than the unsent entry of the same key: ignored.
    Stale,
    /// A new key while the compartment is at its limit: dropped.
    Full,
    /// This push overflowed the control queue and closed the mailbox.
    Overflowed,
    /// The mailbox was already closed: ignored.
    Closed,
}

/// What the writer took in one go.
#[derive(Default)]
pub(crate) struct Batch {
    pub control: Vec<Outgoing>,
    pub locations: Vec<Outgoing>,
    pub area: Vec<AreaDriver>,
    /// Send a `drivers` frame even if `area` is empty (an area snapshot of
    /// an empty box still gets its frame).
    pub area_due: bool,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.control.is_empty()
            && self.locations.is_empty()
            && self.area.is_empty()
            && !self.area_due
    }

    pub fn clear(&mut self) {
        self.control.clear();
        self.locations.clear();
        self.area.clear();
        self.area_due = false;
    }
}

/// How much is waiting, for the backlog report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Depth {
    pub control: usize,
    pub locations: usize,
    pub area: usize,
}

pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    /// Wakes the writer. One waiter (the writer); producers notify only on
    /// the empty → non-empty transition, because the writer always takes
    /// everything at once.
    notify: Notify,
    limits: MailboxLimits,
}

#[derive(Default)]
struct Inner {
    control: VecDeque<Outgoing>,
    /// Value: (fix time, encoded message); the newer fix wins.
    locations: FxHashMap<LocationKey, (i64, Outgoing)>,
    area: FxHashMap<DriverId, AreaDriver>,
    /// A snapshot was queued: the next take yields a frame even if empty.
    area_due: bool,
    close: Option<CloseReason>,
}

impl Inner {
    fn is_empty(&self) -> bool {
        self.control.is_empty()
            && self.locations.is_empty()
            && self.area.is_empty()
            && !self.area_due
    }

    fn discard(&mut self) {
        self.control = VecDeque::new();
        self.locations = FxHashMap::default();
        self.area = FxHashMap::default();
        self.area_due = false;
    }
}

impl Mailbox {
    pub fn new(limits: MailboxLimits) -> Self {
        let limits = MailboxLimits {
            control: limits.control.max(1),
            locations: limits.locations.max(1),
            area: limits.area.max(1),
        };
        Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            limits,
        }
    }

    /// Queues a status, ack or error. Overflow closes the mailbox.
    pub fn push_control(&self, msg: Outgoing) -> Pushed {
        let mut inner = self.inner.lock();
        let (outcome, wake) = self.control_locked(&mut inner, msg);
        drop(inner);
        self.wake_if(wake);
        outcome
    }

    /// The control push under the caller's lock; also says whether to wake.
    fn control_locked(&self, inner: &mut Inner, msg: Outgoing) -> (Pushed, bool) {
        if inner.close.is_some() {
            return (Pushed::Closed, false);
        }
        if inner.control.len() >= self.limits.control {
            inner.close = Some(CloseReason::SlowConsumer);
            inner.discard();
            return (Pushed::Overflowed, true);
        }
        let wake = inner.is_empty();
        inner.control.push_back(msg);
        (Pushed::Queued, wake)
    }

    /// Leaves the newest position of `key` (fix time `ts`) for the writer.
    pub fn push_location(&self, key: LocationKey, ts: i64, msg: Outgoing) -> Pushed {
        let mut inner = self.inner.lock();
        if inner.close.is_some() {
            return Pushed::Closed;
        }
        let wake = inner.is_empty();
        let full = inner.locations.len() >= self.limits.locations;
        let outcome = match inner.locations.entry(key) {
            Entry::Occupied(mut e) => {
                if e.get().0 > ts {
                    Pushed::Stale
                } else {
                    e.insert((ts, msg));
                    Pushed::Coalesced
                }
            }
            Entry::Vacant(_) if full => Pushed::Full,
            Entry::Vacant(e) => {
                e.insert((ts, msg));
                Pushed::Queued
            }
        };
        drop(inner);
        self.wake_if(wake && outcome == Pushed::Queued);
        outcome
    }

    /// Leaves the newest state of a driver for the next `drivers` frame.
    pub fn push_area(&self, driver: AreaDriver) -> Pushed {
        let mut outcome = Pushed::Closed;
        self.push_areas([driver], |o| outcome = o);
        outcome
    }

    /// [`push_area`](Self::push_area) for several drivers under one lock
    /// and at most one wake-up (the fan-out's batch for this client);
    /// `outcome` hears each push's result.
    pub fn push_areas(
        &self,
        drivers: impl IntoIterator<Item = AreaDriver>,
        mut outcome: impl FnMut(Pushed),
    ) {
        let mut inner = self.inner.lock();
        if inner.close.is_some() {
            drivers.into_iter().for_each(|_| outcome(Pushed::Closed));
            return;
        }
        let was_empty = inner.is_empty();
        let mut queued = false;
        for driver in drivers {
            let pushed = upsert_area(&mut inner.area, driver, self.limits.area);
            queued |= pushed == Pushed::Queued;
            outcome(pushed);
        }
        drop(inner);
        self.wake_if(was_empty && queued);
    }

    /// A (re)subscription to an area: forgets pending drivers of the old box,
    /// queues `ack`, then the snapshot, atomically, so the frame after the ack
    /// holds the new box only. That frame is sent even if the box is empty.
    pub fn reset_area(
        &self,
        ack: Outgoing,
        snapshot: impl IntoIterator<Item = AreaDriver>,
    ) -> Pushed {
        let mut inner = self.inner.lock();
        inner.area.clear();
        let (outcome, wake) = self.control_locked(&mut inner, ack);
        if outcome == Pushed::Queued {
            inner.area_due = true;
            for d in snapshot {
                upsert_area(&mut inner.area, d, self.limits.area);
            }
        }
        drop(inner);
        self.wake_if(wake);
        outcome
    }

    /// Drops pending area drivers (after an area unsubscribe).
    pub fn clear_area(&self) {
        let mut inner = self.inner.lock();
        inner.area.clear();
        inner.area_due = false;
    }

    /// Drops pending positions of `order_id` (after an order unsubscribe).
    pub fn clear_order(&self, order_id: OrderId) {
        self.inner
            .lock()
            .locations
            .retain(|(o, _), _| *o != order_id);
    }

    /// Stops accepting messages; the writer sends a Close frame. The first
    /// reason sticks.
    pub fn close(&self, reason: CloseReason) {
        let mut inner = self.inner.lock();
        if inner.close.is_none() {
            inner.close = Some(reason);
        }
        drop(inner);
        self.notify.notify_one();
    }

    #[cfg(test)]
    pub fn is_closed(&self) -> bool {
        self.inner.lock().close.is_some()
    }

    /// Moves everything pending into `batch` (control first, then
    /// locations, then area drivers) and reports whether the mailbox is
    /// closed. On `SlowConsumer` nothing was kept to take.
    pub fn take(&self, batch: &mut Batch) -> Option<CloseReason> {
        let mut inner = self.inner.lock();
        batch.control.extend(inner.control.drain(..));
        batch
            .locations
            .extend(inner.locations.drain().map(|(_, (_, msg))| msg));
        batch.area.extend(inner.area.drain().map(|(_, d)| d));
        batch.area_due |= std::mem::take(&mut inner.area_due) || !batch.area.is_empty();
        inner.close
    }

    /// Resolves after a push into an empty mailbox or a close.
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    pub fn depth(&self) -> Depth {
        let inner = self.inner.lock();
        Depth {
            control: inner.control.len(),
            locations: inner.locations.len(),
            area: inner.area.len(),
        }
    }

    fn wake_if(&self, wake: bool) {
        if wake {
            self.notify.notify_one();
        }
    }
}

fn upsert_area(
    area: &mut FxHashMap<DriverId, AreaDriver>,
    driver: AreaDriver,
    limit: usize,
) -> Pushed {
    let full = area.len() >= limit;
    match area.entry(DriverId(driver.driver_id)) {
        Entry::Occupied(mut e) => {
            if e.get().ts > driver.ts {
                Pushed::Stale
            } else {
                e.insert(driver);
                Pushed::Coalesced
            }
        }
        Entry::Vacant(_) if full => Pushed::Full,
        Entry::Vacant(e) => {
            e.insert(driver);
            Pushed::Queued
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use engine::{DriverStatus, LatLng};

    use super::*;
    use crate::protocol::{self, MsgType, ProtocolError};

    const LIMITS: MailboxLimits = MailboxLimits {
        control: 3,
        locations: 2,
        area: 2,
    };

    fn ack(n: usize) -> Outgoing {
        protocol::subscribed(&format!("n{n}"), None)
    }

    fn loc(tag: &str) -> Outgoing {
        protocol::error(&ProtocolError::new("test", tag))
    }

    fn area(driver: DriverId, ts: i64) -> AreaDriver {
        protocol::area_driver(
            driver,
            LatLng::new(57.7, 11.97).unwrap(),
            DriverStatus::Available,
            ts,
        )
    }

    fn take(mb: &Mailbox) -> (Batch, Option<CloseReason>) {
        let mut batch = Batch::default();
        let close = mb.take(&mut batch);
        (batch, close)
    }

    #[test]
    fn locations_coalesce_to_the_newest_fix_per_key() {
        let mb = Mailbox::new(LIMITS);
        let (order, d1, d2) = (OrderId::new(), DriverId::new(), DriverId::new());
        assert_eq!(mb.push_location((order, d1), 10, loc("a")), Pushed::Queued);
        assert_eq!(
            mb.push_location((order, d1), 20, loc("b")),
            Pushed::Coalesced
        );
        assert_eq!(
            mb.push_location((order, d1), 15, loc("stale")),
            Pushed::Stale
        );
        assert_eq!(mb.push_location((order, d2), 5, loc("c")), Pushed::Queued);
        assert_eq!(
            mb.push_location((OrderId::new(), d1), 5, loc("full")),
            Pushed::Full
        );
        assert_eq!(
            mb.depth(),
            Depth {
                control: 0,
                locations: 2,
                area: 0
            }
        );
        let (batch, close) = take(&mb);
        assert_eq!(close, None);
        let mut got: Vec<_> = batch.locations.iter().map(|m| m.text.to_string()).collect();
        got.sort();
        let mut want = vec![loc("b").text.to_string(), loc("c").text.to_string()];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(mb.depth(), Depth::default());
        // After a take the key is free again, and older fixes are accepted.
        assert_eq!(mb.push_location((order, d1), 1, loc("d")), Pushed::Queued);
    }

    #[test]
    fn area_keeps_the_latest_state_per_driver_and_stays_bounded() {
        let mb = Mailbox::new(LIMITS);
        let (d1, d2, d3) = (DriverId::new(), DriverId::new(), DriverId::new());
        assert_eq!(mb.push_area(area(d1, 1)), Pushed::Queued);
        assert_eq!(mb.push_area(area(d1, 2)), Pushed::Coalesced);
        assert_eq!(
            mb.push_area(area(d1, 2)),
            Pushed::Coalesced,
            "same fix, new status"
        );
        assert_eq!(mb.push_area(area(d1, 0)), Pushed::Stale);
        assert_eq!(mb.push_area(area(d2, 1)), Pushed::Queued);
        assert_eq!(mb.push_area(area(d3, 1)), Pushed::Full);
        for _ in 0..1000 {
            mb.push_area(area(DriverId::new(), 1));
        }
        assert_eq!(mb.depth().area, 2);
        let (batch, _) = take(&mb);
        assert_eq!(batch.area.len(), 2);
        assert!(batch.area.contains(&area(d1, 2)));
    }

    #[test]
    fn a_batch_of_area_pushes_wakes_the_writer_once() {
        let mb = Mailbox::new(LIMITS);
        let (d1, d2, d3) = (DriverId::new(), DriverId::new(), DriverId::new());
        let mut outcomes = Vec::new();
        mb.push_areas([area(d1, 1), area(d1, 2), area(d2, 1), area(d3, 1)], |o| {
            outcomes.push(o)
        });
        assert_eq!(
            outcomes,
            [
                Pushed::Queued,
                Pushed::Coalesced,
                Pushed::Queued,
                Pushed::Full
            ]
        );
        // One stored permit: the first wait is ready at once, the second
        // is not.
        use futures_util::FutureExt;
        assert!(mb.notified().now_or_never().is_some(), "woken");
        assert!(mb.notified().now_or_never().is_none(), "woken once");
        let (batch, _) = take(&mb);
        assert!(batch.area.contains(&area(d1, 2)) && batch.area.len() == 2);
        mb.close(CloseReason::SlowConsumer);
        let mut closed = Vec::new();
        mb.push_areas([area(d1, 3), area(d2, 3)], |o| closed.push(o));
        assert_eq!(closed, [Pushed::Closed, Pushed::Closed]);
    }

    #[test]
    fn control_overflow_closes_as_slow_consumer_and_discards() {
        let mb = Mailbox::new(LIMITS);
        mb.push_location((OrderId::new(), DriverId::new()), 1, loc("x"));
        for n in 0..3 {
            assert_eq!(mb.push_control(ack(n)), Pushed::Queued);
        }
        assert_eq!(mb.push_control(ack(3)), Pushed::Overflowed);
        assert!(mb.is_closed());
        assert_eq!(mb.push_control(ack(4)), Pushed::Closed);
        assert_eq!(mb.push_area(area(DriverId::new(), 1)), Pushed::Closed);
        assert_eq!(
            mb.push_location((OrderId::new(), DriverId::new()), 1, loc("y")),
            Pushed::Closed
        );
        let (batch, close) = take(&mb);
        assert_eq!(close, Some(CloseReason::SlowConsumer));
        assert!(
            batch.is_empty(),
            "a slow consumer's backlog is dropped, not flushed"
        );
    }

    #[test]
    fn control_is_fifo_and_taken_before_positions() {
        let mb = Mailbox::new(LIMITS);
        mb.push_area(area(DriverId::new(), 1));
        mb.push_control(ack(0));
        mb.push_control(ack(1));
        let (batch, _) = take(&mb);
        assert_eq!(batch.control, vec![ack(0), ack(1)]);
        assert_eq!(batch.area.len(), 1);
    }

    #[test]
    fn going_away_keeps_pending_messages_and_first_reason_sticks() {
        let mb = Mailbox::new(LIMITS);
        mb.push_control(ack(0));
        mb.close(CloseReason::GoingAway);
        mb.close(CloseReason::SlowConsumer);
        let (batch, close) = take(&mb);
        assert_eq!(close, Some(CloseReason::GoingAway));
        assert_eq!(batch.control, vec![ack(0)]);
    }

    #[test]
    fn reset_area_replaces_the_old_box_after_the_ack() {
        let mb = Mailbox::new(LIMITS);
        let (old, new) = (DriverId::new(), DriverId::new());
        mb.push_area(area(old, 1));
        assert_eq!(mb.reset_area(ack(0), [area(new, 1)]), Pushed::Queued);
        let (batch, _) = take(&mb);
        assert_eq!(batch.control, vec![ack(0)]);
        assert_eq!(batch.area, vec![area(new, 1)]);
        assert_eq!(batch.control[0].kind, MsgType::Subscribed);

        // An empty box still yields one (empty) frame, once.
        assert_eq!(mb.reset_area(ack(1), []), Pushed::Queued);
        let (batch, _) = take(&mb);
        assert!(batch.area.is_empty() && batch.area_due);
        let (batch, _) = take(&mb);
        assert!(batch.is_empty());
    }

    #[test]
    fn clear_order_drops_only_that_orders_positions() {
        let mb = Mailbox::new(LIMITS);
        let (a, b, d) = (OrderId::new(), OrderId::new(), DriverId::new());
        mb.push_location((a, d), 1, loc("a"));
        mb.push_location((b, d), 1, loc("b"));
        mb.clear_order(a);
        let (batch, _) = take(&mb);
        assert_eq!(batch.locations, vec![loc("b")]);
    }

    #[tokio::test]
    async fn push_into_empty_mailbox_wakes_the_writer() {
        let mb = std::sync::Arc::new(Mailbox::new(LIMITS));
        // A push before anyone waits leaves a permit.
        mb.push_control(ack(0));
        tokio::time::timeout(Duration::from_secs(1), mb.notified())
            .await
            .unwrap();
        let _ = take(&mb);
        let waiter = tokio::spawn({
            let mb = mb.clone();
            async move { mb.notified().await }
        });
        tokio::task::yield_now().await;
        mb.push_area(area(DriverId::new(), 1));
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        // Close always wakes.
        let _ = take(&mb);
        mb.close(CloseReason::GoingAway);
        tokio::time::timeout(Duration::from_secs(1), mb.notified())
            .await
            .unwrap();
    }
}
