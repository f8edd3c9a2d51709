//! The `[cluster]` settings: who this node is, the Redis stream's limits,
//! and how drivers' positions travel by region. Read only when
//! `redis_url` is set.

use serde::{Deserialize, Serialize};

/// The node's identity in Redis and the event stream's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// This node's name in Redis (its consumer group of the event stream,
    /// the holder of leases). Unset: a random one per start, whose group
    /// is removed at a graceful stop. A stable name lets a restarted node
    /// take over its own group's unacknowledged entries.
    pub node_id: Option<String>,
    /// Put before every key hexdash uses, so several deployments (or
    /// tests) can share one Redis.
    pub key_prefix: String,
    /// The event stream keeps about this many entries (`XADD MAXLEN ~`):
    /// how far behind a node's reader may fall before it misses events
    /// (its in-memory state then waits for the order's next event).
    pub stream_max_len: u64,
    /// Entries one read takes.
    pub stream_batch: u32,
    /// How long a read waits for new entries (`BLOCK`); also how soon the
    /// reader notices shutdown.
    pub stream_block_ms: u64,
    /// An entry delivered to a consumer and not acknowledged for this long
    /// is claimed by another reader of its group (`XAUTOCLAIM`); the
    /// interval of the reader's claim pass too.
    pub claim_idle_ms: u64,
    /// The H3 resolution of a region (0…9), the unit positions are shared
    /// and held by and one node at a time dispatches (its lease). Default 5: cells of about 252 km² (edge ≈ 8.5 km),
    /// so a city is a handful of regions (each publication carries many
    /// drivers), a 3 km `nearby` touches one to three, and a node watching
    /// one order holds about a city district, not the country.
    pub region_resolution: u8,
    /// How long a node gathers its applied pings before it publishes them,
    /// one message per region (pipelined): the latency this adds to a ping
    /// seen on another node, against one `PUBLISH` per ping.
    pub publish_interval_ms: u64,
    /// How often a node writes its drivers' latest fixes to each region's
    /// snapshot (coalesced per driver): how far behind the live feed a node
    /// that starts holding a region may begin.
    pub snapshot_interval_ms: u64,
    /// A region's snapshot (and its place in the list of active regions)
    /// expires this long after its last write, so a region nobody pings in
    /// any more leaves nothing behind.
    pub snapshot_ttl_s: u64,
    /// How often a node recomputes the regions it holds (its watchers',
    /// its matcher's) and subscribes or unsubscribes.
    pub hold_refresh_ms: u64,
    /// Hold every region with drivers (the active-region list). Unset:
    /// nodes with the matcher role do (their matcher sees the whole
    /// fleet), others hold what their watchers need.
    pub hold_all_regions: Option<bool>,
    /// Regions (H3 indexes in hex, at `region_resolution`) this node
    /// always holds.
    pub hold_regions: Vec<String>,
    /// Position updates a node buffers for publication at most; beyond
    /// this (Redis slow or down) new ones are dropped and counted.
    pub max_pending_updates: usize,
    /// How long a lease (a region's dispatch, the relay) lasts without
    /// renewal: a dead holder's work moves to another node within about
    /// this (plus one `lease_renew_ms`).
    pub lease_ms: u64,
    /// How often a node renews the leases it holds and tries to take the
    /// ones it wants; well inside `lease_ms`, so a renewal or two may fail
    /// before the lease runs out.
    pub lease_renew_ms: u64,
    /// The URL other nodes reach this node's HTTP server at (a driver's
    /// answer to an offer this node made is forwarded there). Unset: the
    /// bound HTTP address (a wildcard address as 127.0.0.1, which only
    /// fits nodes on one machine).
    pub advertise_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: None,
            key_prefix: "hexdash:".into(),
            stream_max_len: 100_000,
            stream_batch: 256,
            stream_block_ms: 1_000,
            claim_idle_ms: 30_000,
            region_resolution: engine::region::DEFAULT_REGION_RESOLUTION,
            publish_interval_ms: 20,
            snapshot_interval_ms: 1_000,
            snapshot_ttl_s: 300,
            hold_refresh_ms: 500,
            hold_all_regions: None,
            hold_regions: Vec::new(),
            max_pending_updates: 1_000_000,
            lease_ms: 10_000,
            lease_renew_ms: 3_000,
            advertise_url: None,
        }
    }
}

