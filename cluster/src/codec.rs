//! An [`Event`] as the fields of a Redis stream entry, and back. The
//! entry's id is `{event id}-0`, so the stream is in global id order and
//! Redis itself refuses an event added twice (an id not above the
//! stream's last).

use std::collections::HashMap;

use events::{Actor, Aggregate, Event, EventType, Payload};
use redis::{FromRedisValue, Value};

/// Field names of an entry; short, as every entry repeats them.
mod field {
    pub const ID: &str = "id";
    pub const TYPE: &str = "type";
    pub const AGGREGATE_ID: &str = "agg";
    pub const VERSION: &str = "v";
    pub const AT_MS: &str = "at";
    pub const ACTOR: &str = "actor";
    pub const SCHEMA_VERSION: &str = "schema";
    pub const BODY: &str = "body";
}

/// Why an entry is not an event (written by something else, or by a
/// newer hexdash that knows an event type this one does not).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("stream entry {entry}: {reason}")]
pub struct DecodeError {
    /// The entry's id.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The stream entry id of the event with global id `id`.
pub fn entry_id(id: i64) -> String {
    format!("{id}-0")
}

/// The global id an entry id carries (`"42-0"` → 42).
pub fn event_id(entry_id: &str) -> Option<i64> {
    entry_id.split_once('-')?.0.parse().ok()
}

/// The entry's fields, in `XADD` order.
pub fn encode(event: &Event) -> Vec<(&'static str, String)> {
    vec![
        (field::ID, event.id.to_string()),
        (field::TYPE, event.event_type.as_str().to_owned()),
        (field::AGGREGATE_ID, event.aggregate.id.clone()),
        (field::VERSION, event.version.to_string()),
        (field::AT_MS, event.at_ms.to_string()),
        (field::ACTOR, event.actor.to_stored()),
        (
            field::SCHEMA_VERSION,
            event.payload.schema_version.to_string(),
        ),
        (field::BODY, event.payload.body.to_string()),
    ]
}

/// The event in entry `entry` with `fields`.
pub fn decode(entry: &str, fields: &HashMap<String, Value>) -> Result<Event, DecodeError> {
    let fail = |reason: String| DecodeError {
        entry: entry.to_owned(),
        reason,
    };
    let text = |name: &str| -> Result<String, DecodeError> {
        let value = fields
            .get(name)
            .ok_or_else(|| fail(format!("no field {name}")))?;
        String::from_redis_value_ref(value).map_err(|e| fail(format!("field {name}: {e}")))
    };
    let number = |name: &str| -> Result<i64, DecodeError> {
        text(name)?
            .parse()
            .map_err(|_| fail(format!("field {name} is not a number")))
    };
    let type_name = text(field::TYPE)?;
    let event_type = EventType::parse(&type_name)
        .ok_or_else(|| fail(format!("unknown event type {type_name}")))?;
    let actor = Actor::parse(&text(field::ACTOR)?).ok_or_else(|| fail("bad actor".into()))?;
    let schema_version = u32::try_from(number(field::SCHEMA_VERSION)?)
        .map_err(|_| fail("bad schema version".into()))?;
    let body = serde_json::from_str(&text(field::BODY)?)
        .map_err(|e| fail(format!("body is not JSON: {e}")))?;
    Ok(Event {
        id: number(field::ID)?,
        event_type,
        aggregate: Aggregate {
            kind: event_type.aggregate_kind(),
            id: text(field::AGGREGATE_ID)?,
        },
        version: number(field::VERSION)?,
        at_ms: number(field::AT_MS)?,
        actor,
        payload: Payload {
            schema_version,
            body,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            id: 42,
            event_type: EventType::OrderPaid,
            aggregate: Aggregate {
                kind: EventType::OrderPaid.aggregate_kind(),
                id: "0191c7a0-0000-7000-8000-000000000001".into(),
            },
            version: 3,
            at_ms: 1_763_700_000_000,
            actor: Actor::System("payments".into()),
            payload: Payload::v1(serde_json::json!({"total_cents": 990, "note": "a\"b"})),
        }
    }

    fn as_fields(encoded: Vec<(&'static str, String)>) -> HashMap<String, Value> {
        encoded
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::BulkString(v.into_bytes())))
            .collect()
    }

    #[test]
    fn an_event_round_trips_through_its_entry() {
        let e = event();
        assert_eq!(entry_id(e.id), "42-0");
        assert_eq!(event_id("42-0"), Some(42));
        assert_eq!(decode("42-0", &as_fields(encode(&e))), Ok(e));
    }

    #[test]
    fn a_foreign_entry_is_a_clear_error() {
        let check = |field: &str, value: &str, reason: &str| {
            let mut fields = as_fields(encode(&event()));
            fields.insert(
                field.to_owned(),
                Value::BulkString(value.as_bytes().to_vec()),
            );
            let err = decode("42-0", &fields).unwrap_err();
            assert!(err.reason.contains(reason), "{field}: {err}");
        };
        check("type", "order.teleported", "unknown event type");
        check("actor", "robot:1", "bad actor");
        check("body", "{", "not JSON");
        check("v", "three", "not a number");
        let mut fields = as_fields(encode(&event()));
        fields.remove("agg");
        assert_eq!(decode("42-0", &fields).unwrap_err().reason, "no field agg");
    }
}
