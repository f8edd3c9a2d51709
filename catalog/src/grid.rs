//! Spatial buckets answering "which restaurants deliver to this point".
//!
//! A restaurant covers the disc of its own delivery radius, so the question
//! is the reverse of a nearest search: which stored discs contain the query
//! point. Restaurants are split into radius bands (≤ 500 m, ≤ 1 km, ≤ 2 km,
//! …, ≤ 32 km, larger), and each band is a uniform lat/lng grid whose cells
//! are as tall as the band's largest radius. A query scans, per non-empty
//! band, only the cells within that band's largest radius present of the
//! point: a block of about 3 × 3 to 3 × 5 cells (wider in longitude towards
//! the poles), and checks each entry's exact haversine distance against its
//! own radius. So a query touches the restaurants near it, not the city.
//!
//! Bound: per band, at most `min(window cells, occupied cells)` hash lookups;
//! if the window would be larger than the band's occupied cells (near the
//! poles, or for absurd radii) the band's cells are scanned directly instead.
//! Longitudes wrap at ±180° and windows reaching a pole take every column,
//! so results always equal a brute-force scan (the property tests check it).

use engine::geo::EARTH_RADIUS_M;
use engine::{LatLng, RestaurantId};
use rustc_hash::FxHashMap;

/// Radius bands: band `b` holds radii up to `BASE_CELL_M · 2^b`, the last
/// one everything larger.
const BANDS: usize = 8;
/// The smallest band's limit and cell height, metres.
const BASE_CELL_M: f64 = 500.0;
/// Metres per degree of latitude (and of longitude at the equator).
const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// Widening of a search window, degrees, so rounding in the window maths
/// never drops an entry at the exact edge of its radius.
const WINDOW_SLACK_DEG: f64 = 1e-7;
/// Slack, metres, for the cheap latitude pre-check against the exact
/// haversine distance: only skips entries clearly out of reach.
const PRECHECK_SLACK_M: f64 = 1e-3;

/// One restaurant as a cell holds it: everything a search needs before
/// the page is known, inline, so a scan reads contiguous memory. Latitude is
/// kept in radians with its cosine, the parts of [`engine::haversine_m`]
/// that depend on this end only.
#[derive(Clone, Copy, Debug)]
struct Entry {
    lat_rad: f64,
    cos_lat: f64,
    lng: f64,
    radius_m: f64,
    slot: u32,
    schedule: u32,
    id: RestaurantId,
}

/// What the grid stores about a restaurant and reports when it covers a
/// point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Covered {
    pub slot: u32,
    pub id: RestaurantId,
    /// The restaurant's interned schedule ([`crate::index::Schedules`]).
    pub schedule: u32,
    pub distance_m: f64,
}

/// The query point, pre-computed like [`Entry`].
struct Probe {
    lat: f64,
    lat_rad: f64,
    cos_lat: f64,
    lng: f64,
}

impl Probe {
    fn new(p: LatLng) -> Self {
        let lat_rad = p.lat.to_radians();
        Self {
            lat: p.lat,
            lat_rad,
            cos_lat: lat_rad.cos(),
            lng: p.lng,
        }
    }

    /// [`engine::haversine_m`]`(point, entry)`, bit for bit: the same
    /// operations in the same order, with the cosines computed once.
    #[inline]
    fn distance_m(&self, e: &Entry) -> f64 {
        let dlat = e.lat_rad - self.lat_rad;
        let dlng = (e.lng - self.lng).to_radians();
        let s_lat = (dlat * 0.5).sin();
        let s_lng = (dlng * 0.5).sin();
        let h = s_lat * s_lat + self.cos_lat * e.cos_lat * s_lng * s_lng;
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }
}

/// An inclusive range of rows or columns.
type Span = (i64, i64);

/// The cells a query must look at: rows by up to two column spans (two
/// when the longitudes wrap the antimeridian).
struct Window {
    rows: Span,
    cols: [Option<Span>; 2],
}

