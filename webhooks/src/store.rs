//! Endpoints and the delivery log in SQL, over sqlx's `Any` pool.
//!
//! One statement text serves SQLite and PostgreSQL, with the conventions of
//! the domain crate's store: `$n` placeholders, TEXT ids, integer Unix-ms
//! times, 0/1 flags. The tables are `webhook_endpoints` and
//! `webhook_deliveries` from the `0006_webhooks.sql` migrations, which the
//! domain crate's migrator applies before any of these run.
//!
//! Lists are keyset-paged (`after`/`before` the last row seen, at most
//! [`MAX_PAGE`] rows), so a page costs the same however deep it is.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use url::Url;

use crate::deliver::{Attempt, Outcome};
use crate::endpoint::{Endpoint, EndpointId, Secret};

/// Most rows one list call answers: a page for an admin screen, bounded so
/// a large `limit` cannot make one query read a whole table.
pub const MAX_PAGE: u32 = 200;

/// What a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed or is unreachable.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A row this crate wrote no longer parses (an id, a URL, the event
    /// types): a bug or a hand edit, not a caller mistake.
    #[error("corrupt webhook row: {0}")]
    Corrupt(String),
}

/// What store calls answer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

const ENDPOINT_COLUMNS: &str = "id, url, event_types_json, secret, enabled, disabled_reason, \
     created_at_ms, updated_at_ms";

