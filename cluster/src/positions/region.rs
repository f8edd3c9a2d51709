//! [`Region`]: a coarse H3 cell, the unit drivers' positions are shared
//! and held by (`cluster.region_resolution`).

use std::fmt;

use engine::cells::{Cell, CellResolution};
use engine::{BBox, LatLng};

/// Regions one area may span before a node treats it as "everything it
/// already holds": a console zoomed out over a country must not make a
/// gateway node subscribe to hundreds of regions.
pub const MAX_AREA_REGIONS: usize = 64;

/// A coarse H3 cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(Cell);

impl Region {
    /// The region of a driver-resolution cell (its ancestor; a bit mask,
    /// no geometry).
    #[inline]
    pub fn of_cell(cell: Cell, resolution: CellResolution) -> Region {
        Region(cell.parent(resolution).unwrap_or(cell))
    }

    /// The region of `p`.
    pub fn of_point(p: LatLng, resolution: CellResolution) -> Region {
        Region::of_cell(engine::cells::cell_of(p), resolution)
    }

    /// The regions covering `bbox` (sampled on a lattice a quarter of a
    /// region's edge apart, corners included: a region missed lies within
    /// metres of the box's edge), or `None` when there are more than
    /// [`MAX_AREA_REGIONS`].
    pub fn covering(bbox: BBox, resolution: CellResolution) -> Option<Vec<Region>> {
        let step_m = resolution.edge_length_m() / 4.0;
        let metres_per_deg = engine::geo::EARTH_RADIUS_M.to_radians();
        let lat_step = step_m / metres_per_deg;
        let widest_lat = bbox.min.lat.abs().max(bbox.max.lat.abs()).min(89.0);
        let lng_step = step_m / (metres_per_deg * widest_lat.to_radians().cos());
        let rows = ((bbox.max.lat - bbox.min.lat) / lat_step).ceil() as usize + 1;
        let cols = ((bbox.max.lng - bbox.min.lng) / lng_step).ceil() as usize + 1;
        if rows.saturating_mul(cols) > MAX_AREA_REGIONS.saturating_mul(32) {
            return None;
        }
        let mut regions = std::collections::BTreeSet::new();
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
    pub fn around(
        center: LatLng,
        radius_m: f64,
        resolution: CellResolution,
    ) -> Option<Vec<Region>> {
        let dlat = (radius_m / engine::geo::EARTH_RADIUS_M).to_degrees();
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
    pub fn from_index(index: u64, resolution: CellResolution) -> Option<Region> {
        Cell::try_from(index)
            .ok()
            .filter(|c| c.resolution() == resolution)
            .map(Region)
    }

    /// The region written in hex (as H3 tools write it), if it is a cell at
    /// `resolution`.
    pub fn parse(text: &str, resolution: CellResolution) -> Option<Region> {
        text.parse::<Cell>()
            .ok()
            .filter(|c| c.resolution() == resolution)
            .map(Region)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RES: CellResolution = CellResolution::Five;

    #[test]
    fn regions_contain_their_points_and_read_back() {
        let p = LatLng::new(57.7089, 11.9746).unwrap();
        let region = Region::of_point(p, RES);
        assert_eq!(region, Region::of_cell(engine::cells::cell_of(p), RES));
        assert_eq!(Region::parse(&region.to_string(), RES), Some(region));
        assert_eq!(Region::from_index(region.index(), RES), Some(region));
        assert_eq!(
            Region::parse(&region.to_string(), CellResolution::Six),
            None
        );
        assert_eq!(Region::parse("not a cell", RES), None);
        let around = Region::around(p, 3_000.0, RES).unwrap();
        assert!(around.contains(&region));
        assert!(around.len() <= 4, "{around:?}");
        let country = BBox::new(5.0, 55.0, 25.0, 69.0).unwrap();
        assert_eq!(Region::covering(country, RES), None, "too many to hold");
    }
}
