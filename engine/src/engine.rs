//! The driver table and the live order board, with every index kept current.
//!
//! `Engine` is plain single-threaded state: every method takes `now_ms` from
//! the caller, so tests and benchmarks are deterministic. `Handle` adds the
//! lock and the shared ownership.

use std::sync::Arc;

use async_broadcast::{InactiveReceiver, Sender};
use rustc_hash::FxHashMap;

use crate::cells::{self, Cell, CellMembers};
use crate::config::Config;
use crate::event::{Arrived, Change, Moved, Offer, OfferEnd, Unassigned};
use crate::geo::{BBox, LatLng, haversine_m};
use crate::grid::{Entry, Grid, GridPos};
use crate::ids::{DriverId, OfferId, OrderId};
use crate::orders::{OrderBoard, OrderTrack};
use crate::ping::{MAX_PLAUSIBLE_SPEED_MPS, Ping};
use crate::replica::Replica;
use crate::status::{Availability, DriverStatus, OrderStatus};

/// Jumps within this distance are GPS noise, never implausible.
const JUMP_SLACK_M: f64 = 250.0;
/// After this many refused jumps in a row the driver really is elsewhere (the
/// earlier fix was the glitch): accept and re-anchor.
const JUMPS_BEFORE_REANCHOR: u8 = 3;

/// What happened to a ping. Expected situations, not errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Moved,
    /// Older than the driver's last applied ping: ignored.
    Stale,
    /// Same time and place as the last applied ping: ignored.
    Duplicate,
    /// Farther from the last fix than a vehicle could travel: refused.
    ImplausibleJump,
    /// Over the driver's ping budget ([`Config::max_pings_per_s`]):
    /// dropped before anything else is looked at.
    RateLimited,
}

/// A caller mistake or a lost race, reported to whoever asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unknown driver")]
    UnknownDriver,
    #[error("unknown order")]
    UnknownOrder,
    #[error("the order already has a driver")]
    OrderTaken(DriverId),
    #[error("the driver already holds an order")]
    DriverBusy(OrderId),
    #[error("the order is closed")]
    OrderClosed(OrderStatus),
}

/// The last applied fix of a driver.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    pub position: LatLng,
    pub recorded_at_ms: i64,
    pub heading_deg: Option<f32>,
    pub speed_mps: Option<f32>,
    pub accuracy_m: Option<f32>,
    pub cell: Cell,
}

/// A driver as queries return it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriverView {
    pub driver_id: DriverId,
    pub fix: Option<Fix>,
    /// Server time of the last applied ping (presence), Unix ms.
    pub seen_at_ms: Option<i64>,
    pub status: DriverStatus,
    pub availability: Availability,
    /// The first open order the driver holds (the one taken first); `None`
    /// when free.
    pub current_order: Option<OrderId>,
    /// The second open order of a stacking courier (`matcher.stacking`),
    /// taken while `current_order` was not yet picked up; `None` otherwise.
    /// When the first closes, this one becomes `current_order`.
    pub stacked_order: Option<OrderId>,
}

impl DriverView {
    /// Every open order the driver holds, first taken first (at most two).
    pub fn orders(&self) -> impl Iterator<Item = OrderId> + use<> {
        self.current_order.into_iter().chain(self.stacked_order)
    }
}

/// One result of a nearest query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NearbyDriver {
    pub driver_id: DriverId,
    pub position: LatLng,
    pub distance_m: f64,
    pub status: DriverStatus,
    pub recorded_at_ms: i64,
}

/// Which statuses a query keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Any,
    Only(DriverStatus),
}

impl StatusFilter {
    #[inline]
    pub fn keeps(self, s: DriverStatus) -> bool {
        match self {
            Self::Any => true,
            Self::Only(want) => want == s,
        }
    }
}

struct DriverRecord {
    id: DriverId,
    fix: Option<Fix>,
    seen_at_ms: Option<i64>,
    present: bool,
    availability: Availability,
    /// When `availability` was declared (server time, Unix ms; 0 never):
    /// between nodes the newest declaration wins.
    availability_at_ms: i64,
    current_order: Option<OrderId>,
    /// The second order of a stacking courier; only ever set while
    /// `current_order` is (see [`Engine::assign_stacked`]).
    stacked_order: Option<OrderId>,
    status: DriverStatus,
    refused_jumps: u8,
    /// The driver's ping budget as a GCRA timestamp, microseconds
    /// ([`crate::rate`]; 0: full).
    ping_budget_us: i64,
    /// Whether the latest fix came from another node ([`Replica`]): its
    /// status changes are that node's to record.
    remote: bool,
    grid_pos: Option<GridPos>,
    cell_index: u32,
}

