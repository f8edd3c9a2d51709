//! Admin actions on accounts: `POST /v1/admin/users/{user_id}/ban` and
//! `/unban` (admin role).
//!
//! A ban is stored (so it survives restarts and reaches every node on its
//! next start) and applied to this node's token checker at once: every
//! access token of the user stops working on REST, WebSocket and MQTT
//! connects, and every refresh token is revoked. Admins cannot be banned
//! (an admin locking out every admin would need database surgery). The
//! rules are `commerce::usecase::ban`'s.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use commerce::usecase::ban as usecase;
use engine::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::require_role;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Post "/v1/admin/users/{user_id}/ban" => ban),
    route!(Post "/v1/admin/users/{user_id}/unban" => unban),
];

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BanResponse {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub banned: bool,
    /// Unix ms of the ban; absent when not banned.
    pub banned_at: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/v1/admin/users/{user_id}/ban",
    tag = "admin",
    summary = "Ban a user",
    params(("user_id" = uuid::Uuid, Path, description = "The user to ban.")),
    responses(
        (status = 200, description = "Banned (banning again keeps the first ban time). Every token of the user stops working at once, on REST, WebSocket and MQTT; refresh tokens are revoked.", body = BanResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin, or the target is an admin (admins cannot be banned).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn ban(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(user_id): ApiPath<UserId>,
) -> ApiResult<Json<BanResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let user = usecase::ban(
        state.store.as_ref(),
        &state.tokens,
        principal.user_id,
        user_id,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(BanResponse {
        user_id,
        banned: true,
        banned_at: user.banned_at_ms,
    }))
}

#[utoipa::path(
    post,
    path = "/v1/admin/users/{user_id}/unban",
    tag = "admin",
    summary = "Unban a user",
    params(("user_id" = uuid::Uuid, Path, description = "The user to unban.")),
    responses(
        (status = 200, description = "Not banned (any more).", body = BanResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn unban(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(user_id): ApiPath<UserId>,
) -> ApiResult<Json<BanResponse>> {
    require_role(&principal, &[Role::Admin])?;
    usecase::unban(
        state.store.as_ref(),
        &state.tokens,
        principal.user_id,
        user_id,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(BanResponse {
        user_id,
        banned: false,
        banned_at: None,
    }))
}
