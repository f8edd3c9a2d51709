//! Outside channels in the running app: [`Config`] (the `[channels]`
//! section: which channels run, their tries and backoff, the simulated
//! provider's failure rules) and [`Senders`] (each channel's provider; the
//! simulated one unless the binary hands in others).
//!
//! Each enabled channel is one consumer of the event stream
//! ([`crate::consumers::channels::ChannelDelivery`], named
//! `channel:{push,email,sms}`), with the tries and backoff set here: a
//! message its provider keeps refusing makes the event a dead letter of
//! that channel only, which an admin replays with the other dead letters.

use std::sync::Arc;

pub use commerce::channels::simulated::{FailureRules, InvalidRules, SimulatedSender};
pub use commerce::channels::{Channel, Sender};
use serde::{Deserialize, Serialize};

/// The `[channels]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Whether push notifications go out (a consumer runs).
    pub push: bool,
    /// Whether emails go out.
    pub email: bool,
    /// Whether text messages go out.
    pub sms: bool,
    /// Tries of one event on a channel before it is a dead letter there.
    pub max_attempts: u32,
    /// The wait after a channel's first failed try, ms; doubles after each.
    pub backoff_initial_ms: u64,
    /// The longest wait between tries, ms. While a channel retries, its
    /// later events wait (one consumer per channel, in order): this bounds
    /// how long one unreachable recipient holds up the others.
    pub backoff_max_ms: u64,
    /// The simulated provider: the share of push tries that fail, 0 to 1.
    pub push_failure_rate: f64,
    /// The share of email tries that fail, 0 to 1.
    pub email_failure_rate: f64,
    /// The share of SMS tries that fail, 0 to 1.
    pub sms_failure_rate: f64,
    /// Addresses every send to fails (an email address, a phone number,
    /// `user:{id}` for push).
    pub fail_to: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            push: true,
            email: true,
            sms: true,
            max_attempts: 5,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 30_000,
            push_failure_rate: 0.0,
            email_failure_rate: 0.0,
            sms_failure_rate: 0.0,
            fail_to: Vec::new(),
        }
    }
}

impl Config {
    /// Whether `channel` runs.
    pub fn runs(&self, channel: Channel) -> bool {
        match channel {
            Channel::Push => self.push,
            Channel::Email => self.email,
            Channel::Sms => self.sms,
        }
    }

    /// The simulated provider's rules among these.
    pub fn rules(&self) -> FailureRules {
        FailureRules {
            push_failure_rate: self.push_failure_rate,
            email_failure_rate: self.email_failure_rate,
            sms_failure_rate: self.sms_failure_rate,
            fail_to: self.fail_to.clone(),
        }
    }

    /// A channel consumer's stream settings: the stream's, with these
    /// tries and backoff.
    pub fn stream_config(&self, base: &events::Config) -> events::Config {
        events::Config {
            max_attempts: self.max_attempts,
            backoff_initial_ms: self.backoff_initial_ms,
            backoff_max_ms: self.backoff_max_ms,
            ..base.clone()
        }
    }
}

/// Each channel's provider. Cheap to clone.
#[derive(Clone)]
pub struct Senders {
    push: Arc<dyn Sender>,
    email: Arc<dyn Sender>,
    sms: Arc<dyn Sender>,
    /// The simulated provider when it serves the channels: an admin may
    /// change its rules.
    simulator: Option<Arc<SimulatedSender>>,
}

impl Senders {
    /// The simulated provider for every channel, failing per `rules`.
    pub fn simulated(rules: FailureRules) -> Result<Self, InvalidRules> {
        let sim = Arc::new(SimulatedSender::new(rules)?);
        Ok(Self {
            push: sim.clone(),
            email: sim.clone(),
            sms: sim.clone(),
            simulator: Some(sim),
        })
    }

    /// Real providers (no simulator rules to change).
    pub fn new(push: Arc<dyn Sender>, email: Arc<dyn Sender>, sms: Arc<dyn Sender>) -> Self {
        Self {
            push,
            email,
            sms,
            simulator: None,
        }
    }

    /// The provider of `channel`.
    pub fn of(&self, channel: Channel) -> Arc<dyn Sender> {
        match channel {
            Channel::Push => self.push.clone(),
            Channel::Email => self.email.clone(),
            Channel::Sms => self.sms.clone(),
        }
    }

    /// The simulated provider, when it serves the channels.
    pub fn simulator(&self) -> Option<&Arc<SimulatedSender>> {
        self.simulator.as_ref()
    }
}

impl Default for Senders {
    /// The simulated provider, failing nothing.
    fn default() -> Self {
        let sim = Arc::new(SimulatedSender::default());
        Self {
            push: sim.clone(),
            email: sim.clone(),
            sms: sim.clone(),
            simulator: Some(sim),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_settings_take_the_channels_tries() {
        let config = Config {
            max_attempts: 2,
            backoff_initial_ms: 5,
            ..Config::default()
        };
        let stream = config.stream_config(&events::Config::default());
        assert_eq!(stream.max_attempts, 2);
        assert_eq!(stream.backoff_initial_ms, 5);
        assert_eq!(
            stream.consumer_batch,
            events::Config::default().consumer_batch
        );
        assert!(Senders::simulated(config.rules()).is_ok());
        assert!(
            Senders::simulated(FailureRules {
                sms_failure_rate: 2.0,
                ..FailureRules::default()
            })
            .is_err()
        );
    }
}
