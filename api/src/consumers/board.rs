//! [`Board`]: the engine's order board, by version, from the event stream.

use async_trait::async_trait;
use events::{Event, EventType, HandleError};

use super::dedupe::Seen;
use super::{failed, order_id};
use crate::AppState;
use crate::live::{self, Live};
use crate::store::Store;

/// Puts the order an event is about on the board as stored, labelled with
/// the event's version: the board refuses it when it holds that version or
/// a newer one, so an older change never overwrites a newer one. The store
/// is read after the event, so what is applied is at least as new as the
/// label says. When the board already holds the event's version or a
/// newer one (the direct update after the commit got there first, the
/// usual case on a running node), the store is not read at all.
pub struct Board {
    store: std::sync::Arc<dyn Store>,
    live: Live,
    seen: Seen,
}

impl Board {
    /// The consumer's stable name (its position and dead letters).
    pub const NAME: &'static str = "live_board";

    /// Over the app's store and engine.
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            live: state.live(),
            seen: Seen::default(),
        }
    }
}

#[async_trait]
impl events::Consumer for Board {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self, event_type: EventType) -> bool {
        // Offers and arrivals leave the order as it was.
        event_type.aggregate_kind() == events::AggregateKind::Order
            && !matches!(
                event_type,
                EventType::OrderOffered
                    | EventType::OrderArrivedAtRestaurant
                    | EventType::OrderArrivedAtCustomer
            )
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Some(id) = order_id(event) else {
            return Ok(());
        };
        if self.seen.contains(event.id) || live::board_has(&self.live, id, event.version) {
            return Ok(());
        }
        if let Some(order) = self.store.order_head(id).await.map_err(failed)? {
            live::track(&self.live, &order, event.version);
        }
        self.seen.insert(event.id);
        Ok(())
    }
}
