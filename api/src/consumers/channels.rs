//! [`ChannelDelivery`]: one outside channel (push, email or SMS) fed by the
//! event stream.

use std::sync::Arc;

use async_trait::async_trait;
use commerce::channels::{Channel, Sender};
use commerce::usecase::channels as usecase;
use events::{Event, EventType, HandleError};

use super::dedupe::Seen;
use super::failed;
use crate::AppState;
use crate::store::Store;

/// Sends the notifications of the events that concern people on one
/// channel, to those whose preferences want them there (see
/// `commerce::usecase::channels::deliver`).
///
/// A message the provider refuses fails the event: the runner tries it
/// again with backoff (the messages already out are not sent again) and,
/// after the channel's last try, dead-letters it; a replay sends only
/// what is still unsent. Independent of the feed's consumer: it reads the
/// same recipients from the store, so neither waits for the other.
pub struct ChannelDelivery {
    channel: Channel,
    store: Arc<dyn Store>,
    sender: Arc<dyn Sender>,
    clock: Arc<dyn clock::Clock>,
    seen: Seen,
}

impl ChannelDelivery {
    /// The consumer's stable name for `channel` (its position and dead
    /// letters; also its metric label, from this fixed set).
    pub const fn name_of(channel: Channel) -> &'static str {
        match channel {
            Channel::Push => "channel:push",
            Channel::Email => "channel:email",
            Channel::Sms => "channel:sms",
        }
    }

    /// `channel` over the app's store, clock and that channel's provider.
    pub fn new(state: &AppState, channel: Channel) -> Self {
        Self {
            channel,
            store: state.store.clone(),
            sender: state.senders.of(channel),
            clock: state.clock.clone(),
            seen: Seen::default(),
        }
    }
}

/// Why an event failed on a channel: the provider's refusals.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

#[async_trait]
impl events::Consumer for ChannelDelivery {
    fn name(&self) -> &str {
        Self::name_of(self.channel)
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

    /// The batch's messages sent in order and their tries recorded in one
    /// transaction (see `usecase::channels::deliver_many`). A refusal
    /// fails the batch: the runner then goes one event at a time, and
    /// what went out already is not sent again.
    async fn handle_many(&self, events: &[Event]) -> Result<(), HandleError> {
        let fresh = self.seen.fresh(events);
        if fresh.is_empty() {
            return Ok(());
        }
        let done = usecase::deliver_many(
            &*self.store,
            self.sender.as_ref(),
            self.channel,
            &fresh,
            self.clock.now_ms(),
        )
        .await
        .map_err(failed)?;
        if !done.failed.is_empty() {
            return Err(failed(Refused(done.failed.join("; "))));
        }
        self.seen.insert_all(&fresh);
        Ok(())
    }
}
