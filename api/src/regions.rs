//! Regions on demand for `nearby` in a cluster: a node that does not hold
//! every region (an api node without the matcher role) asks the positions
//! feed to hold the regions around a query before it answers, so `nearby`
//! on any node answers for the whole fleet. The binary wires
//! `cluster::Positions` in; on one node there is nothing to hold.

use async_trait::async_trait;
use engine::LatLng;

/// Counter: `nearby` answers given from what the node held, without every
/// region around the query (the hold timed out, or the circle spans too
/// many regions).
pub const NEARBY_PARTIAL_TOTAL: &str = "hexdash_nearby_partial_total";

/// Holds the regions a `nearby` needs (see the module docs).
#[async_trait]
pub trait RegionsOnDemand: Send + Sync {
    /// Makes the node hold the drivers within `radius_m` of `center`,
    /// waiting a moment for a region it did not hold; whether every region
    /// around is held now.
    async fn hold_around(&self, center: LatLng, radius_m: f64) -> bool;
}
