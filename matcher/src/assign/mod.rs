//! Batched assignment: which free driver each waiting order should get,
//! decided for all of them at once. Pure code: no clock, no I/O, no tokio.
//!
//! The live [`crate::Matcher`] calls [`Policy::assign_among`] once per
//! batch window when `policy = "batched"`, with candidates pruned by the
//! engine's index and the offer book's cooldowns.
//!
//! - [`solver`]: the exact sparse min-cost assignment, where an order gets
//!   one distinct driver or waits at a fixed cost.
//! - [`Policy`]: the trait a dispatch policy implements, with [`Greedy`]
//!   (oldest order first takes its nearest free driver, today's live
//!   behaviour) and [`Batched`] (k nearest drivers per order by crow-fly,
//!   then travel times, then the exact solver).
//! - [`TravelTimes`]: driver-to-pickup times, by crow-fly ([`CrowFly`]) or
//!   on the road graph ([`RoadTimes`] over [`routing::Router`]).
//! - [`BatchConfig`] and [`order_cost`]: the cost of giving an order a
//!   driver, travel time minus a credit for the order's age.

pub mod solver;

use routing::{CROW_FLY_SPEED_MPS, LatLng, Router, Snap, UNREACHABLE, crow_fly_time_ms};
use serde::{Deserialize, Serialize};

pub use solver::{Assignment, Edge, MAX_COST, SolveError, solve};

/// Settings of [`Batched`]. The live matcher builds one from its own
/// [`crate::Config`] (`batch_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchConfig {
    /// Candidate drivers per order, the nearest by crow-fly. 8: the best
    /// road-time driver is almost always among the 8 nearest by air, and
    /// the solver's work grows with orders × k.
    pub k_candidates: usize,
    /// Cost of leaving an order to wait for the next batch, milliseconds of
    /// travel: an order waits rather than take a driver farther than this
    /// (after its age credit). 20 minutes: longer pickups are better served
    /// by a driver freed in a later batch.
    pub unmatched_cost_ms: u64,
    /// Age credit, thousandths of a millisecond of travel per millisecond
    /// waited. 500: an order that has waited two minutes accepts a driver
    /// one minute farther, so old orders are not starved by new ones
    /// closer to drivers.
    pub age_weight_permille: u64,
    /// How often a batch is solved, milliseconds. 2 s: long enough to see
    /// several orders and drivers together, short against a pickup time.
    pub batch_window_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> BatchConfig {
        BatchConfig {
            k_candidates: 8,
            unmatched_cost_ms: 20 * 60 * 1000,
            age_weight_permille: 500,
            batch_window_ms: 2_000,
        }
    }
}

/// Cost of giving an order a driver `travel_ms` away when the order has
/// waited `age_ms`: `travel_ms - age_weight * age_ms`, never below 0 (the
/// solver needs non-negative costs, and an old order's credit should make
/// it first in line, not make far drivers look near).
pub fn order_cost(travel_ms: u64, age_ms: u64, config: &BatchConfig) -> i64 {
    let credit = u128::from(age_ms) * u128::from(config.age_weight_permille) / 1000;
    let cost = u128::from(travel_ms).saturating_sub(credit);
    // Clamped to the solver's range: a cost above MAX_COST (35 years)
    // means "never" as well as the exact figure would.
    i64::try_from(cost.min(MAX_COST as u128)).unwrap_or(MAX_COST)
}

/// A waiting order, as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waiting {
    /// Where the driver picks it up.
    pub pickup: LatLng,
    /// How long it has waited for a driver, milliseconds.
    pub age_ms: u64,
    /// Prep-aware hold, milliseconds: the order is not offered this batch
    /// while its nearest reachable candidate is closer than this (the food
    /// would not be ready when they arrive); 0: no hold.
    pub hold_ms: u64,
}

/// Whether an order whose candidates are `times` away is held: the
/// nearest reachable one would still arrive before `hold_ms`.
fn held(hold_ms: u64, times: &[u32]) -> bool {
    hold_ms > 0
        && times
            .iter()
            .filter(|&&t| t != UNREACHABLE)
            .min()
            .is_some_and(|&t| u64::from(t) < hold_ms)
}

/// A free driver, as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Free {
    /// The driver's last position.
    pub position: LatLng,
}

/// Index into the `orders` slice given to [`Policy::assign`].
pub type OrderIdx = usize;
/// Index into the `drivers` slice given to [`Policy::assign`].
pub type DriverIdx = usize;

