//! Who is told of an event, and what they read: the pure rules of the
//! notification feed (`usecase::notify` stores what they decide).
//!
//! [`audience`] names the parties of an order an event concerns, by type
//! (the customer hears of every step of their order, the restaurant of new
//! paid orders and what happens to them after the kitchen, the courier of
//! what changes its run, admins of money that did not move). The one who
//! acted is never told of their own action, and an event copied from the
//! history kept before the stream existed (`backfilled`) tells no one.
//! [`text`] renders the sentence a party reads and [`title`] its heading,
//! in the reader's [`Language`] (English and Swedish).

use events::EventType;

use engine::OrderStatus;

/// A party an event may concern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The customer who placed the order.
    Customer,
    /// The restaurant's owner.
    Restaurant,
    /// The order's driver after the event.
    Driver,
    /// `order.reassigned`: the driver the order was taken from.
    DriverFrom,
    /// Every admin.
    Admins,
}

/// The parties of the order an event of type `t` concerns; `status` is the
/// order's status after it (`order.paid` for an order closed meanwhile is
/// news for the customer's refund only, not a new order for the kitchen).
pub fn audience(t: EventType, status: Option<OrderStatus>) -> &'static [Party] {
    use Party::*;
    match t {
        EventType::OrderPaid if status == Some(OrderStatus::Paid) => &[Customer, Restaurant],
        EventType::OrderPaid => &[Customer],
        EventType::PaymentFailed => &[Customer, Admins],
        EventType::OrderAccepted | EventType::OrderPreparing => &[Customer],
        // The restaurant hears of a rejection it did not make itself (the
        // system's, of an order nobody accepted in time; an admin's).
        EventType::OrderRejected => &[Customer, Restaurant],
        EventType::OrderReadyForPickup => &[Customer, Driver],
        EventType::OrderAssigned | EventType::OrderPickedUp | EventType::OrderDelivered => {
            &[Customer, Restaurant]
        }
        EventType::OrderCancelled => &[Customer, Restaurant, Driver],
        EventType::OrderReassigned => &[Customer, Restaurant, Driver, DriverFrom],
        EventType::RefundSucceeded => &[Customer],
        EventType::RefundFailed => &[Customer, Admins],
        EventType::OrderArrivedAtRestaurant => &[Restaurant],
        EventType::OrderArrivedAtCustomer => &[Customer],
        EventType::OrderDispatchStalled => &[Admins],
        // Placed is followed at once by paid or payment.failed; offers go
        // to drivers on their own channel; the rest concern no order.
        _ => &[],
    }
}

/// Whether events of type `t` can concern anyone (what the consumer asks
/// the stream for).
pub fn wanted(t: EventType) -> bool {
    !audience(t, Some(OrderStatus::Paid)).is_empty()
}

/// A language notifications are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Language {
    /// English, the default (`en`).
    #[default]
    English,
    /// Swedish (`sv`).
    Swedish,
}

impl Language {
    /// Every language, in the order documents list them.
    pub const ALL: [Language; 2] = [Language::English, Language::Swedish];

    /// The stored and wire code (ISO 639-1).
    pub const fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Swedish => "sv",
        }
    }

    /// The language with this code (exactly `en` or `sv`).
    pub fn parse(code: &str) -> Option<Language> {
        Self::ALL.into_iter().find(|l| l.code() == code)
    }

    /// `cents` as this language writes an amount: `12.05`, `12,05`.
    pub fn money(self, cents: i64) -> String {
        let sign = if cents < 0 { "-" } else { "" };
        let (units, rest) = (cents.abs() / 100, cents.abs() % 100);
        let mark = match self {
            Language::English => '.',
            Language::Swedish => ',',
        };
        format!("{sign}{units}{mark}{rest:02}")
    }
}

impl Party {
    /// The stored name of the party (what the log of sends keeps).
    pub const fn as_str(self) -> &'static str {
        match self {
            Party::Customer => "customer",
            Party::Restaurant => "restaurant",
            Party::Driver => "driver",
            Party::DriverFrom => "driver_from",
            Party::Admins => "admin",
        }
    }
}

