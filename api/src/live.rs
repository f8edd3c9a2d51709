//! The bridge from the store (the source of truth) to the live side: the
//! engine's order board, which the WebSocket gateway authorises and tracks
//! by, and the matcher, which finds drivers.
//!
//! [`Live`] implements the domain's ports (`commerce::ports::LiveSide` and
//! `Offers`) over the engine and the matcher, so the use-cases tell the
//! live side without knowing either.
//!
//! Order of operations: the store commits first, then the engine and the
//! matcher hear about it. The engine is a projection that [`restore`]
//! rebuilds from the store on start-up, so a crash between the two loses
//! nothing.

use commerce::ports::{LiveSide, Offers};
use engine::{DriverId, OfferId, OrderId, OrderTrack};
use matcher::OfferError;

use crate::AppState;
use crate::lifecycle::awaits_driver;
use crate::store::{self, Order, StoreError};

/// The engine's order board and the matcher, as the use-cases see them.
/// Cheap to clone (handles).
#[derive(Clone)]
pub struct Live {
    /// The order board (and the drivers' state).
    pub engine: engine::Handle,
    /// Finds drivers for orders, and keeps their offers.
    pub matcher: matcher::Matcher,
}

impl LiveSide for Live {
    fn order_placed(&self, order: &Order, version: i64, now_ms: i64) {
        on_order_placed(self, order, version, now_ms);
    }

    fn status_changed(&self, order: &Order, version: i64, now_ms: i64) {
        on_status_changed(self, order, version, now_ms);
    }

    fn restore(&self, order: &Order, now_ms: i64) {
        track(self, order, order.version);
        dispatch_if_waiting(self, order, now_ms);
    }
}