impl DriverRecord {
    fn derive_status(&self) -> DriverStatus {
        if !self.present {
            DriverStatus::Offline
        } else if self.current_order.is_some() {
            DriverStatus::Busy
        } else {
            match self.availability {
                Availability::Available => DriverStatus::Available,
                Availability::Offline => DriverStatus::Offline,
            }
        }
    }

    fn view(&self) -> DriverView {
        DriverView {
            driver_id: self.id,
            fix: self.fix,
            seen_at_ms: self.seen_at_ms,
            status: self.status,
            availability: self.availability,
            current_order: self.current_order,
            stacked_order: self.stacked_order,
        }
    }
}

pub struct Engine {
    config: Config,
    /// Each driver's ping budget ([`Config::max_pings_per_s`]; `None`: no
    /// limit).
    ping_rate: Option<crate::rate::Rate>,
    slots: FxHashMap<DriverId, u32>,
    drivers: Vec<DriverRecord>,
    grid: Grid,
    cells: CellMembers,
    orders: OrderBoard,
    moves: Sender<Moved>,
    changes: Sender<Change>,
    // Kept so the streams stay open while nobody listens; inactive receivers
    // hold no messages.
    moves_idle: InactiveReceiver<Moved>,
    changes_idle: InactiveReceiver<Change>,
    /// Pings applied since start (`Applied::Moved`): a console derives
    /// pings per second from two readings.
    pings_applied: u64,
    /// Orders put on the board for the first time since start: a console
    /// derives orders per minute from two readings.
    orders_opened: u64,
    /// Fixes applied from other nodes since start ([`Engine::apply_replica`]).
    replicas_applied: u64,
}