/// Driver-to-pickup travel times.
pub trait TravelTimes {
    /// For every pickup `i`, the times from the drivers `candidates[i]` to
    /// it, milliseconds, in the same order; [`UNREACHABLE`] without a path.
    fn times_ms(
        &self,
        drivers: &[LatLng],
        pickups: &[LatLng],
        candidates: &[Vec<DriverIdx>],
    ) -> Vec<Vec<u32>>;
}

/// Straight-line travel at a fixed speed.
#[derive(Debug, Clone, Copy)]
pub struct CrowFly {
    /// Speed, metres per second.
    pub speed_mps: f64,
}

impl Default for CrowFly {
    fn default() -> CrowFly {
        CrowFly {
            speed_mps: CROW_FLY_SPEED_MPS,
        }
    }
}

impl TravelTimes for CrowFly {
    fn times_ms(
        &self,
        drivers: &[LatLng],
        pickups: &[LatLng],
        candidates: &[Vec<DriverIdx>],
    ) -> Vec<Vec<u32>> {
        pickups
            .iter()
            .zip(candidates)
            .map(|(&p, cs)| {
                cs.iter()
                    .map(|&d| crow_fly_time_ms(drivers[d], p, self.speed_mps))
                    .collect()
            })
            .collect()
    }
}

/// Road travel times on a [`Router`], with the crow-fly fallback for
/// positions the map does not cover.
#[derive(Debug, Clone, Copy)]
pub struct RoadTimes<'a> {
    /// The road graph and its hierarchy.
    pub router: &'a Router,
}

/// Pickups per many-to-many table in [`RoadTimes`]. The router's table is
/// dense (sources × targets), so the pickups go in blocks with only their
/// own candidates as sources: 128 pickups × 8 candidates is at most a
/// 1,024 × 128 table per block instead of 10,000 × 2,000 at once.
const ROAD_BLOCK: usize = 128;

impl TravelTimes for RoadTimes<'_> {
    fn times_ms(
        &self,
        drivers: &[LatLng],
        pickups: &[LatLng],
        candidates: &[Vec<DriverIdx>],
    ) -> Vec<Vec<u32>> {
        let speed = CrowFly::default().speed_mps;
        let snapped: Vec<Option<Snap>> = pickups.iter().map(|&p| self.router.snap(p)).collect();
        let mut driver_snap: Vec<Option<Option<Snap>>> = vec![None; drivers.len()];
        // Position of a driver in the current block's source list.
        let mut slot: Vec<u32> = vec![u32::MAX; drivers.len()];
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); pickups.len()];
        // Pickups in Z-order, so a block holds neighbours that share
        // candidate drivers: fewer forward searches per table.
        let mut order: Vec<usize> = (0..pickups.len()).collect();
        order.sort_by_cached_key(|&i| z_order(pickups[i]));
        for block in order.chunks(ROAD_BLOCK) {
            let mut sources: Vec<Snap> = Vec::new();
            let mut used: Vec<DriverIdx> = Vec::new();
            let mut targets: Vec<Snap> = Vec::new();
            let mut target_of: Vec<Option<usize>> = Vec::with_capacity(block.len());
            for &i in block {
                target_of.push(snapped[i].map(|s| {
                    targets.push(s);
                    targets.len() - 1
                }));
                for &d in &candidates[i] {
                    let snap = *driver_snap[d].get_or_insert_with(|| self.router.snap(drivers[d]));
                    if let (Some(s), u32::MAX) = (snap, slot[d]) {
                        slot[d] = sources.len() as u32;
                        sources.push(s);
                        used.push(d);
                    }
                }
            }
            let table = self.router.many_to_many(&sources, &targets);
            for (&i, target) in block.iter().zip(&target_of) {
                let p = pickups[i];
                out[i] = candidates[i]
                    .iter()
                    .map(|&d| match (slot[d], target) {
                        (u32::MAX, _) | (_, None) => crow_fly_time_ms(drivers[d], p, speed),
                        (s, &Some(j)) => table.get(s as usize, j).unwrap_or(UNREACHABLE),
                    })
                    .collect();
            }
            for d in used {
                slot[d] = u32::MAX;
            }
        }
        out
    }
}

/// A Z-order (Morton) key of a position: interleaved bits of latitude and
/// longitude quantised to 16 bits each (cells of about 300 m north-south
/// and 300–600 m east-west), so positions close in the key are mostly
/// close on the map.
fn z_order(p: LatLng) -> u32 {
    let q = |v: f64, range: f64| (((v + range) / (2.0 * range)).clamp(0.0, 1.0) * 65_535.0) as u32;
    let spread = |mut x: u32| {
        x = (x | (x << 8)) & 0x00ff_00ff;
        x = (x | (x << 4)) & 0x0f0f_0f0f;
        x = (x | (x << 2)) & 0x3333_3333;
        (x | (x << 1)) & 0x5555_5555
    };
    spread(q(p.lat, 90.0)) | (spread(q(p.lng, 180.0)) << 1)
}

