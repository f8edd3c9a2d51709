//! Shared access to one `Engine`: a mutex around single-threaded state.
//!
//! Why a mutex and not a writer task: the critical sections are a few hundred
//! nanoseconds (the expensive H3 lookup happens before the lock is taken), so
//! callers on any thread apply directly instead of paying a channel hop and a
//! wake-up per ping. The lock is never held across an `.await` (there are
//! none in this crate) and never while calling out.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::cells;
use crate::census::{self, CellCount, StatusCounts};
use crate::config::Config;
use crate::engine::{Applied, DriverView, Engine, Error, NearbyDriver, StatusFilter};
use crate::event::{Arrived, Change, Moved, Offer, OfferEnd, Unassigned};
use crate::geo::{BBox, LatLng};
use crate::ids::{DriverId, OfferId, OrderId};
use crate::orders::OrderTrack;
use crate::ping::Ping;
use crate::replica::{Replica, Tap};
use crate::status::{Availability, DriverStatus, OrderStatus};

#[derive(Clone)]
pub struct Handle {
    engine: Arc<Mutex<Engine>>,
    /// Where local writes go out to other nodes ([`Handle::set_tap`]);
    /// empty on one node.
    tap: Arc<OnceLock<Arc<dyn Tap>>>,
}

impl Handle {
    pub fn new(config: Config) -> Self {
        Self {
            engine: Arc::new(Mutex::new(Engine::new(config))),
            tap: Arc::new(OnceLock::new()),
        }
    }

    /// Sends every local ping and declaration from now on to `tap` too
    /// (after the lock is released). Only the first call takes effect;
    /// `false` when a tap was set already.
    pub fn set_tap(&self, tap: Arc<dyn Tap>) -> bool {
        self.tap.set(tap).is_ok()
    }

    pub fn apply_ping(&self, ping: &Ping, now_ms: i64) -> Applied {
        let cell = cells::cell_of(ping.position);
        let outcome = self.engine.lock().apply_located(ping, cell, now_ms);
        if let Some(tap) = self.tap.get() {
            tap.pings(std::slice::from_ref(ping), &[cell], &[outcome], now_ms);
        }
        outcome
    }

    /// Applies pings in order under one lock; outcomes in the same order.
    pub fn apply_pings(&self, pings: &[Ping], now_ms: i64) -> Vec<Applied> {
        let cells: Vec<_> = pings.iter().map(|p| cells::cell_of(p.position)).collect();
        let mut engine = self.engine.lock();
        let outcomes: Vec<Applied> = pings
            .iter()
            .zip(&cells)
            .map(|(p, &cell)| engine.apply_located(p, cell, now_ms))
            .collect();
        drop(engine);
        if let Some(tap) = self.tap.get() {
            tap.pings(pings, &cells, &outcomes, now_ms);
        }
        outcomes
    }

    /// Applies what other nodes know of drivers ([`Engine::apply_replica`])
    /// under one lock, cells looked up before it; never tapped. Returns
    /// how many fixes moved a driver.
    pub fn apply_replicas(&self, replicas: &[Replica], now_ms: i64) -> usize {
        let cells: Vec<Option<cells::Cell>> = replicas
            .iter()
            .map(|r| r.fix.map(|f| cells::cell_of(f.position)))
            .collect();
        let mut engine = self.engine.lock();
        replicas
            .iter()
            .zip(cells)
            .filter(|(r, cell)| engine.apply_replica(r, *cell, now_ms) == Applied::Moved)
            .count()
    }

    pub fn set_availability(
        &self,
        driver_id: DriverId,
        availability: Availability,
        now_ms: i64,
    ) -> DriverStatus {
        let mut engine = self.engine.lock();
        let status = engine.set_availability(driver_id, availability, now_ms);
        let fix = engine.driver(driver_id).and_then(|v| v.fix);
        drop(engine);
        if let Some(tap) = self.tap.get() {
            let fix = fix.map(|f| {
                let ping = Ping {
                    driver_id,
                    position: f.position,
                    recorded_at_ms: f.recorded_at_ms,
                    heading_deg: f.heading_deg,
                    speed_mps: f.speed_mps,
                    accuracy_m: f.accuracy_m,
                };
                (ping, f.cell)
            });
            tap.availability(driver_id, availability, now_ms, fix);
        }
        status
    }

    pub fn expire(&self, now_ms: i64) -> usize {
        self.engine.lock().expire(now_ms)
    }

    pub fn driver(&self, driver_id: DriverId) -> Option<DriverView> {
        self.engine.lock().driver(driver_id)
    }

    pub fn nearest(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
        filter: StatusFilter,
    ) -> Vec<NearbyDriver> {
        self.engine.lock().nearest(center, radius_m, limit, filter)
    }

    pub fn within(&self, bbox: BBox, limit: usize, filter: StatusFilter) -> Vec<DriverView> {
        self.engine.lock().within(bbox, limit, filter)
    }

    /// Puts an order on the board by version; `false`: refused as no newer
    /// than the record held (see [`OrderTrack::supersedes`]).
    pub fn track_order(&self, track: OrderTrack) -> bool {
        self.engine.lock().track_order(track)
    }

    pub fn order(&self, order_id: OrderId) -> Option<OrderTrack> {
        self.engine.lock().order(order_id)
    }

    pub fn set_order_status(
        &self,
        order_id: OrderId,
        status: OrderStatus,
        now_ms: i64,
    ) -> Result<OrderTrack, Error> {
        self.engine
            .lock()
            .set_order_status(order_id, status, now_ms)
    }

    /// Moves an order to `status` as of `version`; `Ok(None)`: refused as
    /// no newer than the record held.
    pub fn step_order(
        &self,
        order_id: OrderId,
        status: OrderStatus,
        version: i64,
        now_ms: i64,
    ) -> Result<Option<OrderTrack>, Error> {
        self.engine
            .lock()
            .step_order(order_id, status, version, now_ms)
    }

