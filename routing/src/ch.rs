//! Contraction hierarchies: preprocessing, and the queries on top of it.
//!
//! Nodes are contracted one by one in the order of a priority (edge
//! difference plus contracted neighbours, updated lazily); a shortcut is
//! added between two neighbours of a contracted node unless a bounded
//! witness search finds a path at least as short without it. Afterwards
//! every node is renumbered by its rank, and each keeps two lists of arcs
//! to higher-ranked nodes: `up` (arcs it leaves by) and `down` (arcs it is
//! entered by, stored reversed). Any shortest path climbs `up` from the
//! source and descends `down` to the target.
//!
//! Queries:
//! - [`ContractionHierarchy::many_to_many`]: OSRM's table scheme. A
//!   backward upward search per target leaves `(target, time)` entries in
//!   buckets at the nodes it settles; a forward upward search per source
//!   scans the buckets of the nodes it settles. Both searches stall on
//!   demand (a node reached more cheaply from above is not expanded).
//! - [`ContractionHierarchy::one_to_many`] / [`many_to_one`]: PHAST. One
//!   upward search, then one linear sweep over all nodes from the top rank
//!   down gives the times to (or from) every node: with nodes numbered by
//!   rank the sweep reads memory in order, and for one source it beats
//!   a search per target from a few dozen targets on.
//!
//! [`many_to_one`]: ContractionHierarchy::many_to_one

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::graph::{Arc, RoadGraph, csr};
use crate::{Matrix, Seed, UNREACHABLE};

/// Nodes a witness search may settle before giving up (then a shortcut is
/// added, which is always correct, only sometimes unnecessary). Bounds
/// preprocessing time on dense junctions.
const WITNESS_SETTLE_LIMIT: usize = 500;

/// The smaller limit while only estimating a node's priority.
const PRIORITY_SETTLE_LIMIT: usize = 50;

/// A contraction hierarchy of a road graph (nodes renumbered by rank).
#[derive(Debug, Clone)]
pub struct ContractionHierarchy {
    /// Rank of each graph node: its id inside the hierarchy.
    rank: Vec<u32>,
    /// `up[up_first[v]..up_first[v + 1]]`: arcs `v → head`, head ranked higher.
    up_first: Vec<u32>,
    up: Vec<Arc>,
    /// `down[down_first[v]..down_first[v + 1]]`: arcs `head → v`, head
    /// ranked higher (stored at the lower end, reversed).
    down_first: Vec<u32>,
    down: Vec<Arc>,
    /// Length of each `up` arc's path on the road, decimetres (a shortcut
    /// carries the sum of the arcs it stands for), kept apart from `up` so
    /// the time queries read no more memory than before.
    up_len_dm: Vec<u32>,
    /// Length of each `down` arc's path, decimetres.
    down_len_dm: Vec<u32>,
}

/// Which way a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From sources along arcs.
    Forward,
    /// From targets against arcs.
    Backward,
}

/// Reusable search state, so a table of a hundred searches allocates once.
/// Every entry of `dist` is [`UNREACHABLE`] between searches; `touched`
/// lists the ones a search changed.
#[derive(Debug, Default)]
struct Search {
    dist: Vec<u32>,
    touched: Vec<u32>,
    heap: BinaryHeap<Reverse<(u32, u32)>>,
    /// Nodes settled and not stalled by the last search, with their times.
    settled: Vec<(u32, u32)>,
}

impl ContractionHierarchy {
    /// Contracts `graph`: 0.3–0.8 s for Gothenburg's 47k nodes on a shared
    /// 2-vCPU machine (docs/BENCHMARKS.md).
    pub fn build(graph: &RoadGraph) -> ContractionHierarchy {
        Contractor::new(graph).run()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.rank.len()
    }

    /// Number of arcs in the hierarchy (original arcs and shortcuts).
    pub fn arc_count(&self) -> usize {
        self.up.len() + self.down.len()
    }

    fn arcs(&self, direction: Direction, v: u32) -> &[Arc] {
        let v = v as usize;
        match direction {
            Direction::Forward => {
                &self.up[self.up_first[v] as usize..self.up_first[v + 1] as usize]
            }
            Direction::Backward => {
                &self.down[self.down_first[v] as usize..self.down_first[v + 1] as usize]
            }
        }
    }

