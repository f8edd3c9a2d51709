//! The exact sparse min-cost assignment with a "wait" option per row.
//!
//! Rows are waiting orders, columns free drivers; every row lists a few
//! candidate (column, cost) edges. Each row either takes one column of its
//! own (no column twice) or waits at `unmatched_cost`; the solver returns
//! the choice of least total cost.
//!
//! Method: successive shortest augmenting paths with Dijkstra on reduced
//! costs (the Hungarian method in Jonker and Volgenant's shortest-path
//! form, on adjacency lists). Waiting is modelled as one private dummy
//! column per row, so every row can always be placed and each augmentation
//! ends at the latest at the row's own dummy. One Dijkstra per row, each
//! O(E log V): O(rows · E log V) in all, memory O(rows + columns + E); no
//! dense matrix.
//!
//! Invariant kept between augmentations (the duals): with column prices
//! `v` and, for a placed row `i` on column `x(i)`,
//! `u(i) = cost(i, x(i)) - v(x(i))`, every edge of a placed row has a reduced cost
//! `cost(i, c) - u(i) - v(c)` of at least 0, and placed edges have 0.
//! That makes Dijkstra valid and every augmentation a shortest one, hence
//! the optimum.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Largest cost of an edge or of waiting. Path lengths add at most one
/// edge per row and column, so with costs below 2^40 (about 35 years in
/// milliseconds) no sum comes near `i64::MAX`.
pub const MAX_COST: i64 = 1 << 40;

/// One candidate of a row: the column (driver index) and its cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Column index, below the `columns` given to [`solve`].
    pub column: u32,
    /// Cost of placing the row on this column, `0..=MAX_COST`.
    pub cost: i64,
}

/// The solver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// For each row, its column, or `None` when the row waits.
    pub row_to_column: Vec<Option<u32>>,
    /// Sum of the placed edges' costs plus `unmatched_cost` per waiting row.
    pub total_cost: i64,
}

/// Input the solver refuses (a caller's mistake, never a data condition).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SolveError {
    /// An edge names a column outside `0..columns`.
    #[error("row {row} names column {column}, but there are {columns} columns")]
    Column {
        /// The row.
        row: usize,
        /// The column it named.
        column: u32,
        /// The number of columns.
        columns: usize,
    },
    /// A cost below zero or above [`MAX_COST`].
    #[error("cost {cost} outside 0..={MAX_COST}")]
    Cost {
        /// The cost.
        cost: i64,
    },
    /// More rows plus columns than `u32` indexes.
    #[error("too many rows and columns")]
    TooLarge,
}

/// Solves the assignment: `rows[r]` lists row `r`'s candidate edges
/// (duplicates allowed, the cheaper counts), `columns` is the number of
/// real columns, and a row without a column costs `unmatched_cost`.
pub fn solve<R: AsRef<[Edge]>>(
    rows: &[R],
    columns: usize,
    unmatched_cost: i64,
) -> Result<Assignment, SolveError> {
    if !(0..=MAX_COST).contains(&unmatched_cost) {
        return Err(SolveError::Cost {
            cost: unmatched_cost,
        });
    }
    for (row, edges) in rows.iter().enumerate() {
        for e in edges.as_ref() {
            if e.column as usize >= columns {
                return Err(SolveError::Column {
                    row,
                    column: e.column,
                    columns,
                });
            }
            if !(0..=MAX_COST).contains(&e.cost) {
                return Err(SolveError::Cost { cost: e.cost });
            }
        }
    }
    let n = rows.len();
    // Real columns 0..columns, then row r's dummy at columns + r.
    let total_columns = columns.checked_add(n).ok_or(SolveError::TooLarge)?;
    if u32::try_from(total_columns).is_err() {
        return Err(SolveError::TooLarge);
    }
    let mut s = State {
        price: vec![0; total_columns],
        column_row: vec![NONE; total_columns],
        row_column: vec![NONE; n],
        row_cost: vec![0; n],
        dist: vec![i64::MAX; total_columns],
        pred: vec![NONE; total_columns],
        done: vec![false; total_columns],
        touched: Vec::new(),
        heap: BinaryHeap::new(),
    };
    let edges_of = |r: usize| {
        let dummy = Edge {
            // In range: checked against u32 above.
            column: (columns + r) as u32,
            cost: unmatched_cost,
        };
        rows[r]
            .as_ref()
            .iter()
            .copied()
            .chain(std::iter::once(dummy))
    };
    for free_row in 0..n {
        s.augment(free_row, &edges_of);
    }
    let mut total_cost = 0;
    let row_to_column = (0..n)
        .map(|r| {
            total_cost += s.row_cost[r];
            let c = s.row_column[r];
            (c < columns as u32).then_some(c)
        })
        .collect();
    Ok(Assignment {
        row_to_column,
        total_cost,
    })
}

