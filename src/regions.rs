//! The adapters between this node's parts and `cluster::positions`
//! (ARCHITECTURE.md, "Scale-out"): which regions the node's watchers need
//! ([`WatchedRegions`], over the gateway's subscriptions and the engine's
//! board) and where a driver's notification from another node goes out
//! ([`IngestDeliver`]). Wiring only.

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

/// Notifications for drivers connected here, sent by another node.
pub struct IngestDeliver {
    /// Drivers' streams and MQTT.
    pub ingest: ingest::Ingest,
}

impl Deliver for IngestDeliver {
    fn notify(&self, driver: engine::DriverId, notification: &serde_json::Value) {
        match serde_json::from_value::<contract::Notification>(notification.clone()) {
            Ok(n) => self.ingest.notify(driver, &n),
            Err(e) => {
                tracing::warn!(%driver, error = %e, "unreadable notification from another node")
            }
        }
    }
}
