//! Regions and fencing tokens: how several nodes split dispatch.
//!
//! A region is a coarse H3 cell (`cluster.region_resolution`, resolution 5
//! by default: about 252 km², edge ≈ 8.5 km, a town or a city district);
//! an order belongs to the region of its pickup. In a cluster one node at
//! a time leads a region's dispatch, and every assignment it writes
//! carries its [`Fence`]: the region and the epoch it was given when it
//! took the region's lease. The database refuses a write whose epoch is
//! no longer the region's current one. Pure values: the lease itself is
//! the `cluster` crate's, the check the store's.

use std::fmt;

use h3o::{CellIndex, Resolution};

use crate::geo::LatLng;

/// The region resolution used when none is configured: about 252 km² a
/// cell, so a city is a handful of regions and a lease per region stays
/// cheap, while a node's region still bounds what it must load on
/// takeover.
pub const DEFAULT_REGION_RESOLUTION: u8 = 5;

/// A coarse H3 cell that one node dispatches at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region(CellIndex);

impl Region {
    /// The region of `p` at `resolution` (0…15; larger values are cut to
    /// 15, the finest).
    pub fn of(p: LatLng, resolution: u8) -> Region {
        let resolution = Resolution::try_from(resolution.min(15)).unwrap_or(Resolution::Five);
        match h3o::LatLng::new(p.lat, p.lng) {
            Ok(ll) => Region(ll.to_cell(resolution)),
            // LatLng is validated finite and in range, which is all h3o checks.
            Err(_) => unreachable!("LatLng is always finite"),
        }
    }

    /// The name of the region's lease and of its epoch row
    /// (`region:{h3 index}`).
    pub fn lease_name(&self) -> String {
        format!("region:{}", self.0)
    }

    /// The region a lease name ([`Region::lease_name`]) stands for.
    pub fn from_lease_name(name: &str) -> Option<Region> {
        name.strip_prefix("region:")?.parse().ok().map(Region)
    }

    /// The H3 cell.
    pub fn cell(&self) -> CellIndex {
        self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The fencing token of a region's leader: an assignment written with it
/// is refused once another node has taken the region (a higher epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The region the leader holds.
    pub region: Region,
    /// The region's epoch when the leader took it (rises by one per
    /// acquisition, kept in the database).
    pub epoch: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_named_by_its_cell_and_read_back() {
        let gothenburg = LatLng::new(57.7089, 11.9746).unwrap();
        let region = Region::of(gothenburg, 5);
        let name = region.lease_name();
        assert!(name.starts_with("region:85"), "{name}");
        assert_eq!(Region::from_lease_name(&name), Some(region));
        assert_eq!(Region::from_lease_name("relay"), None);
        assert_eq!(Region::from_lease_name("region:nope"), None);
        // A few hundred metres away: the same region.
        let near = LatLng::new(57.7100, 11.9760).unwrap();
        assert_eq!(Region::of(near, 5), region);
        let stockholm = LatLng::new(59.3293, 18.0686).unwrap();
        assert_ne!(Region::of(stockholm, 5), region);
    }
}
