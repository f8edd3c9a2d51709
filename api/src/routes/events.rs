//! The event stream's admin endpoints (admin role): `GET /v1/admin/events`
//! (the log, filtered, newest first by event id, keyset-paged with
//! `before`), `GET /v1/admin/dead-letters` (newest first by dead-letter
//! id), and `POST /v1/admin/dead-letters/{id}/replay` (the consumer's
//! runner delivers it once more).

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::require_role;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// The operations this module serves ([`super::ROUTES`]).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/admin/events" => list_events),
    route!(Get "/v1/admin/dead-letters" => list_dead_letters),
    route!(Post "/v1/admin/dead-letters/{id}/replay" => replay_dead_letter),
];

/// Page size when none is asked for.
const DEFAULT_PAGE: u32 = 50;
/// The largest page (the document's `maximum`, checked by a test).
pub(crate) const MAX_PAGE: u32 = events::MAX_PAGE;
/// Longest aggregate id or consumer name accepted, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// `GET /v1/admin/events`'s filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events of this type (`order.placed` …; an unknown name is 422).
    #[serde(rename = "type")]
    #[param(rename = "type", max_length = 64)]
    pub event_type: Option<String>,
    /// Only events of aggregates of this kind: `order`, `restaurant`,
    /// `user`, `driver` (another is 422).
    #[param(max_length = 64)]
    pub aggregate_kind: Option<String>,
    /// Only this aggregate (needs `aggregate_kind`, else 422).
    #[param(max_length = 64)]
    pub aggregate_id: Option<String>,
    /// Only events at or after this time (Unix ms).
    #[param(minimum = 0)]
    pub from_ms: Option<i64>,
    /// Only events before this time (Unix ms).
    #[param(minimum = 0)]
    pub until_ms: Option<i64>,
    /// Only events with an id below this: the previous page's `next_before`.
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// What an event is about.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AggregateView {
    /// `order`, `restaurant`, `user` or `driver`.
    pub kind: String,
    /// Its id.
    pub id: String,
}

/// An event's versioned body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayloadView {
    /// The version of `body`'s shape for this type, from 1.
    pub schema_version: u32,
    /// The body (a JSON object).
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// One event of the log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// The global id: gapless, monotonic, the order of publication.
    pub id: i64,
    /// `order.placed` …
    #[serde(rename = "type")]
    pub event_type: String,
    /// What it happened to.
    pub aggregate: AggregateView,
    /// The aggregate's version after it: 1, 2, 3 …
    pub version: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// `user:<uuid>` or `system:<name>`.
    pub actor: String,
    /// What happened.
    pub payload: PayloadView,
}

impl From<events::Event> for EventView {
    fn from(e: events::Event) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type.as_str().to_owned(),
            aggregate: AggregateView {
                kind: e.aggregate.kind.as_str().to_owned(),
                id: e.aggregate.id,
            },
            version: e.version,
            at_ms: e.at_ms,
            actor: e.actor.to_stored(),
            payload: PayloadView {
                schema_version: e.payload.schema_version,
                body: e.payload.body,
            },
        }
    }
}

/// A page of the log, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// By descending id.
    pub events: Vec<EventView>,
    /// Pass as `before` for the next (older) page; absent on the last.
    pub next_before: Option<i64>,
}

/// `GET /v1/admin/dead-letters`'s filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLettersQuery {
    /// Only this consumer's (`live_board`, `matcher_trigger`,
    /// `search_catalog`, …).
    #[param(max_length = 64)]
    pub consumer: Option<String>,
    /// Only dead letters with an id below this: the previous page's
    /// `next_before`.
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// An event a consumer gave up on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterView {
    /// The dead letter's id (what a replay names).
    pub id: i64,
    /// The consumer that gave up.
    pub consumer: String,
    /// The event's id.
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

impl From<events::DeadLetter> for DeadLetterView {
    fn from(d: events::DeadLetter) -> Self {
        Self {
            id: d.id,
            consumer: d.consumer,
            event_id: d.event_id,
            attempts: d.attempts,
            last_error: d.last_error,
            state: d.state,
            failed_at_ms: d.failed_at_ms,
            replay_requested_at_ms: d.replay_requested_at_ms,
            replayed_at_ms: d.replayed_at_ms,
        }
    }
}

/// A page of dead letters, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterList {
    /// By descending id.
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `before` for the next (older) page; absent on the last.
    pub next_before: Option<i64>,
}

/// A replay asked for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplayResponse {
    /// The dead letter.
    pub id: i64,
    /// `replaying`: its consumer's runner delivers it once.
    pub state: String,
}

/// The page size asked for, checked.
fn page(limit: Option<u32>) -> ApiResult<u32> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        )),
    }
}

/// A bounded text parameter, checked.
fn name(value: Option<String>, field: &str) -> ApiResult<Option<String>> {
    match value {
        Some(v) if v.chars().count() > MAX_NAME_CHARS => Err(ApiError::bad_request(
            "invalid_query",
            format!("{field} is longer than {MAX_NAME_CHARS} characters"),
        )),
        other => Ok(other),
    }
}

/// A non-negative time or positive id parameter, checked.
pub(super) fn at_least(value: Option<i64>, min: i64, field: &str) -> ApiResult<Option<i64>> {
    match value {
        Some(v) if v < min => Err(ApiError::bad_request(
            "invalid_query",
            format!("{field} must be at least {min}"),
        )),
        other => Ok(other),
    }
}

