//! The node's leases in a cluster (with `redis_url`; see ARCHITECTURE.md,
//! "Scale-out"): which regions its matcher dispatches, whether it runs
//! the once-per-cluster consumers, and what happens when it takes or loses
//! a lease.
//!
//! - A matcher node wants the lease of every region it sees work in (an
//!   order waiting for a driver: the matcher's [`RegionGate`] notes its
//!   region), and keeps what it gets while it runs. On taking a region it
//!   loads that region's orders waiting for a driver from the database and
//!   dispatches them (`api::live::take_over`). On losing one its matcher
//!   makes no more offers there (the gate's token is gone; offers out
//!   lapse, and an accept of one carries the old token, which the
//!   database refuses).
//! - A relay node wants the `relay` lease; while it holds it, its
//!   once-per-cluster consumers run (their set is gated on it).
//! - The epoch of each lease is raised in the database on every take
//!   ([`StoreFencing`]): the holder's fencing token.

use std::sync::Arc;

use async_trait::async_trait;
use engine::{Fence, LatLng, Region};
use tokio::sync::watch;

/// The relay lease's name.
pub const RELAY_LEASE: &str = "relay";

/// Fencing tokens from the database (`lease_epochs`, migration 0016).
pub struct StoreFencing {
    pub store: Arc<dyn api::Store>,
    pub clock: Arc<dyn clock::Clock>,
}

#[async_trait]
impl cluster::lease::Fencing for StoreFencing {
    async fn bump(&self, name: &str, holder: &str) -> Result<i64, String> {
        self.store
            .bump_lease_epoch(name, holder, self.clock.now_ms())
            .await
            .map_err(|e| api::error_chain(&e))
    }
}

/// The matcher's view of the node's region leases.
pub struct RegionGate {
    pub leases: cluster::Leases,
    /// `cluster.region_resolution`.
    pub resolution: engine::cells::CellResolution,
    /// Whether this node tries to take regions it sees work in (matcher
    /// nodes); an api-only node's matcher dispatches nothing.
    pub takes_regions: bool,
}

impl matcher::fence::Gate for RegionGate {
    fn fence_for(&self, pickup: LatLng) -> Option<Fence> {
        let region = Region::of_point(pickup, self.resolution);
        let name = region.lease_name();
        match self.leases.token(&name) {
            Some(epoch) => Some(Fence { region, epoch }),
            None => {
                if self.takes_regions {
                    self.leases.want(&name);
                }
                None
            }
        }
    }

    fn is_current(&self, fence: &Fence) -> bool {
        self.leases.token(&fence.region.lease_name()) == Some(fence.epoch)
    }
}

/// What the node does when it takes or loses a lease.
pub struct NodeListener {
    /// For takeovers (the store and the live side).
    pub api_state: api::AppState,
    /// `cluster.region_resolution`.
    pub resolution: engine::cells::CellResolution,
    /// Opens the once-per-cluster consumers' gate.
    pub relay_gate: watch::Sender<bool>,
    /// Stops the takeovers with the node.
    pub tracker: tokio_util::task::TaskTracker,
}

impl cluster::lease::Listener for NodeListener {
    fn acquired(&self, name: &str, token: i64) {
        if name == RELAY_LEASE {
            self.relay_gate.send_replace(true);
            // Endpoints registered on other nodes since this one started.
            if let Some(webhooks) = self.api_state.webhooks.clone() {
                self.tracker.spawn(async move {
                    match webhooks.start_stored_missing().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(webhooks = n, "webhook endpoints started on taking the relay lease"),
                        Err(e) => tracing::warn!(error = %api::error_chain(&e), "cannot load webhook endpoints"),
                    }
                });
            }
            return;
        }
        let Some(region) = Region::from_lease_name(name) else {
            return;
        };
        let state = self.api_state.clone();
        let resolution = self.resolution;
        self.tracker.spawn(async move {
            let now_ms = state.clock.now_ms();
            let in_region = |o: &api::store::Order| Region::of_point(o.pickup, resolution) == region;
            match api::live::take_over(&state, in_region, now_ms).await {
                Ok(dispatched) => {
                    tracing::info!(%region, token, dispatched, "took over a region's dispatch")
                }
                // The lease stays; the orders come through the event
                // stream's trigger as they change, and the next takeover
                // (after a restart) loads them.
                Err(e) => tracing::error!(%region, error = %api::error_chain(&e), "cannot load a region's waiting orders"),
            }
        });
    }

    fn lost(&self, name: &str) {
        if name == RELAY_LEASE {
            self.relay_gate.send_replace(false);
        }
        // A region: the matcher sees its token gone and stops there.
    }
}