    fn reversed(direction: Direction) -> Direction {
        match direction {
            Direction::Forward => Direction::Backward,
            Direction::Backward => Direction::Forward,
        }
    }

    /// An upward search from `seeds` (graph node ids), filling
    /// `search.settled`. With `stall`, nodes reached more cheaply from a
    /// higher node are neither expanded nor reported.
    fn upward(&self, search: &mut Search, seeds: &[Seed], direction: Direction, stall: bool) {
        if search.dist.len() != self.node_count() {
            search.dist = vec![UNREACHABLE; self.node_count()];
        }
        for &v in &search.touched {
            search.dist[v as usize] = UNREACHABLE;
        }
        search.touched.clear();
        search.settled.clear();
        search.heap.clear();
        for s in seeds {
            let v = self.rank[s.node as usize];
            if s.offset_ms < search.dist[v as usize] {
                if search.dist[v as usize] == UNREACHABLE {
                    search.touched.push(v);
                }
                search.dist[v as usize] = s.offset_ms;
                search.heap.push(Reverse((s.offset_ms, v)));
            }
        }
        let opposite = Self::reversed(direction);
        while let Some(Reverse((d, v))) = search.heap.pop() {
            if d > search.dist[v as usize] {
                continue;
            }
            if stall
                && self
                    .arcs(opposite, v)
                    .iter()
                    .any(|a| search.dist[a.head as usize].saturating_add(a.time_ms) < d)
            {
                continue;
            }
            search.settled.push((v, d));
            for a in self.arcs(direction, v) {
                let nd = d.saturating_add(a.time_ms);
                let old = search.dist[a.head as usize];
                if nd < old {
                    if old == UNREACHABLE {
                        search.touched.push(a.head);
                    }
                    search.dist[a.head as usize] = nd;
                    search.heap.push(Reverse((nd, a.head)));
                }
            }
        }
    }

    /// Travel times from every source to every target (OSRM's bucket
    /// scheme). Each source and target is a set of seeds: graph nodes with
    /// the time already spent (or still to spend) reaching them.
    pub fn many_to_many<S: AsRef<[Seed]>, T: AsRef<[Seed]>>(
        &self,
        sources: &[S],
        targets: &[T],
    ) -> Matrix {
        let mut search = Search::default();
        // Buckets: (node, target, time), grouped by node afterwards.
        let mut entries: Vec<(u32, u32, u32)> = Vec::new();
        for (j, t) in targets.iter().enumerate() {
            self.upward(&mut search, t.as_ref(), Direction::Backward, true);
            entries.extend(search.settled.iter().map(|&(v, d)| (v, j as u32, d)));
        }
        let (bucket_first, bucket) = csr(
            self.node_count(),
            entries.into_iter().map(|(v, j, d)| (v, (j, d))).collect(),
        );
        let mut matrix = Matrix::unreachable(sources.len(), targets.len());
        for (i, s) in sources.iter().enumerate() {
            self.upward(&mut search, s.as_ref(), Direction::Forward, true);
            let row = matrix.row_mut(i);
            for &(v, d) in &search.settled {
                let v = v as usize;
                for &(j, dt) in &bucket[bucket_first[v] as usize..bucket_first[v + 1] as usize] {
                    let total = d.saturating_add(dt);
                    if total < row[j as usize] {
                        row[j as usize] = total;
                    }
                }
            }
        }
        matrix
    }

    /// Travel times from one source to every target (PHAST).
    pub fn one_to_many<T: AsRef<[Seed]>>(&self, source: &[Seed], targets: &[T]) -> Vec<u32> {
        let all = self.sweep(source, Direction::Forward);
        targets
            .iter()
            .map(|t| self.pick(&all, t.as_ref()))
            .collect()
    }

    /// Travel times from every source to one target (PHAST, backwards).
    pub fn many_to_one<S: AsRef<[Seed]>>(&self, sources: &[S], target: &[Seed]) -> Vec<u32> {
        let all = self.sweep(target, Direction::Backward);
        sources
            .iter()
            .map(|s| self.pick(&all, s.as_ref()))
            .collect()
    }

