//! A drive along a road path and where the courier is at any moment of it:
//! the points of the path with the time each is reached, interpolated in
//! between. Pure: time is the elapsed milliseconds since the drive began.

use routing::LatLng;

/// Marks a route point that is not a graph node (where a drive began
/// part-way along a road).
pub const NOT_A_NODE: u32 = u32::MAX;

/// What a phone's GPS would report at a moment of a drive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    /// Where the courier is.
    pub position: LatLng,
    /// Degrees clockwise from north, [0, 360).
    pub heading_deg: f64,
    /// Metres per second (0 once there).
    pub speed_mps: f64,
}

/// A drive: points (graph nodes, the first may be a free point) and the
/// time from the start at which each is reached. Never empty.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    points: Vec<LatLng>,
    /// The graph node of each point ([`NOT_A_NODE`] for a free point).
    nodes: Vec<u32>,
    /// Milliseconds from the start to each point, non-decreasing.
    at_ms: Vec<u64>,
}

impl Route {
    /// Standing at `position` (graph node `node`).
    pub fn stay(position: LatLng, node: u32) -> Route {
        Route {
            points: vec![position],
            nodes: vec![node],
            at_ms: vec![0],
        }
    }

    /// A route through `legs`: each a point, its node and the time from
    /// the start. `None` when `legs` is empty or its times go backwards.
    pub fn new(legs: Vec<(LatLng, u32, u64)>) -> Option<Route> {
        if legs.is_empty() || legs.windows(2).any(|w| w[1].2 < w[0].2) {
            return None;
        }
        let mut route = Route {
            points: Vec::with_capacity(legs.len()),
            nodes: Vec::with_capacity(legs.len()),
            at_ms: Vec::with_capacity(legs.len()),
        };
        for (p, n, t) in legs {
            route.points.push(p);
            route.nodes.push(n);
            route.at_ms.push(t);
        }
        Some(route)
    }

    /// How long the drive takes, ms.
    pub fn duration_ms(&self) -> u64 {
        self.at_ms.last().copied().unwrap_or(0)
    }

    /// Whether the courier is at the end `elapsed_ms` after the start.
    pub fn is_done(&self, elapsed_ms: u64) -> bool {
        elapsed_ms >= self.duration_ms()
    }

    /// The last point.
    pub fn end(&self) -> LatLng {
        // Never empty (both constructors push at least one point).
        self.points[self.points.len() - 1]
    }

    /// The index of the point the courier is heading to (the last once
    /// there).
    fn next_index(&self, elapsed_ms: u64) -> usize {
        self.at_ms
            .partition_point(|&t| t <= elapsed_ms)
            .min(self.points.len() - 1)
    }

    /// The graph node the courier drives towards (or stands at): where a
    /// new drive continues from without turning on the spot. Falls back to
    /// the nearest node behind when the next point is a free one.
    pub fn next_node(&self, elapsed_ms: u64) -> Option<(LatLng, u32)> {
        let i = self.next_index(elapsed_ms);
        (i..self.points.len())
            .chain((0..i).rev())
            .find(|&k| self.nodes[k] != NOT_A_NODE)
            .map(|k| (self.points[k], self.nodes[k]))
    }

    /// Position, heading and speed `elapsed_ms` after the start: on the
    /// straight line between the two points the courier is between.
    pub fn fix(&self, elapsed_ms: u64) -> Fix {
        let i = self.at_ms.partition_point(|&t| t <= elapsed_ms);
        if i == 0 || i >= self.points.len() {
            let (a, b) = match self.points.len() {
                1 => (self.points[0], self.points[0]),
                n => (self.points[n - 2], self.points[n - 1]),
            };
            let position = if i == 0 { self.points[0] } else { self.end() };
            return Fix {
                position,
                heading_deg: bearing_deg(a, b),
                speed_mps: 0.0,
            };
        }
        let (a, b) = (self.points[i - 1], self.points[i]);
        let span_ms = self.at_ms[i] - self.at_ms[i - 1];
        let f = if span_ms == 0 {
            1.0
        } else {
            (elapsed_ms - self.at_ms[i - 1]) as f64 / span_ms as f64
        };
        Fix {
            position: LatLng {
                lat: a.lat + (b.lat - a.lat) * f,
                lng: a.lng + (b.lng - a.lng) * f,
            },
            heading_deg: bearing_deg(a, b),
            speed_mps: if span_ms == 0 {
                0.0
            } else {
                a.distance_m(b) / (span_ms as f64 / 1000.0)
            },
        }
    }
}

