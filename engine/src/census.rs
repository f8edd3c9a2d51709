//! Supply and demand per H3 cell, and the counts a dispatcher's console
//! shows: pure counting over copies the [`crate::Handle`] takes under its
//! lock, so the critical section is a copy of the inputs, never the
//! counting.
//!
//! **Supply** is an available courier (online, free) at its fix; **demand**
//! an open order that no courier carries yet and that is not picked up, at
//! its pickup. Both are counted per cell at a resolution the caller picks
//! among [`CENSUS_RESOLUTIONS`]: coarse cells for a city view, fine ones
//! for a district.

use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::status::DriverStatus;

/// Resolutions a census may count at, coarsest first: from about 252 km²
/// (edge ≈ 8.5 km) to 0.1 km² (edge ≈ 174 m), the driver cell
/// ([`crate::cells::DRIVER_CELL_RESOLUTION`]). Finer than the driver cell
/// is not possible (drivers are kept at that resolution); coarser than 5
/// covers a whole region in one cell.
pub const CENSUS_RESOLUTIONS: [Resolution; 5] = [
    Resolution::Five,
    Resolution::Six,
    Resolution::Seven,
    Resolution::Eight,
    Resolution::Nine,
];

/// One cell's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellCount {
    /// The cell, at the census's resolution.
    pub cell: CellIndex,
    /// Available couriers in it.
    pub supply: u32,
    /// Orders waiting for a courier with their pickup in it.
    pub demand: u32,
}

/// Drivers by live status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub available: usize,
    pub busy: usize,
    pub offline: usize,
}

impl StatusCounts {
    /// Counts one more driver of `status`.
    pub fn add(&mut self, status: DriverStatus) {
        match status {
            DriverStatus::Available => self.available += 1,
            DriverStatus::Busy => self.busy += 1,
            DriverStatus::Offline => self.offline += 1,
        }
    }
}

/// Counts `supply` and `demand` (driver-resolution cells, one per courier
/// or order) per cell at `resolution`, sorted by cell so the answer is
/// deterministic. A cell coarser than its input is its parent; an input
/// already coarser than `resolution` (never the case for driver cells) is
/// counted as it is.
pub fn count(supply: &[CellIndex], demand: &[CellIndex], resolution: Resolution) -> Vec<CellCount> {
    let mut cells: FxHashMap<CellIndex, (u32, u32)> = FxHashMap::default();
    let at = |c: CellIndex| c.parent(resolution).unwrap_or(c);
    for &c in supply {
        cells.entry(at(c)).or_default().0 += 1;
    }
    for &c in demand {
        cells.entry(at(c)).or_default().1 += 1;
    }
    let mut out: Vec<CellCount> = cells
        .into_iter()
        .map(|(cell, (supply, demand))| CellCount {
            cell,
            supply,
            demand,
        })
        .collect();
    out.sort_unstable_by_key(|c| c.cell);
    out
}

/// The corners of `cell` as `(lat, lng)` pairs in degrees, in order around
/// it (six, or five near a pentagon; more where the outline crosses an
/// icosahedron edge).
pub fn outline(cell: CellIndex) -> Vec<crate::LatLng> {
    cell.boundary()
        .iter()
        .filter_map(|p| crate::LatLng::new(p.lat(), p.lng()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LatLng;
    use crate::cells::cell_of;

    fn at(lat: f64, lng: f64) -> CellIndex {
        cell_of(LatLng::new(lat, lng).unwrap())
    }

    #[test]
    fn counts_supply_and_demand_per_parent_cell() {
        // Two couriers a few metres apart share every cell; one far away
        // has its own; an order beside the pair counts as demand there.
        let near = [at(57.7000, 11.9700), at(57.70001, 11.97001)];
        let far = at(59.3300, 18.0600);
        let supply = [near[0], near[1], far];
        let demand = [at(57.70002, 11.97002)];
        for resolution in CENSUS_RESOLUTIONS {
            let counts = count(&supply, &demand, resolution);
            let total_supply: u32 = counts.iter().map(|c| c.supply).sum();
            let total_demand: u32 = counts.iter().map(|c| c.demand).sum();
            assert_eq!((total_supply, total_demand), (3, 1), "{resolution:?}");
            let home = near[0].parent(resolution).unwrap();
            let cell = counts.iter().find(|c| c.cell == home).unwrap();
            assert_eq!((cell.supply, cell.demand), (2, 1), "{resolution:?}");
            assert!(counts.iter().all(|c| c.cell.resolution() == resolution));
        }
    }

    #[test]
    fn empty_input_counts_nothing() {
        assert!(count(&[], &[], Resolution::Seven).is_empty());
    }

    #[test]
    fn an_outline_surrounds_its_cell() {
        let cell = at(57.7, 11.97);
        let corners = outline(cell);
        assert_eq!(corners.len(), 6);
        for p in corners {
            assert!(crate::haversine_m(p, LatLng::new(57.7, 11.97).unwrap()) < 500.0);
        }
    }

    #[test]
    fn status_counts_add_up() {
        let mut counts = StatusCounts::default();
        for s in [
            DriverStatus::Available,
            DriverStatus::Busy,
            DriverStatus::Busy,
            DriverStatus::Offline,
        ] {
            counts.add(s);
        }
        assert_eq!(
            counts,
            StatusCounts {
                available: 1,
                busy: 2,
                offline: 1
            }
        );
    }
}
