//! Snapping a position to the nearest road segment: an R-tree over the
//! segments in a local metric projection.

use rstar::RTree;
use rstar::primitives::{GeomWithData, Line};

use crate::geo::{LatLng, Projection};
use crate::graph::RoadGraph;

/// A position matched to a road: which segment, how far along it, and how
/// far the position was from the road.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    /// Index into [`RoadGraph::segments`].
    pub segment: u32,
    /// Position along the segment from its node `a` (0.0) to `b` (1.0).
    pub fraction: f64,
    /// The nearest point on the road.
    pub point: LatLng,
    /// Distance from the queried position to `point`, metres.
    pub distance_m: f64,
}

/// An R-tree of a graph's segments.
#[derive(Debug)]
pub struct Snapper {
    tree: RTree<GeomWithData<Line<[f64; 2]>, u32>>,
    projection: Projection,
}

impl Snapper {
    /// Indexes every segment of `graph` (bulk-loaded).
    pub fn new(graph: &RoadGraph) -> Snapper {
        let nodes = graph.nodes();
        let mean_lat = nodes.iter().map(|p| p.lat).sum::<f64>() / nodes.len().max(1) as f64;
        let projection = Projection::around(mean_lat);
        let lines = graph
            .segments()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let a = projection.project(nodes[s.a as usize]);
                let b = projection.project(nodes[s.b as usize]);
                // Fewer than 2^32 segments (`RoadGraph` ids are u32).
                GeomWithData::new(Line::new(a, b), i as u32)
            })
            .collect();
        Snapper {
            tree: RTree::bulk_load(lines),
            projection,
        }
    }

    /// The nearest segment to `p` within `max_distance_m`, `None` when no
    /// road is that close (the point is not covered by the map).
    pub fn snap(&self, p: LatLng, max_distance_m: f64) -> Option<Snap> {
        let q = self.projection.project(p);
        let nearest = self.tree.nearest_neighbor(&q)?;
        let [a, b] = [nearest.geom().from, nearest.geom().to];
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len2 = dx * dx + dy * dy;
        let fraction = if len2 > 0.0 {
            (((q[0] - a[0]) * dx + (q[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let on = [a[0] + fraction * dx, a[1] + fraction * dy];
        let distance_m = ((q[0] - on[0]).powi(2) + (q[1] - on[1]).powi(2)).sqrt();
        (distance_m <= max_distance_m).then(|| Snap {
            segment: nearest.data,
            fraction,
            point: self.projection.unproject(on),
            distance_m,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::way;

    /// An L of two 111 m segments: south–north, then west–east.
    fn graph() -> RoadGraph {
        RoadGraph::from_ways([way(
            &[(57.700, 11.970), (57.701, 11.970), (57.701, 11.9719)],
            true,
            true,
        )])
        .unwrap()
    }

    #[test]
    fn snaps_to_the_nearest_segment_with_its_fraction() {
        let graph = graph();
        let snapper = Snapper::new(&graph);
        // 10 m east of the middle of the first segment.
        let p = LatLng {
            lat: 57.7005,
            lng: 11.970 + 10.0 / 59_600.0,
        };
        let snap = snapper.snap(p, 50.0).unwrap();
        let s = graph.segments()[snap.segment as usize];
        assert_eq!(
            (graph.position(s.a).lat, graph.position(s.b).lat),
            (57.700, 57.701)
        );
        assert!((snap.fraction - 0.5).abs() < 1e-3, "{snap:?}");
        assert!((snap.distance_m - 10.0).abs() < 0.2, "{snap:?}");
        assert!((snap.point.lng - 11.970).abs() < 1e-9);
        assert!(snap.point.distance_m(p) - snap.distance_m < 0.1);
    }

    #[test]
    fn beyond_an_end_snaps_to_the_end() {
        let graph = graph();
        let snapper = Snapper::new(&graph);
        let snap = snapper
            .snap(
                LatLng {
                    lat: 57.6999,
                    lng: 11.970,
                },
                50.0,
            )
            .unwrap();
        assert_eq!(snap.fraction, 0.0);
        assert!((snap.distance_m - 11.1).abs() < 0.2, "{snap:?}");
    }

    #[test]
    fn far_points_are_not_covered() {
        let graph = graph();
        let snapper = Snapper::new(&graph);
        let p = LatLng {
            lat: 57.7005,
            lng: 11.975,
        }; // ~300 m east
        assert!(snapper.snap(p, 100.0).is_none());
        assert!(snapper.snap(p, 1000.0).is_some());
    }
}
