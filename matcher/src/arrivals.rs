//! Arrival fences on the live path: a courier carrying an order who comes
//! within `arrival_radius_m` of the restaurant (before pickup) or of the
//! customer's door (after pickup) raises `arrived_at_restaurant` /
//! `arrived_at_customer`, once per order and stop, as
//! `engine::Change::Arrived` on the engine's change stream (the gateway
//! tells the order's watchers, `api`'s feed appends the event).
//!
//! - [`Tracker`]: pure state. Each order's one active fence follows its
//!   tracking record ([`Tracker::on_order`]: the restaurant's while the
//!   courier heads there, the door's once picked up, none once closed or
//!   unassigned); a courier's fix is checked against it
//!   ([`Tracker::on_move`]).
//! - [`Arrivals`]: the task at the edge, reading the engine's `Change` and
//!   `Moved` streams ([`Arrivals::run`]).
//!
//! Cost per ping: the ping path itself does nothing more (this task reads
//! the moves stream every ping already feeds); here a move of a courier
//! with no order, or with no fence up, is one branch or one hash lookup;
//! only couriers with an active fence pay an R-tree lookup.
//!
//! Lagging (the engine's overflow policy, `engine::event`): lost changes
//! are recovered by rebuilding the fences from the board
//! (`Handle::assigned_orders`; fences still up keep their state, so none
//! fires twice); lost moves are lost fixes, and a courier still inside a
//! fence is caught by their next ping. Two streams have no common order:
//! before applying a change the task checks the moves already queued
//! (published before it), so a pickup does not take the restaurant's
//! fence down before the pings that reached it.

use engine::{
    Arrived, Change, DriverId, Handle, LatLng, Moved, OrderId, OrderStatus, OrderTrack, RecvError,
    TryRecvError,
};
use rustc_hash::FxHashSet;
use tokio_util::sync::CancellationToken;

use crate::geofence::{self, FenceKind, Fences};

/// Arrivals raised, by `arrival`.
const ARRIVALS_TOTAL: &str = "hexdash_arrivals_total";
/// Fences up now (gauge).
const FENCES: &str = "hexdash_arrival_fences";
/// Changes or moves the arrival task lost because it lagged, by `stream`.
const LAGGED_TOTAL: &str = "hexdash_arrival_lagged_total";

/// HELP text of this module's metrics (see [`crate::describe_metrics`]).
pub(crate) fn describe() {
    metrics::describe_counter!(
        ARRIVALS_TOTAL,
        "Couriers' arrivals at the restaurant or the customer's door, by arrival"
    );
    metrics::describe_gauge!(
        FENCES,
        "Arrival fences up: one per assigned order (its restaurant before pickup, its door after)"
    );
    metrics::describe_counter!(
        LAGGED_TOTAL,
        "Engine changes or moves the arrival fences lost by lagging, by stream"
    );
}

/// The fence an order in `status` needs: the restaurant until the food is
/// picked up, the door until delivered; none once closed.
fn fence_for(status: OrderStatus) -> Option<FenceKind> {
    match status {
        OrderStatus::Placed
        | OrderStatus::Paid
        | OrderStatus::Accepted
        | OrderStatus::Preparing
        | OrderStatus::ReadyForPickup => Some(FenceKind::Restaurant),
        OrderStatus::PickedUp => Some(FenceKind::Customer),
        OrderStatus::Delivered
        | OrderStatus::Cancelled
        | OrderStatus::Rejected
        | OrderStatus::PaymentFailed => None,
    }
}

/// The fences of assigned orders, kept from their tracking records.
#[derive(Debug)]
pub struct Tracker {
    fences: Fences,
    /// Orders with a fence up, so a resync can drop the ones gone from the
    /// board.
    orders: FxHashSet<OrderId>,
}

impl Tracker {
    /// No fences; new ones get `radius_m` (and the default hysteresis).
    pub fn new(radius_m: f64) -> Tracker {
        Tracker {
            fences: Fences::new(radius_m, geofence::DEFAULT_MARGIN_M),
            orders: FxHashSet::default(),
        }
    }

    /// Fences up.
    pub fn len(&self) -> usize {
        self.fences.len()
    }

    /// Whether none is up.
    pub fn is_empty(&self) -> bool {
        self.fences.is_empty()
    }

    /// `track` changed: its fence follows it (the restaurant's while its
    /// courier heads there, the door's once picked up; none without a
    /// driver or once closed). A record that keeps the fence it had (a
    /// status step before pickup) leaves it as it is.
    pub fn on_order(&mut self, track: &OrderTrack) {
        match (track.driver_id, fence_for(track.status)) {
            (Some(driver_id), Some(kind)) => {
                let center = match kind {
                    FenceKind::Restaurant => track.pickup,
                    FenceKind::Customer => track.dropoff,
                };
                self.fences
                    .set_fence(track.order_id, driver_id, kind, center);
                self.orders.insert(track.order_id);
            }
            _ => {
                self.fences.remove_order(track.order_id);
                self.orders.remove(&track.order_id);
            }
        }
    }

    /// Rebuilds from `assigned` (every open order with a driver, from the
    /// board): fences of orders not in it go; the others follow their
    /// record, keeping their state where unchanged.
    pub fn resync(&mut self, assigned: &[OrderTrack]) {
        let current: FxHashSet<OrderId> = assigned.iter().map(|t| t.order_id).collect();
        let gone: Vec<OrderId> = self.orders.difference(&current).copied().collect();
        for order_id in gone {
            self.fences.remove_order(order_id);
            self.orders.remove(&order_id);
        }
        for track in assigned {
            self.on_order(track);
        }
    }