/// What a census counts, copied under the lock ([`Engine::census_inputs`]);
/// the counting happens outside it (`crate::census::count`).
#[derive(Clone, Debug, Default)]
pub struct CensusInputs {
    /// The cell of each available driver with a fix.
    pub supply: Vec<Cell>,
    /// The pickup of each open order without a driver, not picked up.
    pub waiting_pickups: Vec<LatLng>,
    /// Every known driver by live status.
    pub statuses: crate::census::StatusCounts,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        let (mut moves, moves_rx) = async_broadcast::broadcast(config.moves_capacity);
        moves.set_overflow(true);
        moves.set_await_active(false);
        let (mut changes, changes_rx) = async_broadcast::broadcast(config.changes_capacity);
        changes.set_overflow(true);
        changes.set_await_active(false);
        Self {
            grid: Grid::new(config.grid_cell_deg),
            ping_rate: crate::rate::Rate::new(config.max_pings_per_s, config.ping_burst),
            config,
            slots: FxHashMap::default(),
            drivers: Vec::new(),
            cells: CellMembers::default(),
            orders: OrderBoard::default(),
            moves,
            changes,
            moves_idle: moves_rx.deactivate(),
            changes_idle: changes_rx.deactivate(),
            pings_applied: 0,
            orders_opened: 0,
            replicas_applied: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A new receiver of `Moved` events, starting with the next one.
    pub fn subscribe_moves(&self) -> async_broadcast::Receiver<Moved> {
        self.moves_idle.activate_cloned()
    }

    /// A new receiver of `Change` events, starting with the next one.
    pub fn subscribe_changes(&self) -> async_broadcast::Receiver<Change> {
        self.changes_idle.activate_cloned()
    }

    /// Events waiting in each stream for the slowest receiver: (moves, changes).
    pub fn queue_depths(&self) -> (usize, usize) {
        (self.moves.len(), self.changes.len())
    }

    pub fn driver_count(&self) -> usize {
        self.drivers.len()
    }

    pub fn active_order_count(&self) -> usize {
        self.orders.len()
    }

    /// Applies a ping, computing its H3 cell here.
    pub fn apply_ping(&mut self, ping: &Ping, now_ms: i64) -> Applied {
        self.apply_located(ping, cells::cell_of(ping.position), now_ms)
    }

    /// Applies a ping whose driver-resolution cell the caller computed
    /// (outside any lock: the cell lookup is the most expensive step).
    pub fn apply_located(&mut self, ping: &Ping, cell: Cell, now_ms: i64) -> Applied {
        let slot = self.slot_or_insert(ping.driver_id);
        let rec = &mut self.drivers[slot as usize];
        if let Some(rate) = self.ping_rate {
            // Every ping received counts, stale and duplicate ones too: the
            // budget bounds what a driver makes the server do.
            match rate.take(rec.ping_budget_us, now_ms.saturating_mul(1000)) {
                Ok(budget) => rec.ping_budget_us = budget,
                Err(_) => return Applied::RateLimited,
            }
        }
        let previous = rec.fix;
        if let Some(last) = previous {
            if ping.recorded_at_ms < last.recorded_at_ms {
                return Applied::Stale;
            }
            if ping.recorded_at_ms == last.recorded_at_ms {
                return if ping.position == last.position {
                    Applied::Duplicate
                } else {
                    Applied::Stale
                };
            }
            let elapsed_s = (ping.recorded_at_ms - last.recorded_at_ms) as f64 / 1000.0;
            let reach_m = f64::from(MAX_PLAUSIBLE_SPEED_MPS) * elapsed_s + JUMP_SLACK_M;
            if rec.present
                && haversine_m(last.position, ping.position) > reach_m
                && rec.refused_jumps < JUMPS_BEFORE_REANCHOR
            {
                rec.refused_jumps += 1;
                return Applied::ImplausibleJump;
            }
        }
        rec.refused_jumps = 0;
        rec.remote = false;
        let fix = Fix {
            position: ping.position,
            recorded_at_ms: ping.recorded_at_ms,
            heading_deg: ping.heading_deg,
            speed_mps: ping.speed_mps,
            accuracy_m: ping.accuracy_m,
            cell,
        };
        rec.fix = Some(fix);
        rec.seen_at_ms = Some(now_ms);
        rec.present = true;

        self.place_in_grid(slot, ping.position);
        let previous_cell = previous.map(|f| f.cell);
        if previous_cell != Some(cell) {
            self.move_cell(slot, previous_cell, cell);
        }
        self.refresh_status(slot, now_ms);
        let rec = &self.drivers[slot as usize];
        let _ = self.moves.try_broadcast(Moved {
            driver_id: rec.id,
            position: fix.position,
            previous: previous.map(|f| f.position),
            cell,
            previous_cell,
            recorded_at_ms: fix.recorded_at_ms,
            heading_deg: fix.heading_deg,
            speed_mps: fix.speed_mps,
            status: rec.status,
            order_id: rec.current_order,
            stacked_order: rec.stacked_order,
        });
        self.pings_applied += 1;
        Applied::Moved
    }

    /// Records what a driver declared. Returns the resulting status.
    pub fn set_availability(
        &mut self,
        driver_id: DriverId,
        availability: Availability,
        now_ms: i64,
    ) -> DriverStatus {
        let slot = self.slot_or_insert(driver_id);
        let rec = &mut self.drivers[slot as usize];
        rec.availability = availability;
        rec.availability_at_ms = now_ms;
        self.refresh_status(slot, now_ms);
        self.drivers[slot as usize].status
    }

    /// Applies what another node knows of a driver ([`Replica`]): its fix
    /// unless this engine holds a newer one (the same order rule as local
    /// pings, without the jump check: the origin made it), its presence
    /// (it expires here from `seen_at_ms`, as there), and its declared
    /// availability if newer than the one held. Never touches the driver's
    /// order: that is bound from this node's own order board. Returns what
    /// became of the fix (`Duplicate` for a declaration alone).
    pub fn apply_replica(&mut self, replica: &Replica, cell: Option<Cell>, now_ms: i64) -> Applied {
        let slot = self.slot_or_insert(replica.driver_id);
        let cutoff = now_ms - (self.config.presence_timeout_s as i64) * 1000;
        // Another node's clock may run ahead of ours: never in our future.
        let seen = replica.seen_at_ms.min(now_ms);
        let rec = &mut self.drivers[slot as usize];
        if replica.availability_at_ms > rec.availability_at_ms {
            rec.availability = replica.availability;
            rec.availability_at_ms = replica.availability_at_ms;
        }
        // A declaration alone says nothing of presence (`seen_at_ms` 0).
        if seen > 0 && rec.seen_at_ms.is_none_or(|t| t < seen) {
            rec.seen_at_ms = Some(seen);
            if seen > cutoff {
                rec.present = true;
            }
        }
        let mut outcome = Applied::Duplicate;
        if let (Some(fix), Some(cell)) = (replica.fix, cell) {
            let previous = rec.fix;
            outcome = match previous {
                Some(last) if fix.recorded_at_ms < last.recorded_at_ms => Applied::Stale,
                Some(last) if fix.recorded_at_ms == last.recorded_at_ms => Applied::Duplicate,
                _ => Applied::Moved,
            };
            if outcome == Applied::Moved {
                rec.fix = Some(Fix {
                    position: fix.position,
                    recorded_at_ms: fix.recorded_at_ms,
                    heading_deg: fix.heading_deg,
                    speed_mps: fix.speed_mps,
                    accuracy_m: fix.accuracy_m,
                    cell,
                });
                rec.refused_jumps = 0;
                rec.remote = true;
                self.place_in_grid(slot, fix.position);
                let previous_cell = previous.map(|f| f.cell);
                if previous_cell != Some(cell) {
                    self.move_cell(slot, previous_cell, cell);
                }
                self.refresh_status(slot, now_ms);
                let rec = &self.drivers[slot as usize];
                let _ = self.moves.try_broadcast(Moved {
                    driver_id: rec.id,
                    position: fix.position,
                    previous: previous.map(|f| f.position),
                    cell,
                    previous_cell,
                    recorded_at_ms: fix.recorded_at_ms,
                    heading_deg: fix.heading_deg,
                    speed_mps: fix.speed_mps,
                    status: rec.status,
                    order_id: rec.current_order,
                    stacked_order: rec.stacked_order,
                });
                self.replicas_applied += 1;
                return outcome;
            }
        }
        self.refresh_status(slot, now_ms);
        outcome
    }

    /// Marks drivers whose last ping is older than the presence timeout as
    /// offline, and forgets closed orders past their retention. Returns how
    /// many drivers went offline.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let cutoff = now_ms - (self.config.presence_timeout_s as i64) * 1000;
        let mut expired = 0;
        for slot in 0..self.drivers.len() {
            let rec = &mut self.drivers[slot];
            if rec.present && rec.seen_at_ms.is_none_or(|t| t <= cutoff) {
                rec.present = false;
                expired += 1;
                self.refresh_status(slot as u32, now_ms);
            }
        }
        self.orders
            .prune_closed(now_ms - (self.config.closed_order_retention_s as i64) * 1000);
        expired
    }

