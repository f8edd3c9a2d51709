//! [`Routes`]: a delivered order keeps its route, from the event stream.

use std::sync::Arc;

use async_trait::async_trait;
use commerce::usecase::route;
use events::{Event, EventType, HandleError};

use super::dedupe::Seen;
use super::{failed, order_id};
use crate::AppState;
use crate::breadcrumbs::Breadcrumbs;
use crate::store::Store;

/// On `order.delivered`, records the order's route (pickup, the courier's
/// breadcrumbs between pickup and delivery from memory, dropoff) with the
/// order, once: a redelivery finds it kept and writes nothing. An event
/// handled long after the delivery (a replay, a restart) finds fewer
/// breadcrumbs or none, and keeps what there is.
pub struct Routes {
    store: Arc<dyn Store>,
    breadcrumbs: Arc<Breadcrumbs>,
    clock: Arc<dyn clock::Clock>,
    seen: Seen,
}

impl Routes {
    /// The consumer's stable name (its position and dead letters).
    pub const NAME: &'static str = "order_routes";

    /// Over the app's store, breadcrumbs and clock.
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            breadcrumbs: state.breadcrumbs.clone(),
            clock: state.clock.clone(),
            seen: Seen::default(),
        }
    }
}

#[async_trait]
impl events::Consumer for Routes {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self, event_type: EventType) -> bool {
        event_type == EventType::OrderDelivered
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Some(id) = order_id(event) else {
            return Ok(());
        };
        if self.seen.contains(event.id) {
            return Ok(());
        }
        let stored = route::record(
            &*self.store,
            &*self.breadcrumbs,
            id,
            event.at_ms,
            self.breadcrumbs.config().route_max_points,
            self.clock.now_ms(),
        )
        .await
        .map_err(failed)?;
        if let Some(route) = stored {
            tracing::debug!(order_id = %id, breadcrumbs = route.breadcrumbs, "delivered order's route kept");
        }
        self.seen.insert(event.id);
        Ok(())
    }
}
