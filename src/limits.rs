//! Login and signup limits across nodes (see `api::limiter`): the api's
//! shared windows are `cluster::Windows` in Redis, so a limit counts every
//! node's attempts. A failed Redis call is `Unavailable`, and the node's
//! own count decides until Redis answers again.

use api::limiter::{SharedWindows, Unavailable, WindowState};
use async_trait::async_trait;

/// `cluster::Windows` as the api's [`SharedWindows`].
pub struct RedisWindows(pub cluster::Windows);

fn unavailable(e: cluster::Error) -> Unavailable {
    Unavailable(e.to_string())
}

fn state(w: cluster::Window) -> WindowState {
    WindowState {
        hits: w.hits,
        left_ms: w.left_ms,
    }
}

#[async_trait]
impl SharedWindows for RedisWindows {
    async fn hit(&self, key: &str, window_ms: u64) -> Result<WindowState, Unavailable> {
        self.0
            .hit(key, window_ms)
            .await
            .map(state)
            .map_err(unavailable)
    }

    async fn peek(&self, key: &str) -> Result<WindowState, Unavailable> {
        self.0.peek(key).await.map(state).map_err(unavailable)
    }

    async fn clear(&self, key: &str) -> Result<(), Unavailable> {
        self.0.clear(key).await.map_err(unavailable)
    }
}