    pub fn driver(&self, driver_id: DriverId) -> Option<DriverView> {
        self.slots
            .get(&driver_id)
            .map(|&s| self.drivers[s as usize].view())
    }

    /// The `limit` drivers nearest to `center` within `radius_m` whose status
    /// passes `filter`, nearest first, ties broken by driver id. Exact.
    pub fn nearest(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
        filter: StatusFilter,
    ) -> Vec<NearbyDriver> {
        self.grid
            .nearest(center, radius_m, limit, |e| filter.keeps(e.status))
            .into_iter()
            .map(|hit| {
                let rec = &self.drivers[hit.slot as usize];
                let fix = rec.fix.as_ref();
                NearbyDriver {
                    driver_id: hit.driver_id,
                    position: fix.map_or(center, |f| f.position),
                    distance_m: hit.distance_m,
                    status: rec.status,
                    recorded_at_ms: fix.map_or(0, |f| f.recorded_at_ms),
                }
            })
            .collect()
    }

    /// Drivers inside `bbox` whose status passes `filter`, at most `limit`.
    pub fn within(&self, bbox: BBox, limit: usize, filter: StatusFilter) -> Vec<DriverView> {
        self.grid
            .within(bbox, limit, |e: &Entry| filter.keeps(e.status))
            .into_iter()
            .map(|e| self.drivers[e.slot as usize].view())
            .collect()
    }

    /// Drivers whose current cell is `cell` (driver resolution).
    pub fn drivers_in_cell(&self, cell: Cell) -> Vec<DriverId> {
        self.cells
            .slots(cell)
            .iter()
            .map(|&s| self.drivers[s as usize].id)
            .collect()
    }

