//! [`CatalogSync`]: the search catalog from the event stream.

use async_trait::async_trait;
use engine::RestaurantId;
use events::{Event, EventType, HandleError};

use super::dedupe::Seen;
use super::failed;
use crate::AppState;
use crate::search::{self, SharedCatalog};
use crate::store::{ReviewsOf, Store};
use commerce::event::ReviewChanged;

/// `restaurant.updated` and `menu.updated` reload the restaurant and its
/// whole menu from the store into the catalog (idempotent: upserts of the
/// stored rows), and give the matcher the restaurant's declared
/// preparation time (its estimate until the restaurant has history).
/// `review.*` reload the rated restaurant's rating (the totals over its
/// visible reviews, so a replay sets the same figures).
pub struct CatalogSync {
    store: std::sync::Arc<dyn Store>,
    catalog: SharedCatalog,
    matcher: matcher::Matcher,
    seen: Seen,
}

impl CatalogSync {
    /// The consumer's stable name (its position and dead letters).
    pub const NAME: &'static str = "search_catalog";

    /// Over the app's store and catalog.
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            catalog: state.catalog.clone(),
            matcher: state.matcher.clone(),
            seen: Seen::default(),
        }
    }
}

#[async_trait]
impl events::Consumer for CatalogSync {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::RestaurantUpdated
                | EventType::MenuUpdated
                | EventType::ReviewCreated
                | EventType::ReviewUpdated
                | EventType::ReviewHidden
                | EventType::ReviewUnhidden
        )
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        if self.seen.contains(event.id) {
            return Ok(());
        }
        if event.aggregate.kind == events::AggregateKind::Order {
            // A review event (the order's stream): its body names the
            // restaurant rated.
            let review: ReviewChanged =
                serde_json::from_value(event.payload.body.clone()).map_err(failed)?;
            let id = review.restaurant_id;
            let totals = self
                .store
                .rating(ReviewsOf::Restaurant(id))
                .await
                .map_err(failed)?;
            search::set_rating(&self.catalog, id, totals);
            self.seen.insert(event.id);
            return Ok(());
        }
        let Ok(id) = event.aggregate.id.parse::<RestaurantId>() else {
            return Ok(());
        };
        if let Some(restaurant) = self.store.restaurant(id).await.map_err(failed)? {
            let menu = self.store.menu(id).await.map_err(failed)?;
            search::reload(&self.catalog, &restaurant, &menu);
            self.matcher
                .declare_prep(restaurant.id, restaurant.prep_time_s);
        }
        self.seen.insert(event.id);
        Ok(())
    }
}
