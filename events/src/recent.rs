//! [`Recent`]: the events this node's relay sequenced last, kept in memory
//! so the runners that are caught up read them without a query each.
//!
//! Every runner reads the same new events; without this each of them (the
//! in-process consumers and every webhook endpoint) would query the log
//! after every relay pass. The relay already has the rows (its numbering
//! statement returns them), so it appends them here after its commit, and
//! a runner whose next event is here takes it from memory. Anything else
//! (a runner far behind, events numbered by a relay on another node, a
//! restart) falls back to the log: this is a cache of committed rows, never
//! a source of truth, so what it holds or drops cannot change what a
//! consumer receives.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use crate::model::Event;

/// Events kept: a few relay passes at full load; bounds the memory
/// (a few MiB at typical payload sizes).
pub(crate) const CAPACITY: usize = 4_096;

/// A window of consecutive sequenced events, oldest first. Cheap to clone
/// (a handle).
#[derive(Clone, Default)]
pub(crate) struct Recent(Arc<RwLock<VecDeque<Arc<Event>>>>);

impl Recent {
    /// Appends the events of one committed relay pass (any order; they are
    /// sorted by id). When they do not follow on from what is held (another
    /// node's relay numbered the ids between), the window restarts at them,
    /// so it only ever holds consecutive ids.
    pub(crate) fn extend(&self, mut events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        events.sort_unstable_by_key(|e| e.id);
        let mut window = self.write();
        let follows = window.back().is_none_or(|last| events[0].id == last.id + 1);
        let consecutive = events.windows(2).all(|w| w[1].id == w[0].id + 1);
        if !follows || !consecutive {
            window.clear();
        }
        if !consecutive {
            // Never happens for one pass (it numbers a consecutive run);
            // holding nothing is always correct.
            return;
        }
        window.extend(events.into_iter().map(Arc::new));
        let excess = window.len().saturating_sub(CAPACITY);
        window.drain(..excess);
    }

    /// Up to `limit` events after `position`, when the window holds the
    /// next one (`position + 1`); `None` when the caller must read the log.
    pub(crate) fn after(&self, position: i64, limit: usize) -> Option<Vec<Event>> {
        let window = self.read();
        let first = window.front()?.id;
        let last = window.back()?.id;
        if position < first - 1 || position >= last {
            return None;
        }
        let start = usize::try_from(position + 1 - first).ok()?;
        Some(
            window
                .iter()
                .skip(start)
                .take(limit)
                .map(|e| Event::clone(e))
                .collect(),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, VecDeque<Arc<Event>>> {
        // A panic while holding the lock leaves a consistent deque (every
        // mutation above is a single std call), so poisoning is ignored.
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, VecDeque<Arc<Event>>> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{AggregateKind, EventType};
    use crate::model::{Actor, Aggregate, Payload};

    fn event(id: i64) -> Event {
        Event {
            id,
            event_type: EventType::OrderPlaced,
            aggregate: Aggregate {
                kind: AggregateKind::Order,
                id: "o".into(),
            },
            version: id,
            at_ms: 0,
            actor: Actor::System("test".into()),
            payload: Payload {
                schema_version: 1,
                body: serde_json::json!({}),
            },
        }
    }

    fn ids(events: Option<Vec<Event>>) -> Option<Vec<i64>> {
        events.map(|v| v.into_iter().map(|e| e.id).collect())
    }

    #[test]
    fn serves_what_follows_a_position_it_holds() {
        let recent = Recent::default();
        assert_eq!(ids(recent.after(0, 10)), None, "empty: read the log");
        recent.extend(vec![event(3), event(1), event(2)]);
        recent.extend(vec![event(4)]);
        assert_eq!(ids(recent.after(0, 10)), Some(vec![1, 2, 3, 4]));
        assert_eq!(ids(recent.after(2, 1)), Some(vec![3]));
        assert_eq!(
            ids(recent.after(4, 10)),
            None,
            "caught up: nothing held after"
        );
        assert_eq!(ids(recent.after(-1, 10)), None, "before the window");
    }

    #[test]
    fn a_gap_restarts_the_window() {
        let recent = Recent::default();
        recent.extend(vec![event(1), event(2)]);
        // 3 and 4 were numbered by another node's relay.
        recent.extend(vec![event(5)]);
        assert_eq!(ids(recent.after(2, 10)), None, "3 must come from the log");
        assert_eq!(ids(recent.after(4, 10)), Some(vec![5]));
    }

    #[test]
    fn holds_at_most_its_capacity() {
        let recent = Recent::default();
        let total = i64::try_from(CAPACITY).unwrap() + 10;
        recent.extend((1..=total).map(event).collect());
        assert_eq!(ids(recent.after(0, 1)), None, "the oldest were dropped");
        assert_eq!(ids(recent.after(10, 1)), Some(vec![11]));
        assert_eq!(ids(recent.after(total - 1, 5)), Some(vec![total]));
    }
}
