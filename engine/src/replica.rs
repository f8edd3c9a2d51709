//! Driver state shared between nodes: what another node's engine applied
//! ([`Replica`]), and the [`Tap`] through which this engine's local writes
//! leave it. The engine does no I/O: the cluster crate implements the tap
//! (it publishes through Redis) and hands remote replicas back in
//! ([`crate::Handle::apply_replicas`]).
//!
//! **Who owns what.** A replica carries only what the driver itself
//! produced: its fix, when a node last heard from it, and what it declared
//! (availability, stamped with the time of the declaration so the newest
//! declaration wins on every node). It never carries the driver's order:
//! every node binds drivers to orders from its own order board (the event
//! stream), so a replica cannot undo an assignment, and a driver's status
//! (`busy`, `available`, `offline`) is derived on each node from the two.

use crate::Applied;
use crate::cells::Cell;
use crate::geo::LatLng;
use crate::ids::DriverId;
use crate::ping::Ping;
use crate::status::Availability;

/// A fix as another node applied it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplicaFix {
    pub position: LatLng,
    /// Device time of the fix, Unix ms (orders fixes, as for local pings).
    pub recorded_at_ms: i64,
    pub heading_deg: Option<f32>,
    pub speed_mps: Option<f32>,
    pub accuracy_m: Option<f32>,
}

/// One driver's state as another node knows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Replica {
    pub driver_id: DriverId,
    /// The driver's latest fix there; `None` for a declaration alone.
    pub fix: Option<ReplicaFix>,
    /// When that node last heard from the driver (server time, Unix ms):
    /// presence expires from it here as it does there.
    pub seen_at_ms: i64,
    /// What the driver declared last.
    pub availability: Availability,
    /// When it declared it (server time, Unix ms); 0: never (the default
    /// of a driver that pings). The newest declaration wins.
    pub availability_at_ms: i64,
}

impl Replica {
    /// The ping a fix stands for (validated at its origin).
    pub fn ping(&self) -> Option<Ping> {
        self.fix.map(|f| Ping {
            driver_id: self.driver_id,
            position: f.position,
            recorded_at_ms: f.recorded_at_ms,
            heading_deg: f.heading_deg,
            speed_mps: f.speed_mps,
            accuracy_m: f.accuracy_m,
        })
    }
}

/// Where this engine's local writes go out (set once per [`crate::Handle`]
/// with [`crate::Handle::set_tap`]). Called after the lock is released,
/// on the caller's thread: an implementation appends to a buffer and
/// returns; it must never block or wait. Replicas applied from other nodes
/// are never tapped (a node does not echo what it heard).
pub trait Tap: Send + Sync + 'static {
    /// Local pings and what became of each (same order); `cells` are their
    /// driver-resolution cells.
    fn pings(&self, pings: &[Ping], cells: &[Cell], outcomes: &[Applied], now_ms: i64);

    /// A driver declared `availability` at `at_ms` on this node; `fix` is
    /// its latest fix here, if any (where the news goes).
    fn availability(
        &self,
        driver_id: DriverId,
        availability: Availability,
        at_ms: i64,
        fix: Option<(Ping, Cell)>,
    );
}