    /// Best time over a seed set, given times to every node (by rank).
    fn pick(&self, all: &[u32], seeds: &[Seed]) -> u32 {
        seeds
            .iter()
            .map(|s| all[self.rank[s.node as usize] as usize].saturating_add(s.offset_ms))
            .min()
            .unwrap_or(UNREACHABLE)
    }

    /// Times from (forward) or to (backward) the seeds for every node, by
    /// rank: an upward search, then a sweep from the top rank down.
    fn sweep(&self, seeds: &[Seed], direction: Direction) -> Vec<u32> {
        let mut search = Search::default();
        // Stalled nodes keep valid upper bounds; the sweep corrects them.
        self.upward(&mut search, seeds, direction, false);
        let mut dist = std::mem::take(&mut search.dist);
        // The arcs that lead down into `v` in this direction.
        let into = Self::reversed(direction);
        for v in (0..self.node_count() as u32).rev() {
            let mut best = dist[v as usize];
            for a in self.arcs(into, v) {
                best = best.min(dist[a.head as usize].saturating_add(a.time_ms));
            }
            dist[v as usize] = best;
        }
        dist
    }
}

/// A [`Seed`] with the road length already driven to its node (or still
/// to drive after it), for the queries that also measure distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthSeed {
    /// The node and time.
    pub seed: Seed,
    /// Length to add, decimetres.
    pub offset_dm: u32,
}

/// A travel time with the road length of that fastest path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLength {
    /// Milliseconds ([`UNREACHABLE`] without a path).
    pub time_ms: u32,
    /// Decimetres along the fastest path (ties between equally fast paths
    /// broken arbitrarily, but the same way every time).
    pub length_dm: u32,
}

impl TimeLength {
    /// No path.
    pub const UNREACHABLE: TimeLength = TimeLength {
        time_ms: UNREACHABLE,
        length_dm: UNREACHABLE,
    };
}

impl ContractionHierarchy {
    fn arc_lengths(&self, direction: Direction, v: u32) -> &[u32] {
        let v = v as usize;
        match direction {
            Direction::Forward => {
                &self.up_len_dm[self.up_first[v] as usize..self.up_first[v + 1] as usize]
            }
            Direction::Backward => {
                &self.down_len_dm[self.down_first[v] as usize..self.down_first[v + 1] as usize]
            }
        }
    }

    /// Travel times from every source to one target, each with the road
    /// length of its fastest path (PHAST backwards, carrying lengths): what
    /// a delivery fee on road distance needs, for many restaurants to one
    /// door at once.
    pub fn many_to_one_with_length<S: AsRef<[LengthSeed]>>(
        &self,
        sources: &[S],
        target: &[LengthSeed],
    ) -> Vec<TimeLength> {
        let (time, len) = self.sweep_with_length(target, Direction::Backward);
        sources
            .iter()
            .map(|s| {
                s.as_ref()
                    .iter()
                    .map(|s| {
                        let v = self.rank[s.seed.node as usize] as usize;
                        TimeLength {
                            time_ms: time[v].saturating_add(s.seed.offset_ms),
                            length_dm: len[v].saturating_add(s.offset_dm),
                        }
                    })
                    .min_by_key(|t| t.time_ms)
                    .unwrap_or(TimeLength::UNREACHABLE)
            })
            .collect()
    }

