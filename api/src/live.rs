//! The bridge from the store (the source of truth) to the live side: the
//! engine's order board, which the WebSocket gateway authorises and tracks
//! by, and the matcher, which finds drivers.
//!
//! [`Live`] implements the domain's ports (`commerce::ports::LiveSide`,
//! `Offers` and `Quoting`) over the engine and the matcher, so the
//! use-cases tell (and ask) the live side without knowing either. Quotes
//! and the delivery fee take the matcher's road distances and pickup legs
//! (`matcher::quote`).
//!
//! Order of operations: the store commits first, then the engine and the
//! matcher hear about it. The engine is a projection that [`restore`]
//! rebuilds from the store on start-up, so a crash between the two loses
//! nothing.
//!
//! Preparation times (for prep-aware matching, `matcher.prep_aware`, and
//! the customers' ETAs): an order
//! stepped to `ready_for_pickup` tells the matcher how long its restaurant
//! took since accepting it (`Matcher::observe_prep`, from the order's
//! `accepted_at_ms` and `ready_at_ms`); [`restore`] first replays the
//! latest such preparations from the store, so the estimates survive a
//! restart. Every dispatch of an accepted order says when its food is
//! expected ([`expected_ready_at`]: accepted + the restaurant's estimate),
//! so an order dispatched late (restored at start-up, or by the event
//! stream's consumer) is not held for a whole preparation again, and the
//! customer's ETA (`matcher::eta`) waits for the food before pickup.

use commerce::ports::{Fleet, LiveSide, Offers, PickupWait, Quoting, Trip};
use engine::{
    Availability, DriverId, DriverStatus, DriverView, LatLng, OfferId, OrderId, OrderTrack,
    RestaurantId,
};
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

    fn reassigned(&self, order: &Order, from: Option<DriverId>, now_ms: i64) {
        on_reassigned(self, order, from, now_ms);
    }
}

impl Fleet for Live {
    fn driver(&self, driver_id: DriverId) -> Option<DriverView> {
        self.engine.driver(driver_id)
    }

    fn set_offline(&self, driver_id: DriverId, now_ms: i64) -> (DriverStatus, Option<OrderId>) {
        let status = self
            .engine
            .set_availability(driver_id, Availability::Offline, now_ms);
        // After the status: the matcher then offers the order to others,
        // never again to this driver while it is offline.
        let withdrawn = self.matcher.withdraw_offer_to(driver_id, now_ms);
        (status, withdrawn)
    }
}

impl Quoting for Live {
    fn trips(&self, from: &[LatLng], door: LatLng) -> Vec<Trip> {
        self.matcher
            .routes_to(from, door)
            .into_iter()
            .map(|r| Trip {
                distance_m: r.distance_m,
                time_s: r.time_ms.div_ceil(1000),
                on_roads: r.on_roads,
            })
            .collect()
    }

    fn pickups(&self, restaurants: &[(RestaurantId, LatLng)]) -> Vec<PickupWait> {
        self.matcher
            .pickup_legs(restaurants)
            .into_iter()
            .map(|p| PickupWait {
                prep_s: p.prep_s,
                courier_s: p.courier_s,
                courier_found: p.courier_found,
            })
            .collect()
    }
}

