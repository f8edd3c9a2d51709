//! [`SimulatedSender`]: the provider hexdash ships for every channel. It
//! takes every message, except those its [`FailureRules`] say to fail:
//! each message to an address in `fail_to`, and a share `failure_rate`
//! of each channel's tries. So a deployment without real providers (and
//! every test) exercises retries and dead letters for real.
//!
//! Which tries fail is decided by a hash of the message's key and try
//! number, not a random draw: the same rules fail the same tries on every
//! run, so a failure seen once can be reproduced. The rules start from
//! configuration (`[channels]`) and an admin may change them while the
//! app runs (`PUT /v1/admin/notifications/simulator`); the change holds
//! on this node until the next start.

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{Channel, Outbound, Receipt, SendError, Sender};

/// The most addresses `fail_to` may list.
pub const MAX_FAIL_TO: usize = 100;
/// The longest address in `fail_to`, in characters (an email address's
/// limit).
pub const MAX_ADDRESS_CHARS: usize = 254;

/// Which sends fail.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailureRules {
    /// The share of push tries that fail, 0.0 to 1.0.
    pub push_failure_rate: f64,
    /// The share of email tries that fail, 0.0 to 1.0.
    pub email_failure_rate: f64,
    /// The share of SMS tries that fail, 0.0 to 1.0.
    pub sms_failure_rate: f64,
    /// Addresses every send to fails (compared trimmed and
    /// case-insensitively): an email address, a phone number as the
    /// profile has it, or `user:{id}` for a user's push.
    pub fail_to: Vec<String>,
}

/// Why rules were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRules(pub String);

impl FailureRules {
    /// The failure rate of `channel`.
    pub fn rate(&self, channel: Channel) -> f64 {
        match channel {
            Channel::Push => self.push_failure_rate,
            Channel::Email => self.email_failure_rate,
            Channel::Sms => self.sms_failure_rate,
        }
    }

    /// Refuses rates outside 0.0 to 1.0 and too many or too long
    /// addresses.
    pub fn validate(&self) -> Result<(), InvalidRules> {
        for channel in Channel::ALL {
            let rate = self.rate(channel);
            if !(0.0..=1.0).contains(&rate) {
                return Err(InvalidRules(format!(
                    "{channel}_failure_rate must be between 0 and 1"
                )));
            }
        }
        if self.fail_to.len() > MAX_FAIL_TO {
            return Err(InvalidRules(format!(
                "fail_to lists at most {MAX_FAIL_TO} addresses"
            )));
        }
        if let Some(a) = self
            .fail_to
            .iter()
            .find(|a| a.trim().is_empty() || a.chars().count() > MAX_ADDRESS_CHARS)
        {
            return Err(InvalidRules(format!(
                "fail_to address {a:?} must be 1 to {MAX_ADDRESS_CHARS} characters"
            )));
        }
        Ok(())
    }

    /// Why the rules fail `message`, if they do.
    fn failure(&self, message: &Outbound<'_>) -> Option<String> {
        let to = message.to.trim();
        if self
            .fail_to
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(to))
        {
            return Some(format!(
                "simulated {}: {to} does not answer",
                message.channel
            ));
        }
        let rate = self.rate(message.channel);
        (rate > 0.0 && draw(message.key, message.attempt) < rate)
            .then(|| format!("simulated {}: the provider is unavailable", message.channel))
    }
}

/// A number in [0, 1) fixed by the message's key and try (FNV-1a).
fn draw(key: &str, attempt: u32) -> f64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in key.bytes().chain(attempt.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    // The top 53 bits: every value exactly representable.
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// The simulated provider of every channel.
#[derive(Debug, Default)]
pub struct SimulatedSender {
    rules: RwLock<FailureRules>,
}

impl SimulatedSender {
    /// A provider failing per `rules` (checked).
    pub fn new(rules: FailureRules) -> Result<Self, InvalidRules> {
        rules.validate()?;
        Ok(Self {
            rules: RwLock::new(rules),
        })
    }

    /// The rules in force.
    pub fn rules(&self) -> FailureRules {
        self.rules.read().clone()
    }

    /// Replaces the rules (checked first; refused rules change nothing).
    pub fn set_rules(&self, rules: FailureRules) -> Result<(), InvalidRules> {
        rules.validate()?;
        *self.rules.write() = rules;
        Ok(())
    }
}

#[async_trait]
impl Sender for SimulatedSender {
    async fn send(&self, message: &Outbound<'_>) -> Result<Receipt, SendError> {
        // Read under the lock, answered outside it.
        let failure = self.rules.read().failure(message);
        match failure {
            Some(why) => Err(SendError(why)),
            None => Ok(Receipt {
                provider_id: format!("sim-{}-{}", message.channel, message.key),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(channel: Channel, to: &'a str, key: &'a str, attempt: u32) -> Outbound<'a> {
        Outbound {
            key,
            channel,
            to,
            subject: None,
            body: "hello",
            attempt,
        }
    }

    #[tokio::test]
    async fn fails_listed_addresses_and_its_share_of_tries() {
        let sender = SimulatedSender::new(FailureRules {
            sms_failure_rate: 0.25,
            fail_to: vec![" Ada@Example.com ".into()],
            ..FailureRules::default()
        })
        .unwrap();
        let err = sender
            .send(&message(Channel::Email, "ada@example.com", "k", 1))
            .await
            .unwrap_err();
        assert!(err.0.contains("does not answer"), "{err}");
        let ok = sender
            .send(&message(Channel::Email, "bob@example.com", "k", 1))
            .await
            .unwrap();
        assert_eq!(ok.provider_id, "sim-email-k");
        // About a quarter of SMS tries fail, the same ones every time.
        let mut failed = 0;
        for i in 0..4_000 {
            let key = format!("1:{i}:sms");
            let first = sender
                .send(&message(Channel::Sms, "+46700000000", &key, 1))
                .await;
            let again = sender
                .send(&message(Channel::Sms, "+46700000000", &key, 1))
                .await;
            assert_eq!(first.is_err(), again.is_err(), "{key}");
            failed += usize::from(first.is_err());
        }
        assert!((800..1_200).contains(&failed), "{failed} of 4000");
        // Push has no failure rate.
        for i in 0..100 {
            let key = i.to_string();
            assert!(
                sender
                    .send(&message(Channel::Push, "user:x", &key, 1))
                    .await
                    .is_ok()
            );
        }
    }

    #[test]
    fn rules_are_checked_and_can_change() {
        let sender = SimulatedSender::default();
        for bad in [
            FailureRules {
                email_failure_rate: 1.5,
                ..FailureRules::default()
            },
            FailureRules {
                push_failure_rate: f64::NAN,
                ..FailureRules::default()
            },
            FailureRules {
                fail_to: vec![" ".into()],
                ..FailureRules::default()
            },
            FailureRules {
                fail_to: vec!["a".into(); MAX_FAIL_TO + 1],
                ..FailureRules::default()
            },
        ] {
            assert!(sender.set_rules(bad.clone()).is_err(), "{bad:?}");
        }
        assert_eq!(sender.rules(), FailureRules::default());
        let all = FailureRules {
            sms_failure_rate: 1.0,
            ..FailureRules::default()
        };
        sender.set_rules(all.clone()).unwrap();
        assert_eq!(sender.rules(), all);
    }
}