    pub fn occupied_cells(&self) -> usize {
        self.cells.occupied()
    }

    /// Pings applied since start.
    pub fn pings_applied(&self) -> u64 {
        self.pings_applied
    }

    /// Fixes applied from other nodes since start.
    pub fn replicas_applied(&self) -> u64 {
        self.replicas_applied
    }

    /// Orders put on the board since start.
    pub fn orders_opened(&self) -> u64 {
        self.orders_opened
    }

    /// What a supply and demand census counts (one pass over the drivers
    /// and the board, copying a cell per available driver and a point per
    /// waiting order; nothing is counted here).
    pub fn census_inputs(&self) -> CensusInputs {
        let mut inputs = CensusInputs::default();
        for rec in &self.drivers {
            inputs.statuses.add(rec.status);
            if rec.status == DriverStatus::Available
                && let Some(fix) = rec.fix
            {
                inputs.supply.push(fix.cell);
            }
        }
        inputs.waiting_pickups = self.orders.waiting_pickups();
        inputs
    }

    /// Every open order on the board (a copy; one pass).
    pub fn open_orders(&self) -> Vec<OrderTrack> {
        self.orders.open()
    }

    // ---- orders ----

    /// Starts or replaces the tracking record of an order, by version: a
    /// record no newer than the one held is refused (`false`; see
    /// [`OrderTrack::supersedes`]). An open order with a driver binds that
    /// driver to it (as after a restart): as its first order when it holds
    /// none, as its second when it holds one other (the store, which
    /// allows that only with stacking on, is the source of truth), not at
    /// all when it holds two; a driver the replaced record named instead,
    /// or the driver of an order now closed, is released.
    pub fn track_order(&mut self, mut track: OrderTrack) -> bool {
        let now_ms = track.updated_at_ms;
        let held = self.orders.get(track.order_id);
        if let Some(held) = held {
            if !track.supersedes(held) {
                return false;
            }
            if track.version == 0 {
                track.version = held.version;
            }
        }
        if held.is_none() {
            self.orders_opened += 1;
        }
        let previous_driver = held.and_then(|t| t.driver_id);
        if let Some(old) = previous_driver
            && (Some(old) != track.driver_id || track.status.is_terminal())
        {
            self.release_driver(old, track.order_id, now_ms);
        }
        if let Some(driver_id) = track.driver_id
            && !track.status.is_terminal()
        {
            let slot = self.slot_or_insert(driver_id);
            let rec = &mut self.drivers[slot as usize];
            match (rec.current_order, rec.stacked_order) {
                (None, _) => {
                    rec.current_order = Some(track.order_id);
                    self.refresh_status(slot, now_ms);
                }
                (Some(first), None) if first != track.order_id => {
                    rec.stacked_order = Some(track.order_id);
                }
                _ => {}
            }
        }
        self.orders.put(track.clone());
        let _ = self.changes.try_broadcast(Change::Order(track));
        true
    }

    pub fn order(&self, order_id: OrderId) -> Option<OrderTrack> {
        self.orders.get(order_id).cloned()
    }

    /// Moves an order to `status` (unversioned). A closing status frees its
    /// driver.
    pub fn set_order_status(
        &mut self,
        order_id: OrderId,
        status: OrderStatus,
        now_ms: i64,
    ) -> Result<OrderTrack, Error> {
        self.step_order(order_id, status, 0, now_ms)?
            .ok_or(Error::UnknownOrder)
    }

    /// Moves an order to `status` as of `version`, by version: `Ok(None)`
    /// when the board already holds that version or a newer one (see
    /// [`OrderTrack::supersedes`]). A closing status frees its driver.
    pub fn step_order(
        &mut self,
        order_id: OrderId,
        status: OrderStatus,
        version: i64,
        now_ms: i64,
    ) -> Result<Option<OrderTrack>, Error> {
        let track = self.orders.get_mut(order_id).ok_or(Error::UnknownOrder)?;
        if version != 0 && version <= track.version {
            return Ok(None);
        }
        track.status = status;
        track.updated_at_ms = now_ms;
        if version != 0 {
            track.version = version;
        }
        let track = track.clone();
        if status.is_terminal()
            && let Some(driver_id) = track.driver_id
        {
            self.release_driver(driver_id, order_id, now_ms);
        }
        let _ = self.changes.try_broadcast(Change::Order(track.clone()));
        Ok(Some(track))
    }