impl Offers for Live {
    fn accept(
        &self,
        offer_id: OfferId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> commerce::Result<OrderId> {
        self.matcher
            .accept(offer_id, driver_id, now_ms)
            .map(|track| track.order_id)
            .map_err(offer_error)
    }

    fn decline(&self, offer_id: OfferId, driver_id: DriverId, now_ms: i64) -> commerce::Result<()> {
        self.matcher
            .decline(offer_id, driver_id, now_ms)
            .map(|_| ())
            .map_err(offer_error)
    }

    fn undo_assignment(&self, order_id: OrderId, now_ms: i64) {
        if let Err(e) = self.engine.unassign(order_id, now_ms) {
            tracing::warn!(%order_id, error = %e, "could not undo an engine assignment");
        }
    }

    fn redispatch(&self, order_id: OrderId, now_ms: i64) {
        if let Err(e) = self.matcher.dispatch(order_id, now_ms) {
            tracing::warn!(%order_id, error = %e, "could not re-dispatch after a failed assignment");
        }
    }
}

/// The matcher's refusal of an answer, in the domain's words.
fn offer_error(e: OfferError) -> commerce::Error {
    match e {
        OfferError::NotFound => commerce::Error::NotFound("offer"),
        OfferError::NotYours => commerce::Error::forbidden("this offer was made to another driver"),
        OfferError::NotPending(offer_state) => commerce::Error::Conflict {
            code: "offer_not_pending",
            reason: format!(
                "the offer is no longer pending (it is {})",
                offer_state.as_str()
            ),
            detail: Some(("offer_state", offer_state.as_str().to_owned())),
        },
        OfferError::Assign(engine::Error::DriverBusy(_)) => {
            commerce::Error::conflict("driver_busy", "you already hold an order")
        }
        OfferError::Assign(_) => {
            commerce::Error::conflict("order_unavailable", "the order is no longer available")
        }
    }
}

/// Orders read per page while restoring.
const RESTORE_PAGE: u32 = 1_000;

/// The engine's view of an order as of `version` (0: not known).
pub(crate) fn order_track(order: &Order, version: i64) -> OrderTrack {
    OrderTrack {
        order_id: order.id,
        customer_id: order.customer_id,
        restaurant_id: order.restaurant_id,
        restaurant_owner_id: order.restaurant_owner_id,
        status: order.status,
        driver_id: order.driver_id,
        pickup: order.pickup,
        dropoff: order.dropoff,
        updated_at_ms: order.updated_at_ms,
        version,
    }
}

/// Puts `order` on the engine's board as the store has it at `version`
/// (refused when the board holds that version or a newer one); an open
/// order with a driver binds that driver to it (`Engine::track_order`), so
/// the driver is busy and the matcher offers it nothing more.
pub(crate) fn track(live: &Live, order: &Order, version: i64) -> bool {
    live.engine.track_order(order_track(order, version))
}

/// [`track`] for tests and tools: puts `order` on the board as of
/// `version`; `false` when the board holds that version or a newer one.
pub fn track_at(live: &Live, order: &Order, version: i64) -> bool {
    track(live, order, version)
}

/// Whether the board holds order `id` at `version` or newer.
pub(crate) fn board_has(live: &Live, id: OrderId, version: i64) -> bool {
    live.engine
        .order(id)
        .is_some_and(|track| track.version >= version)
}

/// What the matcher should do about an order as the board holds it:
/// withdraw it once closed, dispatch it while it waits for a driver.
/// Idempotent.
pub(crate) fn dispatch_tracked(live: &Live, track: &OrderTrack, now_ms: i64) {
    if track.status.is_terminal() {
        live.matcher.withdraw(track.order_id);
    } else if crate::lifecycle::status_awaits_driver(track.status, track.driver_id.is_some())
        && let Err(e) = live.matcher.dispatch(track.order_id, now_ms)
    {
        tracing::warn!(order_id = %track.order_id, error = %e, "dispatch refused");
    }
}

/// Starts the matcher on `order` if it wants a driver. Idempotent.
pub(crate) fn dispatch_if_waiting(live: &Live, order: &Order, now_ms: i64) {
    if awaits_driver(order)
        && let Err(e) = live.matcher.dispatch(order.id, now_ms)
    {
        tracing::warn!(order_id = %order.id, error = %e, "dispatch refused");
    }
}

/// A new order was stored: show it to the live side (its customer can
/// follow it from now on); it waits for a driver only once accepted.
fn on_order_placed(live: &Live, order: &Order, version: i64, now_ms: i64) {
    track(live, order, version);
    dispatch_if_waiting(live, order, now_ms);
}

/// An order's status changed in the store: tell the engine (which tells its
/// watchers and, on a closing status, frees the driver) and the matcher.
/// An update older than what the board holds (a late saga task after a
/// newer step) changes nothing on the board.
fn on_status_changed(live: &Live, order: &Order, version: i64, now_ms: i64) {
    match live
        .engine
        .step_order(order.id, order.status, version, now_ms)
    {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::debug!(order_id = %order.id, version, "stale order update ignored");
            return;
        }
        // Not on the board (pruned, or lost): put it back as stored.
        Err(engine::Error::UnknownOrder) => {
            track(live, order, version);
        }
        Err(e) => {
            tracing::warn!(order_id = %order.id, error = %e, "engine refused a status change")
        }
    }
    if order.status.is_terminal() {
        live.matcher.withdraw(order.id);
    } else {
        dispatch_if_waiting(live, order, now_ms);
    }
}

/// How many orders [`restore`] put back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub tracked: usize,
    pub dispatched: usize,
    /// Payments a crash left pending, resumed in the background.
    pub payments_resumed: usize,
}

/// Rebuilds the live side from the store: every open order back on the
/// engine's board (bound to its driver, if any) and every one still waiting
/// for a driver back with the matcher. Call once at start-up, before
/// serving.
pub async fn restore(state: &AppState, now_ms: i64) -> Result<Restored, StoreError> {
    let mut restored = Restored::default();
    let live = state.live();
    store::for_each_page(
        RESTORE_PAGE,
        |after, limit| state.store.open_orders(after, limit),
        |order| order.id,
        |page| {
            for order in &page {
                track(&live, order, order.version);
                restored.tracked += 1;
                if awaits_driver(order) {
                    dispatch_if_waiting(&live, order, now_ms);
                    restored.dispatched += 1;
                }
            }
        },
    )
    .await?;
    Ok(restored)
}

/// Seconds until the driver reaches the order's next stop, by the same
/// formula the WebSocket gateway uses (`engine::eta`). `None` without a
/// driver, a known position, or an open order.
pub(crate) fn eta_s(state: &AppState, order: &Order) -> Option<u64> {
    let stop = engine::eta::next_stop_of(order.status, order.pickup, order.dropoff)?;
    let fix = state.engine.driver(order.driver_id?)?.fix?;
    Some(u64::from(engine::eta::eta_s(fix.position, stop)))
}