impl Window {
    fn cell_count(&self) -> i64 {
        let cols: i64 = self.cols.iter().flatten().map(|(c0, c1)| c1 - c0 + 1).sum();
        (self.rows.1 - self.rows.0 + 1) * cols
    }
}

struct Band {
    cell_deg: f64,
    /// Columns around the globe; the last one may be partial.
    cols: i64,
    cells: FxHashMap<u64, Vec<Entry>>,
    len: usize,
    /// Largest radius ever stored here. Never shrinks on removal: a window
    /// a little too large is still correct, and a write stays O(1).
    max_radius_m: f64,
}

impl Band {
    fn new(limit_m: f64) -> Self {
        let cell_deg = limit_m / M_PER_DEG;
        Self {
            cell_deg,
            cols: (360.0 / cell_deg).ceil() as i64,
            cells: FxHashMap::default(),
            len: 0,
            max_radius_m: 0.0,
        }
    }

    fn row(&self, lat: f64) -> i64 {
        ((lat + 90.0) / self.cell_deg).floor() as i64
    }

    fn col(&self, lng: f64) -> i64 {
        (((lng + 180.0) / self.cell_deg).floor() as i64).clamp(0, self.cols - 1)
    }

    fn key(row: i64, col: i64) -> u64 {
        ((row as u32 as u64) << 32) | (col as u32 as u64)
    }

    fn key_of(&self, p: LatLng) -> u64 {
        Self::key(self.row(p.lat), self.col(p.lng))
    }

    /// The cells within `max_radius_m` of `p`; `None` when that is every
    /// cell (a radius of a quarter of the globe or more).
    fn window(&self, p: &Probe) -> Option<Window> {
        let delta = self.max_radius_m / EARTH_RADIUS_M; // angular radius
        if delta >= std::f64::consts::FRAC_PI_2 {
            return None;
        }
        let delta_deg = delta.to_degrees() + WINDOW_SLACK_DEG;
        let (lat_lo, lat_hi) = (p.lat - delta_deg, p.lat + delta_deg);
        let rows = (self.row(lat_lo.max(-90.0)), self.row(lat_hi.min(90.0)));
        if lat_lo <= -90.0 || lat_hi >= 90.0 {
            // The cap contains a pole: every longitude.
            return Some(self.all_columns(rows));
        }
        // Widest longitude offset of a spherical cap centred at latitude φ.
        let ratio = delta.sin() / p.cos_lat;
        if ratio >= 1.0 {
            return Some(self.all_columns(rows));
        }
        let dlng = ratio.asin().to_degrees() + WINDOW_SLACK_DEG;
        let (lo, hi) = (p.lng - dlng, p.lng + dlng);
        let cols = if hi - lo >= 360.0 {
            [Some((0, self.cols - 1)), None]
        } else if lo < -180.0 {
            self.split(lo + 360.0, hi)
        } else if hi > 180.0 {
            self.split(lo, hi - 360.0)
        } else {
            [Some((self.col(lo), self.col(hi))), None]
        };
        Some(Window { rows, cols })
    }

    fn all_columns(&self, rows: Span) -> Window {
        Window {
            rows,
            cols: [Some((0, self.cols - 1)), None],
        }
    }

    /// Columns of a longitude range wrapping the antimeridian: from `lo` to
    /// 180° and from −180° to `hi`. Overlapping spans become one full span.
    fn split(&self, lo: f64, hi: f64) -> [Option<Span>; 2] {
        let (a, b) = (self.col(lo), self.col(hi));
        if b >= a {
            [Some((0, self.cols - 1)), None]
        } else {
            [Some((a, self.cols - 1)), Some((0, b))]
        }
    }