    pub fn assign(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<OrderTrack, Error> {
        self.engine.lock().assign(order_id, driver_id, now_ms)
    }

    /// [`Engine::assign_stacked`]: gives `order_id` to `driver_id` as its
    /// second order (stacking), or as its first when it is free.
    pub fn assign_stacked(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<OrderTrack, Error> {
        self.engine
            .lock()
            .assign_stacked(order_id, driver_id, now_ms)
    }

    /// [`Engine::stack_base`]: the one order, not yet picked up, a second
    /// may ride along with; `None` for a free driver or one with two.
    pub fn stack_base(&self, driver_id: DriverId) -> Option<OrderTrack> {
        self.engine.lock().stack_base(driver_id)
    }

    /// [`Engine::nearest_stack_bases`]: busy couriers near `center` (a
    /// restaurant) whose one order is not yet picked up, whatever its
    /// restaurant, with that order.
    pub fn nearest_stack_bases(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
    ) -> Vec<(NearbyDriver, OrderTrack)> {
        self.engine
            .lock()
            .nearest_stack_bases(center, radius_m, limit)
    }

    /// [`Engine::nearest_stackable`]: busy couriers near `center` whose one
    /// order, not yet picked up, is from `restaurant`, with that order.
    pub fn nearest_stackable(
        &self,
        center: LatLng,
        restaurant: crate::RestaurantId,
        radius_m: f64,
        limit: usize,
    ) -> Vec<(NearbyDriver, OrderTrack)> {
        self.engine
            .lock()
            .nearest_stackable(center, restaurant, radius_m, limit)
    }

    pub fn unassign(&self, order_id: OrderId, now_ms: i64) -> Result<OrderTrack, Error> {
        self.engine.lock().unassign(order_id, now_ms)
    }

    /// [`Engine::unassign_if`]: takes the order from `driver_id` only if
    /// that driver holds it.
    pub fn unassign_if(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<Option<OrderTrack>, Error> {
        self.engine.lock().unassign_if(order_id, driver_id, now_ms)
    }

    pub fn publish_offer(&self, offer: Arc<Offer>) {
        self.engine.lock().publish_offer(offer)
    }

    pub fn publish_offer_end(&self, offer_id: OfferId, driver_id: DriverId, end: OfferEnd) {
        self.engine
            .lock()
            .publish_offer_end(offer_id, driver_id, end)
    }

    /// Tells dispatchers an order nobody took was raised, or resolved.
    pub fn publish_unassigned(&self, news: Unassigned) {
        self.engine.lock().publish_unassigned(news)
    }

    /// Tells the order's watchers (and the event stream) that its courier
    /// reached a stop.
    pub fn publish_arrival(&self, arrived: Arrived) {
        self.engine.lock().publish_arrival(arrived)
    }

    /// Every open order with a driver (a copy; one pass over the board).
    pub fn assigned_orders(&self) -> Vec<OrderTrack> {
        self.engine.lock().assigned_orders()
    }

    /// Every open order of `restaurant` (a copy; one pass over the board:
    /// for a subscription's snapshot, not hot paths).
    pub fn restaurant_orders(&self, restaurant: crate::RestaurantId) -> Vec<OrderTrack> {
        self.engine.lock().restaurant_orders(restaurant)
    }

    /// Every open order on the board (a copy; one pass: for a console's
    /// poll, not hot paths).
    pub fn open_orders(&self) -> Vec<OrderTrack> {
        self.engine.lock().open_orders()
    }

    /// Supply (available couriers) and demand (orders waiting for one)
    /// per H3 cell at `resolution`, and every driver by status. The lock
    /// is held for a copy of one cell per available driver and one point
    /// per waiting order; the pickups' cells are looked up and everything
    /// is counted after it is released.
    pub fn census(&self, resolution: cells::CellResolution) -> Census {
        let inputs = self.engine.lock().census_inputs();
        let demand: Vec<cells::Cell> = inputs
            .waiting_pickups
            .iter()
            .map(|&p| cells::cell_of(p))
            .collect();
        Census {
            cells: census::count(&inputs.supply, &demand, resolution),
            statuses: inputs.statuses,
        }
    }

    pub fn subscribe_moves(&self) -> async_broadcast::Receiver<Moved> {
        self.engine.lock().subscribe_moves()
    }

    pub fn subscribe_changes(&self) -> async_broadcast::Receiver<Change> {
        self.engine.lock().subscribe_changes()
    }

    /// Numbers for `/metrics`.
    pub fn stats(&self) -> Stats {
        let engine = self.engine.lock();
        let (moves_queued, changes_queued) = engine.queue_depths();
        Stats {
            drivers: engine.driver_count(),
            tracked_orders: engine.active_order_count(),
            occupied_cells: engine.occupied_cells(),
            pings_applied_total: engine.pings_applied(),
            replicas_applied_total: engine.replicas_applied(),
            orders_opened_total: engine.orders_opened(),
            moves_queued,
            changes_queued,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub drivers: usize,
    pub tracked_orders: usize,
    pub occupied_cells: usize,
    /// Pings applied since start (rates come from two readings).
    pub pings_applied_total: u64,
    /// Fixes applied from other nodes since start.
    pub replicas_applied_total: u64,
    /// Orders put on the board since start.
    pub orders_opened_total: u64,
    pub moves_queued: usize,
    pub changes_queued: usize,
}

/// A supply and demand census ([`Handle::census`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Census {
    /// Cells with any supply or demand, sorted by cell.
    pub cells: Vec<CellCount>,
    /// Every known driver by live status.
    pub statuses: StatusCounts,
}
