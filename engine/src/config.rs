//! Engine settings. Every bound here exists to keep memory and latency finite.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// A driver with no ping for this long becomes offline. Default 120 s:
    /// courier phones go quiet for a minute and more in tunnels, lifts and
    /// basements and when the OS throttles a backgrounded app, and a driver
    /// flapping offline loses offers; a courier who really left is caught by
    /// the offer timeout instead (the order moves on and comes back later).
    pub presence_timeout_s: u64,
    /// Delivered, cancelled or rejected orders stay watchable this long.
    pub closed_order_retention_s: u64,
    /// Capacity of the `Moved` stream: about half a second of pings at
    /// 100k/s. A receiver further behind loses the oldest (see `event`).
    pub moves_capacity: usize,
    /// Capacity of the `Change` stream; changes are rare next to moves.
    pub changes_capacity: usize,
    /// Grid cell size in degrees (lat, lng): about 280 × 240 m at 58°N, so a
    /// city cell holds a handful of drivers and a 3 km search needs few rings.
    pub grid_cell_deg: (f64, f64),
    /// Pings one driver may send per second, sustained, whichever way
    /// they come (MQTT, WebSocket, HTTP batch; 0: no limit). Beyond it a
    /// ping is dropped before it touches the index and counted as
    /// `rate_limited`. A courier app pings every second or few.
    pub max_pings_per_s: u32,
    /// Pings one driver may send at once from a full budget: an HTTP
    /// batch of pings buffered offline (`ingest.max_batch_pings`) fits.
    pub ping_burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            presence_timeout_s: 120,
            closed_order_retention_s: 3600,
            moves_capacity: 65_536,
            changes_capacity: 65_536,
            grid_cell_deg: (0.0025, 0.004),
            max_pings_per_s: 20,
            ping_burst: 1_000,
        }
    }
}
