//! [`Gate`]: which orders a clustered matcher may dispatch. In a cluster
//! one node at a time leads each region (a lease in Redis); the matcher
//! dispatches an order only while its node leads the order's region, and
//! keeps with the dispatch the region's fencing token, which the accept
//! hands the store (the database refuses a stale one). Without a gate (one
//! node) every order is dispatched and no token is checked.

use engine::{Fence, LatLng};

/// What the matcher asks of the node's leases.
pub trait Gate: Send + Sync {
    /// The token under which this node dispatches an order picked up at
    /// `pickup`: `Some` while the node leads its region; `None` otherwise,
    /// and the gate notes that the region has work, so the node tries to
    /// take it (its takeover then loads the region's orders).
    fn fence_for(&self, pickup: LatLng) -> Option<Fence>;
    /// Whether `fence` is still this node's token for its region (the
    /// lease is held and was not lost and taken again since).
    fn is_current(&self, fence: &Fence) -> bool;
}
