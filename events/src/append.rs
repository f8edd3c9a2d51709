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

/// Bumps the aggregate's version (inserted at 1 the first time); its row
/// lock, held to the end of the transaction, queues other appends to the
/// same aggregate behind this one.
const NEXT_VERSION: &str = "INSERT INTO event_aggregates (aggregate_kind, aggregate_id, version) \
     VALUES ($1, $2, 1) ON CONFLICT (aggregate_kind, aggregate_id) \
     DO UPDATE SET version = event_aggregates.version + 1 RETURNING version";

const INSERT_EVENT: &str = "INSERT INTO events (event_type, aggregate_kind, aggregate_id, \
     aggregate_version, at_ms, actor, schema_version, payload_json) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING insert_id";

/// PostgreSQL: [`NEXT_VERSION`] and [`INSERT_EVENT`] as one statement (a
/// data-modifying CTE), one round trip instead of two; same locks, same
/// rows.
const APPEND_POSTGRES: &str = "WITH v AS (\
     INSERT INTO event_aggregates (aggregate_kind, aggregate_id, version) \
     VALUES ($2, $3, 1) ON CONFLICT (aggregate_kind, aggregate_id) \
     DO UPDATE SET version = event_aggregates.version + 1 RETURNING version) \
     INSERT INTO events (event_type, aggregate_kind, aggregate_id, \
     aggregate_version, at_ms, actor, schema_version, payload_json) \
     SELECT $1, $2, $3, v.version, $4, $5, $6, $7 FROM v \
     RETURNING insert_id, aggregate_version";

/// Appends `event` in `tx`, the transaction of the change it describes: it
/// is published if and only if `tx` commits. The aggregate's next version,
/// then the row (unsequenced): two statements on SQLite, one on
/// PostgreSQL. Call
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
    if tx.backend_name() == "PostgreSQL" {
        let (insert_id, version): (i64, i64) = sqlx::query_as(APPEND_POSTGRES)
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
        return Ok(Appended { insert_id, version });
    }
    let version: i64 = sqlx::query_scalar(NEXT_VERSION)
        .bind(kind)
        .bind(&event.aggregate_id)
        .fetch_one(&mut **tx)
        .await?;
    let insert_id: i64 = sqlx::query_scalar(INSERT_EVENT)
        .bind(event.event_type.as_str())
        .bind(kind)
        .bind(&event.aggregate_id)
        .bind(version)
        .bind(event.at_ms)
        .bind(event.actor.to_stored())
        .bind(i64::from(event.payload.schema_version))
        .bind(body)
        .fetch_one(&mut **tx)
        .await?;
    metrics::counter!(crate::metrics::APPENDED).increment(1);
    Ok(Appended { insert_id, version })
}