/// The initial bearing from `a` to `b`, degrees clockwise from north in
/// [0, 360); 0 for the same point.
pub fn bearing_deg(a: LatLng, b: LatLng) -> f64 {
    let (la, lb) = (a.lat.to_radians(), b.lat.to_radians());
    let dl = (b.lng - a.lng).to_radians();
    let y = dl.sin() * lb.cos();
    let x = la.cos() * lb.sin() - la.sin() * lb.cos() * dl.cos();
    if x == 0.0 && y == 0.0 {
        return 0.0;
    }
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lng: f64) -> LatLng {
        LatLng { lat, lng }
    }

    /// North 111 m in 10 s, then east about 60 m in 5 s.
    fn l_shape() -> Route {
        Route::new(vec![
            (p(57.700, 11.970), NOT_A_NODE, 0),
            (p(57.701, 11.970), 7, 10_000),
            (p(57.701, 11.971), 8, 15_000),
        ])
        .unwrap()
    }

    #[test]
    fn interpolates_position_heading_and_speed() {
        let r = l_shape();
        let check = |elapsed_ms: u64, lat: f64, lng: f64, heading: f64, speed: f64| {
            let f = r.fix(elapsed_ms);
            assert!(
                (f.position.lat - lat).abs() < 1e-9 && (f.position.lng - lng).abs() < 1e-9,
                "{elapsed_ms}: {f:?}"
            );
            assert!((f.heading_deg - heading).abs() < 0.5, "{elapsed_ms}: {f:?}");
            assert!((f.speed_mps - speed).abs() < 0.2, "{elapsed_ms}: {f:?}");
        };
        check(0, 57.700, 11.970, 0.0, 11.1);
        check(5_000, 57.7005, 11.970, 0.0, 11.1);
        check(12_500, 57.701, 11.9705, 90.0, 11.9);
        // There: standing at the end, facing the last leg's way.
        check(15_000, 57.701, 11.971, 90.0, 0.0);
        check(99_000, 57.701, 11.971, 90.0, 0.0);
        assert!(!r.is_done(14_999) && r.is_done(15_000));
        assert_eq!(r.duration_ms(), 15_000);
    }

    #[test]
    fn next_node_is_ahead_and_skips_free_points() {
        let r = l_shape();
        assert_eq!(r.next_node(0).map(|n| n.1), Some(7));
        assert_eq!(r.next_node(9_999).map(|n| n.1), Some(7));
        assert_eq!(r.next_node(10_000).map(|n| n.1), Some(8));
        assert_eq!(r.next_node(20_000).map(|n| n.1), Some(8));
        let free = Route::stay(p(57.7, 11.97), NOT_A_NODE);
        assert_eq!(free.next_node(0), None);
    }

    #[test]
    fn a_stay_stands_still() {
        let r = Route::stay(p(57.7, 11.97), 3);
        let f = r.fix(5_000);
        assert_eq!(f.position, p(57.7, 11.97));
        assert_eq!(f.speed_mps, 0.0);
        assert!(r.is_done(0));
        assert_eq!(r.next_node(0), Some((p(57.7, 11.97), 3)));
    }

    #[test]
    fn rejects_empty_and_backward_times() {
        assert_eq!(Route::new(vec![]), None);
        assert_eq!(
            Route::new(vec![(p(57.7, 11.97), 1, 10), (p(57.71, 11.97), 2, 5)]),
            None
        );
    }

    #[test]
    fn bearings() {
        let o = p(57.7, 11.97);
        assert!((bearing_deg(o, p(57.71, 11.97)) - 0.0).abs() < 0.01);
        assert!((bearing_deg(o, p(57.7, 11.98)) - 90.0).abs() < 0.1);
        assert!((bearing_deg(o, p(57.69, 11.97)) - 180.0).abs() < 0.01);
        assert!((bearing_deg(o, p(57.7, 11.96)) - 270.0).abs() < 0.1);
        assert_eq!(bearing_deg(o, o), 0.0);
    }
}
