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

/// The fastest path from the seeds to the best of `targets` (nodes with
/// the time still to drive after them): the nodes driven through, first
/// to last, and the target seed it ends at; `None` without a path.
pub fn path(graph: &RoadGraph, seeds: &[Seed], targets: &[Seed]) -> Option<(Vec<u32>, Seed)> {
    let n = graph.node_count();
    let mut dist = vec![UNREACHABLE; n];
    let mut prev = vec![u32::MAX; n];
    let mut heap = BinaryHeap::new();
    for s in seeds {
        if s.offset_ms < dist[s.node as usize] {
            dist[s.node as usize] = s.offset_ms;
            heap.push(Reverse((s.offset_ms, s.node)));
        }
    }
    // Stop once every target is settled (none can improve after).
    let mut left = targets.len();
    let mut settled = vec![false; n];
    while let Some(Reverse((d, v))) = heap.pop() {
        if d > dist[v as usize] || settled[v as usize] {
            continue;
        }
        settled[v as usize] = true;
        if targets.iter().any(|t| t.node == v) {
            left -= targets.iter().filter(|t| t.node == v).count();
            if left == 0 {
                break;
            }
        }
        for arc in graph.arcs_from(v) {
            let nd = d.saturating_add(arc.time_ms);
            if nd < dist[arc.head as usize] {
                dist[arc.head as usize] = nd;
                prev[arc.head as usize] = v;
                heap.push(Reverse((nd, arc.head)));
            }
        }
    }
    let end = targets
        .iter()
        .filter(|t| dist[t.node as usize] != UNREACHABLE)
        .min_by_key(|t| dist[t.node as usize].saturating_add(t.offset_ms))
        .copied()?;
    let mut nodes = vec![end.node];
    let mut at = end.node;
    while prev[at as usize] != u32::MAX {
        at = prev[at as usize];
        nodes.push(at);
    }
    nodes.reverse();
    Some((nodes, end))
}
