//! The adapters between this node's parts and `cluster::positions`
//! (ARCHITECTURE.md, "Scale-out"): which regions the node's watchers need
//! ([`WatchedRegions`], over the gateway's subscriptions and the engine's
//! board), the regions a `nearby` needs ([`NearbyHolds`]) and where a
//! notification from another node goes out ([`LocalDeliver`]).
//! Wiring only.

use cluster::positions::{Deliver, Interest, Region, Wanted};
use engine::cells::CellResolution;

/// The regions a gateway's watchers need: for each watched order its
/// pickup's and door's regions and its driver's (from the driver's fix
/// here, which follows the driver across regions because a crossing is
/// announced in both; or, without one, from the drivers' directory), and
/// for each area subscription the regions covering its box (a box wider
/// than `cluster::positions::MAX_AREA_REGIONS` regions adds none: it sees
/// what the node holds anyway).
pub struct WatchedRegions {
    /// The tracking socket, on gateway nodes.
    pub gateway: Option<ws_gateway::Gateway>,
    /// The node's engine (the board and the drivers' fixes).
    pub engine: engine::Handle,
}

impl Interest for WatchedRegions {
    fn wanted(&self, resolution: CellResolution) -> Wanted {
        let Some(gateway) = &self.gateway else {
            return Wanted::default();
        };
        let watched = gateway.watched();
        let mut wanted = Wanted::default();
        for order in watched.orders {
            let Some(track) = self.engine.order(order) else {
                continue;
            };
            wanted
                .regions
                .push(Region::of_point(track.pickup, resolution));
            wanted
                .regions
                .push(Region::of_point(track.dropoff, resolution));
            if let Some(driver) = track.driver_id {
                match self.engine.driver(driver).and_then(|v| v.fix) {
                    Some(fix) => wanted.regions.push(Region::of_cell(fix.cell, resolution)),
                    None => wanted.drivers.push(driver),
                }
            }
        }
        for bbox in watched.areas {
            if let Some(regions) = Region::covering(bbox, resolution) {
                wanted.regions.extend(regions);
            }
        }
        wanted
    }
}

/// How long a region stays held after the last `nearby` that needed it:
/// a dispatcher's console asks again every few seconds, and re-loading a
/// snapshot per query would cost more than holding the region.
const NEARBY_LINGER: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a `nearby` waits for a region this node did not hold to be
/// subscribed and loaded (one refresh and a snapshot read: tens of
/// milliseconds) before it answers from what the node holds.
const NEARBY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The regions around a `nearby`, held through the positions feed.
pub struct NearbyHolds {
    /// The node's share of positions.
    pub positions: cluster::Positions,
}

#[async_trait::async_trait]
impl api::regions::RegionsOnDemand for NearbyHolds {
    async fn hold_around(&self, center: engine::LatLng, radius_m: f64) -> bool {
        self.positions
            .hold_around(center, radius_m, NEARBY_LINGER, NEARBY_WAIT)
            .await
    }
}

/// Notifications sent by another node for drivers and users connected
/// here.
pub struct LocalDeliver {
    /// Drivers' streams and MQTT.
    pub ingest: ingest::Ingest,
    /// The tracking socket's `me` channel, on gateway nodes.
    pub gateway: Option<ws_gateway::Gateway>,
}

/// The contract's notification in `value`, or `None` (logged).
fn readable(value: &serde_json::Value) -> Option<contract::Notification> {
    match serde_json::from_value::<contract::Notification>(value.clone()) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable notification from another node");
            None
        }
    }
}

impl Deliver for LocalDeliver {
    fn notify(&self, driver: engine::DriverId, notification: &serde_json::Value) {
        if let Some(n) = readable(notification) {
            self.ingest.notify(driver, &n);
        }
    }

    fn notify_user(&self, user: engine::UserId, notification: &serde_json::Value) {
        if let Some(gateway) = &self.gateway
            && let Some(n) = readable(notification)
        {
            gateway.notify(user, &n);
        }
    }
}
