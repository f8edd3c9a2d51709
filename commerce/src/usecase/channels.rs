//! Outside channels: delivering an event's notifications on one channel
//! ([`deliver`], called by the api's `channel:{push,email,sms}` consumers
//! of the event stream), a user's preferences ([`preferences`],
//! [`set_preferences`]) and the log of what was sent ([`sent`]).
//!
//! [`deliver`] tells the people the notification feed tells
//! (`usecase::notify`'s recipients), each only on the channels and event
//! types their preferences want, in their language. Every try is recorded
//! (`channel_sends`, one row per recipient, event and channel, counting
//! attempts); a row already `sent` or `skipped` is not sent again, so a
//! redelivered or replayed event sends only what has not gone out.

use std::collections::HashMap;

use engine::UserId;
use events::{Event, EventType};

use super::notify::recipients_of_batch;
use crate::channels::prefs::{self, ChannelChoice, Preferences};
use crate::channels::render::{About, render};
use crate::channels::{Channel, Outbound, SendStatus, Sender};
use crate::store::{
    ChannelSend, ChannelStore, Contact, NotificationStore, OrderStore, SendAttempt, SendFilter,
};
use crate::{Error, Result};

/// Counter: messages handed to a channel's provider or skipped, by
/// `channel` and `status` (`sent`, `failed`, `skipped`).
pub const SENDS_TOTAL: &str = "hexdash_channel_sends_total";
/// The largest page of [`sent`].
pub const MAX_PAGE: u32 = 100;

/// What delivering one event on one channel did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Messages the provider took now.
    pub sent: usize,
    /// Recipients with no address on the channel (recorded `skipped`).
    pub skipped: usize,
    /// Recipients whose message went out (or was skipped) before: a
    /// redelivery.
    pub already: usize,
    /// Why each message the provider refused failed (recorded `failed`);
    /// the caller tries the event again later.
    pub failed: Vec<String>,
}

/// The address of `contact` on `channel`: their email, their phone, or
/// for push their devices' topic. `None` without one.
pub fn address(channel: Channel, contact: &Contact) -> Option<String> {
    match channel {
        Channel::Push => Some(format!("user:{}", contact.user_id)),
        Channel::Email => Some(contact.email.clone()),
        Channel::Sms => contact
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    }
}

/// Sends `event`'s notification on `channel` to each person it concerns
/// who wants it there and has not had it: renders it in their language,
/// hands it to `sender` and records the try. A provider's refusal is
/// recorded and listed in [`Delivered::failed`]; the others go on.
pub async fn deliver(
    store: &(impl OrderStore + NotificationStore + ChannelStore + ?Sized),
    sender: &dyn Sender,
    channel: Channel,
    event: &Event,
    now_ms: i64,
) -> Result<Delivered> {
    deliver_many(store, sender, channel, &[event], now_ms).await
}