/// "No row" / "no column".
const NONE: u32 = u32::MAX;

/// Working arrays, reused across augmentations (only touched entries are
/// reset, so one augmentation costs what its search visits).
struct State {
    /// Column prices `v`.
    price: Vec<i64>,
    /// The row placed on each column, or [`NONE`].
    column_row: Vec<u32>,
    /// The column of each row, or [`NONE`].
    row_column: Vec<u32>,
    /// Cost of each placed row's edge.
    row_cost: Vec<i64>,
    /// Dijkstra labels of columns.
    dist: Vec<i64>,
    /// The row a column was reached from.
    pred: Vec<u32>,
    /// Columns whose label is final.
    done: Vec<bool>,
    /// Columns labelled in this search, to reset afterwards.
    touched: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
}

impl State {
    fn relax(&mut self, column: u32, label: i64, from_row: u32) {
        let c = column as usize;
        if self.done[c] {
            return;
        }
        if self.dist[c] == i64::MAX {
            self.touched.push(column);
        }
        if label < self.dist[c] {
            self.dist[c] = label;
            self.pred[c] = from_row;
            self.heap.push(Reverse((label, column)));
        }
    }

    /// Places `free_row` along a shortest augmenting path and updates the
    /// prices. Always succeeds: the row's own dummy column is free.
    fn augment<I: Iterator<Item = Edge>>(
        &mut self,
        free_row: usize,
        edges_of: &impl Fn(usize) -> I,
    ) {
        for e in edges_of(free_row) {
            let label = e.cost - self.price[e.column as usize];
            self.relax(e.column, label, free_row as u32);
        }
        let mut end = NONE;
        let mut end_dist = 0;
        let mut finished: Vec<u32> = Vec::new();
        while let Some(Reverse((d, c))) = self.heap.pop() {
            let ci = c as usize;
            if self.done[ci] || d > self.dist[ci] {
                continue;
            }
            self.done[ci] = true;
            let row = self.column_row[ci];
            if row == NONE {
                end = c;
                end_dist = d;
                break;
            }
            finished.push(c);
            // Row placed on c: its edges' reduced costs from here.
            let r = row as usize;
            let u = self.row_cost[r] - self.price[ci];
            for e in edges_of(r) {
                let reduced = e.cost - u - self.price[e.column as usize];
                self.relax(e.column, d + reduced, row);
            }
        }
        // The dummy of free_row is reachable, so the search ends on a free
        // column; `end` is set.
        debug_assert_ne!(end, NONE);
        for &c in &finished {
            let ci = c as usize;
            self.price[ci] += self.dist[ci] - end_dist;
        }
        // Flip the path back to free_row.
        let mut c = end;
        loop {
            let ci = c as usize;
            let r = self.pred[ci];
            let ri = r as usize;
            let previous = self.row_column[ri];
            self.column_row[ci] = r;
            self.row_column[ri] = c;
            self.row_cost[ri] = edges_of(ri)
                .filter(|e| e.column == c)
                .map(|e| e.cost)
                .min()
                .unwrap_or(i64::MAX);
            if ri == free_row {
                break;
            }
            c = previous;
        }
        for &c in &self.touched {
            let ci = c as usize;
            self.dist[ci] = i64::MAX;
            self.pred[ci] = NONE;
            self.done[ci] = false;
        }
        self.touched.clear();
        self.heap.clear();
    }
}
