//! [`Trigger`]: the matcher's trigger from the event stream.

use async_trait::async_trait;
use events::{Event, EventType, HandleError};

use super::dedupe::Seen;
use super::{failed, order_id};
use crate::AppState;
use crate::live::{self, Live};
use crate::store::Store;

/// When an order event may have made the order dispatchable (accepted,
/// preparing, ready, an assignment undone), and the order waits for a
/// driver, asks the matcher to dispatch it; a closed order is withdrawn.
/// Both are idempotent with the direct path after the commit: dispatching
/// an order already in dispatch, assigned or closed does nothing. A
/// closed or assigned order is judged as the board holds it when that is
/// as new as the event (the usual case: the direct update came first); one
/// that waits for a driver, or one the board lags on, as the store has it
/// (put on the board first), since dispatching needs its expected ready
/// time.
pub struct Trigger {
    store: std::sync::Arc<dyn Store>,
    live: Live,
    seen: Seen,
    /// The application's clock (a dispatch's start time).
    clock: std::sync::Arc<dyn clock::Clock>,
}

impl Trigger {
    /// The consumer's stable name (its position and dead letters).
    pub const NAME: &'static str = "matcher_trigger";

    /// Over the app's store, engine and matcher.
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            live: state.live(),
            seen: Seen::default(),
            clock: state.clock.clone(),
        }
    }
}

#[async_trait]
impl events::Consumer for Trigger {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self, event_type: EventType) -> bool {
        use EventType::*;
        matches!(
            event_type,
            OrderAccepted
                | OrderPreparing
                | OrderReadyForPickup
                | OrderCancelled
                | OrderReassigned
                | OrderRejected
                | OrderDelivered
                | PaymentFailed
        )
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Some(id) = order_id(event) else {
            return Ok(());
        };
        if self.seen.contains(event.id) {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        if let Some(track) = self.live.engine.order(id)
            && track.version >= event.version
            && live::settle_tracked(&self.live, &track)
        {
            self.seen.insert(event.id);
            return Ok(());
        }
        if let Some(order) = self.store.order_head(id).await.map_err(failed)? {
            // The matcher reads the order from the board: make sure it is
            // there (refused, harmlessly, when the board is as new).
            live::track(&self.live, &order, event.version);
            if order.status.is_terminal() {
                self.live.matcher.withdraw(order.id);
            } else {
                live::dispatch_if_waiting(&self.live, &order, now_ms);
            }
        }
        self.seen.insert(event.id);
        Ok(())
    }
}
