//! Outside channels: push, email and SMS, the notifications that leave
//! hexdash for people's phones and inboxes.
//!
//! - [`Channel`] and [`SendStatus`]: the words of the log of sends.
//! - [`prefs`]: which event types a user wants on which channel (the
//!   defaults and the user's own changes), pure rules.
//! - [`render`]: the message per channel, event type, party and language
//!   (email: subject and body; push: title and body; SMS: one short text).
//! - [`Sender`]: the port a channel's provider is behind (an SMS gateway,
//!   a mail server, a push service); [`simulated::SimulatedSender`] is the
//!   one hexdash ships, which fails on the rules an operator or admin sets
//!   so retries and dead letters happen for real.
//!
//! `usecase::channels` puts them together for the api's consumers of the
//! event stream, and keeps the durable log of every send (`channel_sends`:
//! to, channel, event type, rendered text, status, attempts, times), which
//! is written around whatever sender runs, simulated or real.

use async_trait::async_trait;

pub mod prefs;
pub mod render;
pub mod simulated;

/// An outside channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// A push notification to the user's devices (title and body).
    Push,
    /// An email to the account's address (subject and body).
    Email,
    /// A text message to the profile's phone number (short).
    Sms,
}

impl Channel {
    /// Every channel, in the order documents list them.
    pub const ALL: [Channel; 3] = [Channel::Push, Channel::Email, Channel::Sms];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    /// The channel with this name (exactly as [`Channel::as_str`]).
    pub fn parse(name: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a send stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// The provider took it.
    Sent,
    /// The last try failed; the stream tries again (or dead-lettered it).
    Failed,
    /// Not sent, for good: the user has no address on the channel (no
    /// phone number for SMS).
    Skipped,
}

impl SendStatus {
    /// Every status.
    pub const ALL: [SendStatus; 3] = [SendStatus::Sent, SendStatus::Failed, SendStatus::Skipped];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SendStatus::Sent => "sent",
            SendStatus::Failed => "failed",
            SendStatus::Skipped => "skipped",
        }
    }

    /// The status with this name.
    pub fn parse(name: &str) -> Option<SendStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a send in this status is done with (a redelivery sends
    /// nothing).
    pub const fn is_final(self) -> bool {
        matches!(self, SendStatus::Sent | SendStatus::Skipped)
    }
}

/// One message handed to a [`Sender`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound<'a> {
    /// The same for every try of one (recipient, event, channel): a real
    /// provider deduplicates by it, as the payment gateway does by the
    /// payment's id.
    pub key: &'a str,
    /// Which channel (a sender may serve several).
    pub channel: Channel,
    /// The address: an email address, a phone number, or for push the
    /// user's device topic (`user:{id}`).
    pub to: &'a str,
    /// Email subject or push title; `None` for SMS.
    pub subject: Option<&'a str>,
    /// The text.
    pub body: &'a str,
    /// 1 for the first try of this message, 2 for the next …
    pub attempt: u32,
}

/// What a provider answered to a message it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id of the message (for support cases).
    pub provider_id: String,
}

/// Why a provider did not take a message. Every failure is worth another
/// try: the stream retries with backoff and dead-letters what keeps
/// failing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// A channel's provider. Must be cancel-safe (the stream drops a call that
/// runs over its timeout) and bounded in time.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// Hands `message` to the provider.
    async fn send(&self, message: &Outbound<'_>) -> Result<Receipt, SendError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        for s in SendStatus::ALL {
            assert_eq!(SendStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(Channel::parse("fax"), None);
        assert!(SendStatus::Skipped.is_final() && !SendStatus::Failed.is_final());
    }
}
