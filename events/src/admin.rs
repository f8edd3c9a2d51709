//! The queries behind the admin endpoints: the event log filtered and
//! paged, one aggregate's history, dead letters, and a dead letter's replay.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Error, Result};
use crate::kind::AggregateKind;
use crate::kind::EventType;
use crate::log::{EVENT_COLUMNS, EventLog, event_from_row};
use crate::model::Event;

/// The most rows one page may hold.
pub const MAX_PAGE: u32 = 500;

/// Which events to list. Every field narrows; none means all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this type.
    pub event_type: Option<EventType>,
    /// Only this aggregate (kind and id).
    pub aggregate: Option<(AggregateKind, String)>,
    /// Only events at or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Only events before this time (Unix ms).
    pub until_ms: Option<i64>,
}

/// A page of the log, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventPage {
    /// The events, by descending id.
    pub events: Vec<Event>,
    /// Pass as `before` for the next (older) page; none when this is the last.
    pub next_before: Option<i64>,
}

/// A dead letter: an event a consumer gave up on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The dead letter's id (what a replay names).
    pub id: i64,
    /// The consumer that gave up.
    pub consumer: String,
    /// The event's global id.
    pub event_id: i64,
    /// Tries so far, replays included.
    pub attempts: i64,
    /// The last try's error.
    pub last_error: String,
    /// `dead`, `replaying` or `replayed`.
    pub state: String,
    /// When the consumer last gave up (Unix ms).
    pub failed_at_ms: i64,
    /// When a replay was last asked for.
    pub replay_requested_at_ms: Option<i64>,
    /// When the replay was handled.
    pub replayed_at_ms: Option<i64>,
}

/// What asking for a replay did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Queued: the consumer's runner delivers it once.
    Requested,
    /// A replay is already queued; nothing more happens.
    AlreadyRequested,
    /// Already replayed and handled; not delivered again.
    AlreadyReplayed,
    /// No such dead letter.
    NotFound,
}

const DEAD_LETTER_COLUMNS: &str = "id, consumer, seq, attempts, last_error, state, failed_at_ms, \
     replay_requested_at_ms, replayed_at_ms";

fn dead_letter_from_row(row: &AnyRow) -> Result<DeadLetter> {
    Ok(DeadLetter {
        id: row.try_get("id")?,
        consumer: row.try_get("consumer")?,
        event_id: row.try_get("seq")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        state: row.try_get("state")?,
        failed_at_ms: row.try_get("failed_at_ms")?,
        replay_requested_at_ms: row.try_get("replay_requested_at_ms")?,
        replayed_at_ms: row.try_get("replayed_at_ms")?,
    })
}

/// Checks a page size.
fn page_limit(limit: u32) -> Result<i64> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::Config(format!("page size must be 1..={MAX_PAGE}")));
    }
    Ok(i64::from(limit))
}

impl EventLog {
    /// Published events matching `filter`, newest first, `limit` (at most
    /// [`MAX_PAGE`]) per page, keyset-paged: `before` is the previous
    /// page's `next_before`.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<EventPage> {
        let limit = page_limit(limit)?;
        // Only values are bound; the text is built from fixed pieces.
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq IS NOT NULL");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if filter.event_type.is_some() {
            sql += &format!(" AND event_type = ${}", next());
        }
        if filter.aggregate.is_some() {
            sql += &format!(
                " AND aggregate_kind = ${} AND aggregate_id = ${}",
                next(),
                next()
            );
        }
        if filter.from_ms.is_some() {
            sql += &format!(" AND at_ms >= ${}", next());
        }
        if filter.until_ms.is_some() {
            sql += &format!(" AND at_ms < ${}", next());
        }
        if before.is_some() {
            sql += &format!(" AND seq < ${}", next());
        }
        sql += &format!(" ORDER BY seq DESC LIMIT ${}", next());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(t) = filter.event_type {
            query = query.bind(t.as_str());
        }
        if let Some((kind, id)) = &filter.aggregate {
            query = query.bind(kind.as_str()).bind(id.clone());
        }
        if let Some(from) = filter.from_ms {
            query = query.bind(from);
        }
        if let Some(until) = filter.until_ms {
            query = query.bind(until);
        }
        if let Some(before) = before {
            query = query.bind(before);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        let events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        let full = i64::try_from(events.len()).unwrap_or(i64::MAX) == limit;
        let next_before = events.last().filter(|_| full).map(|e| e.id);
        Ok(EventPage {
            events,
            next_before,
        })
    }

    /// One aggregate's published events in version order, up to `limit`
    /// (at most [`MAX_PAGE`]) after version `after_version` (e.g. an order's
    /// history).
    pub async fn aggregate_events(
        &self,
        kind: AggregateKind,
        id: &str,
        after_version: i64,
        limit: u32,
    ) -> Result<Vec<Event>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_kind = $1 AND aggregate_id = $2 \
             AND aggregate_version > $3 AND seq IS NOT NULL ORDER BY aggregate_version LIMIT $4"
        )))
        .bind(kind.as_str())
        .bind(id)
        .bind(after_version)
        .bind(page_limit(limit)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Dead letters, newest first, optionally of one consumer, keyset-paged
    /// by id (`before`), `limit` at most [`MAX_PAGE`].
    pub async fn dead_letters(
        &self,
        consumer: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>> {
        let limit = page_limit(limit)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM event_dead_letters \
             WHERE ($1 = '' OR consumer = $1) AND id < $2 ORDER BY id DESC LIMIT $3"
        )))
        .bind(consumer.unwrap_or(""))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dead_letter_from_row).collect()
    }

    /// One dead letter.
    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM event_dead_letters WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(dead_letter_from_row).transpose()
    }

    /// Queues dead letter `id` for its consumer to take once more (its
    /// runner delivers it once, out of order); wakes the runners here (a
    /// runner on another node sees it at its poll).
    pub async fn replay_dead_letter(&self, id: i64) -> Result<ReplayOutcome> {
        let changed = {
            let _gate = self.lock_gate().await;
            sqlx::query(
                "UPDATE event_dead_letters SET state = 'replaying', replay_requested_at_ms = $2 \
                 WHERE id = $1 AND state = 'dead'",
            )
            .bind(id)
            .bind(self.clock.now_ms())
            .execute(&self.pool)
            .await?
            .rows_affected()
        };
        if changed == 1 {
            self.replays.send_modify(|n| *n = n.wrapping_add(1));
            return Ok(ReplayOutcome::Requested);
        }
        Ok(match self.dead_letter(id).await? {
            None => ReplayOutcome::NotFound,
            Some(d) if d.state == "replayed" => ReplayOutcome::AlreadyReplayed,
            Some(_) => ReplayOutcome::AlreadyRequested,
        })
    }
}
