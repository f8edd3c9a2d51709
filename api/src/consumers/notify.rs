//! [`Notifications`]: the notification feed from the event stream, and the
//! [`Push`] port it tells live channels through.

use std::sync::Arc;

use async_trait::async_trait;
use commerce::usecase::notify as usecase;
use engine::UserId;
use events::{Event, EventType, HandleError};

use super::dedupe::Seen;
use super::failed;
use crate::AppState;
use crate::routes::notifications::wire;
use crate::store::Store;

/// Where a stored notification goes live: the tracking socket's `me`
/// channel, a driver's stream and MQTT inbox. Implemented by the binary
/// over the gateway and ingest (which `api` does not depend on). Must not
/// block: each implementation queues and returns.
pub trait Push: Send + Sync + 'static {
    /// `user`'s notification `notification`, stored already.
    fn push(&self, user: UserId, notification: &contract::Notification);
}

/// `user`'s stored notifications with ids above `after`, ascending, at
/// most `limit`, as the wire has them: what a live channel's resync reads.
pub async fn stored_after(
    store: &dyn Store,
    user: UserId,
    after: i64,
    limit: u32,
) -> Result<Vec<contract::Notification>, commerce::Error> {
    let page = usecase::list(store, user, after, limit).await?;
    Ok(page.iter().map(wire).collect())
}

/// Turns the events that concern people into stored notifications, one per
/// recipient and event (the store refuses a second, so a redelivery stores
/// and pushes nothing), then pushes each newly stored one live.
///
/// **Invariant:** a notification is stored (committed) before it is
/// pushed, and pushed in id order per recipient (one runner; a batch of
/// events is stored in one transaction in event order and pushed in that
/// order), so a device that resyncs from the store and then listens
/// misses nothing.
pub struct Notifications {
    store: Arc<dyn Store>,
    clock: Arc<dyn clock::Clock>,
    push: Option<Arc<dyn Push>>,
    seen: Seen,
}

impl Notifications {
    /// The consumer's stable name (its position and dead letters).
    pub const NAME: &'static str = "notifications";

    /// Over the app's store, clock and live push.
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            clock: state.clock.clone(),
            push: state.push.clone(),
            seen: Seen::default(),
        }
    }
}

#[async_trait]
impl events::Consumer for Notifications {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self, event_type: EventType) -> bool {
        commerce::notify::wanted(event_type)
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        self.handle_many(std::slice::from_ref(event)).await
    }

    fn handles_many(&self) -> bool {
        true
    }

    /// Every notification of the batch stored in one transaction, then
    /// pushed in order: one write per read of the stream instead of one
    /// per event (a refused batch comes again one event at a time).
    async fn handle_many(&self, events: &[Event]) -> Result<(), HandleError> {
        let fresh = self.seen.fresh(events);
        if fresh.is_empty() {
            return Ok(());
        }
        let stored = usecase::record_many(&*self.store, &fresh, self.clock.now_ms())
            .await
            .map_err(failed)?;
        if let Some(push) = &self.push {
            for n in &stored {
                push.push(n.new.user_id, &wire(n));
            }
        }
        self.seen.insert_all(&fresh);
        Ok(())
    }
}