/// A dispatch policy: which free driver each waiting order gets now.
pub trait Policy {
    /// Pairs of (order, driver), each order and each driver at most once;
    /// orders left out wait.
    fn assign(
        &self,
        orders: &[Waiting],
        drivers: &[Free],
        travel: &dyn TravelTimes,
    ) -> Vec<(OrderIdx, DriverIdx)>;

    /// Like [`Policy::assign`], with the candidate drivers of every order
    /// given (`candidates[o]`, nearest first): the caller has pruned them
    /// (the engine's index, drivers cooling down after declining the
    /// order). Same contract: each order and each driver at most once.
    fn assign_among(
        &self,
        orders: &[Waiting],
        drivers: &[Free],
        candidates: &[Vec<DriverIdx>],
        travel: &dyn TravelTimes,
    ) -> Vec<(OrderIdx, DriverIdx)>;
}

/// Oldest order first takes the nearest free driver (by travel time among
/// its `k_candidates` nearest still-free drivers by crow-fly; with
/// `k_candidates = 1` exactly the live matcher's choice). Never leaves an
/// order waiting while a driver is free.
#[derive(Debug, Clone, Copy)]
pub struct Greedy {
    /// Nearest free drivers by crow-fly compared by travel time.
    pub k_candidates: usize,
}

impl Policy for Greedy {
    fn assign(
        &self,
        orders: &[Waiting],
        drivers: &[Free],
        travel: &dyn TravelTimes,
    ) -> Vec<(OrderIdx, DriverIdx)> {
        let positions: Vec<LatLng> = drivers.iter().map(|d| d.position).collect();
        let mut taken = vec![false; drivers.len()];
        let mut by_age: Vec<OrderIdx> = (0..orders.len()).collect();
        // Oldest first; index breaks ties so the result is deterministic.
        by_age.sort_by_key(|&o| (std::cmp::Reverse(orders[o].age_ms), o));
        let mut out = Vec::new();
        for o in by_age {
            let pickup = orders[o].pickup;
            // A linear scan: greedy is the baseline, not the fast path.
            let mut near: Vec<(f64, DriverIdx)> = (0..drivers.len())
                .filter(|&d| !taken[d])
                .map(|d| (positions[d].distance_m(pickup), d))
                .collect();
            if near.is_empty() {
                break;
            }
            near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            near.truncate(self.k_candidates.max(1));
            let cands: Vec<DriverIdx> = near.iter().map(|&(_, d)| d).collect();
            let times = travel.times_ms(&positions, &[pickup], std::slice::from_ref(&cands));
            let best = cands
                .iter()
                .zip(times.first().map_or(&[][..], Vec::as_slice))
                // No road to this pickup from any candidate: the order
                // waits rather than take a driver who cannot reach it.
                .filter(|&(_, &t)| t != UNREACHABLE)
                .min_by_key(|&(&d, &t)| (t, d))
                .map(|(&d, _)| d);
            if let Some(d) = best {
                taken[d] = true;
                out.push((o, d));
            }
        }
        out
    }

    fn assign_among(
        &self,
        orders: &[Waiting],
        drivers: &[Free],
        candidates: &[Vec<DriverIdx>],
        travel: &dyn TravelTimes,
    ) -> Vec<(OrderIdx, DriverIdx)> {
        let positions: Vec<LatLng> = drivers.iter().map(|d| d.position).collect();
        let pickups: Vec<LatLng> = orders.iter().map(|o| o.pickup).collect();
        let times = travel.times_ms(&positions, &pickups, candidates);
        let mut taken = vec![false; drivers.len()];
        let mut by_age: Vec<OrderIdx> = (0..orders.len()).collect();
        by_age.sort_by_key(|&o| (std::cmp::Reverse(orders[o].age_ms), o));
        let mut out = Vec::new();
        for o in by_age {
            if held(orders[o].hold_ms, &times[o]) {
                continue;
            }
            let best = candidates[o]
                .iter()
                .zip(&times[o])
                .filter(|&(&d, &t)| !taken[d] && t != UNREACHABLE)
                .min_by_key(|&(&d, &t)| (t, d))
                .map(|(&d, _)| d);
            if let Some(d) = best {
                taken[d] = true;
                out.push((o, d));
            }
        }
        out
    }
}

