//! [`Seen`]: the event ids a consumer handled lately, to skip redeliveries.

use std::collections::{HashSet, VecDeque};

use events::Event;
use parking_lot::Mutex;

/// How many ids a consumer remembers: more than the runner can redeliver
/// after a restart (`checkpoint_every`) with room to spare.
const REMEMBERED: usize = 4_096;

/// The last [`REMEMBERED`] event ids handled, oldest dropped first. In
/// memory: after a restart the consumer relies on being idempotent for
/// what the runner delivers again.
#[derive(Default)]
pub struct Seen {
    inner: Mutex<(HashSet<i64>, VecDeque<i64>)>,
}

impl Seen {
    /// Whether `id` was handled already.
    pub fn contains(&self, id: i64) -> bool {
        self.inner.lock().0.contains(&id)
    }

    /// The events of `batch` not handled already, in order.
    pub fn fresh<'a>(&self, batch: &'a [Event]) -> Vec<&'a Event> {
        let guard = self.inner.lock();
        batch.iter().filter(|e| !guard.0.contains(&e.id)).collect()
    }

    /// Records every one of `events` as handled.
    pub fn insert_all(&self, events: &[&Event]) {
        for e in events {
            self.insert(e.id);
        }
    }

    /// Records `id` as handled.
    pub fn insert(&self, id: i64) {
        let mut guard = self.inner.lock();
        let (set, order) = &mut *guard;
        if set.insert(id) {
            order.push_back(id);
            if order.len() > REMEMBERED
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_ids_only() {
        let seen = Seen::default();
        for id in 0..(REMEMBERED as i64 + 10) {
            seen.insert(id);
        }
        assert!(!seen.contains(0));
        assert!(seen.contains(REMEMBERED as i64 + 9));
        assert!(seen.contains(10));
    }
}
