//! Outside channels: push, email and SMS. A user's preferences (which
//! event types on which channel, `GET`/`PUT /v1/me/notification-preferences`),
//! the language they read in (on the profile), and the log of what was
//! sent (`GET /v1/notifications/sent` for one's own,
//! `GET /v1/admin/notifications/sent` for an admin), plus the simulated
//! provider's failure rules an admin may change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An outside channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A push notification to the user's devices: title and body.
    Push,
    /// An email to the account's address: subject and body.
    Email,
    /// A text message to the profile's phone number.
    Sms,
}

/// A language notifications are written in (ISO 639-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English (the default).
    En,
    /// Swedish.
    Sv,
}

/// Where a send stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SendStatus {
    /// The provider took it.
    Sent,
    /// The last try failed; it is tried again with backoff, and after the
    /// last try the event is a dead letter of the channel's consumer
    /// (`channel:{channel}`), which an admin may replay.
    Failed,
    /// Not sent: the user has no address on the channel (no phone number).
    Skipped,
}

/// One channel's preferences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelPreferences {
    /// The channel as a whole: off silences every event type on it.
    pub enabled: bool,
    /// Per event type a user can be told of (`order.paid` …), whether it
    /// comes on this channel (while the channel is enabled).
    pub events: BTreeMap<String, bool>,
}

/// `GET /v1/me/notification-preferences`: the caller's preferences, every
/// channel and event type spelt out (defaults where they chose nothing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationPreferences {
    /// Push notifications (default: every event type).
    pub push: ChannelPreferences,
    /// Email (default: paid, payment failed, rejected, cancelled,
    /// delivered, refunds).
    pub email: ChannelPreferences,
    /// SMS (default: the courier at the door), to the profile's phone.
    pub sms: ChannelPreferences,
}

/// One channel in `PUT /v1/me/notification-preferences`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelPreferencesUpdate {
    /// The channel as a whole; absent or null: enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Event types (the keys `GET` lists) turned on or off; an event type
    /// not named takes its default. An unknown key is 422.
    #[serde(default)]
    pub events: BTreeMap<String, bool>,
}

/// `PUT /v1/me/notification-preferences`: the caller's preferences,
/// replacing what they chose before. A channel not named takes its
/// defaults, so `{}` restores every default, and `GET`'s answer put back
/// changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferencesUpdate {
    /// Push notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<ChannelPreferencesUpdate>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<ChannelPreferencesUpdate>,
    /// SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<ChannelPreferencesUpdate>,
}

/// One message on an outside channel, as the log of sends has it: one per
/// (recipient, event, channel), updated by each try.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentMessage {
    /// The log's id (rises with each new message); the listing's cursor.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub id: i64,
    /// The recipient.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub user_id: Uuid,
    /// The channel.
    pub channel: Channel,
    /// The address: an email address, a phone number, or `user:{id}` (the
    /// topic of the user's devices) for push; absent when skipped for want
    /// of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub to: Option<String>,
    /// The event the message is about (the same event's notification in
    /// the recipient's feed has this `event_id`).
    pub event_id: i64,
    /// The event's type: with `party`, which template.
    pub event_type: String,
    /// The recipient's part in it: `customer`, `restaurant`, `driver`,
    /// `driver_from` (the courier a dispatcher took the order from),
    /// `admin`.
    pub party: String,
    /// The order it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid, nullable = false))]
    pub order_id: Option<Uuid>,
    /// The language it is written in.
    pub language: Language,
    /// Email subject or push title; absent for SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub subject: Option<String>,
    /// The rendered text.
    pub body: String,
    /// Where it stands.
    pub status: SendStatus,
    /// Tries so far (0 when skipped).
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub attempts: i64,
    /// Why the last try failed (or why it was skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub last_error: Option<String>,
    /// The provider's id of the message, once sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub provider_id: Option<String>,
    /// The first try (or the skip), Unix ms.
    pub created_at_ms: i64,
    /// The latest try, Unix ms.
    pub last_attempt_at_ms: i64,
    /// When the provider took it, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub sent_at_ms: Option<i64>,
}

/// A page of the log of sends, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentMessageList {
    /// Newest first.
    pub messages: Vec<SentMessage>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub next_cursor: Option<String>,
}

/// The simulated provider's failure rules (`GET`/`PUT
/// /v1/admin/notifications/simulator`): which sends fail, so retries and
/// dead letters can be seen. Held in memory by the node that answers,
/// from `[channels]` at start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SimulatorRules {
    /// The share of push tries that fail (fixed per message and try, so a
    /// failure repeats on the same data).
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub push_failure_rate: f64,
    /// The share of email tries that fail.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub email_failure_rate: f64,
    /// The share of SMS tries that fail.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub sms_failure_rate: f64,
    /// Addresses every send to fails (an email address, a phone number as
    /// the profile has it, `user:{id}` for push); compared trimmed and
    /// case-insensitively.
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub fail_to: Vec<String>,
}