    fn scan(&self, p: &Probe, out: &mut impl FnMut(&Covered)) {
        if self.len == 0 {
            return;
        }
        // Cheaper to walk the occupied cells than a larger window.
        let window = self
            .window(p)
            .filter(|w| usize::try_from(w.cell_count()).is_ok_and(|n| n <= self.cells.len()));
        match window {
            Some(w) => {
                for row in w.rows.0..=w.rows.1 {
                    for &(c0, c1) in w.cols.iter().flatten() {
                        for col in c0..=c1 {
                            if let Some(entries) = self.cells.get(&Self::key(row, col)) {
                                check(p, entries, out);
                            }
                        }
                    }
                }
            }
            None => {
                for entries in self.cells.values() {
                    check(p, entries, out);
                }
            }
        }
    }
}

/// Reports the entries whose radius covers `p`.
fn check(p: &Probe, entries: &[Entry], out: &mut impl FnMut(&Covered)) {
    for e in entries {
        // Latitude alone is a lower bound on the distance.
        if (e.lat_rad - p.lat_rad).abs() * EARTH_RADIUS_M > e.radius_m + PRECHECK_SLACK_M {
            continue;
        }
        let distance_m = p.distance_m(e);
        if distance_m <= e.radius_m {
            out(&Covered {
                slot: e.slot,
                id: e.id,
                schedule: e.schedule,
                distance_m,
            });
        }
    }
}

/// Restaurants by location and delivery radius.
pub(crate) struct Grid {
    bands: Vec<Band>,
}

impl Default for Grid {
    fn default() -> Self {
        Self {
            bands: (0..BANDS)
                .map(|b| Band::new(BASE_CELL_M * f64::from(1u32 << b)))
                .collect(),
        }
    }
}

impl Grid {
    fn band_of(radius_m: u32) -> usize {
        let mut limit = BASE_CELL_M;
        let mut band = 0;
        while f64::from(radius_m) > limit && band < BANDS - 1 {
            limit *= 2.0;
            band += 1;
        }
        band
    }

    pub fn insert(
        &mut self,
        slot: u32,
        id: RestaurantId,
        schedule: u32,
        location: LatLng,
        radius_m: u32,
    ) {
        let band = &mut self.bands[Self::band_of(radius_m)];
        let key = band.key_of(location);
        let lat_rad = location.lat.to_radians();
        band.cells.entry(key).or_default().push(Entry {
            lat_rad,
            cos_lat: lat_rad.cos(),
            lng: location.lng,
            radius_m: f64::from(radius_m),
            slot,
            schedule,
            id,
        });
        band.len += 1;
        band.max_radius_m = band.max_radius_m.max(f64::from(radius_m));
    }

    /// Removes the entry of `slot` stored with this location and radius.
    pub fn remove(&mut self, slot: u32, location: LatLng, radius_m: u32) {
        let band = &mut self.bands[Self::band_of(radius_m)];
        let key = band.key_of(location);
        if let Some(cell) = band.cells.get_mut(&key)
            && let Some(i) = cell.iter().position(|e| e.slot == slot)
        {
            cell.swap_remove(i);
            band.len -= 1;
            if cell.is_empty() {
                band.cells.remove(&key);
            }
        }
    }

