//! H3 cells: every driver's cell is kept current on each update, so fan-out
//! and per-area counts bucket drivers without touching coordinates.

use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::geo::{BBox, EARTH_RADIUS_M, LatLng};

pub use h3o::{CellIndex as Cell, Resolution as CellResolution};

/// Resolution of each driver's cell: about 0.1 km² (edge ≈ 174 m), the
/// bucket size delivery platforms use for supply and demand.
pub const DRIVER_CELL_RESOLUTION: Resolution = Resolution::Nine;
/// Resolutions an area subscription may be indexed at, finest first:
/// from about 0.1 km² (edge ≈ 174 m) to 252 km² (edge ≈ 8.5 km). A
/// subscription is listed under its cells at the finest resolution that
/// keeps its cover within budget ([`fanout_cover`]), so a street-level box
/// is only checked against moves within a few hundred metres of it, and a
/// city view still spans tens of cells, not thousands.
pub const FANOUT_RESOLUTIONS: [Resolution; 5] = [
    Resolution::Nine,
    Resolution::Eight,
    Resolution::Seven,
    Resolution::Six,
    Resolution::Five,
];

/// The driver-resolution cell containing `p`.
#[inline]
pub fn cell_of(p: LatLng) -> CellIndex {
    match h3o::LatLng::new(p.lat, p.lng) {
        Ok(ll) => ll.to_cell(DRIVER_CELL_RESOLUTION),
        // LatLng is validated finite and in range, which is all h3o checks.
        Err(_) => unreachable!("LatLng is always finite"),
    }
}

/// The cover of `bbox` at the finest of [`FANOUT_RESOLUTIONS`] that needs
/// at most `max_cells` cells (see [`cells_covering`]), or `None` when even
/// the coarsest needs more (the caller then treats the box as global).
pub fn fanout_cover(bbox: BBox, max_cells: usize) -> Option<Vec<CellIndex>> {
    let metres_per_deg = EARTH_RADIUS_M.to_radians();
    let mid_lat = ((bbox.min.lat + bbox.max.lat) / 2.0).to_radians();
    let area_m2 = (bbox.max.lat - bbox.min.lat)
        * metres_per_deg
        * (bbox.max.lng - bbox.min.lng)
        * metres_per_deg
        * mid_lat.cos();
    FANOUT_RESOLUTIONS
        .into_iter()
        // The box's own area in cells is a lower bound of its cover: skip
        // resolutions that cannot fit without sampling them.
        .filter(|r| area_m2 / r.area_m2() <= max_cells as f64)
        .find_map(|r| cells_covering(bbox, r, max_cells))
}

/// A superset of the cells at `resolution` that intersect `bbox`, or `None`
/// when it would exceed `max_cells`.
///
/// Samples the box on a lattice finer than a third of the cell edge and adds
/// each sample cell's neighbours: any point of the box lies within a third of
/// an edge of some sample, and a segment that short can only end in the
/// sample's cell or a neighbour of it.
pub fn cells_covering(
    bbox: BBox,
    resolution: Resolution,
    max_cells: usize,
) -> Option<Vec<CellIndex>> {
    let step_m = resolution.edge_length_m() / 3.0;
    let metres_per_deg = EARTH_RADIUS_M.to_radians();
    let lat_step = step_m / metres_per_deg;
    let widest_lat = bbox.min.lat.abs().max(bbox.max.lat.abs()).min(89.0);
    let lng_step = step_m / (metres_per_deg * widest_lat.to_radians().cos());
    let rows = ((bbox.max.lat - bbox.min.lat) / lat_step).ceil() as usize + 1;
    let cols = ((bbox.max.lng - bbox.min.lng) / lng_step).ceil() as usize + 1;
    if rows.saturating_mul(cols) > max_cells.saturating_mul(64) {
        return None;
    }
    let mut cells = rustc_hash::FxHashSet::default();
    for i in 0..rows {
        let lat = (bbox.min.lat + i as f64 * lat_step).min(bbox.max.lat);
        for j in 0..cols {
            let lng = (bbox.min.lng + j as f64 * lng_step).min(bbox.max.lng);
            let Ok(ll) = h3o::LatLng::new(lat, lng) else {
                continue;
            };
            let cell = ll.to_cell(resolution);
            if cells.insert(cell) {
                cells.extend(cell.grid_disk::<Vec<_>>(1));
                if cells.len() > max_cells {
                    return None;
                }
            }
        }
    }
    Some(cells.into_iter().collect())
}

