//! H3 cells: every driver's cell is kept current on each update, so fan-out
//! and per-area counts bucket drivers without touching coordinates.

use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::geo::{BBox, EARTH_RADIUS_M, LatLng};

pub use h3o::{CellIndex as Cell, Resolution as CellResolution};

/// Resolution of each driver's cell: about 0.1 km² (edge ≈ 174 m), the
/// bucket size delivery platforms use for supply and demand.
pub const DRIVER_CELL_RESOLUTION: Resolution = Resolution::Nine;
/// Resolution of fan-out buckets for area subscriptions: about 5 km²
/// (edge ≈ 1.2 km), so a city map view spans tens of buckets, not thousands.
pub const FANOUT_RESOLUTION: Resolution = Resolution::Seven;

/// The driver-resolution cell containing `p`.
#[inline]
pub fn cell_of(p: LatLng) -> CellIndex {
    match h3o::LatLng::new(p.lat, p.lng) {
        Ok(ll) => ll.to_cell(DRIVER_CELL_RESOLUTION),
        // LatLng is validated finite and in range, which is all h3o checks.
        Err(_) => unreachable!("LatLng is always finite"),
    }
}

/// The fan-out bucket of a driver-resolution cell.
#[inline]
pub fn fanout_cell(cell: CellIndex) -> CellIndex {
    cell.parent(FANOUT_RESOLUTION).unwrap_or(cell)
}

/// A superset of the fan-out cells that intersect `bbox`, or `None` when it
/// would exceed `max_cells` (the caller then treats the box as global).
///
/// Samples the box on a lattice finer than a third of the cell edge and adds
/// each sample cell's neighbours: any point of the box lies within a third of
/// an edge of some sample, and a segment that short can only end in the
/// sample's cell or a neighbour of it.
pub fn fanout_cells_covering(bbox: BBox, max_cells: usize) -> Option<Vec<CellIndex>> {
    let step_m = FANOUT_RESOLUTION.edge_length_m() / 3.0;
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
            let cell = ll.to_cell(FANOUT_RESOLUTION);
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
        let bbox = BBox::new(11.90, 57.66, 12.05, 57.75).unwrap();
        let cover: rustc_hash::FxHashSet<_> = fanout_cells_covering(bbox, 10_000)
            .unwrap()
            .into_iter()
            .collect();
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
            let p = LatLng::new(57.66 + u * 0.09, 11.90 + v * 0.15).unwrap();
            assert!(
                cover.contains(&fanout_cell(cell_of(p))),
                "{p:?} not covered (seed 7)"
            );
        }
    }

    #[test]
    fn covering_gives_up_on_huge_boxes() {
        let world = BBox::new(-180.0, -85.0, 180.0, 85.0).unwrap();
        assert!(fanout_cells_covering(world, 1000).is_none());
    }
}
