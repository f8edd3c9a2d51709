//! Webhook endpoints (admin role): register, list, read, delete, and the
//! delivery log.
//!
//! | route | |
//! |---|---|
//! | `POST /v1/admin/webhooks` | register `{url, event_types}`: 201 with the secret, shown this once |
//! | `GET /v1/admin/webhooks?limit=&after=` | endpoints in id order (no secrets) |
//! | `GET /v1/admin/webhooks/{webhook_id}` | one endpoint (no secret) |
//! | `PATCH /v1/admin/webhooks/{webhook_id}` | `{enabled}`: disable, or enable again (after a 410 Gone too) |
//! | `DELETE /v1/admin/webhooks/{webhook_id}` | stop its deliveries; drop it, its log and dead letters |
//! | `GET /v1/admin/webhooks/{webhook_id}/deliveries?limit=&before=` | its delivery log, newest first |
//!
//! A registration that parses but makes no sense (a relative or `ftp` URL,
//! an unknown event type, one twice, none) is 422 `invalid_webhook` with
//! the reason; the URL's length is a schema bound.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use webhooks::{Endpoint, EndpointId, EndpointSpec};

use super::require_role;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::hooks::Webhooks;
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// The operations this module serves.
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Post "/v1/admin/webhooks" => create_webhook),
    route!(Get "/v1/admin/webhooks" => list_webhooks),
    route!(Get "/v1/admin/webhooks/{webhook_id}" => get_webhook),
    route!(Patch "/v1/admin/webhooks/{webhook_id}" => update_webhook),
    route!(Delete "/v1/admin/webhooks/{webhook_id}" => delete_webhook),
    route!(Get "/v1/admin/webhooks/{webhook_id}/deliveries" => list_deliveries),
];

/// Longest URL, bytes (the document's `maxLength`).
pub const MAX_URL_LEN: usize = webhooks::MAX_URL_LEN;
/// Most rows a page answers (the document's `maximum` of `limit`).
pub const MAX_PAGE: u32 = webhooks::store::MAX_PAGE;
/// Rows a page answers without `limit`.
const DEFAULT_PAGE: u32 = 50;

/// A registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where to POST: an absolute `http` or `https` URL with a host, no
    /// user name or password.
    #[schema(max_length = 2048, example = "https://hooks.example.com/hexdash")]
    pub url: String,
    /// The event types to receive (`order.placed` …), each known, none twice.
    #[schema(example = json!(["order.placed", "order.delivered"]))]
    pub event_types: Vec<String>,
}

/// A change of an endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    /// False stops deliveries (events meanwhile are skipped, not kept);
    /// true resumes them with the next event, also after a 410 Gone.
    pub enabled: bool,
}

/// An endpoint as listed (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookResponse {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    /// False after a 410 Gone from the receiver or when an admin disabled
    /// it (see `disabled_reason`).
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl From<&Endpoint> for WebhookResponse {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id.0,
            url: e.url.to_string(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            created_at_ms: e.created_at_ms,
            updated_at_ms: e.updated_at_ms,
        }
    }
}

/// A new endpoint, with its signing secret: shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// The HMAC-SHA256 key of `Hexdash-Signature` (`whsec_` and 64 hex
    /// digits, used as text). Not shown again.
    pub secret: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListWebhooksQuery {
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The last `id` of the previous page.
    pub after: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookResponse>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveriesQuery {
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The last `id` of the previous page.
    #[param(minimum = 1)]
    pub before: Option<i64>,
}

/// One attempt to deliver one event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: i64,
    /// The event's global id (`Hexdash-Event-Id`).
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first attempt at this event, then 2, 3 …
    pub attempt: i64,
    pub attempted_at_ms: i64,
    /// `delivered`, `gone`, `http_error`, `timeout`, `connect_error`,
    /// `request_error` (`tls_unsupported`: rows older builds wrote).
    pub outcome: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryResponse>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

fn webhooks(state: &AppState) -> ApiResult<&Webhooks> {
    state
        .webhooks
        .as_ref()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("webhooks are not running")))
}

fn internal(e: crate::hooks::Error) -> ApiError {
    ApiError::internal(e)
}

fn page_limit(limit: Option<u32>) -> ApiResult<u32> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ))
    }
}

