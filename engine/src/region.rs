//! Regions and fencing tokens: how several nodes split the fleet.
//!
//! A region is a coarse H3 cell (`cluster.region_resolution`, resolution 5
//! by default: about 252 km², edge ≈ 8.5 km, a town or a city district).
//! It is the unit of two things in a cluster: drivers' positions are
//! shared and held by region, and one node at a time leads a region's
//! dispatch (an order belongs to the region of its pickup). Every
//! assignment the leader writes carries its [`Fence`]: the region and the
//! epoch it was given when it took the region's lease; the database
//! refuses a write whose epoch is no longer the region's current one. Pure
//! values: the lease itself is the `cluster` crate's, the check the
//! store's.
//!
//! A point's region is the ancestor of its driver cell
//! ([`crate::cells::cell_of`]), not the coarse cell the point falls in:
//! H3 children do not tile their parent exactly, and a ping arrives as a
//! driver cell, so both ways of asking must give the same region.

use std::collections::BTreeSet;
use std::fmt;

use h3o::{CellIndex, Resolution};

use crate::cells::cell_of;
use crate::geo::{BBox, EARTH_RADIUS_M, LatLng};

/// The region resolution used when none is configured: about 252 km² a
/// cell, so a city is a handful of regions and a lease per region stays
/// cheap, while a node's region still bounds what it must load on
/// takeover.
pub const DEFAULT_REGION_RESOLUTION: u8 = 5;

/// Regions one area may span before a node treats it as "everything it
/// already holds": a console zoomed out over a country must not make a
/// node subscribe to hundreds of regions.
pub const MAX_AREA_REGIONS: usize = 64;

/// A coarse H3 cell: the unit positions are shared by and one node at a
/// time dispatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(CellIndex);

impl Region {
    /// The region of a driver-resolution cell (its ancestor; a bit mask,
    /// no geometry).
    #[inline]
    pub fn of_cell(cell: CellIndex, resolution: Resolution) -> Region {
        Region(cell.parent(resolution).unwrap_or(cell))
    }

    /// The region of `p`: the ancestor of its driver cell.
    pub fn of_point(p: LatLng, resolution: Resolution) -> Region {
        Region::of_cell(cell_of(p), resolution)
    }

    /// The regions covering `bbox` (sampled on a lattice a quarter of a
    /// region's edge apart, corners included: a region missed lies within
    /// metres of the box's edge), or `None` when there are more than
    /// [`MAX_AREA_REGIONS`].
    pub fn covering(bbox: BBox, resolution: Resolution) -> Option<Vec<Region>> {
        let step_m = resolution.edge_length_m() / 4.0;
        let metres_per_deg = EARTH_RADIUS_M.to_radians();
        let lat_step = step_m / metres_per_deg;
        let widest_lat = bbox.min.lat.abs().max(bbox.max.lat.abs()).min(89.0);
        let lng_step = step_m / (metres_per_deg * widest_lat.to_radians().cos());
        let rows = ((bbox.max.lat - bbox.min.lat) / lat_step).ceil() as usize + 1;
        let cols = ((bbox.max.lng - bbox.min.lng) / lng_step).ceil() as usize + 1;
        if rows.saturating_mul(cols) > MAX_AREA_REGIONS.saturating_mul(32) {
            return None;
        }
        let mut regions = BTreeSet::new();
        for i in 0..rows {
            let lat = (bbox.min.lat + i as f64 * lat_step).min(bbox.max.lat);
            for j in 0..cols {
                let lng = (bbox.min.lng + j as f64 * lng_step).min(bbox.max.lng);
                if let Ok(p) = LatLng::new(lat, lng) {
                    regions.insert(Region::of_point(p, resolution));
                    if regions.len() > MAX_AREA_REGIONS {
                        return None;
                    }
                }
            }
        }
        Some(regions.into_iter().collect())
    }

    /// The regions within `radius_m` of `center` (the cover of the circle's
    /// bounding box), or `None` when there are too many.
    pub fn around(center: LatLng, radius_m: f64, resolution: Resolution) -> Option<Vec<Region>> {
        let dlat = (radius_m / EARTH_RADIUS_M).to_degrees();
        let dlng = dlat / center.lat.to_radians().cos().max(0.01);
        let bbox = BBox::new(
            (center.lng - dlng).max(-180.0),
            (center.lat - dlat).max(-90.0),
            (center.lng + dlng).min(180.0),
            (center.lat + dlat).min(90.0),
        )
        .ok()?;
        Region::covering(bbox, resolution)
    }

    /// The H3 index as a number (its place in the drivers' directory).
    pub fn index(self) -> u64 {
        u64::from(self.0)
    }

    /// The region an H3 index names, if it is a cell at `resolution`.
    pub fn from_index(index: u64, resolution: Resolution) -> Option<Region> {
        CellIndex::try_from(index)
            .ok()
            .filter(|c| c.resolution() == resolution)
            .map(Region)
    }

    /// The region written in hex (as H3 tools write it), if it is a cell at
    /// `resolution`.
    pub fn parse(text: &str, resolution: Resolution) -> Option<Region> {
        text.parse::<CellIndex>()
            .ok()
            .filter(|c| c.resolution() == resolution)
            .map(Region)
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
        fmt::Display::fmt(&self.0, f)
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

    const RES: Resolution = Resolution::Five;

    #[test]
    fn a_region_is_named_by_its_cell_and_read_back() {
        let gothenburg = LatLng::new(57.7089, 11.9746).unwrap();
        let region = Region::of_point(gothenburg, RES);
        let name = region.lease_name();
        assert!(name.starts_with("region:85"), "{name}");
        assert_eq!(Region::from_lease_name(&name), Some(region));
        assert_eq!(Region::from_lease_name("relay"), None);
        assert_eq!(Region::from_lease_name("region:nope"), None);
        assert_eq!(Region::parse(&region.to_string(), RES), Some(region));
        assert_eq!(Region::from_index(region.index(), RES), Some(region));
        assert_eq!(Region::parse(&region.to_string(), Resolution::Six), None);
        assert_eq!(Region::parse("not a cell", RES), None);
        // A few hundred metres away: the same region.
        let near = LatLng::new(57.7100, 11.9760).unwrap();
        assert_eq!(Region::of_point(near, RES), region);
        let stockholm = LatLng::new(59.3293, 18.0686).unwrap();
        assert_ne!(Region::of_point(stockholm, RES), region);
    }

    #[test]
    fn a_point_and_its_driver_cell_are_in_one_region() {
        let p = LatLng::new(57.7089, 11.9746).unwrap();
        assert_eq!(Region::of_point(p, RES), Region::of_cell(cell_of(p), RES));
    }

    #[test]
    fn areas_are_covered_up_to_a_bound() {
        let p = LatLng::new(57.7089, 11.9746).unwrap();
        let around = Region::around(p, 3_000.0, RES).unwrap();
        assert!(around.contains(&Region::of_point(p, RES)));
        assert!(around.len() <= 4, "{around:?}");
        let country = BBox::new(5.0, 55.0, 25.0, 69.0).unwrap();
        assert_eq!(Region::covering(country, RES), None, "too many to hold");
    }
}