/// [`deliver`] for each of `events`, in order, with the reads of the
/// recipients' contacts, preferences and earlier sends made once for the
/// batch and every try recorded in one transaction at the end (a write
/// per read of the stream, not per message). Should that last write
/// fail, the tries already made are sent again on redelivery, as when
/// one message's record fails: the provider's key (event, user, channel)
/// lets it drop the repeat.
pub async fn deliver_many(
    store: &(impl OrderStore + NotificationStore + ChannelStore + ?Sized),
    sender: &dyn Sender,
    channel: Channel,
    events: &[&Event],
    now_ms: i64,
) -> Result<Delivered> {
    let mut done = Delivered::default();
    let (told, users) = recipients_of_batch(store, events).await?;
    if users.is_empty() {
        return Ok(done);
    }
    let event_ids: Vec<i64> = told.iter().map(|(e, _)| e.id).collect();
    let contacts: HashMap<UserId, Contact> = store
        .contacts(&users)
        .await?
        .into_iter()
        .map(|c| (c.user_id, c))
        .collect();
    let settings = store.preference_settings_of(&users).await?;
    let before: HashMap<(UserId, i64), ChannelSend> = store
        .channel_sends(channel, &users, &event_ids)
        .await?
        .into_iter()
        .map(|s| ((s.last.user_id, s.last.event_id), s))
        .collect();
    let mut attempts = Vec::new();
    for (event, to) in &told {
        for &(user, party) in &to.list {
            let Some(contact) = contacts.get(&user) else {
                continue;
            };
            let prefs = Preferences::new(settings.get(&user).cloned().unwrap_or_default());
            if !prefs.wants(channel, event.event_type) {
                continue;
            }
            let before = before.get(&(user, event.id));
            if before.is_some_and(|b| b.last.status.is_final()) {
                done.already += 1;
                continue;
            }
            let language = contact.language.unwrap_or_default();
            let message = render(
                channel,
                &About {
                    event_type: event.event_type,
                    party,
                    amount_cents: to.amount_cents,
                    order_id: Some(to.order.id),
                    name: &contact.name,
                    language,
                },
            );
            let mut attempt = SendAttempt {
                user_id: user,
                event_id: event.id,
                channel,
                event_type: event.event_type.as_str().to_owned(),
                party: party.as_str().to_owned(),
                order_id: Some(to.order.id),
                language,
                to: address(channel, contact),
                subject: message.subject,
                body: message.body,
                status: SendStatus::Skipped,
                error: None,
                provider_id: None,
                at_ms: now_ms,
            };
            match attempt.to.as_deref() {
                None => {
                    attempt.error = Some(format!("no address for {channel}"));
                    done.skipped += 1;
                }
                Some(address) => {
                    let key = format!("{}:{user}:{channel}", event.id);
                    let tries = before.map_or(0, |b| b.attempts);
                    let sent = sender
                        .send(&Outbound {
                            key: &key,
                            channel,
                            to: address,
                            subject: attempt.subject.as_deref(),
                            body: &attempt.body,
                            attempt: u32::try_from(tries + 1).unwrap_or(u32::MAX),
                        })
                        .await;
                    match sent {
                        Ok(receipt) => {
                            attempt.status = SendStatus::Sent;
                            attempt.provider_id = Some(receipt.provider_id);
                            done.sent += 1;
                        }
                        Err(e) => {
                            attempt.status = SendStatus::Failed;
                            done.failed.push(format!("{channel} to user {user}: {e}"));
                            attempt.error = Some(e.0);
                        }
                    }
                }
            }
            attempts.push(attempt);
        }
    }
    store.record_sends(&attempts).await?;
    for attempt in &attempts {
        metrics::counter!(SENDS_TOTAL, "channel" => channel.as_str(), "status" => attempt.status.as_str())
            .increment(1);
    }
    Ok(done)
}

/// `user`'s notification preferences.
pub async fn preferences(
    store: &(impl ChannelStore + ?Sized),
    user: UserId,
) -> Result<Preferences> {
    Ok(Preferences::new(store.preference_settings(user).await?))
}

/// A user's choice for one channel, as asked (event types by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The channel.
    pub channel: Channel,
    /// The channel as a whole.
    pub enabled: bool,
    /// Event types by name, on or off; the others take their defaults.
    pub events: Vec<(String, bool)>,
}

/// Replaces `user`'s preferences with `choices` (a channel not named
/// takes its defaults; only what differs from the defaults is kept); the
/// preferences as stored now. An event type no one can be told of is
/// refused (`unknown_event_type`).
pub async fn set_preferences(
    store: &(impl ChannelStore + ?Sized),
    user: UserId,
    choices: &[Choice],
    now_ms: i64,
) -> Result<Preferences> {
    let mut parsed = Vec::with_capacity(choices.len());
    for choice in choices {
        let mut events = Vec::with_capacity(choice.events.len());
        for (name, on) in &choice.events {
            match EventType::parse(name).filter(|&t| prefs::is_notifiable(t)) {
                Some(t) => events.push((t, *on)),
                None => {
                    let known: Vec<&str> = prefs::event_types().map(EventType::as_str).collect();
                    return Err(Error::invalid(
                        "unknown_event_type",
                        format!(
                            "{}: {name:?} is not an event type one is told of; one of {}",
                            choice.channel,
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        parsed.push(ChannelChoice {
            channel: choice.channel,
            enabled: choice.enabled,
            events,
        });
    }
    let wanted = Preferences::chosen(&parsed);
    store
        .replace_preference_settings(user, wanted.settings(), now_ms)
        .await?;
    preferences(store, user).await
}

/// A page of the log of sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentPage {
    /// Newest first.
    pub items: Vec<ChannelSend>,
    /// The id to pass as `before` for the next page; `None` on the last.
    pub next: Option<i64>,
}

/// Sends matching `filter`, newest first, with ids below `before`, at most
/// `limit` (1 to [`MAX_PAGE`]).
pub async fn sent(
    store: &(impl ChannelStore + ?Sized),
    filter: &SendFilter,
    before: Option<i64>,
    limit: u32,
) -> Result<SentPage> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    // One more than asked: whether there is a next page.
    let mut items = store.list_sends(filter, before, limit + 1).await?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|s| s.id)
    } else {
        None
    };
    Ok(SentPage { items, next })
}