/// All waiting orders at once: the `k_candidates` nearest drivers of each
/// order by crow-fly, their travel times, costs from [`order_cost`], and
/// the exact [`solver`], where an order may wait at `unmatched_cost_ms`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batched {
    /// Candidates, costs and the price of waiting.
    pub config: BatchConfig,
}

impl Policy for Batched {
    fn assign(
        &self,
        orders: &[Waiting],
        drivers: &[Free],
        travel: &dyn TravelTimes,
    ) -> Vec<(OrderIdx, DriverIdx)> {
        let positions: Vec<LatLng> = drivers.iter().map(|d| d.position).collect();
        let grid = Grid::new(&positions);
        let candidates: Vec<Vec<DriverIdx>> = orders
            .iter()
            .map(|o| grid.nearest(o.pickup, self.config.k_candidates))
            .collect();
        self.assign_among(orders, drivers, &candidates, travel)
    }

    fn assign_among(
        &self,
        orders: &[Waiting],
        drivers: &[Free],
        candidates: &[Vec<DriverIdx>],
        travel: &dyn TravelTimes,
    ) -> Vec<(OrderIdx, DriverIdx)> {
        let positions: Vec<LatLng> = drivers.iter().map(|d| d.position).collect();
        let pickups: Vec<LatLng> = orders.iter().map(|o| o.pickup).collect();
        let times = travel.times_ms(&positions, &pickups, candidates);
        let rows: Vec<Vec<Edge>> = orders
            .iter()
            .zip(candidates.iter().zip(&times))
            .map(|(o, (cs, ts))| {
                if held(o.hold_ms, ts) {
                    // Held orders take no driver from the others.
                    return Vec::new();
                }
                cs.iter()
                    .zip(ts)
                    .filter(|&(_, &t)| t != UNREACHABLE)
                    .map(|(&d, &t)| Edge {
                        // Driver indices fit: callers index fewer than
                        // u32::MAX drivers (the solver rejects more).
                        column: d as u32,
                        cost: order_cost(u64::from(t), o.age_ms, &self.config),
                    })
                    .collect()
            })
            .collect();
        let unmatched = order_cost(self.config.unmatched_cost_ms, 0, &self.config);
        match solve(&rows, drivers.len(), unmatched) {
            Ok(a) => a
                .row_to_column
                .iter()
                .enumerate()
                .filter_map(|(o, c)| c.map(|c| (o, c as DriverIdx)))
                .collect(),
            // Only with more than u32::MAX orders plus drivers (columns and
            // costs are built in range above): nobody is assigned this
            // batch rather than a wrong answer.
            Err(_) => Vec::new(),
        }
    }
}

/// A uniform grid over the drivers for k-nearest queries by planar
/// distance in a local projection (exact enough across a city to rank
/// candidates; the costs come from [`TravelTimes`]).
struct Grid {
    /// Reference latitude's metres per degree of longitude.
    m_per_deg_lng: f64,
    min_x: f64,
    min_y: f64,
    cell_m: f64,
    width: i64,
    height: i64,
    /// Driver indices bucketed by cell (CSR: `start[cell]..start[cell+1]`).
    start: Vec<u32>,
    items: Vec<u32>,
    /// Projected driver positions.
    xy: Vec<(f64, f64)>,
}

/// Metres per degree of latitude (mean Earth radius).
const M_PER_DEG_LAT: f64 = routing::geo::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// Drivers per grid cell on average: a few, so a query for 8 looks at a
/// handful of cells without scanning many empty ones.
const DRIVERS_PER_CELL: f64 = 2.0;
/// Cells per side at most, so a degenerate spread (drivers worlds apart)
/// cannot ask for a huge table.
const MAX_GRID_SIDE: i64 = 4_096;

