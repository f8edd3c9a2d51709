//! Driver movement along the road network: each driver drives from node to
//! node at a plausible speed, turning at random at junctions and U-turning
//! only at dead ends, so successive pings look like a real courier's.
//!
//! Every walker carries its own tiny seeded generator ([`SplitMix64`]), so
//! a driver's path depends only on the run's seed and its index, never on
//! how the sender tasks were scheduled.

use std::ops::RangeInclusive;

use crate::geo::LatLng;
use crate::roads::RoadNetwork;

/// Upper bound on edges crossed in one `advance`: a guard against a
/// pathological loop of very short edges or an absurd time step.
const MAX_EDGES_PER_STEP: usize = 10_000;

/// SplitMix64: 8 bytes of state, good enough statistics for choosing turns.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Where a driver is, and how fast it goes.
#[derive(Clone, Debug)]
pub struct Walker {
    from: u32,
    /// Index of the current edge in the network's adjacency arrays.
    edge: usize,
    along_m: f64,
    speed_mps: f64,
    speeds: (f64, f64),
    rng: SplitMix64,
}

/// One sample of a walker: what a phone's GPS would report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    pub position: LatLng,
    pub heading_deg: f64,
    pub speed_mps: f64,
}

impl Walker {
    /// A walker on a random edge of `net`, moving at speeds drawn from
    /// `speed_mps` (redrawn at every junction, as road types change).
    pub fn new(net: &RoadNetwork, seed: u64, speed_mps: RangeInclusive<f64>) -> Walker {
        let mut rng = SplitMix64::new(seed);
        let speeds = (*speed_mps.start(), *speed_mps.end());
        // Every kept node has at least one edge (the network keeps only a
        // connected component of two or more nodes).
        let from = rng.below(net.node_count()) as u32;
        let edges = net.edges_from(from);
        let edge = edges.start + rng.below(edges.len().max(1));
        let along_m = rng.unit() * net.edge_length_m(edge);
        let mut w = Walker {
            from,
            edge,
            along_m,
            speed_mps: speeds.0,
            speeds,
            rng,
        };
        w.speed_mps = w.draw_speed();
        w
    }

    fn draw_speed(&mut self) -> f64 {
        let (lo, hi) = self.speeds;
        lo + (hi - lo) * self.rng.unit()
    }

    /// Moves the walker forward by `dt_s` seconds of driving.
    pub fn advance(&mut self, net: &RoadNetwork, dt_s: f64) {
        let mut left_m = (self.speed_mps * dt_s).max(0.0);
        for _ in 0..MAX_EDGES_PER_STEP {
            let len = net.edge_length_m(self.edge);
            if self.along_m + left_m < len {
                self.along_m += left_m;
                return;
            }
            left_m -= len - self.along_m;
            self.turn(net);
        }
    }

    /// At the end of the current edge: continue on a random other road, or
    /// turn back at a dead end.
    fn turn(&mut self, net: &RoadNetwork) {
        let at = net.edge_target(self.edge);
        let edges = net.edges_from(at);
        let onward: Vec<usize> = edges
            .clone()
            .filter(|&e| net.edge_target(e) != self.from)
            .collect();
        let next = if onward.is_empty() {
            // Dead end: the only edge leads back.
            edges.start
        } else {
            onward[self.rng.below(onward.len())]
        };
        self.from = at;
        self.edge = next;
        self.along_m = 0.0;
        self.speed_mps = self.draw_speed();
    }

    /// The current position, heading and speed.
    pub fn fix(&self, net: &RoadNetwork) -> Fix {
        let a = net.position(self.from);
        let b = net.position(net.edge_target(self.edge));
        let len = net.edge_length_m(self.edge);
        let t = if len > 0.0 {
            (self.along_m / len).min(1.0)
        } else {
            0.0
        };
        Fix {
            position: a.lerp(b, t),
            heading_deg: a.bearing_deg(b),
            speed_mps: self.speed_mps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roads::tests::grid;

    #[test]
    fn moves_at_its_speed_along_roads() {
        let net = grid();
        for seed in 0..50 {
            let mut w = Walker::new(&net, seed, 10.0..=10.0);
            let mut prev = w.fix(&net).position;
            for _ in 0..100 {
                w.advance(&net, 1.0);
                let fix = w.fix(&net);
                let d = prev.distance_m(fix.position);
                // Straight-line distance never exceeds the driven 10 m; on a
                // 100 m grid, one turn at most per second keeps it above 7 m
                // (the corner case) unless it turned back at a dead end.
                assert!(d <= 10.0 + 1e-6, "seed {seed}: jumped {d} m");
                assert!((fix.speed_mps - 10.0).abs() < 1e-9);
                prev = fix.position;
            }
        }
    }

    #[test]
    fn stays_on_the_grid_lines() {
        let net = grid();
        let origin = net.position(0);
        let mut w = Walker::new(&net, 7, 5.0..=15.0);
        for _ in 0..500 {
            w.advance(&net, 0.7);
            let (n, e) = origin.offset_to(w.fix(&net).position);
            let on_line = |x: f64| ((x / 100.0).round() * 100.0 - x).abs() < 0.01;
            assert!(on_line(n) || on_line(e), "off road at {n:.2},{e:.2}");
        }
    }

    #[test]
    fn same_seed_same_path() {
        let net = grid();
        let mut a = Walker::new(&net, 42, 5.0..=15.0);
        let mut b = Walker::new(&net, 42, 5.0..=15.0);
        for _ in 0..200 {
            a.advance(&net, 0.5);
            b.advance(&net, 0.5);
        }
        assert_eq!(a.fix(&net), b.fix(&net));
    }

    #[test]
    fn speeds_stay_in_range() {
        let net = grid();
        let mut w = Walker::new(&net, 3, 5.0..=15.0);
        for _ in 0..1000 {
            w.advance(&net, 1.0);
            let s = w.fix(&net).speed_mps;
            assert!((5.0..=15.0).contains(&s), "{s}");
        }
    }
}
