//! What an event is: [`Event`] (as stored and delivered) and [`NewEvent`]
//! (what a state change appends), with its [`Actor`] and [`Payload`].

use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::kind::{AggregateKind, EventType};

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user (customer, restaurant, driver or admin).
    User(Uuid),
    /// A part of hexdash acting on its own (`payments`, `matcher`,
    /// `presence` …): a short fixed name, never client input.
    System(String),
}

impl Actor {
    /// The stored form: `user:<uuid>` or `system:<name>`.
    pub fn to_stored(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::System(name) => format!("system:{name}"),
        }
    }

    /// Reads the stored form back.
    pub fn parse(stored: &str) -> Option<Self> {
        match stored.split_once(':')? {
            ("user", id) => Uuid::parse_str(id).ok().map(Actor::User),
            ("system", name) if !name.is_empty() => Some(Actor::System(name.to_owned())),
            _ => None,
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_stored())
    }
}

/// An event's body with the version of its shape, so readers can tell old
/// shapes from new ones after the body of a type changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Payload {
    /// The version of `body`'s shape for this event type, from 1; bump it
    /// when a field changes meaning or goes away (adding one does not).
    pub schema_version: u32,
    /// The body: a JSON object.
    pub body: serde_json::Value,
}

impl Payload {
    /// A version-1 payload.
    pub fn v1(body: serde_json::Value) -> Self {
        Self {
            schema_version: 1,
            body,
        }
    }
}

/// The thing an event is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Aggregate {
    /// Its kind (from the event's type).
    pub kind: AggregateKind,
    /// Its id as stored elsewhere (a UUID's text).
    pub id: String,
}

/// An event to append in the transaction of the change it describes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// What happened; also names the aggregate's kind.
    pub event_type: EventType,
    /// The aggregate's id (an order id for `order.*`, `payment.*` and
    /// `refund.*`).
    pub aggregate_id: String,
    /// When it happened (Unix ms, from the application's clock).
    pub at_ms: i64,
    /// Who caused it.
    pub actor: Actor,
    /// What happened, in detail.
    pub payload: Payload,
}

/// A committed, sequenced event, as consumers and the admin queries see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// The global id: gapless and monotonic across all events, in the order
    /// the relay published them. Consumers deduplicate by it.
    pub id: i64,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// What it happened to.
    pub aggregate: Aggregate,
    /// The aggregate's version after this event: 1, 2, 3 … without gaps.
    pub version: i64,
    /// When it happened (Unix ms).
    pub at_ms: i64,
    /// Who caused it.
    pub actor: Actor,
    /// The versioned body.
    pub payload: Payload,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_round_trip_through_their_stored_form() {
        let id = Uuid::now_v7();
        for actor in [Actor::User(id), Actor::System("payments".to_owned())] {
            assert_eq!(Actor::parse(&actor.to_stored()), Some(actor));
        }
        for bad in ["", "user:", "user:x", "system:", "robot:1", "nocolon"] {
            assert_eq!(Actor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_event_serialises_with_wire_names() {
        let event = Event {
            id: 7,
            event_type: EventType::OrderPaid,
            aggregate: Aggregate {
                kind: AggregateKind::Order,
                id: "o1".to_owned(),
            },
            version: 2,
            at_ms: 1_000,
            actor: Actor::System("payments".to_owned()),
            payload: Payload::v1(serde_json::json!({"total_cents": 990})),
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "id": 7, "type": "order.paid",
                "aggregate": {"kind": "order", "id": "o1"}, "version": 2,
                "at_ms": 1000, "actor": "system:payments",
                "payload": {"schema_version": 1, "body": {"total_cents": 990}}
            })
        );
    }
}