impl Grid {
    fn new(positions: &[LatLng]) -> Grid {
        let lat0 = positions.first().map_or(0.0, |p| p.lat);
        let m_per_deg_lng = M_PER_DEG_LAT * lat0.to_radians().cos().max(1e-6);
        let xy: Vec<(f64, f64)> = positions
            .iter()
            .map(|p| (p.lng * m_per_deg_lng, p.lat * M_PER_DEG_LAT))
            .collect();
        let (mut min_x, mut min_y, mut max_x, mut max_y) = (0.0, 0.0, 0.0, 0.0);
        if let Some(&(x, y)) = xy.first() {
            (min_x, min_y, max_x, max_y) = (x, y, x, y);
        }
        for &(x, y) in &xy {
            min_x = f64::min(min_x, x);
            min_y = f64::min(min_y, y);
            max_x = f64::max(max_x, x);
            max_y = f64::max(max_y, y);
        }
        let area = ((max_x - min_x) * (max_y - min_y)).max(1.0);
        let cells = (xy.len() as f64 / DRIVERS_PER_CELL).max(1.0);
        let mut cell_m = (area / cells).sqrt().max(1.0);
        let side = |extent: f64, cell: f64| (extent / cell).floor() as i64 + 1;
        while side(max_x - min_x, cell_m).max(side(max_y - min_y, cell_m)) > MAX_GRID_SIDE {
            cell_m *= 2.0;
        }
        let width = side(max_x - min_x, cell_m);
        let height = side(max_y - min_y, cell_m);
        let cell_of = |&(x, y): &(f64, f64)| {
            let cx = ((x - min_x) / cell_m) as i64;
            let cy = ((y - min_y) / cell_m) as i64;
            (cy.clamp(0, height - 1) * width + cx.clamp(0, width - 1)) as usize
        };
        let n_cells = (width * height) as usize;
        let mut start = vec![0u32; n_cells + 1];
        for p in &xy {
            start[cell_of(p) + 1] += 1;
        }
        for i in 0..n_cells {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; xy.len()];
        for (i, p) in xy.iter().enumerate() {
            let c = cell_of(p);
            items[fill[c] as usize] = i as u32;
            fill[c] += 1;
        }
        Grid {
            m_per_deg_lng,
            min_x,
            min_y,
            cell_m,
            width,
            height,
            start,
            items,
            xy,
        }
    }

    /// The `k` drivers nearest to `p`, nearest first (ties by index).
    fn nearest(&self, p: LatLng, k: usize) -> Vec<DriverIdx> {
        let mut best: Vec<(f64, u32)> = Vec::with_capacity(k + 1);
        if k == 0 || self.xy.is_empty() {
            return Vec::new();
        }
        let (x, y) = (p.lng * self.m_per_deg_lng, p.lat * M_PER_DEG_LAT);
        let cx = ((x - self.min_x) / self.cell_m).floor() as i64;
        let cy = ((y - self.min_y) / self.cell_m).floor() as i64;
        // Rings of cells at Chebyshev distance r around (cx, cy), starting
        // with the first ring that touches the grid.
        let gap = |c: i64, n: i64| (-c).max(c - (n - 1)).max(0);
        let first = gap(cx, self.width).max(gap(cy, self.height));
        let last = [
            (cx, cy, 0, 0),
            (cx, cy, self.width - 1, 0),
            (cx, cy, 0, self.height - 1),
            (cx, cy, self.width - 1, self.height - 1),
        ]
        .iter()
        .map(|&(a, b, c, d)| (a - c).abs().max((b - d).abs()))
        .max()
        .unwrap_or(0);
        let visit = |gx: i64, gy: i64, best: &mut Vec<(f64, u32)>| {
            if gx < 0 || gy < 0 || gx >= self.width || gy >= self.height {
                return;
            }
            let c = (gy * self.width + gx) as usize;
            for &i in &self.items[self.start[c] as usize..self.start[c + 1] as usize] {
                let (dx, dy) = (self.xy[i as usize].0 - x, self.xy[i as usize].1 - y);
                let d2 = dx * dx + dy * dy;
                if best.len() == k && (d2, i) >= best[k - 1] {
                    continue;
                }
                let at = best.partition_point(|&e| e < (d2, i));
                best.insert(at, (d2, i));
                best.truncate(k);
            }
        };
        for r in first..=last {
            // Only the ring's rows inside the grid: a pickup far outside
            // it costs the grid's height per ring, not the ring's.
            for gy in (cy - r).max(0)..=(cy + r).min(self.height - 1) {
                if (gy - cy).abs() == r {
                    for gx in (cx - r).max(0)..=(cx + r).min(self.width - 1) {
                        visit(gx, gy, &mut best);
                    }
                } else {
                    visit(cx - r, gy, &mut best);
                    visit(cx + r, gy, &mut best);
                }
            }
            // Every cell not yet visited is at ring r + 1 or beyond, hence
            // at least r cells away from p.
            let bound = r as f64 * self.cell_m;
            if best.len() == k && best[k - 1].0 <= bound * bound {
                break;
            }
        }
        best.into_iter().map(|(_, i)| i as DriverIdx).collect()
    }
}

#[cfg(test)]
mod tests;
