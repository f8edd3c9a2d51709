//! Plain Dijkstra on the road graph: the reference the contraction
//! hierarchy is tested against, and the fallback for one-off questions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::graph::RoadGraph;
use crate::{Seed, UNREACHABLE};

/// Travel times from the seeds (start nodes with a head start) to every
/// node, milliseconds; [`UNREACHABLE`] where no path exists.
pub fn dijkstra(graph: &RoadGraph, seeds: &[Seed]) -> Vec<u32> {
    let mut dist = vec![UNREACHABLE; graph.node_count()];
    let mut heap = BinaryHeap::new();
    for s in seeds {
        if s.offset_ms < dist[s.node as usize] {
            dist[s.node as usize] = s.offset_ms;
            heap.push(Reverse((s.offset_ms, s.node)));
        }
    }
    while let Some(Reverse((d, v))) = heap.pop() {
        if d > dist[v as usize] {
            continue;
        }
        for arc in graph.arcs_from(v) {
            let nd = d.saturating_add(arc.time_ms);
            if nd < dist[arc.head as usize] {
                dist[arc.head as usize] = nd;
                heap.push(Reverse((nd, arc.head)));
            }
        }
    }
    dist
}