/// Which drivers are in which driver-resolution cell.
#[derive(Default)]
pub(crate) struct CellMembers {
    members: FxHashMap<CellIndex, Vec<u32>>,
}

impl CellMembers {
    /// Adds `slot` to `cell`; returns its index within the cell.
    pub fn insert(&mut self, cell: CellIndex, slot: u32) -> u32 {
        let v = self.members.entry(cell).or_default();
        v.push(slot);
        (v.len() - 1) as u32
    }

    /// Removes the member at `index` of `cell`; returns the slot that moved
    /// into that index, if any.
    pub fn remove(&mut self, cell: CellIndex, index: u32) -> Option<u32> {
        let v = self.members.get_mut(&cell)?;
        v.swap_remove(index as usize);
        let moved = v.get(index as usize).copied();
        if v.is_empty() {
            self.members.remove(&cell);
        }
        moved
    }

    pub fn slots(&self, cell: CellIndex) -> &[u32] {
        self.members.get(&cell).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn occupied(&self) -> usize {
        self.members.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_contains_every_point_of_the_box() {
        // A city view at resolution 7, a street-level box at 9.
        for (bbox, res) in [
            (
                BBox::new(11.90, 57.66, 12.05, 57.75).unwrap(),
                Resolution::Seven,
            ),
            (
                BBox::new(11.96, 57.70, 11.975, 57.708).unwrap(),
                Resolution::Nine,
            ),
        ] {
            let cover: rustc_hash::FxHashSet<_> = cells_covering(bbox, res, 10_000)
                .unwrap()
                .into_iter()
                .collect();
            assert_points_covered(bbox, res, &cover);
        }
    }

    fn assert_points_covered(
        bbox: BBox,
        res: Resolution,
        cover: &rustc_hash::FxHashSet<CellIndex>,
    ) {
        let mut seed = 7u64;
        for _ in 0..5_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (seed >> 11) as f64 / (1u64 << 53) as f64;
            let p = LatLng::new(
                bbox.min.lat + u * (bbox.max.lat - bbox.min.lat),
                bbox.min.lng + v * (bbox.max.lng - bbox.min.lng),
            )
            .unwrap();
            let cell = cell_of(p).parent(res).unwrap();
            assert!(cover.contains(&cell), "{p:?} not covered (seed 7)");
        }
    }

    #[test]
    fn covering_gives_up_on_huge_boxes() {
        let world = BBox::new(-180.0, -85.0, 180.0, 85.0).unwrap();
        assert!(cells_covering(world, Resolution::Five, 1000).is_none());
        assert!(fanout_cover(world, 1000).is_none());
    }

    #[test]
    fn fanout_cover_picks_the_finest_resolution_within_budget() {
        let resolution = |b: BBox| {
            let cover = fanout_cover(b, 128).unwrap();
            let r = cover[0].resolution();
            assert!(cover.iter().all(|c| c.resolution() == r));
            assert!(cover.len() <= 128);
            r
        };
        // About 1 km, 5 km and 50 km across in Gothenburg.
        let street = BBox::new(11.962, 57.703, 11.978, 57.712).unwrap();
        let district = BBox::new(11.93, 57.68, 12.01, 57.725).unwrap();
        let region = BBox::new(11.5, 57.5, 12.3, 57.95).unwrap();
        assert_eq!(resolution(street), Resolution::Nine);
        let (d, r) = (resolution(district), resolution(region));
        assert!(d < Resolution::Nine && d > r, "{d:?} {r:?}");
    }
}
