//! A dispatcher's interventions (admin role):
//!
//! | route                                          | what                                  |
//! |------------------------------------------------|---------------------------------------|
//! | `POST /v1/admin/orders/{order_id}/cancel`      | force-cancel at any open stage, refunded |
//! | `POST /v1/admin/orders/{order_id}/reassign`    | to a chosen driver, or back to the matcher |
//! | `POST /v1/admin/drivers/{driver_id}/offline`   | set a driver offline, withdrawing its offer |
//!
//! Each parses, calls `commerce::usecase::dispatcher` and maps the outcome;
//! the rules (who can be given an order, the one-driver guard, the refund
//! owed once) are the use-case's.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use commerce::usecase::dispatcher as usecase;
use engine::{DriverId, DriverStatus, OrderId, OrderStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::orders::{OrderResponse, order_response};
use super::payments::{MAX_REASON_CHARS, PaymentResponse};
use super::{explicit_null, require_role, required_text};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Post "/v1/admin/orders/{order_id}/cancel" => force_cancel_order),
    route!(Post "/v1/admin/orders/{order_id}/reassign" => reassign_order),
    route!(Post "/v1/admin/drivers/{driver_id}/offline" => set_driver_offline),
];

// ---- wire types ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForceCancelRequest {
    /// Why (trimmed; kept on the refund).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ForceCancelResponse {
    /// The order as it is now (`cancelled`).
    pub order: OrderResponse,
    /// The status it was cancelled from; null when it was already
    /// cancelled (a retry: nothing changed, nothing more refunded).
    #[schema(value_type = Option<crate::openapi::OrderStatus>)]
    pub cancelled_from: Option<OrderStatus>,
    /// True when the order was already cancelled before this request.
    pub already_cancelled: bool,
    /// The refund this cancellation made (after the gateway's first
    /// answer: `succeeded`, `failed`, or `pending` and retried in the
    /// background); null when nothing was paid or the order was already
    /// cancelled. `GET /v1/orders/{order_id}/payments` lists every refund.
    pub refund: Option<PaymentResponse>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// The driver to give the order to (online, free, not banned); `null`
    /// sends it back to the matcher, which offers it to other drivers
    /// before the one it was taken from. Required: `null` must be written.
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<String>, format = Uuid, required = true)]
    pub driver_id: Option<Option<DriverId>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReassignResponse {
    /// The order as it is now.
    pub order: OrderResponse,
    /// The driver it was taken from; null if it had none (it was with the
    /// matcher).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub driver_from: Option<DriverId>,
    /// The driver it has now; null: back with the matcher.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub driver_id: Option<DriverId>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriverOfflineResponse {
    #[schema(value_type = String, format = Uuid)]
    pub driver_id: DriverId,
    /// Its live status now: `offline`, or `busy` while it still holds an
    /// order (reassign the order to free it).
    #[schema(value_type = crate::openapi::DriverStatus)]
    pub status: DriverStatus,
    /// The order whose pending offer to the driver was withdrawn (it is
    /// offered to another driver); null if the driver held no offer.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub withdrawn_offer_order_id: Option<OrderId>,
    /// The order the driver still holds, if any.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub current_order: Option<OrderId>,
}

// ---- handlers ----

#[utoipa::path(
    post,
    path = "/v1/admin/orders/{order_id}/cancel",
    tag = "admin",
    summary = "Force-cancel an order",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    request_body = ForceCancelRequest,
    responses(
        (status = 200, description = "Cancelled from whatever open status it was in (its driver freed, stock given back), with the refund of everything paid and not yet refunded. Retrying answers the cancelled order with `already_cancelled: true` and refunds nothing more.", body = ForceCancelResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_reason` (1 to 500 characters).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order.", body = ErrorBody),
        (status = 409, description = "`illegal_transition`: the order is closed otherwise (`delivered`, `rejected`, `payment_failed`; with `current_status`); refund it with `POST /v1/orders/{order_id}/refund`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn force_cancel_order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<ForceCancelRequest>,
) -> ApiResult<Json<ForceCancelResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let reason = required_text("invalid_reason", "reason", &req.reason, MAX_REASON_CHARS)?;
    let saga = state.saga();
    let done = usecase::force_cancel(
        &saga,
        principal.user_id,
        order_id,
        &reason,
        state.clock.now_ms(),
    )
    .await?;
    let charge = commerce::usecase::charge_of(state.store.as_ref(), order_id).await?;
    Ok(Json(ForceCancelResponse {
        already_cancelled: done.from.is_none(),
        cancelled_from: done.from,
        refund: done.refund.map(Into::into),
        order: order_response(&state, done.order, charge.as_ref()),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/admin/orders/{order_id}/reassign",
    tag = "admin",
    summary = "Reassign an order",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    request_body = ReassignRequest,
    responses(
        (status = 200, description = "Reassigned: the old driver (if any) is freed and its offer or assignment ends, `order.reassigned` is written (`driver_from` the old driver); the new driver has the order at once, or the matcher looks for one again (other drivers before the old one). Never two drivers on one order: of a reassignment and a racing accept, one wins and the other is refused.", body = ReassignResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_driver` (`driver_id` missing: write `null` to send the order back to the matcher).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or no driver account with that id.", body = ErrorBody),
        (status = 409, description = "`not_reassignable` (only accepted, preparing or ready-for-pickup orders; with `current_status`), `already_assigned` (the order is that driver's), `not_assigned` (no driver to take it from and none given), `driver_busy` (the new driver holds another order; with `held_order_id`), `driver_offline`, `driver_banned`, `driver_changed` (a driver accepted it or another dispatcher moved it meanwhile; with `current_driver_id`): read the order and try again.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn reassign_order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<ReassignRequest>,
) -> ApiResult<Json<ReassignResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let Some(to) = req.driver_id else {
        return Err(ApiError::bad_request(
            "invalid_driver",
            "driver_id is required: a driver's id, or null to send the order back to the matcher",
        ));
    };
    let live = state.live();
    let done = usecase::reassign(
        state.store.as_ref(),
        &live,
        &live,
        principal.user_id,
        order_id,
        to,
        state.clock.now_ms(),
    )
    .await?;
    let charge = commerce::usecase::charge_of(state.store.as_ref(), order_id).await?;
    Ok(Json(ReassignResponse {
        driver_from: done.from,
        driver_id: done.order.driver_id,
        order: order_response(&state, done.order, charge.as_ref()),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/admin/drivers/{driver_id}/offline",
    tag = "admin",
    summary = "Set a driver offline",
    params(("driver_id" = uuid::Uuid, Path, description = "The driver (its user id).")),
    responses(
        (status = 200, description = "Declared offline (until the driver declares itself available again); its pending offer, if any, is withdrawn and the order offered to another driver. An order it holds stays its own: reassign it to take it away.", body = DriverOfflineResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 404, description = "`not_found`: no driver account with this id.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn set_driver_offline(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(driver_id): ApiPath<DriverId>,
) -> ApiResult<Json<DriverOfflineResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let live = state.live();
    let done =
        usecase::set_driver_offline(state.store.as_ref(), &live, driver_id, state.clock.now_ms())
            .await?;
    Ok(Json(DriverOfflineResponse {
        driver_id,
        status: done.status,
        withdrawn_offer_order_id: done.withdrawn_offer_order,
        current_order: done.current_order,
    }))
}
