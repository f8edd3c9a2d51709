//! [`append`]: the outbox write, inside the caller's transaction.

use sqlx::{Any, Transaction};

use crate::error::Result;
use crate::model::NewEvent;

/// What [`append`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The row's insert id: allocation order, not commit order, and not
    /// the event's global id (the relay gives that after the commit).
    pub insert_id: i64,
    /// The aggregate's version this event made.
    pub version: i64,
}

/// SQLite: the row with its global id (the relay cursor + 1) and its
/// aggregate's next version, read from `event_relay` and
/// `event_aggregates`; the trigger of migration 0015
/// (`events_number_and_version`) writes both back in the same statement.
/// SQLite has one writer, and the appending transaction holds the write
/// lock to its commit, so no other append runs between the reads and the
/// writes, and appends commit in the order of their ids.
const APPEND_SQLITE: &str = "INSERT INTO events (seq, event_type, aggregate_kind, aggregate_id, \
     aggregate_version, at_ms, actor, schema_version, payload_json) \
     VALUES ((SELECT last_seq + 1 FROM event_relay WHERE id = 1), $1, $2, $3, \
     COALESCE((SELECT version FROM event_aggregates \
     WHERE aggregate_kind = $2 AND aggregate_id = $3), 0) + 1, $4, $5, $6, $7) \
     RETURNING insert_id, aggregate_version";

/// PostgreSQL: the aggregate's version bumped with an upsert (its row lock,
/// held to the end of the transaction, queues other appends to the same
/// aggregate behind this one) and the row inserted with it, as one
/// data-modifying CTE.
const APPEND_POSTGRES: &str = "WITH v AS (\
     INSERT INTO event_aggregates (aggregate_kind, aggregate_id, version) \
     VALUES ($2, $3, 1) ON CONFLICT (aggregate_kind, aggregate_id) \
     DO UPDATE SET version = event_aggregates.version + 1 RETURNING version) \
     INSERT INTO events (event_type, aggregate_kind, aggregate_id, \
     aggregate_version, at_ms, actor, schema_version, payload_json) \
     SELECT $1, $2, $3, v.version, $4, $5, $6, $7 FROM v \
     RETURNING insert_id, aggregate_version";

/// Appends `event` in `tx`, the transaction of the change it describes: it
/// is published if and only if `tx` commits. One statement: the aggregate's
/// next version and the row, which on PostgreSQL waits for the relay to
/// number it and on SQLite is numbered here. Call
/// [`crate::Wake::notify`] after the commit to wake this node's relay (no
/// `NOTIFY` here: see the crate's "Wake-ups").
///
/// Appends to one aggregate wait for each other from the version bump to
/// the commit. A transaction that appends to several aggregates should
/// take them in a fixed order (e.g. by id) so two such transactions cannot
/// deadlock on PostgreSQL.
pub async fn append(tx: &mut Transaction<'_, Any>, event: &NewEvent) -> Result<Appended> {
    let kind = event.event_type.aggregate_kind().as_str();
    let body = serde_json::to_string(&event.payload.body)?;
    let sql = if tx.backend_name() == "PostgreSQL" {
        APPEND_POSTGRES
    } else {
        APPEND_SQLITE
    };
    let (insert_id, version): (i64, i64) = sqlx::query_as(sql)
        .bind(event.event_type.as_str())
        .bind(kind)
        .bind(&event.aggregate_id)
        .bind(event.at_ms)
        .bind(event.actor.to_stored())
        .bind(i64::from(event.payload.schema_version))
        .bind(body)
        .fetch_one(&mut **tx)
        .await?;
    metrics::counter!(crate::metrics::APPENDED).increment(1);
    Ok(Appended { insert_id, version })
}
