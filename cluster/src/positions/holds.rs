//! Which regions a node holds: the bookkeeping, without I/O. Explicit
//! holds are counted ([`Holds::hold`] / [`Holds::release`], for callers
//! such as a matcher's leased regions or an on-demand `nearby`); each
//! refresh adds what the node's watchers need and, on nodes that hold
//! everything, every active region; [`Holds::plan`] says what to subscribe
//! to and what to drop against what the feed holds now.

use std::collections::{BTreeMap, BTreeSet};

use super::Region;

/// Counted explicit holds.
#[derive(Debug, Default)]
pub struct Holds {
    counts: BTreeMap<Region, u32>,
}

/// What a refresh changes: regions to start holding (subscribe, then load
/// the snapshot) and to stop holding.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub start: Vec<Region>,
    pub stop: Vec<Region>,
}

impl Holds {
    /// One more holder of `region`.
    pub fn hold(&mut self, region: Region) {
        *self.counts.entry(region).or_default() += 1;
    }

    /// One holder fewer; `false` when nobody held it.
    pub fn release(&mut self, region: Region) -> bool {
        match self.counts.get_mut(&region) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.counts.remove(&region);
                true
            }
            None => false,
        }
    }

    /// The explicitly held regions.
    pub fn held(&self) -> impl Iterator<Item = Region> + '_ {
        self.counts.keys().copied()
    }

    /// What to change so the feed holds exactly `wanted` ∪ the explicit
    /// holds, given it holds `current`.
    pub fn plan(
        &self,
        wanted: impl IntoIterator<Item = Region>,
        current: &BTreeSet<Region>,
    ) -> (BTreeSet<Region>, Plan) {
        let mut desired: BTreeSet<Region> = wanted.into_iter().collect();
        desired.extend(self.held());
        let plan = Plan {
            start: desired.difference(current).copied().collect(),
            stop: current.difference(&desired).copied().collect(),
        };
        (desired, plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::LatLng;

    fn region(lat: f64, lng: f64) -> Region {
        Region::of_point(
            LatLng::new(lat, lng).unwrap(),
            engine::cells::CellResolution::Five,
        )
    }

    #[test]
    fn holds_are_counted_and_plans_diff_against_the_feed() {
        let (a, b, c) = (
            region(57.7, 11.97),
            region(59.33, 18.06),
            region(55.6, 13.0),
        );
        let mut holds = Holds::default();
        holds.hold(a);
        holds.hold(a);
        assert!(holds.release(a));
        assert_eq!(holds.held().collect::<Vec<_>>(), vec![a], "still held once");
        assert!(holds.release(a));
        assert!(!holds.release(a), "nobody holds it any more");

        holds.hold(c);
        let current: BTreeSet<Region> = [a, b].into_iter().collect();
        let (desired, plan) = holds.plan([b], &current);
        assert_eq!(desired, [b, c].into_iter().collect());
        assert_eq!(
            plan,
            Plan {
                start: vec![c],
                stop: vec![a]
            }
        );
        let (_, nothing) = holds.plan([b], &desired);
        assert_eq!(nothing, Plan::default());
    }
}
