//! Which event types a user wants on which channel: the defaults and the
//! user's own changes over them (pure rules; the store keeps the changes,
//! `usecase::channels` reads and replaces them).
//!
//! Defaults ([`default_on`]): push for everything that concerns the user;
//! email for money and the end of an order (paid, payment failed,
//! rejected, cancelled, delivered, refunds); SMS only when the courier is
//! at the door. A user's [`Setting`]s override them: a whole channel off
//! (`event_type: None`), or one event type on or off. Only what differs
//! from the defaults is kept, so a user who never chose follows the
//! defaults as they change.

use events::EventType;

use super::Channel;

/// The event types a user can be told of on a channel (those the
/// notification feed has an audience for), in the stream's order.
pub fn event_types() -> impl Iterator<Item = EventType> {
    EventType::ALL
        .iter()
        .copied()
        .filter(|&t| crate::notify::wanted(t))
}

/// Whether `t` can reach anyone on a channel.
pub fn is_notifiable(t: EventType) -> bool {
    crate::notify::wanted(t)
}

/// Whether `channel` carries `t` for a user who has not chosen.
pub fn default_on(channel: Channel, t: EventType) -> bool {
    match channel {
        Channel::Push => is_notifiable(t),
        Channel::Email => matches!(
            t,
            EventType::OrderPaid
                | EventType::PaymentFailed
                | EventType::OrderRejected
                | EventType::OrderCancelled
                | EventType::OrderDelivered
                | EventType::RefundSucceeded
                | EventType::RefundFailed
        ),
        Channel::Sms => t == EventType::OrderArrivedAtCustomer,
    }
}

/// One choice of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The channel it is about.
    pub channel: Channel,
    /// One event type; `None`: the channel as a whole (off silences every
    /// event type on it, whatever their own settings).
    pub event_type: Option<EventType>,
    /// On or off.
    pub enabled: bool,
}

/// What a user asks for one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelChoice {
    /// The channel.
    pub channel: Channel,
    /// The channel as a whole.
    pub enabled: bool,
    /// Event types turned on or off; the others take their defaults.
    pub events: Vec<(EventType, bool)>,
}

/// A user's preferences: the defaults with their settings over them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    settings: Vec<Setting>,
}

impl Preferences {
    /// Over the stored `settings` (the last of two on one key wins).
    pub fn new(settings: Vec<Setting>) -> Self {
        Self { settings }
    }

    /// Whether the user wants the channel at all.
    pub fn channel_on(&self, channel: Channel) -> bool {
        self.setting(channel, None).unwrap_or(true)
    }

    /// Whether `t` is on for `channel`, by itself (the channel's own switch
    /// aside): the user's setting, else the default.
    pub fn event_on(&self, channel: Channel, t: EventType) -> bool {
        is_notifiable(t)
            && self
                .setting(channel, Some(t))
                .unwrap_or_else(|| default_on(channel, t))
    }

    /// Whether the user gets `t` on `channel`.
    pub fn wants(&self, channel: Channel, t: EventType) -> bool {
        self.channel_on(channel) && self.event_on(channel, t)
    }

    fn setting(&self, channel: Channel, t: Option<EventType>) -> Option<bool> {
        self.settings
            .iter()
            .rev()
            .find(|s| s.channel == channel && s.event_type == t)
            .map(|s| s.enabled)
    }

    /// The preferences a user asked for, as settings to keep: per channel
    /// its switch when off, and each event type whose choice differs from
    /// the default. A channel not in `choices` keeps the defaults.
    pub fn chosen(choices: &[ChannelChoice]) -> Self {
        let mut settings: Vec<Setting> = Vec::new();
        for choice in choices {
            let channel = choice.channel;
            if !choice.enabled {
                settings.push(Setting {
                    channel,
                    event_type: None,
                    enabled: false,
                });
            }
            for &(t, enabled) in &choice.events {
                let known = settings
                    .iter()
                    .any(|s| s.channel == channel && s.event_type == Some(t));
                if enabled != default_on(channel, t) && !known {
                    settings.push(Setting {
                        channel,
                        event_type: Some(t),
                        enabled,
                    });
                }
            }
        }
        Self { settings }
    }

