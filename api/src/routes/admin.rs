//! Admin actions on accounts: `POST /v1/admin/users/{user_id}/ban` and
//! `/unban` (admin role).
//!
//! A ban is stored (so it survives restarts and reaches every node on its
//! next start) and applied to this node's token checker at once: every
//! access token of the user stops working on REST, WebSocket and MQTT
//! connects, and every refresh token is revoked. Admins cannot be banned
//! (an admin locking out every admin would need database surgery).

use ::auth::{Authenticated, Role};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use engine::UserId;
use serde::{Deserialize, Serialize};

use super::require_role;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::{AppState, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/users/{user_id}/ban", post(ban))
        .route("/v1/admin/users/{user_id}/unban", post(unban))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BanResponse {
    pub user_id: UserId,
    pub banned: bool,
    /// Unix ms of the ban; absent when not banned.
    pub banned_at: Option<i64>,
}

async fn ban(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(user_id): ApiPath<UserId>,
) -> ApiResult<Json<BanResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let target = state
        .store
        .user(user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if target.role == Role::Admin {
        return Err(ApiError::forbidden("admins cannot be banned"));
    }
    // Keep the first ban time if already banned.
    let at = target.banned_at_ms.unwrap_or_else(now_ms);
    let user = state
        .store
        .set_banned(user_id, Some(at))
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    state.tokens.ban(user_id);
    metrics::counter!("hexdash_bans_total").increment(1);
    tracing::info!(%user_id, by = %principal.user_id, "user banned");
    Ok(Json(BanResponse {
        user_id,
        banned: true,
        banned_at: user.banned_at_ms,
    }))
}

async fn unban(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(user_id): ApiPath<UserId>,
) -> ApiResult<Json<BanResponse>> {
    require_role(&principal, &[Role::Admin])?;
    state
        .store
        .set_banned(user_id, None)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    state.tokens.unban(user_id);
    tracing::info!(%user_id, by = %principal.user_id, "user unbanned");
    Ok(Json(BanResponse {
        user_id,
        banned: false,
        banned_at: None,
    }))
}