/// The sentence `party` reads of an event of type `t` about an order of
/// `total_cents` (0 when unknown), in `language`: the feed's text, a
/// push's body, the heart of an email and an SMS.
pub fn text(t: EventType, party: Party, total_cents: i64, language: Language) -> String {
    match language {
        Language::English => english(t, party, &language.money(total_cents)),
        Language::Swedish => swedish(t, party, &language.money(total_cents)),
    }
}

fn english(t: EventType, party: Party, money: &str) -> String {
    match (t, party) {
        (EventType::OrderPaid, Party::Restaurant) => {
            format!("New order ({money}): please accept it")
        }
        (EventType::OrderPaid, _) => {
            "Payment received: your order is on its way to the restaurant".into()
        }
        (EventType::PaymentFailed, Party::Admins) => format!("A payment of {money} failed"),
        (EventType::PaymentFailed, _) => "Your payment did not go through".into(),
        (EventType::OrderAccepted, _) => "The restaurant accepted your order".into(),
        (EventType::OrderRejected, Party::Restaurant) => {
            "An order was rejected without your answer; the customer is refunded".into()
        }
        (EventType::OrderRejected, _) => "The restaurant could not take your order".into(),
        (EventType::OrderPreparing, _) => "Your order is being prepared".into(),
        (EventType::OrderReadyForPickup, Party::Driver) => "The order is ready for pickup".into(),
        (EventType::OrderReadyForPickup, _) => {
            "Your order is ready and waits for its courier".into()
        }
        (EventType::OrderAssigned, Party::Restaurant) => {
            "A courier is on the way to pick up the order".into()
        }
        (EventType::OrderAssigned, _) => "A courier took your order".into(),
        (EventType::OrderPickedUp, Party::Restaurant) => "The courier picked up the order".into(),
        (EventType::OrderPickedUp, _) => "Your order is on its way".into(),
        (EventType::OrderDelivered, Party::Restaurant) => "The order was delivered".into(),
        (EventType::OrderDelivered, _) => "Your order was delivered. Enjoy!".into(),
        (EventType::OrderCancelled, Party::Customer) => "Your order was cancelled".into(),
        (EventType::OrderCancelled, _) => "An order was cancelled".into(),
        (EventType::OrderReassigned, Party::DriverFrom) => {
            "The order was taken from you by a dispatcher".into()
        }
        (EventType::OrderReassigned, Party::Driver) => "A dispatcher gave you an order".into(),
        (EventType::OrderReassigned, _) => "The order has a new courier".into(),
        (EventType::RefundSucceeded, _) => format!("You were refunded {money}"),
        (EventType::RefundFailed, Party::Admins) => format!("A refund of {money} failed"),
        (EventType::RefundFailed, _) => "Your refund could not be paid out; we are on it".into(),
        (EventType::OrderArrivedAtRestaurant, _) => "The courier is at the restaurant".into(),
        (EventType::OrderArrivedAtCustomer, _) => "Your courier is at the door".into(),
        (EventType::OrderDispatchStalled, _) => {
            "No courier has taken an order for too long: please find one".into()
        }
        (other, _) => other.as_str().to_owned(),
    }
}