#[utoipa::path(
    post,
    path = "/v1/admin/webhooks",
    tag = "webhooks",
    summary = "Register a webhook endpoint",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Registered and enabled; deliveries start with the next event (no history). The secret is shown only here.", body = CreatedWebhook),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_webhook`: the URL is not an absolute http(s) URL with a host and without credentials, or an event type is unknown, listed twice, or none is given; the message says which.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_webhook(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<NewWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    require_role(&principal, &[Role::Admin])?;
    let hooks = webhooks(&state)?;
    let spec = EndpointSpec::parse(&req.url, &req.event_types, |t| {
        events::EventType::parse(t).is_some()
    })
    .map_err(|e| ApiError::unprocessable("invalid_webhook", e.to_string()))?;
    let endpoint = hooks
        .register(spec, state.ids.next())
        .await
        .map_err(internal)?;
    tracing::info!(webhook = %endpoint.id, by = %principal.user_id, "webhook endpoint registered");
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: WebhookResponse::from(&endpoint),
            secret: endpoint.secret.expose().to_owned(),
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/admin/webhooks",
    tag = "webhooks",
    summary = "List webhook endpoints",
    params(ListWebhooksQuery),
    responses(
        (status = 200, description = "Endpoints, oldest first, without secrets.", body = WebhookList),
        (status = 400, description = "`invalid_limit` (1 to 200), `invalid_query`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_webhooks(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<ListWebhooksQuery>,
) -> ApiResult<Json<WebhookList>> {
    require_role(&principal, &[Role::Admin])?;
    let limit = page_limit(query.limit)?;
    let hooks = webhooks(&state)?;
    let page = hooks
        .list(query.after.map(EndpointId), limit)
        .await
        .map_err(internal)?;
    let next_after = (page.len() == limit as usize)
        .then(|| page.last().map(|e| e.id.0))
        .flatten();
    Ok(Json(WebhookList {
        webhooks: page.iter().map(WebhookResponse::from).collect(),
        next_after,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "Get a webhook endpoint",
    params(("webhook_id" = uuid::Uuid, Path, description = "The endpoint.")),
    responses(
        (status = 200, description = "The endpoint, without its secret.", body = WebhookResponse),
        (status = 400, description = "`invalid_path` (the id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such endpoint.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_webhook(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(webhook_id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let endpoint = webhooks(&state)?
        .get(EndpointId(webhook_id))
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(Json(WebhookResponse::from(&endpoint)))
}

#[utoipa::path(
    patch,
    path = "/v1/admin/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "Enable or disable a webhook endpoint",
    params(("webhook_id" = uuid::Uuid, Path, description = "The endpoint.")),
    request_body = WebhookUpdate,
    responses(
        (status = 200, description = "The endpoint as it is now. Disabled: nothing is sent and events meanwhile are skipped (`disabled_reason` says an admin did it). Enabled: deliveries resume with the next event.", body = WebhookResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_path` (the id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such endpoint.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn update_webhook(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(webhook_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<WebhookUpdate>,
) -> ApiResult<Json<WebhookResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let endpoint = webhooks(&state)?
        .set_enabled(EndpointId(webhook_id), req.enabled)
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound("webhook"))?;
    tracing::info!(webhook = %webhook_id, enabled = req.enabled, by = %principal.user_id, "webhook endpoint changed");
    Ok(Json(WebhookResponse::from(&endpoint)))
}

#[utoipa::path(
    delete,
    path = "/v1/admin/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "Delete a webhook endpoint",
    params(("webhook_id" = uuid::Uuid, Path, description = "The endpoint.")),
    responses(
        (status = 204, description = "Deleted: its deliveries stop (one in flight is abandoned), and its delivery log, position and dead letters are dropped."),
        (status = 400, description = "`invalid_path` (the id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such endpoint.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn delete_webhook(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(webhook_id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    require_role(&principal, &[Role::Admin])?;
    if webhooks(&state)?
        .delete(EndpointId(webhook_id))
        .await
        .map_err(internal)?
    {
        tracing::info!(webhook = %webhook_id, by = %principal.user_id, "webhook endpoint deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("webhook"))
    }
}

#[utoipa::path(
    get,
    path = "/v1/admin/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    summary = "An endpoint's delivery log",
    params(("webhook_id" = uuid::Uuid, Path, description = "The endpoint."), ListDeliveriesQuery),
    responses(
        (status = 200, description = "Every attempt, newest first.", body = DeliveryList),
        (status = 400, description = "`invalid_path` (the id is not a UUID), `invalid_limit` (1 to 200), `invalid_query` (`before` below 1 or not an integer).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such endpoint.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_deliveries(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(webhook_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ListDeliveriesQuery>,
) -> ApiResult<Json<DeliveryList>> {
    require_role(&principal, &[Role::Admin])?;
    let limit = page_limit(query.limit)?;
    let before = super::events::at_least(query.before, 1, "before")?;
    let hooks = webhooks(&state)?;
    let id = EndpointId(webhook_id);
    if hooks.get(id).await.map_err(internal)?.is_none() {
        return Err(ApiError::NotFound("webhook"));
    }
    let page = hooks
        .deliveries(id, before, limit)
        .await
        .map_err(internal)?;
    let next_before = (page.len() == limit as usize)
        .then(|| page.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeliveryList {
        deliveries: page
            .into_iter()
            .map(|d| DeliveryResponse {
                id: d.id,
                event_id: d.event_id,
                event_type: d.event_type,
                attempt: d.attempt,
                attempted_at_ms: d.attempted_at_ms,
                outcome: d.outcome.as_str().to_owned(),
                http_status: d.http_status,
                error: d.error,
                duration_ms: d.duration_ms,
            })
            .collect(),
        next_before,
    }))
}