/// Stores a new endpoint (made by [`Endpoint::new`]).
pub async fn insert_endpoint(pool: &AnyPool, endpoint: &Endpoint) -> Result<()> {
    let event_types = serde_json::to_string(&endpoint.event_types)
        .map_err(|e| Error::Corrupt(format!("event types: {e}")))?;
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, event_types_json, secret, enabled, \
         disabled_reason, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(endpoint.id.to_string())
    .bind(endpoint.url.as_str())
    .bind(event_types)
    .bind(endpoint.secret.expose())
    .bind(i64::from(endpoint.enabled))
    .bind(endpoint.disabled_reason.as_deref())
    .bind(endpoint.created_at_ms)
    .bind(endpoint.updated_at_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// The endpoint with this id, if there is one.
pub async fn get_endpoint(pool: &AnyPool, id: EndpointId) -> Result<Option<Endpoint>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?
        .map(|row| endpoint_from_row(&row))
        .transpose()
}

/// Up to `limit` (at most [`MAX_PAGE`]) endpoints in id order (oldest
/// first, ids being UUIDv7), after `after` when given: the next page starts
/// after the last id of this one.
pub async fn list_endpoints(
    pool: &AnyPool,
    after: Option<EndpointId>,
    limit: u32,
) -> Result<Vec<Endpoint>> {
    // A UUID's text sorts as its bytes; the empty string sorts first.
    let after = after.map(|id| id.to_string()).unwrap_or_default();
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id > $1 ORDER BY id LIMIT $2"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(i64::from(limit.min(MAX_PAGE)))
        .fetch_all(pool)
        .await?
        .iter()
        .map(endpoint_from_row)
        .collect()
}

/// Enables or disables an endpoint, with the reason when disabling (the
/// reason is cleared when enabling). Answers whether there was such an
/// endpoint.
pub async fn set_enabled(
    pool: &AnyPool,
    id: EndpointId,
    enabled: bool,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<bool> {
    let reason = if enabled { None } else { reason };
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at_ms = $4 \
         WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(i64::from(enabled))
    .bind(reason)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes an endpoint and its delivery log. Answers whether there was
/// such an endpoint.
pub async fn delete_endpoint(pool: &AnyPool, id: EndpointId) -> Result<bool> {
    // The log first, explicitly: SQLite enforces `ON DELETE CASCADE` only
    // on connections with foreign keys on, and not every pool is ours.
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(id.to_string())
        .execute(pool)
        .await?;
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

fn endpoint_from_row(row: &AnyRow) -> Result<Endpoint> {
    let id: String = row.try_get("id")?;
    let id = id
        .parse()
        .map_err(|e| Error::Corrupt(format!("endpoint id {id:?}: {e}")))?;
    let url: String = row.try_get("url")?;
    let url = Url::parse(&url).map_err(|e| Error::Corrupt(format!("endpoint {id} url: {e}")))?;
    let event_types: String = row.try_get("event_types_json")?;
    let event_types = serde_json::from_str(&event_types)
        .map_err(|e| Error::Corrupt(format!("endpoint {id} event types: {e}")))?;
    Ok(Endpoint {
        id,
        url,
        event_types,
        secret: Secret::from_stored(row.try_get("secret")?),
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

/// One row of an endpoint's delivery log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The row's id: increasing, the log's keyset cursor.
    pub id: i64,
    /// The endpoint delivered to.
    pub endpoint_id: EndpointId,
    /// The event's id in the event stream.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// 1 for the first attempt at this event to this endpoint, then 2, 3 …
    pub attempt: i64,
    /// When the attempt started, Unix ms.
    pub attempted_at_ms: i64,
    /// What came of it.
    pub outcome: Outcome,
    /// The receiver's status code, when it answered.
    pub http_status: Option<u16>,
    /// What went wrong, when something did (bounded; see
    /// [`crate::deliver`]).
    pub error: Option<String>,
    /// How long the attempt took, ms.
    pub duration_ms: i64,
}

/// Appends an attempt to the endpoint's log and answers its attempt number
/// (one more than the attempts logged before for this event and endpoint).
pub async fn record_attempt(
    pool: &AnyPool,
    endpoint_id: EndpointId,
    event_id: &str,
    event_type: &str,
    attempted_at_ms: i64,
    attempt: &Attempt,
) -> Result<i64> {
    // One statement counts and inserts, so the number cannot be taken
    // twice; the UNIQUE key refuses it if two writers ever raced.
    let row = sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, attempt, \
         attempted_at_ms, duration_ms, http_status, error, outcome) \
         SELECT $1, $2, $3, COALESCE(MAX(attempt), 0) + 1, $4, $5, $6, $7, $8 \
         FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id = $2 \
         RETURNING attempt",
    )
    .bind(endpoint_id.to_string())
    .bind(event_id)
    .bind(event_type)
    .bind(attempted_at_ms)
    .bind(attempt.duration_ms)
    .bind(attempt.http_status.map(i64::from))
    .bind(attempt.error.as_deref())
    .bind(attempt.outcome.as_str())
    .fetch_one(pool)
    .await?;
    Ok(row.try_get("attempt")?)
}

/// Whether an attempt to deliver this event to this endpoint succeeded
/// (so a redelivery from the stream is not sent again).
pub async fn was_delivered(
    pool: &AnyPool,
    endpoint_id: EndpointId,
    event_id: &str,
) -> Result<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM webhook_deliveries \
         WHERE endpoint_id = $1 AND event_id = $2 AND outcome = $3",
    )
    .bind(endpoint_id.to_string())
    .bind(event_id)
    .bind(Outcome::Delivered.as_str())
    .fetch_one(pool)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Up to `limit` (at most [`MAX_PAGE`]) rows of an endpoint's delivery log,
/// newest first, before the row id `before` when given: the next page
/// starts before the last id of this one.
pub async fn list_deliveries(
    pool: &AnyPool,
    endpoint_id: EndpointId,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Delivery>> {
    sqlx::query(
        "SELECT id, endpoint_id, event_id, event_type, attempt, attempted_at_ms, duration_ms, \
         http_status, error, outcome FROM webhook_deliveries \
         WHERE endpoint_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(endpoint_id.to_string())
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(limit.min(MAX_PAGE)))
    .fetch_all(pool)
    .await?
    .iter()
    .map(delivery_from_row)
    .collect()
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery> {
    let id: i64 = row.try_get("id")?;
    let endpoint_id: String = row.try_get("endpoint_id")?;
    let endpoint_id = endpoint_id
        .parse()
        .map_err(|e| Error::Corrupt(format!("delivery {id} endpoint id: {e}")))?;
    let outcome: String = row.try_get("outcome")?;
    let outcome = Outcome::from_name(&outcome)
        .ok_or_else(|| Error::Corrupt(format!("delivery {id} outcome {outcome:?}")))?;
    let http_status = row
        .try_get::<Option<i64>, _>("http_status")?
        .map(u16::try_from)
        .transpose()
        .map_err(|e| Error::Corrupt(format!("delivery {id} status: {e}")))?;
    Ok(Delivery {
        id,
        endpoint_id,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        attempt: row.try_get("attempt")?,
        attempted_at_ms: row.try_get("attempted_at_ms")?,
        outcome,
        http_status,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
    })
}
