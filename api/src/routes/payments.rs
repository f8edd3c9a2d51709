//! An order's payments: `GET /v1/orders/{order_id}/payments` (its parties)
//! and `POST /v1/orders/{order_id}/refund` (admin: a full or partial
//! refund).
//!
//! A refund never exceeds what was charged minus what was refunded or is
//! being refunded: the store checks it with the order locked, so concurrent
//! refunds cannot overdraw. The gateway is called before the answer; a
//! refund it refuses comes back `failed` and its amount is refundable
//! again; one it cannot be reached for comes back `pending` and is retried
//! in the background (see `payments`).

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use commerce::usecase::refund::RefundAsk;
use engine::{OrderId, PaymentId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{require_role, required_text};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::Payment;

pub(crate) const MAX_REASON_CHARS: usize = 500;
/// Largest refund one request may ask for, cents: more than any order can
/// total (100 lines of 99 at the highest price), so only nonsense is
/// refused here; the store refuses more than was paid.
pub(crate) const MAX_REFUND_CENTS: i64 = 100_000_000_000;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/orders/{order_id}/payments" => list_payments),
    route!(Post "/v1/orders/{order_id}/refund" => refund),
];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Absent or null: everything still refundable.
    #[schema(minimum = 1, maximum = 100000000000.0)]
    pub amount_cents: Option<i64>,
    /// Trimmed.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentResponse {
    #[schema(value_type = String, format = Uuid)]
    pub payment_id: PaymentId,
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    /// `charge` or `refund`.
    pub kind: String,
    pub amount_cents: i64,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub method: String,
    pub gateway_ref: Option<String>,
    pub failure: Option<String>,
    pub reason: Option<String>,
    pub attempts: i64,
    /// Background retry rounds so far (a refund the gateway could not be
    /// reached for is retried by itself, with backoff).
    pub retries: i64,
    /// When the next background retry is due (Unix ms); set only while a
    /// pending refund waits for one.
    pub retry_at: Option<i64>,
    /// Who asked for it; null for the system (compensations).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub actor_id: Option<UserId>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Payment> for PaymentResponse {
    fn from(p: Payment) -> Self {
        Self {
            payment_id: p.id,
            order_id: p.order_id,
            kind: p.kind.as_str().to_owned(),
            amount_cents: p.amount_cents,
            status: p.status.as_str().to_owned(),
            method: p.method,
            gateway_ref: p.gateway_ref,
            failure: p.failure,
            reason: p.reason,
            attempts: p.attempts,
            retries: p.retries,
            retry_at: p.retry_at_ms,
            actor_id: p.actor_id,
            created_at: p.created_at_ms,
            updated_at: p.updated_at_ms,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentList {
    pub payments: Vec<PaymentResponse>,
}

#[utoipa::path(
    get,
    path = "/v1/orders/{order_id}/payments",
    tag = "payments",
    summary = "List an order's payments",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "The order's charge and refunds, oldest first.", body = PaymentList),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or the caller is not a party to it (ids do not reveal which orders exist).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_payments(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
) -> ApiResult<Json<PaymentList>> {
    let payments =
        commerce::usecase::visible_payments(state.store.as_ref(), &principal, order_id).await?;
    Ok(Json(PaymentList {
        payments: payments.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/orders/{order_id}/refund",
    tag = "payments",
    summary = "Refund an order (in full or in part)",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    request_body = RefundBody,
    responses(
        (status = 201, description = "The refund, after the gateway answered: `succeeded`; `failed` (declined: its amount is refundable again); or `pending` (the gateway could not be reached: retried in the background until it goes through or the retries run out, `retry_at` says when next; its amount stays owed).", body = PaymentResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_reason` (1 to 500 characters), `invalid_amount` (1 to 100000000000).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`refund_exceeds_paid`: more than is still refundable (with `refundable_cents`).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn refund(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<RefundBody>,
) -> ApiResult<(StatusCode, Json<PaymentResponse>)> {
    require_role(&principal, &[Role::Admin])?;
    let reason = required_text("invalid_reason", "reason", &req.reason, MAX_REASON_CHARS)?;
    if req
        .amount_cents
        .is_some_and(|a| !(1..=MAX_REFUND_CENTS).contains(&a))
    {
        return Err(ApiError::bad_request(
            "invalid_amount",
            format!("amount_cents must be between 1 and {MAX_REFUND_CENTS}"),
        ));
    }
    let ask = RefundAsk {
        order_id,
        amount_cents: req.amount_cents,
        reason,
        actor_id: principal.user_id,
    };
    let refund =
        commerce::usecase::refund::refund(&state.saga(), ask, state.clock.now_ms()).await?;
    Ok((StatusCode::CREATED, Json(refund.into())))
}