    /// A courier's fix: the arrivals it raises (none for a courier
    /// without an order or without a fence up, at the cost of a branch or
    /// a hash lookup).
    pub fn on_move(&mut self, m: &Moved) -> Vec<Arrived> {
        self.on_fix(m.driver_id, m.position, m.recorded_at_ms)
    }

    /// `driver_id` is at `position` (recorded at `at_ms`): the arrivals
    /// that raises (see [`Tracker::on_move`]).
    pub fn on_fix(&mut self, driver_id: DriverId, position: LatLng, at_ms: i64) -> Vec<Arrived> {
        self.fences
            .check(driver_id, position)
            .into_iter()
            .map(|a| Arrived {
                order_id: a.order_id,
                driver_id,
                arrival: a.kind.arrival(),
                position,
                at_ms,
            })
            .collect()
    }
}

/// The arrival fences' task: its engine and streams.
pub struct Arrivals {
    engine: Handle,
    tracker: Tracker,
}

impl Arrivals {
    /// Fences of `radius_m` over `engine`'s orders; `None` when the radius
    /// is not positive (`matcher.arrival_radius_m = 0`: off).
    pub fn new(engine: Handle, radius_m: f64) -> Option<Arrivals> {
        (radius_m > 0.0 && radius_m.is_finite()).then(|| {
            describe();
            Arrivals {
                engine,
                tracker: Tracker::new(radius_m),
            }
        })
    }

    /// Reads the engine's changes and moves until `shutdown`, publishing
    /// each arrival on the change stream. Subscribes and puts up the
    /// fences of the orders already assigned (restored at start-up) when
    /// called, so nothing between is missed.
    pub fn run(mut self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        let changes = self.engine.subscribe_changes();
        let moves = self.engine.subscribe_moves();
        self.tracker.resync(&self.engine.assigned_orders());
        metrics::gauge!(FENCES).set(self.tracker.len() as f64);
        self.run_with(changes, moves, shutdown)
    }

    async fn run_with(
        mut self,
        mut changes: engine::Receiver<Change>,
        mut moves: engine::Receiver<Moved>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                change = changes.recv_direct() => {
                    // The moves published before this change are queued
                    // already: check them first, so a pickup does not take
                    // the restaurant's fence down before the pings that
                    // reached it.
                    if self.drain(&mut moves).is_err() {
                        return;
                    }
                    match change {
                        Ok(Change::Order(track)) => {
                            self.tracker.on_order(&track);
                            metrics::gauge!(FENCES).set(self.tracker.len() as f64);
                            self.check_last_fix(track.driver_id);
                        }
                        Ok(_) => {}
                        Err(RecvError::Overflowed(n)) => {
                            metrics::counter!(LAGGED_TOTAL, "stream" => "changes").increment(n);
                            tracing::warn!(lost = n, "arrival fences lagged on changes; resynchronising");
                            self.tracker.resync(&self.engine.assigned_orders());
                            metrics::gauge!(FENCES).set(self.tracker.len() as f64);
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
                m = moves.recv_direct() => match m {
                    Ok(m) => self.on_move(&m),
                    Err(RecvError::Overflowed(n)) => {
                        metrics::counter!(LAGGED_TOTAL, "stream" => "moves").increment(n);
                    }
                    Err(RecvError::Closed) => return,
                },
            }
            // The streams are not tokio-aware: give other tasks on this
            // worker their turn under sustained load.
            tokio::task::coop::consume_budget().await;
        }
    }

    /// Checks the moves queued now (at most as many as the stream holds,
    /// so a flood cannot keep it here); `Err` once the stream is closed.
    fn drain(&mut self, moves: &mut engine::Receiver<Moved>) -> Result<(), ()> {
        for _ in 0..moves.len() {
            match moves.try_recv() {
                Ok(m) => self.on_move(&m),
                Err(TryRecvError::Overflowed(n)) => {
                    metrics::counter!(LAGGED_TOTAL, "stream" => "moves").increment(n);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return Err(()),
            }
        }
        Ok(())
    }

    /// Checks the courier's last fix against the fences just put up. The
    /// drain before a change may check fixes published after it (the
    /// streams have no common order), which then met no fence; and a
    /// courier may already be inside when the fence goes up. Either way it
    /// arrives now, not at a next ping that may never come (a fence fires
    /// once, so a fix checked twice raises nothing more).
    fn check_last_fix(&mut self, driver_id: Option<DriverId>) {
        let Some(driver_id) = driver_id else { return };
        let Some(fix) = self.engine.driver(driver_id).and_then(|d| d.fix) else {
            return;
        };
        let arrivals = self
            .tracker
            .on_fix(driver_id, fix.position, fix.recorded_at_ms);
        self.publish(arrivals);
    }

    /// Checks one fix and publishes what it raises.
    fn on_move(&mut self, m: &Moved) {
        let arrivals = self.tracker.on_move(m);
        self.publish(arrivals);
    }

    /// Publishes arrivals on the change stream.
    fn publish(&mut self, arrivals: Vec<Arrived>) {
        for arrived in arrivals {
            metrics::counter!(ARRIVALS_TOTAL, "arrival" => arrived.arrival.as_str()).increment(1);
            tracing::debug!(
                order_id = %arrived.order_id,
                driver_id = %arrived.driver_id,
                arrival = arrived.arrival.as_str(),
                "courier arrived"
            );
            self.engine.publish_arrival(arrived);
        }
    }
}

#[cfg(test)]
mod tests;