/// The filter a query asks for; names it does not know are 422.
fn filter(query: EventsQuery) -> ApiResult<(events::EventFilter, Option<i64>, u32)> {
    let limit = page(query.limit)?;
    let before = at_least(query.before, 1, "before")?;
    let from_ms = at_least(query.from_ms, 0, "from_ms")?;
    let until_ms = at_least(query.until_ms, 0, "until_ms")?;
    let event_type = match name(query.event_type, "type")? {
        None => None,
        Some(t) => Some(events::EventType::parse(&t).ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_event_type",
                format!("no event type is named {t:?}"),
            )
        })?),
    };
    let kind = match name(query.aggregate_kind, "aggregate_kind")? {
        None => None,
        Some(k) => Some(events::AggregateKind::parse(&k).ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_aggregate_kind",
                format!("aggregate_kind must be order, restaurant, user or driver, not {k:?}"),
            )
        })?),
    };
    let aggregate_id = name(query.aggregate_id, "aggregate_id")?;
    let aggregate = match (kind, aggregate_id) {
        (Some(kind), Some(id)) => Some((kind, id)),
        (None, Some(_)) => {
            return Err(ApiError::unprocessable(
                "aggregate_kind_required",
                "aggregate_id needs aggregate_kind",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::unprocessable(
                "aggregate_id_required",
                "aggregate_kind needs aggregate_id",
            ));
        }
        (None, None) => None,
    };
    let filter = events::EventFilter {
        event_type,
        aggregate,
        from_ms,
        until_ms,
    };
    Ok((filter, before, limit))
}

#[utoipa::path(
    get,
    path = "/v1/admin/events",
    tag = "admin",
    summary = "List the event log",
    description = "Published events, newest first (by descending event id), filtered by type, aggregate and time; keyset-paged: pass `next_before` as `before`.",
    params(EventsQuery),
    responses(
        (status = 200, description = "A page of events.", body = EventList),
        (status = 400, description = "`invalid_limit` (1 to 500), `invalid_query` (a value of the wrong type, out of range or too long).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
        (status = 422, description = "`unknown_event_type`, `unknown_aggregate_kind`, `aggregate_kind_required`, `aggregate_id_required` (the two go together).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_events(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<EventList>> {
    require_role(&principal, &[Role::Admin])?;
    let (filter, before, limit) = filter(query)?;
    let page = state
        .store
        .event_log()
        .list_events(&filter, before, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(EventList {
        events: page.events.into_iter().map(EventView::from).collect(),
        next_before: page.next_before,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/dead-letters",
    tag = "admin",
    summary = "List dead letters",
    description = "Events a consumer gave up on after its last try, newest first (by descending dead-letter id); keyset-paged: pass `next_before` as `before`.",
    params(DeadLettersQuery),
    responses(
        (status = 200, description = "A page of dead letters.", body = DeadLetterList),
        (status = 400, description = "`invalid_limit` (1 to 500), `invalid_query`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_dead_letters(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<DeadLettersQuery>,
) -> ApiResult<Json<DeadLetterList>> {
    require_role(&principal, &[Role::Admin])?;
    let limit = page(query.limit)?;
    let before = at_least(query.before, 1, "before")?;
    let consumer = name(query.consumer, "consumer")?;
    let letters = state
        .store
        .event_log()
        .dead_letters(consumer.as_deref(), before, limit)
        .await
        .map_err(ApiError::internal)?;
    let full = letters.len() == limit as usize;
    let next_before = letters.last().filter(|_| full).map(|d| d.id);
    Ok(Json(DeadLetterList {
        dead_letters: letters.into_iter().map(DeadLetterView::from).collect(),
        next_before,
    }))
}

#[utoipa::path(
    post,
    path = "/v1/admin/dead-letters/{id}/replay",
    tag = "admin",
    summary = "Replay a dead letter",
    description = "Queues the dead letter for its consumer, whose runner delivers it once more (out of order, after later events). Asking again while it is queued is accepted and changes nothing.",
    params(("id" = i64, Path, description = "The dead letter's id.")),
    responses(
        (status = 202, description = "Requested: its consumer delivers it once.", body = ReplayResponse),
        (status = 400, description = "`invalid_path` (the id is not an integer).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such dead letter.", body = ErrorBody),
        (status = 409, description = "`already_replayed`: replayed and handled before; not delivered again.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn replay_dead_letter(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<ReplayResponse>)> {
    require_role(&principal, &[Role::Admin])?;
    let outcome = state
        .store
        .event_log()
        .replay_dead_letter(id)
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        events::ReplayOutcome::Requested | events::ReplayOutcome::AlreadyRequested => {
            tracing::info!(dead_letter = id, by = %principal.user_id, "dead letter replay requested");
            Ok((
                StatusCode::ACCEPTED,
                Json(ReplayResponse {
                    id,
                    state: "replaying".to_owned(),
                }),
            ))
        }
        events::ReplayOutcome::AlreadyReplayed => Err(ApiError::conflict(
            "already_replayed",
            "this dead letter was replayed already",
        )),
        events::ReplayOutcome::NotFound => Err(ApiError::NotFound("dead letter")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_page_bound_is_the_stream_s() {
        assert_eq!(MAX_PAGE, 500);
        assert!(page(Some(500)).is_ok());
        assert!(page(Some(501)).is_err());
        assert!(page(Some(0)).is_err());
        assert_eq!(page(None).unwrap(), DEFAULT_PAGE);
    }
}
