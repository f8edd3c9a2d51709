//! The caller's own notification feed (every role): what happened that
//! concerns them, as the `notifications` consumer of the event stream
//! stored it ([`crate::consumers::notify`]).
//!
//! | route                                              | who              |
//! |----------------------------------------------------|------------------|
//! | `GET /v1/notifications?after=&limit=`              | anyone signed in |
//! | `GET /v1/notifications/unread`                     | anyone signed in |
//! | `POST /v1/notifications/{notification_id}/read`    | its recipient    |
//! | `POST /v1/notifications/read-all`                  | anyone signed in |
//!
//! Ids are the recipient's own (1, 2, 3 …), so `after` is a cursor: the
//! last id a device saw. The same ids come on the live `me` channel of
//! `/v1/ws`.

use ::auth::Authenticated;
use axum::Json;
use axum::extract::State;
use commerce::usecase::notify as usecase;
use contract::Notification;
use contract::notify::{MarkAllRead, MarkedRead, NotificationList, UnreadCount};
use serde::Deserialize;
use utoipa::IntoParams;

use super::events::at_least;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// The operations this module serves ([`super::ROUTES`]).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/notifications" => list_notifications),
    route!(Get "/v1/notifications/unread" => unread_count),
    route!(Post "/v1/notifications/{notification_id}/read" => mark_read),
    route!(Post "/v1/notifications/read-all" => mark_all_read),
];

/// Page size when none is asked for.
const DEFAULT_PAGE: u32 = 50;
/// The largest page (the document's `maximum`, checked by a test).
pub(crate) const MAX_PAGE: u32 = usecase::MAX_PAGE;

/// `GET /v1/notifications`'s cursor and page size.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    /// Only notifications with ids above this (the last id seen); 0 or
    /// absent: from the first.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A stored notification as the wire has it.
pub fn wire(n: &commerce::store::Notification) -> Notification {
    Notification {
        id: n.seq,
        event_id: n.new.event_id,
        event_type: n.new.event_type.clone(),
        order_id: n.new.order_id.map(|id| id.0),
        restaurant_id: n.new.restaurant_id.map(|id| id.0),
        status: n.new.status,
        text: n.new.text.clone(),
        at_ms: n.new.at_ms,
        read_at_ms: n.read_at_ms,
    }
}

#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "notifications",
    summary = "List my notifications",
    description = "The caller's notifications with ids above `after`, oldest first. Ids are the caller's own (1, 2, 3 …): keep the last one seen and pass it as `after` (here or when subscribing to the `me` channel of `/v1/ws`) to get exactly what came since.",
    params(NotificationsQuery),
    responses(
        (status = 200, description = "A page of notifications.", body = NotificationList),
        (status = 400, description = "`invalid_limit` (1 to 200), `invalid_query` (`after` negative or not an integer).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_notifications(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<NotificationsQuery>,
) -> ApiResult<Json<NotificationList>> {
    let after = at_least(query.after, 0, "after")?.unwrap_or(0);
    let limit = match query.limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => n,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1 to {MAX_PAGE}"),
            ));
        }
    };
    let page = usecase::list(&*state.store, principal.user_id, after, limit).await?;
    let next_after = (page.len() == limit as usize)
        .then(|| page.last().map(|n| n.seq))
        .flatten();
    Ok(Json(NotificationList {
        notifications: page.iter().map(wire).collect(),
        next_after,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/notifications/unread",
    tag = "notifications",
    summary = "Count my unread notifications",
    responses(
        (status = 200, description = "The unread count and the newest id.", body = UnreadCount),
        (status = 401, description = AUTH_401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn unread_count(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<UnreadCount>> {
    let count = usecase::unread(&*state.store, principal.user_id).await?;
    Ok(Json(UnreadCount {
        unread: count.unread,
        last_id: count.last_id,
    }))
}

#[utoipa::path(
    post,
    path = "/v1/notifications/{notification_id}/read",
    tag = "notifications",
    summary = "Mark one of my notifications read",
    description = "Idempotent: marking a read notification again keeps the first time.",
    params(("notification_id" = i64, Path, minimum = 1, description = "The notification's id (the caller's own).")),
    responses(
        (status = 200, description = "The notification, read.", body = Notification),
        (status = 400, description = "`invalid_path` (the id is not an integer).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: the caller has no notification with this id.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn mark_read(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Notification>> {
    let now_ms = state.clock.now_ms();
    let n = usecase::mark_read(&*state.store, principal.user_id, id, now_ms).await?;
    Ok(Json(wire(&n)))
}

#[utoipa::path(
    post,
    path = "/v1/notifications/read-all",
    tag = "notifications",
    summary = "Mark all my notifications read",
    description = "Marks every unread notification read, or only those with ids up to `up_to` (what the screen showed).",
    request_body = MarkAllRead,
    responses(
        (status = 200, description = "How many were marked.", body = MarkedRead),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (not the shape), `invalid_up_to` (negative).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: no body declared as `application/json` (send `{}` to mark everything).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn mark_all_read(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<MarkAllRead>,
) -> ApiResult<Json<MarkedRead>> {
    if body.up_to.is_some_and(|v| v < 0) {
        return Err(ApiError::bad_request(
            "invalid_up_to",
            "up_to must be at least 0",
        ));
    }
    let now_ms = state.clock.now_ms();
    let marked =
        usecase::mark_all_read(&*state.store, principal.user_id, body.up_to, now_ms).await?;
    Ok(Json(MarkedRead { marked }))
}