    /// [`Self::sweep`] carrying the length of each node's fastest path.
    fn sweep_with_length(
        &self,
        seeds: &[LengthSeed],
        direction: Direction,
    ) -> (Vec<u32>, Vec<u32>) {
        let n = self.node_count();
        let mut dist = vec![UNREACHABLE; n];
        let mut len = vec![UNREACHABLE; n];
        let mut heap: BinaryHeap<Reverse<(u32, u32)>> = BinaryHeap::new();
        for s in seeds {
            let v = self.rank[s.seed.node as usize] as usize;
            if s.seed.offset_ms < dist[v] {
                dist[v] = s.seed.offset_ms;
                len[v] = s.offset_dm;
                heap.push(Reverse((s.seed.offset_ms, v as u32)));
            }
        }
        // The upward search, unstalled (the sweep corrects upper bounds).
        while let Some(Reverse((d, v))) = heap.pop() {
            if d > dist[v as usize] {
                continue;
            }
            let lv = len[v as usize];
            for (a, &l) in self
                .arcs(direction, v)
                .iter()
                .zip(self.arc_lengths(direction, v))
            {
                let nd = d.saturating_add(a.time_ms);
                if nd < dist[a.head as usize] {
                    dist[a.head as usize] = nd;
                    len[a.head as usize] = lv.saturating_add(l);
                    heap.push(Reverse((nd, a.head)));
                }
            }
        }
        let into = Self::reversed(direction);
        for v in (0..n as u32).rev() {
            let (mut best, mut best_len) = (dist[v as usize], len[v as usize]);
            for (a, &l) in self.arcs(into, v).iter().zip(self.arc_lengths(into, v)) {
                let t = dist[a.head as usize].saturating_add(a.time_ms);
                if t < best {
                    best = t;
                    best_len = len[a.head as usize].saturating_add(l);
                }
            }
            dist[v as usize] = best;
            len[v as usize] = best_len;
        }
        (dist, len)
    }
}

/// The preprocessing state: the remaining graph as adjacency lists.
struct Contractor {
    n: usize,
    /// Outgoing arcs `(head, time, length in dm)` among uncontracted nodes.
    out: Vec<Vec<(u32, u32, u32)>>,
    /// Incoming arcs `(tail, time, length in dm)` among uncontracted nodes.
    inc: Vec<Vec<(u32, u32, u32)>>,
    contracted: Vec<bool>,
    /// Contracted neighbours so far: spreads contraction evenly.
    deleted_neighbours: Vec<u32>,
    witness: Search,
}

impl Contractor {
    fn new(graph: &RoadGraph) -> Contractor {
        let n = graph.node_count();
        let mut c = Contractor {
            n,
            out: vec![Vec::new(); n],
            inc: vec![Vec::new(); n],
            contracted: vec![false; n],
            deleted_neighbours: vec![0; n],
            witness: Search::default(),
        };
        // The graph's arcs with their segments' lengths, in the graph's
        // own arc order (by tail, then segment order: what `csr` keeps).
        let mut arcs: Vec<(u32, u32, u32, u32)> = Vec::with_capacity(graph.arc_count());
        for s in graph.segments() {
            let time_ms = s.time_ms();
            if s.forward {
                arcs.push((s.a, s.b, time_ms, s.length_dm));
            }
            if s.backward {
                arcs.push((s.b, s.a, time_ms, s.length_dm));
            }
        }
        arcs.sort_by_key(|a| a.0);
        for (u, x, t, l) in arcs {
            if u != x {
                c.add_arc(u, x, t, l);
            }
        }
        c
    }

    /// Adds `u → x`, or lowers its time (taking the new length with it)
    /// if it exists.
    fn add_arc(&mut self, u: u32, x: u32, time_ms: u32, len_dm: u32) {
        if let Some(e) = self.out[u as usize].iter_mut().find(|e| e.0 == x) {
            if time_ms < e.1 {
                e.1 = time_ms;
                e.2 = len_dm;
                if let Some(i) = self.inc[x as usize].iter_mut().find(|e| e.0 == u) {
                    i.1 = time_ms;
                    i.2 = len_dm;
                }
            }
            return;
        }
        self.out[u as usize].push((x, time_ms, len_dm));
        self.inc[x as usize].push((u, time_ms, len_dm));
    }

    /// The shortcuts contracting `v` needs now.
    fn shortcuts(&mut self, v: u32, settle_limit: usize) -> Vec<(u32, u32, u32, u32)> {
        let mut needed = Vec::new();
        let Some(max_out) = self.out[v as usize].iter().map(|e| e.1).max() else {
            return needed;
        };
        for i in 0..self.inc[v as usize].len() {
            let (u, w1, l1) = self.inc[v as usize][i];
            let limit = w1.saturating_add(max_out);
            self.witness_search(u, v, limit, settle_limit);
            for &(x, w2, l2) in &self.out[v as usize] {
                if x == u {
                    continue;
                }
                let via = w1.saturating_add(w2);
                if self.witness.dist[x as usize] > via {
                    needed.push((u, x, via, l1.saturating_add(l2)));
                }
            }
        }
        needed
    }