    /// Calls `out` for every restaurant whose radius covers `p` (haversine
    /// distance ≤ radius), in no particular order.
    pub fn covering(&self, p: LatLng, mut out: impl FnMut(&Covered)) {
        let probe = Probe::new(p);
        for band in &self.bands {
            band.scan(&probe, &mut out);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.bands.iter().map(|b| b.len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::haversine_m;
    use proptest::prelude::*;

    fn put(grid: &mut Grid, slot: u32, location: LatLng, radius_m: u32) {
        let id = RestaurantId(uuid::Uuid::from_u128(u128::from(slot)));
        grid.insert(slot, id, slot + 1_000, location, radius_m);
    }

    #[test]
    fn bands() {
        let check =
            |radius_m: u32, band: usize| assert_eq!(Grid::band_of(radius_m), band, "{radius_m}");
        check(0, 0);
        check(500, 0);
        check(501, 1);
        check(1_000, 1);
        check(3_000, 3);
        check(32_000, 6);
        check(32_001, 7);
        check(50_000, 7);
        check(u32::MAX, 7);
    }

    fn brute(entries: &[(LatLng, u32)], p: LatLng) -> Vec<(u32, f64)> {
        let mut out: Vec<_> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, &(loc, r))| {
                let d = haversine_m(p, loc);
                (d <= f64::from(r)).then_some((i as u32, d))
            })
            .collect();
        out.sort_by_key(|h| h.0);
        out
    }

    fn found(grid: &Grid, p: LatLng) -> Vec<(u32, f64)> {
        let mut out = Vec::new();
        grid.covering(p, |c| {
            assert_eq!(c.id.as_uuid().as_u128(), u128::from(c.slot));
            assert_eq!(c.schedule, c.slot + 1_000);
            out.push((c.slot, c.distance_m));
        });
        out.sort_by_key(|h| h.0);
        out
    }

    /// Anywhere on the globe, with extra weight on the hard places: the
    /// antimeridian and the poles.
    fn anywhere() -> impl Strategy<Value = LatLng> {
        let lat = prop_oneof![-90.0..=90.0f64, 85.0..=90.0f64, -90.0..=-85.0f64];
        let lng = prop_oneof![-180.0..=180.0f64, 179.0..=180.0f64, -180.0..=-179.0f64];
        (lat, lng).prop_map(|(lat, lng)| LatLng { lat, lng })
    }

    fn radius() -> impl Strategy<Value = u32> {
        prop_oneof![0..2_000u32, 0..60_000u32, 0..3_000_000u32]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn covering_equals_brute_force_worldwide(
            entries in prop::collection::vec((anywhere(), radius()), 0..60),
            queries in prop::collection::vec(anywhere(), 1..20),
        ) {
            let mut grid = Grid::default();
            for (i, &(loc, r)) in entries.iter().enumerate() {
                put(&mut grid, i as u32, loc, r);
            }
            for &p in &queries {
                prop_assert_eq!(found(&grid, p), brute(&entries, p));
            }
        }

        #[test]
        fn covering_equals_brute_force_in_a_city(
            entries in prop::collection::vec(
                ((57.6..57.8f64, 11.8..12.1f64), 0..20_000u32), 0..200),
            queries in prop::collection::vec((57.55..57.85f64, 11.75..12.15f64), 1..20),
            removed in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let entries: Vec<_> = entries
                .into_iter()
                .map(|((lat, lng), r)| (LatLng { lat, lng }, r))
                .collect();
            let mut grid = Grid::default();
            for (i, &(loc, r)) in entries.iter().enumerate() {
                put(&mut grid, i as u32, loc, r);
            }
            // Removing puts an entry out of every answer.
            let mut live = entries.clone();
            if !entries.is_empty() {
                for ix in &removed {
                    let i = ix.index(entries.len());
                    grid.remove(i as u32, entries[i].0, entries[i].1);
                    live[i].1 = 0;
                    // A zero radius still covers its own point: move it away.
                    live[i].0 = LatLng { lat: -89.0, lng: 0.0 };
                }
            }
            for &(lat, lng) in &queries {
                let p = LatLng { lat, lng };
                prop_assert_eq!(found(&grid, p), brute(&live, p));
            }
        }
    }

    #[test]
    fn remove_and_len() {
        let mut grid = Grid::default();
        let p = LatLng {
            lat: 57.7,
            lng: 11.97,
        };
        put(&mut grid, 1, p, 3_000);
        put(&mut grid, 2, p, 40_000);
        assert_eq!(grid.len(), 2);
        assert_eq!(found(&grid, p).len(), 2);
        grid.remove(1, p, 3_000);
        grid.remove(1, p, 3_000); // already gone: no effect
        assert_eq!(grid.len(), 1);
        assert_eq!(found(&grid, p), vec![(2, 0.0)]);
    }
}
