//! [`BanSync`]: bans and logouts reach every node's token checker from
//! the event stream.
//!
//! The node that stores a ban applies it to its own checker at once
//! (`commerce::usecase::ban`); the others learn of it here, from
//! `user.banned` / `user.unbanned`, and apply it the same way
//! ([`auth::Tokens::ban`] also closes the user's open sessions on this
//! node: the driver stream, the tracking socket, the MQTT connection).
//! Each event reloads the user and applies what is stored, not what the
//! event says, so a late or repeated delivery cannot undo a newer change.
//! `user.logged_out` applies the user's stored cutoff: their access tokens
//! issued before it are refused here too (`auth::Tokens::refuse_issued_before`
//! keeps the latest cutoff, so order does not matter).

use std::sync::Arc;

use async_trait::async_trait;
use engine::UserId;
use events::{Event, EventType, HandleError};

use super::dedupe::Seen;
use super::failed;
use crate::AppState;
use crate::store::Store;

/// Applies stored bans and logouts to this node's [`auth::Tokens`].
pub struct BanSync {
    store: Arc<dyn Store>,
    tokens: auth::Tokens,
    seen: Seen,
}

impl BanSync {
    /// The consumer's stable name (its position and dead letters).
    pub const NAME: &'static str = "bans";

    /// Over the app's store and token checker.
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            tokens: state.tokens.clone(),
            seen: Seen::default(),
        }
    }
}

#[async_trait]
impl events::Consumer for BanSync {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::UserBanned | EventType::UserUnbanned | EventType::UserLoggedOut
        )
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        if self.seen.contains(event.id) {
            return Ok(());
        }
        // An id that is not a user's is never written by hexdash: skipped.
        if let Ok(user_id) = event.aggregate.id.parse::<UserId>()
            && event.event_type == EventType::UserLoggedOut
        {
            if let Some(cutoff) = self.store.access_cutoff(user_id).await.map_err(failed)? {
                self.tokens.refuse_issued_before(user_id, cutoff);
            }
        } else if let Ok(user_id) = event.aggregate.id.parse::<UserId>() {
            match self.store.user(user_id).await.map_err(failed)? {
                Some(user) if user.banned_at_ms.is_some() => self.tokens.ban(user_id),
                Some(_) => self.tokens.unban(user_id),
                None => {}
            }
        }
        self.seen.insert(event.id);
        Ok(())
    }
}