    /// Dijkstra from `u` avoiding `v` up to time `limit` or `settle_limit`
    /// settled nodes; leaves times in `self.witness.dist`.
    fn witness_search(&mut self, u: u32, v: u32, limit: u32, settle_limit: usize) {
        let w = &mut self.witness;
        if w.dist.len() != self.n {
            w.dist = vec![UNREACHABLE; self.n];
        }
        for &t in &w.touched {
            w.dist[t as usize] = UNREACHABLE;
        }
        w.touched.clear();
        w.heap.clear();
        w.dist[u as usize] = 0;
        w.touched.push(u);
        w.heap.push(Reverse((0, u)));
        let mut settled = 0;
        while let Some(Reverse((d, y))) = w.heap.pop() {
            if d > w.dist[y as usize] {
                continue;
            }
            settled += 1;
            if d > limit || settled > settle_limit {
                break;
            }
            for &(z, t, _) in &self.out[y as usize] {
                if z == v {
                    continue;
                }
                let nd = d.saturating_add(t);
                let old = w.dist[z as usize];
                if nd < old {
                    if old == UNREACHABLE {
                        w.touched.push(z);
                    }
                    w.dist[z as usize] = nd;
                    w.heap.push(Reverse((nd, z)));
                }
            }
        }
    }

    fn priority(&mut self, v: u32) -> i64 {
        let shortcuts = self.shortcuts(v, PRIORITY_SETTLE_LIMIT).len() as i64;
        let removed = (self.out[v as usize].len() + self.inc[v as usize].len()) as i64;
        2 * (shortcuts - removed) + i64::from(self.deleted_neighbours[v as usize])
    }

    fn run(mut self) -> ContractionHierarchy {
        let n = self.n;
        let mut heap: BinaryHeap<Reverse<(i64, u32)>> = (0..n as u32)
            .map(|v| Reverse((self.priority(v), v)))
            .collect();
        let mut rank = vec![0u32; n];
        let mut next_rank = 0u32;
        let mut up: Vec<(u32, u32, u32, u32)> = Vec::new();
        let mut down: Vec<(u32, u32, u32, u32)> = Vec::new();
        while let Some(Reverse((_, v))) = heap.pop() {
            if self.contracted[v as usize] {
                continue;
            }
            // Lazy update: re-evaluate, and put back if no longer the best.
            let p = self.priority(v);
            if let Some(Reverse((top, _))) = heap.peek()
                && p > *top
            {
                heap.push(Reverse((p, v)));
                continue;
            }
            let shortcuts = self.shortcuts(v, WITNESS_SETTLE_LIMIT);
            rank[v as usize] = next_rank;
            next_rank += 1;
            self.contracted[v as usize] = true;
            let out = std::mem::take(&mut self.out[v as usize]);
            let inc = std::mem::take(&mut self.inc[v as usize]);
            for &(x, t, l) in &out {
                up.push((v, x, t, l));
                self.inc[x as usize].retain(|e| e.0 != v);
                self.deleted_neighbours[x as usize] += 1;
            }
            for &(u, t, l) in &inc {
                down.push((v, u, t, l));
                self.out[u as usize].retain(|e| e.0 != v);
                self.deleted_neighbours[u as usize] += 1;
            }
            for (u, x, t, l) in shortcuts {
                self.add_arc(u, x, t, l);
            }
        }
        let renumber = |arcs: Vec<(u32, u32, u32, u32)>| {
            let (first, arcs) = csr(
                n,
                arcs.into_iter()
                    .map(|(v, h, t, l)| {
                        (
                            rank[v as usize],
                            (
                                Arc {
                                    head: rank[h as usize],
                                    time_ms: t,
                                },
                                l,
                            ),
                        )
                    })
                    .collect(),
            );
            let (arcs, lens): (Vec<Arc>, Vec<u32>) = arcs.into_iter().unzip();
            (first, arcs, lens)
        };
        let (up_first, up, up_len_dm) = renumber(up);
        let (down_first, down, down_len_dm) = renumber(down);
        ContractionHierarchy {
            rank,
            up_first,
            up,
            down_first,
            down,
            up_len_dm,
            down_len_dm,
        }
    }
}
