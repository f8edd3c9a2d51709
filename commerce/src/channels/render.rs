//! The message a channel carries, per event type, party and language:
//! push has a title and the feed's sentence; email a subject and a short
//! letter (greeting, the sentence, the order, why it came); SMS one line
//! of at most [`SMS_MAX_CHARS`] characters.

use engine::OrderId;
use events::EventType;

use super::Channel;
use crate::notify::{self, Language, Party};

/// The most characters of one SMS (a single GSM-7 segment; å, ä and ö are
/// in its alphabet): a longer text is cut with "…".
pub const SMS_MAX_CHARS: usize = 160;
/// Who the messages are signed by (email's closing, SMS's prefix).
pub const BRAND: &str = "hexdash";

/// What a message is about.
#[derive(Clone, Copy, Debug)]
pub struct About<'a> {
    /// The event.
    pub event_type: EventType,
    /// Who reads it.
    pub party: Party,
    /// The amount the event is about (the order's total, a refund), cents.
    pub amount_cents: i64,
    /// The order, if any.
    pub order_id: Option<OrderId>,
    /// The reader's name (email's greeting).
    pub name: &'a str,
    /// The reader's language.
    pub language: Language,
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Email subject or push title; `None` for SMS.
    pub subject: Option<String>,
    /// The text.
    pub body: String,
}

/// The message `channel` carries for `about`.
pub fn render(channel: Channel, about: &About<'_>) -> Message {
    let text = notify::text(
        about.event_type,
        about.party,
        about.amount_cents,
        about.language,
    );
    let title = notify::title(about.event_type, about.party, about.language);
    match channel {
        Channel::Push => Message {
            subject: Some(title),
            body: text,
        },
        Channel::Email => Message {
            subject: Some(format!("{BRAND}: {title}")),
            body: letter(about, &text),
        },
        Channel::Sms => Message {
            subject: None,
            body: shorten(&format!("{BRAND}: {text}"), SMS_MAX_CHARS),
        },
    }
}

/// An email's body.
fn letter(about: &About<'_>, text: &str) -> String {
    let stop = if text.ends_with(['.', '!', '?']) {
        ""
    } else {
        "."
    };
    let (hello, order, why) = match about.language {
        Language::English => (
            "Hi",
            "Order",
            "You get this email because of your notification preferences; change them in the app.",
        ),
        Language::Swedish => (
            "Hej",
            "Beställning",
            "Du får det här mejlet enligt dina aviseringsinställningar; ändra dem i appen.",
        ),
    };
    let mut body = format!("{hello} {},\n\n{text}{stop}\n\n", about.name.trim());
    if let Some(id) = about.order_id {
        // The first block of the UUID: what support and the app show.
        let id = id.to_string();
        let short = id.split('-').next().unwrap_or(&id);
        body.push_str(&format!("{order} {short}\n\n"));
    }
    body.push_str(&format!("{why}\n\n— {BRAND}"));
    body
}

/// `text` cut to `max` characters, the last being "…" when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(t: EventType, language: Language) -> About<'static> {
        About {
            event_type: t,
            party: Party::Customer,
            amount_cents: 12_050,
            order_id: Some(OrderId(uuid::Uuid::from_u128(
                0x0193_5c2a_7e10_7c3b_9b1d_0a2b_3c4d_5e6f,
            ))),
            name: "Ada",
            language,
        }
    }

    #[test]
    fn each_channel_has_its_shape() {
        let check = |channel, language, subject: Option<&str>, body: &str| {
            let m = render(channel, &about(EventType::OrderDelivered, language));
            assert_eq!(m.subject.as_deref(), subject, "{channel} {language:?}");
            assert_eq!(m.body, body, "{channel} {language:?}");
        };
        check(
            Channel::Push,
            Language::English,
            Some("Order delivered"),
            "Your order was delivered. Enjoy!",
        );
        check(
            Channel::Push,
            Language::Swedish,
            Some("Beställningen levererad"),
            "Din beställning har levererats. Smaklig måltid!",
        );
        check(
            Channel::Sms,
            Language::Swedish,
            None,
            "hexdash: Din beställning har levererats. Smaklig måltid!",
        );
        check(
            Channel::Email,
            Language::English,
            Some("hexdash: Order delivered"),
            "Hi Ada,\n\nYour order was delivered. Enjoy!\n\nOrder 01935c2a\n\n\
             You get this email because of your notification preferences; change them in the app.\
             \n\n— hexdash",
        );
        let m = render(
            Channel::Email,
            &about(EventType::RefundSucceeded, Language::Swedish),
        );
        assert_eq!(m.subject.as_deref(), Some("hexdash: Återbetalning klar"));
        assert!(
            m.body.starts_with(
                "Hej Ada,\n\nDu har fått 120,50 kr återbetalt.\n\nBeställning 01935c2a"
            ),
            "{}",
            m.body
        );
    }

    #[test]
    fn every_text_fits_one_sms_and_long_ones_are_cut() {
        for &t in EventType::ALL {
            for &party in notify::audience(t, Some(engine::OrderStatus::Paid)) {
                for language in Language::ALL {
                    let m = render(
                        Channel::Sms,
                        &About {
                            party,
                            ..about(t, language)
                        },
                    );
                    assert!(m.body.chars().count() <= SMS_MAX_CHARS, "{}", m.body);
                    assert!(!m.body.ends_with('…'), "{t} {party:?} is cut: {}", m.body);
                }
            }
        }
        let long = "å".repeat(200);
        let cut = shorten(&long, SMS_MAX_CHARS);
        assert_eq!(cut.chars().count(), SMS_MAX_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(shorten("short", 10), "short");
    }
}