impl Config {
    /// Refuses settings that cannot work: a zero limit, or a node id or
    /// prefix with whitespace (they become parts of keys and names).
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("stream_max_len", self.stream_max_len),
            ("stream_batch", u64::from(self.stream_batch)),
            ("stream_block_ms", self.stream_block_ms),
            ("claim_idle_ms", self.claim_idle_ms),
            ("publish_interval_ms", self.publish_interval_ms),
            ("snapshot_interval_ms", self.snapshot_interval_ms),
            ("snapshot_ttl_s", self.snapshot_ttl_s),
            ("hold_refresh_ms", self.hold_refresh_ms),
            ("max_pending_updates", self.max_pending_updates as u64),
            ("lease_ms", self.lease_ms),
            ("lease_renew_ms", self.lease_renew_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("cluster.{name} must be positive"));
        }
        if let Some(id) = &self.node_id
            && (id.is_empty() || id.len() > 64 || id.chars().any(char::is_whitespace))
        {
            return Err("cluster.node_id must be 1 to 64 characters without spaces".into());
        }
        if self.key_prefix.chars().any(char::is_whitespace) {
            return Err("cluster.key_prefix must not contain spaces".into());
        }
        if self.region_resolution > 9 {
            return Err(
                "cluster.region_resolution must be 0 to 9 (at most the drivers' cells)".into(),
            );
        }
        self.held_regions()?;
        // Two renewals at least within a lease: one lost round trip does
        // not lose the lease.
        if self.lease_renew_ms.saturating_mul(2) > self.lease_ms {
            return Err("cluster.lease_renew_ms must be at most half of cluster.lease_ms".into());
        }
        if let Some(url) = &self.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err("cluster.advertise_url must be an http:// or https:// URL".into());
        }
        Ok(())
    }

    /// The Redis key of the lease `name`.
    pub fn lease_key(&self, name: &str) -> String {
        format!("{}lease:{name}", self.key_prefix)
    }

    /// The key of the domain event stream.
    pub fn events_key(&self) -> String {
        format!("{}events", self.key_prefix)
    }

    /// The region resolution as H3's type (validated: 0…9).
    pub fn region_resolution(&self) -> engine::cells::CellResolution {
        engine::cells::CellResolution::try_from(self.region_resolution)
            .unwrap_or(engine::cells::CellResolution::Five)
    }

    /// `hold_regions`, parsed; an index that is not an H3 cell at
    /// `region_resolution` is refused.
    pub fn held_regions(&self) -> Result<Vec<crate::positions::Region>, String> {
        self.hold_regions
            .iter()
            .map(|text| {
                crate::positions::Region::parse(text, self.region_resolution()).ok_or_else(|| {
                    format!(
                        "cluster.hold_regions: {text:?} is not an H3 cell at resolution {}",
                        self.region_resolution
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_zero_limits_do_not() {
        assert_eq!(Config::default().validate(), Ok(()));
        let zero = Config {
            stream_batch: 0,
            ..Config::default()
        };
        assert_eq!(
            zero.validate(),
            Err("cluster.stream_batch must be positive".into())
        );
        for bad in ["", "a b", &"x".repeat(65)] {
            let c = Config {
                node_id: Some(bad.to_owned()),
                ..Config::default()
            };
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_carry_the_prefix() {
        let c = Config {
            key_prefix: "t1:".into(),
            ..Config::default()
        };
        assert_eq!(c.events_key(), "t1:events");
    }
}
