//! The adapters that join the notification feed (`api`) to the live edges
//! (`ws-gateway`, `ingest`), which do not depend on each other: stored
//! notifications go out through [`LivePush`], and the tracking socket's
//! `me` resync reads the store through [`StoredFeed`]. Wiring only.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use engine::UserId;

/// [`api::consumers::notify::Push`] over the gateway's `me` channel and a
/// driver's stream and MQTT inbox.
pub struct LivePush {
    /// The tracking socket (`me`).
    pub gateway: ws_gateway::Gateway,
    /// Drivers' streams and MQTT.
    pub ingest: ingest::Ingest,
}

impl api::consumers::notify::Push for LivePush {
    fn push(&self, user: UserId, notification: &contract::Notification) {
        self.gateway.notify(user, notification);
        self.ingest.notify(user.into(), notification);
    }
}

/// [`ws_gateway::NotificationSource`] over the store.
pub struct StoredFeed {
    /// The app's store.
    pub store: Arc<dyn api::Store>,
}

impl ws_gateway::NotificationSource for StoredFeed {
    fn after(
        &self,
        user: UserId,
        after: i64,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<contract::Notification>, String>> + Send + '_>>
    {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        Box::pin(async move {
            api::consumers::notify::stored_after(&*self.store, user, after, limit)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
