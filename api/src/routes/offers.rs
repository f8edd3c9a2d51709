//! A driver's answer to an offer the matcher made:
//! `POST /v1/offers/{offer_id}/accept` and `/decline` (driver role, the
//! driver the offer was made to).
//!
//! Accepting assigns the order in the engine first (atomic there, so of
//! many concurrent accepts exactly one wins), then records the assignment
//! in the store with a compare-and-set (`driver_id IS NULL`). If the store
//! refuses or fails, the engine assignment is undone and the order goes
//! back to the matcher if it still wants a driver.
//!
//! | matcher says                    | status | code               |
//! |---------------------------------|--------|--------------------|
//! | no such offer                   | 404    | `not_found`        |
//! | made to another driver          | 403    | `forbidden`        |
//! | no longer pending               | 409    | `offer_not_pending` (+ `offer_state`) |
//! | driver already holds an order   | 409    | `driver_busy`      |
//! | order taken or closed meanwhile | 409    | `order_unavailable`|
//! | the offer's node lost its region| 409    | `lease_lost`       |
//! | the offer's node is unreachable | 503    | `offer_owner_unreachable` |
//!
//! In a cluster the answer is forwarded to the node whose matcher made
//! the offer (see [`crate::answers`]); the driver gets that node's answer.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use commerce::usecase;
use engine::{OfferId, OrderId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::require_role;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::{AppState, answers};

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Post "/v1/offers/{offer_id}/accept" => accept_offer),
    route!(Post "/v1/offers/{offer_id}/decline" => decline_offer),
];

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AcceptResponse {
    #[schema(value_type = String, format = Uuid)]
    pub offer_id: OfferId,
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    /// `"accepted"`.
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeclineResponse {
    #[schema(value_type = String, format = Uuid)]
    pub offer_id: OfferId,
    /// `"declined"`.
    pub status: String,
}

#[utoipa::path(
    post,
    path = "/v1/offers/{offer_id}/accept",
    tag = "offers",
    summary = "Accept an offer",
    params(("offer_id" = uuid::Uuid, Path, description = "The offer.")),
    responses(
        (status = 200, description = "Accepted: the order is the driver's (its `driver_id` is set).", body = AcceptResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not a driver, or the offer was made to another driver.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such offer.", body = ErrorBody),
        (status = 409, description = "`offer_not_pending` (with `offer_state`), `driver_busy` (the driver already holds an order), `order_unavailable` (taken or closed meanwhile), `lease_lost` (in a cluster: the node that made the offer no longer dispatches the order's region; the order is offered again).", body = ErrorBody),
        (status = 503, description = "`offer_owner_unreachable` (in a cluster: the node that made the offer does not answer; try again, or wait for the offer to lapse).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn accept_offer(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Authenticated(principal): Authenticated,
    ApiPath(offer_id): ApiPath<OfferId>,
) -> ApiResult<Response> {
    require_role(&principal, &[Role::Driver])?;
    if let Some(response) = answers::forwarded(&state, offer_id, &headers, &uri).await {
        return Ok(response);
    }
    let live = state.live();
    let order_id = usecase::offer::accept(
        state.store.as_ref(),
        &live,
        &live,
        offer_id,
        principal.user_id.into(),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(AcceptResponse {
        offer_id,
        order_id,
        status: "accepted".to_owned(),
    })
    .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/offers/{offer_id}/decline",
    tag = "offers",
    summary = "Decline an offer",
    params(("offer_id" = uuid::Uuid, Path, description = "The offer.")),
    responses(
        (status = 200, description = "Declined; the order goes to another driver.", body = DeclineResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not a driver, or the offer was made to another driver.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such offer.", body = ErrorBody),
        (status = 409, description = "`offer_not_pending` (with `offer_state`).", body = ErrorBody),
        (status = 503, description = "`offer_owner_unreachable` (in a cluster: the node that made the offer does not answer; try again, or wait for the offer to lapse).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn decline_offer(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Authenticated(principal): Authenticated,
    ApiPath(offer_id): ApiPath<OfferId>,
) -> ApiResult<Response> {
    require_role(&principal, &[Role::Driver])?;
    if let Some(response) = answers::forwarded(&state, offer_id, &headers, &uri).await {
        return Ok(response);
    }
    usecase::offer::decline(
        &state.live(),
        offer_id,
        principal.user_id.into(),
        state.clock.now_ms(),
    )?;
    Ok(Json(DeclineResponse {
        offer_id,
        status: "declined".to_owned(),
    })
    .into_response())
}