fn swedish(t: EventType, party: Party, money: &str) -> String {
    match (t, party) {
        (EventType::OrderPaid, Party::Restaurant) => {
            format!("Ny beställning ({money} kr): var vänlig acceptera den")
        }
        (EventType::OrderPaid, _) => {
            "Betalningen är mottagen: din beställning är på väg till restaurangen".into()
        }
        (EventType::PaymentFailed, Party::Admins) => {
            format!("En betalning på {money} kr misslyckades")
        }
        (EventType::PaymentFailed, _) => "Din betalning gick inte igenom".into(),
        (EventType::OrderAccepted, _) => "Restaurangen har tagit emot din beställning".into(),
        (EventType::OrderRejected, Party::Restaurant) => {
            "En beställning avvisades utan ert svar; kunden får pengarna tillbaka".into()
        }
        (EventType::OrderRejected, _) => "Restaurangen kunde inte ta din beställning".into(),
        (EventType::OrderPreparing, _) => "Din beställning tillagas".into(),
        (EventType::OrderReadyForPickup, Party::Driver) => {
            "Beställningen är redo att hämtas".into()
        }
        (EventType::OrderReadyForPickup, _) => {
            "Din beställning är klar och väntar på sitt bud".into()
        }
        (EventType::OrderAssigned, Party::Restaurant) => {
            "Ett bud är på väg för att hämta beställningen".into()
        }
        (EventType::OrderAssigned, _) => "Ett bud har tagit din beställning".into(),
        (EventType::OrderPickedUp, Party::Restaurant) => "Budet har hämtat beställningen".into(),
        (EventType::OrderPickedUp, _) => "Din beställning är på väg".into(),
        (EventType::OrderDelivered, Party::Restaurant) => "Beställningen har levererats".into(),
        (EventType::OrderDelivered, _) => "Din beställning har levererats. Smaklig måltid!".into(),
        (EventType::OrderCancelled, Party::Customer) => "Din beställning har avbeställts".into(),
        (EventType::OrderCancelled, _) => "En beställning har avbeställts".into(),
        (EventType::OrderReassigned, Party::DriverFrom) => {
            "Beställningen har tagits från dig av en trafikledare".into()
        }
        (EventType::OrderReassigned, Party::Driver) => {
            "En trafikledare har gett dig en beställning".into()
        }
        (EventType::OrderReassigned, _) => "Beställningen har fått ett nytt bud".into(),
        (EventType::RefundSucceeded, _) => format!("Du har fått {money} kr återbetalt"),
        (EventType::RefundFailed, Party::Admins) => {
            format!("En återbetalning på {money} kr misslyckades")
        }
        (EventType::RefundFailed, _) => {
            "Din återbetalning kunde inte betalas ut; vi arbetar på det".into()
        }
        (EventType::OrderArrivedAtRestaurant, _) => "Budet är vid restaurangen".into(),
        (EventType::OrderArrivedAtCustomer, _) => "Ditt bud är vid dörren".into(),
        (EventType::OrderDispatchStalled, _) => {
            "Inget bud har tagit en beställning på för länge: var vänlig hitta ett".into()
        }
        (other, _) => other.as_str().to_owned(),
    }
}

