//! The adapters that join the notification feed (`api`) to the live edges
//! (`ws-gateway`, `ingest`), which do not depend on each other: stored
//! notifications go out through [`LivePush`], and the tracking socket's
//! `me` resync and the restaurant channel's owner check read the store
//! through [`StoredRecords`]; offers' details (restaurant, item count)
//! are read through [`StoredOfferDetails`]. Wiring only.

use std::sync::Arc;

use engine::{RestaurantId, UserId};
use ws_gateway::RecordsFuture;

/// [`api::consumers::notify::Push`] over the gateway's `me` channel and a
/// driver's stream and MQTT inbox.
pub struct LivePush {
    /// The tracking socket (`me`).
    pub gateway: ws_gateway::Gateway,
    /// Drivers' streams and MQTT.
    pub ingest: ingest::Ingest,
    /// With Redis: a driver pinging another node is sent it there, and
    /// every other node pushes it to the user's `me` subscriptions there.
    pub positions: Option<cluster::Positions>,
}

impl api::consumers::notify::Push for LivePush {
    fn push(&self, user: UserId, notification: &contract::Notification) {
        self.gateway.notify(user, notification);
        self.ingest.notify(user.into(), notification);
        if let Some(positions) = &self.positions
            && let Ok(value) = serde_json::to_value(notification)
        {
            positions.forward_notify(user.into(), value.clone());
            positions.broadcast_notify(user, value);
        }
    }
}

/// [`ws_gateway::Records`] over the store.
pub struct StoredRecords {
    /// The app's store.
    pub store: Arc<dyn api::Store>,
}

impl ws_gateway::Records for StoredRecords {
    fn notifications_after(
        &self,
        user: UserId,
        after: i64,
        limit: usize,
    ) -> RecordsFuture<'_, Vec<contract::Notification>> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        Box::pin(async move {
            api::consumers::notify::stored_after(&*self.store, user, after, limit)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn restaurant_owner(&self, restaurant: RestaurantId) -> RecordsFuture<'_, Option<UserId>> {
        Box::pin(async move {
            let found = self
                .store
                .restaurant(restaurant)
                .await
                .map_err(|e| e.to_string())?;
            Ok(found.map(|r| r.owner_id))
        })
    }
}

/// [`ingest::OfferDetails`] over the store: the order's restaurant and item
/// count.
pub struct StoredOfferDetails {
    /// The app's store.
    pub store: Arc<dyn api::Store>,
}

impl ingest::OfferDetails for StoredOfferDetails {
    fn details(
        &self,
        order: engine::OrderId,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Option<ingest::wire::Details>> + Send + '_>,
    > {
        Box::pin(async move {
            let order = self.store.order(order).await.ok()??;
            let restaurant = self.store.restaurant(order.restaurant_id).await.ok()??;
            let items: i64 = order.lines.iter().map(|l| l.quantity).sum();
            Some(ingest::wire::Details {
                restaurant_name: restaurant.name,
                restaurant_address: restaurant.address,
                items: u32::try_from(items).unwrap_or(u32::MAX),
            })
        })
    }
}
