//! [`Reports`]: the reports projection from the event stream, and
//! [`Rebuild`], which clears it and replays the stream from the start.

use std::sync::Arc;

use async_trait::async_trait;
use commerce::usecase::report as usecase;
use events::{Consumers, Event, EventLog, EventType, HandleError};

use super::dedupe::Seen;
use super::failed;
use crate::AppState;
use crate::store::Store;

/// Applies the events reports are made of (`usecase::report::update_of`
/// says what each one does). A redelivery is skipped by id in memory and,
/// after a restart, by the store: each update commits with its event's id
/// in `report_applied`, so no event counts twice. Dead letters replayed
/// out of order still count once; the fields that must be the newest
/// (an order's status and driver, a review's stars) go by the order's
/// version.
pub struct Reports {
    store: Arc<dyn Store>,
    seen: Seen,
}

impl Reports {
    /// The consumer's stable name (its position and dead letters).
    pub const NAME: &'static str = "reports";

    /// Over the app's store.
    pub fn new(state: &AppState) -> Self {
        Self::over(state.store.clone())
    }

    fn over(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            seen: Seen::default(),
        }
    }
}

#[async_trait]
impl events::Consumer for Reports {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self, event_type: EventType) -> bool {
        usecase::wanted(event_type)
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        self.handle_many(std::slice::from_ref(event)).await
    }

    fn handles_many(&self) -> bool {
        true
    }

    /// The batch's updates in one transaction: a write per read of the
    /// stream instead of one per event (a refused batch comes again one
    /// event at a time; events applied already are skipped by the store).
    async fn handle_many(&self, events: &[Event]) -> Result<(), HandleError> {
        let fresh = self.seen.fresh(events);
        if fresh.is_empty() {
            return Ok(());
        }
        usecase::apply_many(self.store.as_ref(), &fresh)
            .await
            .map_err(failed)?;
        self.seen.insert_all(&fresh);
        Ok(())
    }
}

/// Rebuilds the projection while the stream runs: stops the consumer's
/// runner (`Consumers::remove`, which also drops its dead letters), clears
/// the tables and sets its position to 0 in one transaction, and starts a
/// fresh consumer, which replays every event from the first. Reports read
/// meanwhile show the figures replayed so far.
#[derive(Clone)]
pub struct Rebuild {
    store: Arc<dyn Store>,
    log: EventLog,
    consumers: Consumers,
    /// One rebuild at a time: two interleaved would add a consumer twice.
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Rebuild {
    /// Over the app's store and its running consumers.
    pub fn new(store: Arc<dyn Store>, log: EventLog, consumers: Consumers) -> Self {
        Self {
            store,
            log,
            consumers,
            running: Arc::default(),
        }
    }

    /// Clears the projection and replays the stream from 0; returns the
    /// stream's head when the replay started (the report is whole again
    /// once the consumer has passed it).
    pub async fn run(&self, now_ms: i64) -> anyhow::Result<i64> {
        let _one = self.running.lock().await;
        self.consumers.remove(&self.log, Reports::NAME).await?;
        let cleared = self.store.clear_reports(Reports::NAME, now_ms).await;
        // Whatever happened, the consumer runs again: from 0 after a
        // clear, from where it was otherwise (its position was removed
        // with it only when the clear failed before writing it: then it
        // starts at the head, and a second rebuild repairs it).
        let added = self
            .consumers
            .add(Arc::new(Reports::over(self.store.clone())))
            .await;
        cleared?;
        added?;
        Ok(self.log.head().await?)
    }
}