/// A short heading for the event: a push's title, an email's subject.
pub fn title(t: EventType, party: Party, language: Language) -> String {
    let (en, sv) = match (t, party) {
        (EventType::OrderPaid, Party::Restaurant) => ("New order", "Ny beställning"),
        (EventType::OrderPaid, _) => ("Payment received", "Betalning mottagen"),
        (EventType::PaymentFailed, _) => ("Payment failed", "Betalningen misslyckades"),
        (EventType::OrderAccepted, _) => ("Order accepted", "Beställningen accepterad"),
        (EventType::OrderRejected, Party::Restaurant) => {
            ("Order rejected for you", "Beställning avvisad åt er")
        }
        (EventType::OrderRejected, _) => ("Order rejected", "Beställningen avvisad"),
        (EventType::OrderPreparing, _) => ("Being prepared", "Tillagas"),
        (EventType::OrderReadyForPickup, _) => ("Order ready", "Beställningen är klar"),
        (EventType::OrderAssigned, _) => ("Courier assigned", "Bud tilldelat"),
        (EventType::OrderPickedUp, _) => ("Order picked up", "Beställningen hämtad"),
        (EventType::OrderDelivered, _) => ("Order delivered", "Beställningen levererad"),
        (EventType::OrderCancelled, _) => ("Order cancelled", "Beställningen avbeställd"),
        (EventType::OrderReassigned, Party::DriverFrom) => {
            ("Order taken from you", "Beställningen togs från dig")
        }
        (EventType::OrderReassigned, Party::Driver) => {
            ("New order for you", "Ny beställning åt dig")
        }
        (EventType::OrderReassigned, _) => ("New courier", "Nytt bud"),
        (EventType::RefundSucceeded, _) => ("Refund paid", "Återbetalning klar"),
        (EventType::RefundFailed, _) => ("Refund failed", "Återbetalningen misslyckades"),
        (EventType::OrderArrivedAtRestaurant, _) => {
            ("Courier at the restaurant", "Budet är vid restaurangen")
        }
        (EventType::OrderArrivedAtCustomer, _) => ("Courier at your door", "Budet är vid dörren"),
        (EventType::OrderDispatchStalled, _) => ("No courier found", "Inget bud hittat"),
        (other, _) => (other.as_str(), other.as_str()),
    };
    match language {
        Language::English => en.to_owned(),
        Language::Swedish => sv.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_hears_of_what() {
        use Party::*;
        let check = |t, status, expected: &[Party]| {
            assert_eq!(audience(t, status), expected, "{t} {status:?}");
        };
        check(EventType::OrderPlaced, Some(OrderStatus::Placed), &[]);
        check(
            EventType::OrderPaid,
            Some(OrderStatus::Paid),
            &[Customer, Restaurant],
        );
        check(
            EventType::OrderPaid,
            Some(OrderStatus::Cancelled),
            &[Customer],
        );
        check(
            EventType::PaymentFailed,
            Some(OrderStatus::PaymentFailed),
            &[Customer, Admins],
        );
        check(
            EventType::OrderCancelled,
            Some(OrderStatus::Cancelled),
            &[Customer, Restaurant, Driver],
        );
        check(
            EventType::OrderReassigned,
            Some(OrderStatus::Accepted),
            &[Customer, Restaurant, Driver, DriverFrom],
        );
        check(EventType::RefundFailed, None, &[Customer, Admins]);
        check(
            EventType::OrderRejected,
            Some(OrderStatus::Rejected),
            &[Customer, Restaurant],
        );
        check(EventType::OrderDispatchStalled, None, &[Admins]);
        check(EventType::OrderOffered, None, &[]);
        check(EventType::UserBanned, None, &[]);
        check(EventType::DriverOnline, None, &[]);
        assert!(wanted(EventType::OrderAccepted));
        assert!(!wanted(EventType::MenuUpdated));
    }

    #[test]
    fn every_wanted_type_has_its_own_words() {
        for &t in EventType::ALL {
            for &party in audience(t, Some(OrderStatus::Paid)) {
                let text = text(t, party, 1_250, Language::English);
                assert_ne!(text, t.as_str(), "{t} for {party:?}");
            }
        }
        assert_eq!(
            text(
                EventType::RefundSucceeded,
                Party::Customer,
                1_205,
                Language::English
            ),
            "You were refunded 12.05"
        );
    }

    #[test]
    fn every_wanted_type_has_its_own_swedish_words_and_title() {
        for &t in EventType::ALL {
            for &party in audience(t, Some(OrderStatus::Paid)) {
                let sv = text(t, party, 1_250, Language::Swedish);
                let en = text(t, party, 1_250, Language::English);
                assert_ne!(sv, t.as_str(), "{t} for {party:?}");
                assert_ne!(sv, en, "{t} for {party:?} is not translated");
                let (title_sv, title_en) = (
                    title(t, party, Language::Swedish),
                    title(t, party, Language::English),
                );
                assert_ne!(title_en, t.as_str(), "{t} for {party:?} has no title");
                assert_ne!(
                    title_sv, title_en,
                    "{t} for {party:?}: title not translated"
                );
            }
        }
        assert_eq!(
            text(
                EventType::RefundSucceeded,
                Party::Customer,
                1_205,
                Language::Swedish
            ),
            "Du har fått 12,05 kr återbetalt"
        );
    }

    #[test]
    fn languages_and_amounts() {
        for l in Language::ALL {
            assert_eq!(Language::parse(l.code()), Some(l));
        }
        assert_eq!(Language::parse("EN"), None);
        assert_eq!(Language::parse("de"), None);
        assert_eq!(Language::default(), Language::English);
        assert_eq!(Language::English.money(5), "0.05");
        assert_eq!(Language::Swedish.money(123_400), "1234,00");
        assert_eq!(Language::English.money(-250), "-2.50");
    }
}