    /// Gives `order_id` to `driver_id`, atomically: the order must have no
    /// driver and the driver no order.
    pub fn assign(
        &mut self,
        order_id: OrderId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<OrderTrack, Error> {
        let slot = *self.slots.get(&driver_id).ok_or(Error::UnknownDriver)?;
        let track = self.orders.get(order_id).ok_or(Error::UnknownOrder)?;
        if track.status.is_terminal() {
            return Err(Error::OrderClosed(track.status));
        }
        if let Some(holder) = track.driver_id {
            return Err(Error::OrderTaken(holder));
        }
        if let Some(held) = self.drivers[slot as usize].current_order {
            return Err(Error::DriverBusy(held));
        }
        self.drivers[slot as usize].current_order = Some(order_id);
        self.refresh_status(slot, now_ms);
        let track = match self.orders.get_mut(order_id) {
            Some(t) => {
                t.driver_id = Some(driver_id);
                t.updated_at_ms = now_ms;
                t.clone()
            }
            None => unreachable!("checked above under the same &mut self"),
        };
        let _ = self.changes.try_broadcast(Change::Order(track.clone()));
        Ok(track)
    }

    /// Gives `order_id` to `driver_id` as a second order (stacking),
    /// atomically: the order must have no driver, and the driver exactly
    /// one open order, not yet picked up ([`Error::DriverBusy`] otherwise,
    /// as for a busy driver). The second may come from the first's
    /// restaurant or another one on the way: which restaurants, and the
    /// customers' delays, are the matcher's rule (`matcher::stack`); the
    /// engine keeps the structure: never more than two orders, the second
    /// only beside a first still at its kitchen.
    pub fn assign_stacked(
        &mut self,
        order_id: OrderId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<OrderTrack, Error> {
        let slot = *self.slots.get(&driver_id).ok_or(Error::UnknownDriver)?;
        let track = self.orders.get(order_id).ok_or(Error::UnknownOrder)?;
        if track.status.is_terminal() {
            return Err(Error::OrderClosed(track.status));
        }
        if let Some(holder) = track.driver_id {
            return Err(Error::OrderTaken(holder));
        }
        let rec = &self.drivers[slot as usize];
        let Some(first) = rec.current_order else {
            // Free now (the first closed meanwhile): a plain assignment.
            return self.assign(order_id, driver_id, now_ms);
        };
        let stackable = rec.stacked_order.is_none()
            && self
                .orders
                .get(first)
                .is_some_and(|f| may_ride_along(f.status));
        if !stackable {
            return Err(Error::DriverBusy(first));
        }
        self.drivers[slot as usize].stacked_order = Some(order_id);
        let track = match self.orders.get_mut(order_id) {
            Some(t) => {
                t.driver_id = Some(driver_id);
                t.updated_at_ms = now_ms;
                t.clone()
            }
            None => unreachable!("checked above under the same &mut self"),
        };
        let _ = self.changes.try_broadcast(Change::Order(track.clone()));
        Ok(track)
    }

    /// The open order `driver_id` holds a second one may ride along with
    /// (stacking): its only order, not yet picked up. `None` for a free
    /// driver, one with two orders, or one whose order left the kitchen.
    pub fn stack_base(&self, driver_id: DriverId) -> Option<OrderTrack> {
        let rec = &self.drivers[*self.slots.get(&driver_id)? as usize];
        if rec.stacked_order.is_some() {
            return None;
        }
        let first = self.orders.get(rec.current_order?)?;
        may_ride_along(first.status).then(|| first.clone())
    }

    /// Busy drivers within `radius_m` of `center` (a restaurant) who may
    /// take a second order along from it, whatever their first order's
    /// restaurant (stacking on the way): each holds one order, not picked
    /// up ([`Engine::stack_base`]), returned with it, nearest first, at
    /// most `limit`. The index is searched for `limit` × [`STACK_SCAN`]
    /// busy drivers: those with two orders or one picked up are skipped,
    /// and the search is bounded so a busy downtown costs no more.
    pub fn nearest_stack_bases(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
    ) -> Vec<(NearbyDriver, OrderTrack)> {
        self.nearest(
            center,
            radius_m,
            limit.saturating_mul(STACK_SCAN),
            StatusFilter::Only(DriverStatus::Busy),
        )
        .into_iter()
        .filter_map(|n| self.stack_base(n.driver_id).map(|first| (n, first)))
        .take(limit)
        .collect()
    }

    /// Busy drivers within `radius_m` of `center` holding one order from
    /// `restaurant` that is not picked up: who may take a second order
    /// from it (stacking), nearest first (ties by driver id), at most
    /// `limit`, each with that order. Found from the restaurant's orders
    /// on the board (a handful), not by a scan of the index, which filters
    /// by status only.
    pub fn nearest_stackable(
        &self,
        center: LatLng,
        restaurant: crate::RestaurantId,
        radius_m: f64,
        limit: usize,
    ) -> Vec<(NearbyDriver, OrderTrack)> {
        let mut found: Vec<(NearbyDriver, OrderTrack)> = self
            .orders
            .ids_of_restaurant(restaurant)
            .iter()
            .filter_map(|&order_id| {
                let first = self.orders.get(order_id)?;
                let driver_id = first.driver_id?;
                let rec = &self.drivers[*self.slots.get(&driver_id)? as usize];
                let fix = rec.fix?;
                let distance_m = haversine_m(center, fix.position);
                let stackable = rec.status == DriverStatus::Busy
                    && rec.current_order == Some(order_id)
                    && rec.stacked_order.is_none()
                    && may_ride_along(first.status)
                    && distance_m <= radius_m;
                stackable.then(|| {
                    (
                        NearbyDriver {
                            driver_id,
                            position: fix.position,
                            distance_m,
                            status: rec.status,
                            recorded_at_ms: fix.recorded_at_ms,
                        },
                        first.clone(),
                    )
                })
            })
            .collect();
        found.sort_by(|a, b| {
            a.0.distance_m
                .total_cmp(&b.0.distance_m)
                .then(a.0.driver_id.cmp(&b.0.driver_id))
        });
        found.truncate(limit);
        found
    }

    /// Takes an order back from its driver (reassignment or cancellation).
    pub fn unassign(&mut self, order_id: OrderId, now_ms: i64) -> Result<OrderTrack, Error> {
        let track = self.orders.get_mut(order_id).ok_or(Error::UnknownOrder)?;
        let Some(driver_id) = track.driver_id.take() else {
            return Ok(track.clone());
        };
        track.updated_at_ms = now_ms;
        let track = track.clone();
        self.release_driver(driver_id, order_id, now_ms);
        let _ = self.changes.try_broadcast(Change::Order(track.clone()));
        Ok(track)
    }

    /// Takes an order back from `driver_id` only if that driver holds it on
    /// the board: the compensation of an accept the store refused must not
    /// take the order from a driver a dispatcher gave it to meanwhile.
    /// `Ok(None)` when the board names another driver (or none).
    pub fn unassign_if(
        &mut self,
        order_id: OrderId,
        driver_id: DriverId,
        now_ms: i64,
    ) -> Result<Option<OrderTrack>, Error> {
        let track = self.orders.get(order_id).ok_or(Error::UnknownOrder)?;
        if track.driver_id != Some(driver_id) {
            // The driver may still be bound to it without the board naming
            // it (never in practice: both change under one lock); free it.
            self.release_driver(driver_id, order_id, now_ms);
            return Ok(None);
        }
        self.unassign(order_id, now_ms).map(Some)
    }

    // ---- offers (the matcher decides; the engine carries the news) ----

    pub fn publish_offer(&self, offer: Arc<Offer>) {
        let _ = self.changes.try_broadcast(Change::Offer(offer));
    }

    pub fn publish_offer_end(&self, offer_id: OfferId, driver_id: DriverId, end: OfferEnd) {
        let _ = self.changes.try_broadcast(Change::OfferEnded {
            offer_id,
            driver_id,
            end,
        });
    }

    /// Puts the news that an order nobody took was raised to dispatchers,
    /// or resolved, on the change stream (dropped if the stream is full,
    /// like every other change: a lagging reader resyncs).
    pub fn publish_unassigned(&self, news: Unassigned) {
        let _ = self.changes.try_broadcast(Change::Unassigned(news));
    }

    /// Puts a courier's arrival at a stop on the change stream (dropped
    /// if the stream is full, like every other change).
    pub fn publish_arrival(&self, arrived: Arrived) {
        let _ = self.changes.try_broadcast(Change::Arrived(arrived));
    }

    /// Every open order with a driver, for a reader of the change stream
    /// that (re)starts from the board (the arrival fences).
    pub fn assigned_orders(&self) -> Vec<OrderTrack> {
        self.orders.assigned()
    }

    /// Every open order of `restaurant` on the board.
    pub fn restaurant_orders(&self, restaurant: crate::RestaurantId) -> Vec<OrderTrack> {
        self.orders.of_restaurant(restaurant)
    }

    // ---- internals ----

    fn slot_or_insert(&mut self, driver_id: DriverId) -> u32 {
        if let Some(&slot) = self.slots.get(&driver_id) {
            return slot;
        }
        let slot = self.drivers.len() as u32;
        self.drivers.push(DriverRecord {
            id: driver_id,
            fix: None,
            seen_at_ms: None,
            present: false,
            // A driver app sends pings only while its driver is on duty, so a
            // pinging driver is available until it says otherwise.
            availability: Availability::Available,
            availability_at_ms: 0,
            current_order: None,
            stacked_order: None,
            status: DriverStatus::Offline,
            refused_jumps: 0,
            ping_budget_us: 0,
            remote: false,
            grid_pos: None,
            cell_index: 0,
        });
        self.slots.insert(driver_id, slot);
        slot
    }

    fn place_in_grid(&mut self, slot: u32, position: LatLng) {
        let rec = &self.drivers[slot as usize];
        match rec.grid_pos {
            Some(pos) => {
                let (new_pos, moved) = self.grid.relocate(pos, position);
                self.drivers[slot as usize].grid_pos = Some(new_pos);
                if let Some(moved) = moved {
                    self.fix_grid_index(moved, pos);
                }
            }
            None => {
                let entry = Entry {
                    position,
                    driver_id: rec.id,
                    slot,
                    status: rec.status,
                };
                self.drivers[slot as usize].grid_pos = Some(self.grid.insert(entry));
            }
        }
    }

    /// The entry of `slot` now sits where a removed entry at `freed` was.
    fn fix_grid_index(&mut self, slot: u32, freed: GridPos) {
        if let Some(pos) = self.drivers[slot as usize].grid_pos.as_mut() {
            *pos = freed;
        }
    }

    fn move_cell(&mut self, slot: u32, from: Option<Cell>, to: Cell) {
        if let Some(from) = from {
            let index = self.drivers[slot as usize].cell_index;
            if let Some(moved) = self.cells.remove(from, index) {
                self.drivers[moved as usize].cell_index = index;
            }
        }
        self.drivers[slot as usize].cell_index = self.cells.insert(to, slot);
    }

    fn release_driver(&mut self, driver_id: DriverId, order_id: OrderId, now_ms: i64) {
        if let Some(&slot) = self.slots.get(&driver_id) {
            let rec = &mut self.drivers[slot as usize];
            if rec.current_order == Some(order_id) {
                // A stacked second order becomes the first: still busy.
                rec.current_order = rec.stacked_order.take();
                self.refresh_status(slot, now_ms);
            } else if rec.stacked_order == Some(order_id) {
                rec.stacked_order = None;
            }
        }
    }

    /// Re-derives the status of `slot`; on a change, updates the grid entry
    /// and announces it.
    fn refresh_status(&mut self, slot: u32, now_ms: i64) {
        let rec = &mut self.drivers[slot as usize];
        let status = rec.derive_status();
        if status == rec.status {
            return;
        }
        rec.status = status;
        if let Some(pos) = rec.grid_pos {
            self.grid.set_status(pos, status);
        }
        let _ = self.changes.try_broadcast(Change::DriverStatus {
            driver_id: rec.id,
            status,
            order_id: rec.current_order,
            at_ms: now_ms,
            remote: rec.remote,
        });
    }
}

/// [`Engine::nearest_stack_bases`] looks at this many busy drivers per one
/// it returns: most busy couriers are carrying food (picked up) and cannot
/// take a second; four is enough when about a third are still on their way
/// to a kitchen.
const STACK_SCAN: usize = 4;

/// Whether a second order may ride along with a first in `status`: the
/// first is still at its kitchen (not picked up, not closed).
fn may_ride_along(status: OrderStatus) -> bool {
    !status.is_terminal() && status != OrderStatus::PickedUp
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stack_tests;