    /// The settings to keep (what differs from the defaults).
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = Preferences::default();
        let check = |channel, t, expected: bool| {
            assert_eq!(p.wants(channel, t), expected, "{channel} {t}");
        };
        check(Channel::Push, EventType::OrderAccepted, true);
        check(Channel::Push, EventType::OrderArrivedAtRestaurant, true);
        check(Channel::Push, EventType::MenuUpdated, false);
        check(Channel::Email, EventType::OrderPaid, true);
        check(Channel::Email, EventType::OrderDelivered, true);
        check(Channel::Email, EventType::RefundSucceeded, true);
        check(Channel::Email, EventType::OrderPreparing, false);
        check(Channel::Sms, EventType::OrderArrivedAtCustomer, true);
        check(Channel::Sms, EventType::OrderDelivered, false);
        check(Channel::Sms, EventType::UserBanned, false);
        for t in event_types() {
            assert!(p.wants(Channel::Push, t), "{t}");
        }
    }

    #[test]
    fn a_channel_off_silences_it_and_event_choices_override_defaults() {
        let choice = |channel, enabled, events: &[(EventType, bool)]| ChannelChoice {
            channel,
            enabled,
            events: events.to_vec(),
        };
        let p = Preferences::chosen(&[
            choice(
                Channel::Email,
                false,
                &[
                    (EventType::OrderPaid, true),
                    (EventType::OrderAccepted, true),
                ],
            ),
            choice(
                Channel::Sms,
                true,
                &[
                    (EventType::OrderDelivered, true),
                    (EventType::OrderArrivedAtCustomer, false),
                ],
            ),
            choice(Channel::Push, true, &[(EventType::OrderPreparing, false)]),
        ]);
        assert!(!p.channel_on(Channel::Email));
        assert!(!p.wants(Channel::Email, EventType::OrderPaid));
        assert!(!p.wants(Channel::Email, EventType::OrderAccepted));
        // The event's own choice is kept for when the channel comes back.
        assert!(p.event_on(Channel::Email, EventType::OrderAccepted));
        assert!(p.wants(Channel::Sms, EventType::OrderDelivered));
        assert!(!p.wants(Channel::Sms, EventType::OrderArrivedAtCustomer));
        assert!(!p.wants(Channel::Push, EventType::OrderPreparing));
        assert!(p.wants(Channel::Push, EventType::OrderAccepted));
        // Only what differs from the defaults is kept: email's paid is on
        // by default, so it is not a setting.
        assert_eq!(
            p.settings(),
            &[
                Setting {
                    channel: Channel::Email,
                    event_type: None,
                    enabled: false
                },
                Setting {
                    channel: Channel::Email,
                    event_type: Some(EventType::OrderAccepted),
                    enabled: true
                },
                Setting {
                    channel: Channel::Sms,
                    event_type: Some(EventType::OrderDelivered),
                    enabled: true
                },
                Setting {
                    channel: Channel::Sms,
                    event_type: Some(EventType::OrderArrivedAtCustomer),
                    enabled: false
                },
                Setting {
                    channel: Channel::Push,
                    event_type: Some(EventType::OrderPreparing),
                    enabled: false
                },
            ]
        );
        // Kept settings read back as the same preferences.
        let again = Preferences::new(p.settings().to_vec());
        for channel in Channel::ALL {
            for t in event_types() {
                assert_eq!(
                    again.wants(channel, t),
                    p.wants(channel, t),
                    "{channel} {t}"
                );
            }
        }
    }

    #[test]
    fn types_nobody_hears_of_stay_off_whatever_is_stored() {
        let p = Preferences::new(vec![Setting {
            channel: Channel::Push,
            event_type: Some(EventType::MenuUpdated),
            enabled: true,
        }]);
        assert!(!p.wants(Channel::Push, EventType::MenuUpdated));
    }
}