impl Offers for Live {
    fn accept(
        &self,
        offer_id: OfferId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> commerce::Result<(OrderId, Option<engine::Fence>)> {
        self.matcher
            .accept_fenced(offer_id, driver_id, now_ms)
            .map(|(track, fence)| (track.order_id, fence))
            .map_err(offer_error)
    }

    fn decline(&self, offer_id: OfferId, driver_id: DriverId, now_ms: i64) -> commerce::Result<()> {
        self.matcher
            .decline(offer_id, driver_id, now_ms)
            .map(|_| ())
            .map_err(offer_error)
    }

    fn undo_assignment(&self, order_id: OrderId, driver_id: DriverId, now_ms: i64) {
        if let Err(e) = self.engine.unassign_if(order_id, driver_id, now_ms) {
            tracing::warn!(%order_id, error = %e, "could not undo an engine assignment");
        }
    }

    fn redispatch(&self, order_id: OrderId, now_ms: i64) {
        if let Err(e) = self.matcher.dispatch(order_id, now_ms) {
            tracing::warn!(%order_id, error = %e, "could not re-dispatch after a failed assignment");
        }
    }

    fn stacked(&self, order_id: OrderId, driver_id: DriverId) -> bool {
        // The engine's second slot is the one source: a stacked accept put
        // the order there (if the first closed since, it moved up and the
        // plain guard suffices).
        self.engine
            .driver(driver_id)
            .is_some_and(|v| v.stacked_order == Some(order_id))
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

/// Preparations replayed into the matcher's estimates at start-up, the
/// latest first read: enough for `prep_window` (20 by default) of each of
/// a few thousand restaurants with recent orders, read in one indexed
/// query.
const PREP_WARMUP: u32 = 50_000;

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

/// What the matcher should do about an order as the board holds it, when
/// that needs nothing the board lacks: withdraw it once closed, nothing
/// while it has a driver. `false` when it waits for a driver: dispatching
/// needs the stored order (its expected ready time).
pub(crate) fn settle_tracked(live: &Live, track: &OrderTrack) -> bool {
    if track.status.is_terminal() {
        live.matcher.withdraw(track.order_id);
        return true;
    }
    !crate::lifecycle::status_awaits_driver(track.status, track.driver_id.is_some())
}

/// Starts the matcher on `order` if it wants a driver, with when its
/// food is expected ([`expected_ready_at`]). Idempotent.
pub(crate) fn dispatch_if_waiting(live: &Live, order: &Order, now_ms: i64) {
    if !awaits_driver(order) {
        return;
    }
    let ready_at_ms = expected_ready_at(live, order);
    if let Err(e) = live
        .matcher
        .dispatch_ready_at(order.id, now_ms, ready_at_ms)
    {
        tracing::warn!(order_id = %order.id, error = %e, "dispatch refused");
    }
}

/// When `order`'s food is expected ready, Unix ms: its acceptance plus its
/// restaurant's estimated preparation time; `None` (a prep-aware matcher
/// then counts from now) before acceptance. Prep-aware matchers hold the
/// first offer by it; the customer ETAs wait for it before pickup.
pub fn expected_ready_at(live: &Live, order: &Order) -> Option<i64> {
    let accepted = order.accepted_at_ms?;
    let estimate = live.matcher.prep_estimate_ms(order.restaurant_id);
    Some(accepted.saturating_add(i64::try_from(estimate).unwrap_or(i64::MAX)))
}

/// Tells the matcher how long `order`'s restaurant took to prepare it,
/// once it is ready for pickup (a no-op for any other status, or without
/// both times).
fn observe_prep(live: &Live, order: &Order) {
    if order.status != engine::OrderStatus::ReadyForPickup {
        return;
    }
    if let (Some(accepted), Some(ready)) = (order.accepted_at_ms, order.ready_at_ms) {
        live.matcher
            .observe_prep(order.restaurant_id, accepted, ready);
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
    // Whatever the board holds: the store committed this step, once (the
    // event stream's consumers do not come through here).
    observe_prep(live, order);
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

/// A dispatcher moved `order` (as stored now) from driver `from`: any
/// offer of it ends (the old offer's driver is told), the board frees the
/// old driver and binds the new one by the reassignment's version (newer
/// than anything the board held, so it wins over a racing accept's
/// engine-side assignment, which the accept's compensation then leaves
/// alone); an order left without a driver goes back to the matcher, which
/// tries other drivers before `from`.
fn on_reassigned(live: &Live, order: &Order, from: Option<DriverId>, now_ms: i64) {
    live.matcher.withdraw(order.id);
    if !track(live, order, order.version) {
        tracing::debug!(order_id = %order.id, version = order.version, "board already newer than the reassignment");
    }
    if awaits_driver(order) {
        let ready_at_ms = expected_ready_at(live, order);
        if let Err(e) = live
            .matcher
            .dispatch_excluding(order.id, now_ms, ready_at_ms, from)
        {
            tracing::warn!(order_id = %order.id, error = %e, "dispatch after a reassignment refused");
        }
    } else if order.driver_id.is_some()
        && matches!(
            order.status,
            engine::OrderStatus::Accepted | engine::OrderStatus::Preparing
        )
        && let Some(ready_at_ms) = expected_ready_at(live, order)
    {
        // Withdrawing forgot when the food is expected; the new
        // driver's customer ETA waits for it.
        live.matcher.expect_ready(order.id, ready_at_ms);
    }
}

/// How many orders [`restore`] put back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub tracked: usize,
    pub dispatched: usize,
    /// Preparations replayed into the matcher's estimates.
    pub preparations: usize,
    /// Payments a crash left pending, resumed in the background.
    pub payments_resumed: usize,
}

/// Rebuilds the live side from the store: the matcher's preparation
/// estimates from the latest preparations, every open order back on the
/// engine's board (bound to its driver, if any) and every one still waiting
/// for a driver back with the matcher (with its food's expected ready
/// time). Call once at start-up, before serving.
pub async fn restore(state: &AppState, now_ms: i64) -> Result<Restored, StoreError> {
    restore_with(state, now_ms, true).await
}

/// [`restore`]; with `dispatch` false the orders go on the board only
/// (a node without the matcher: it shows orders, it does not offer them).
pub async fn restore_with(
    state: &AppState,
    now_ms: i64,
    dispatch: bool,
) -> Result<Restored, StoreError> {
    let mut restored = Restored::default();
    let live = state.live();
    // Oldest first, as they happened: the estimator keeps the latest.
    let preparations = state.store.recent_preparations(PREP_WARMUP).await?;
    for p in preparations.iter().rev() {
        live.matcher
            .observe_prep(p.restaurant_id, p.accepted_at_ms, p.ready_at_ms);
    }
    restored.preparations = preparations.len();
    store::for_each_page(
        RESTORE_PAGE,
        |after, limit| state.store.open_orders(after, limit),
        |order| order.id,
        |page| {
            for order in &page {
                track(&live, order, order.version);
                restored.tracked += 1;
                if !dispatch {
                    continue;
                }
                if awaits_driver(order) {
                    dispatch_if_waiting(&live, order, now_ms);
                    restored.dispatched += 1;
                } else if order.driver_id.is_some()
                    && matches!(
                        order.status,
                        engine::OrderStatus::Accepted | engine::OrderStatus::Preparing
                    )
                    && let Some(ready_at_ms) = expected_ready_at(&live, order)
                {
                    // Assigned and cooking: its customer's ETA waits for
                    // the food.
                    live.matcher.expect_ready(order.id, ready_at_ms);
                }
            }
        },
    )
    .await?;
    Ok(restored)
}

/// A takeover in a cluster: this node now leads a region (its lease), so
/// every open order of the store that `in_region` picks and that still
/// waits for a driver goes on the board and to the matcher, as at
/// start-up ([`restore`]). Orders placed while no node led the region are
/// found here (the database has them); offers the previous leader made
/// simply lapse (the new leader offers afresh). How many were dispatched.
pub async fn take_over(
    state: &AppState,
    in_region: impl Fn(&Order) -> bool,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let live = state.live();
    let mut dispatched = 0;
    store::for_each_page(
        RESTORE_PAGE,
        |after, limit| state.store.open_orders(after, limit),
        |order| order.id,
        |page| {
            for order in page.iter().filter(|o| awaits_driver(o) && in_region(o)) {
                track(&live, order, order.version);
                dispatch_if_waiting(&live, order, now_ms);
                dispatched += 1;
            }
        },
    )
    .await?;
    Ok(dispatched)
}

/// The order's ETAs for its driver where the engine last saw them, from
/// the same source the WebSocket gateway asks (`AppState::etas`). `None`
/// without a driver, a known position, or an open order.
pub(crate) fn eta(state: &AppState, order: &Order) -> Option<engine::eta::Eta> {
    let fix = state.engine.driver(order.driver_id?)?.fix?;
    state.etas.order_eta(&order_track(order, 0), fix.position)
}
