//! Restaurants: `POST /v1/restaurants` (restaurant or admin role; the caller
//! becomes the owner) and `GET /v1/restaurants/{restaurant_id}` (anyone
//! signed in). Search, editing and menus come with the Commerce issue.

use ::auth::{Authenticated, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::{RestaurantId, UserId};
use serde::{Deserialize, Serialize};

use super::{MAX_ADDRESS_CHARS, MAX_NAME_CHARS, Point, require_role, required_text};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::store::Restaurant;
use crate::{AppState, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/restaurants", post(create_restaurant))
        .route("/v1/restaurants/{restaurant_id}", get(get_restaurant))
}

#[derive(Debug, Deserialize)]
pub struct CreateRestaurantRequest {
    pub name: String,
    pub location: Point,
    pub address: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RestaurantResponse {
    pub restaurant_id: RestaurantId,
    pub owner_id: UserId,
    pub name: String,
    pub location: Point,
    pub address: String,
    /// Unix ms.
    pub created_at: i64,
}

impl From<Restaurant> for RestaurantResponse {
    fn from(r: Restaurant) -> Self {
        Self {
            restaurant_id: r.id,
            owner_id: r.owner_id,
            name: r.name,
            location: r.location.into(),
            address: r.address,
            created_at: r.created_at_ms,
        }
    }
}

async fn create_restaurant(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<CreateRestaurantRequest>,
) -> ApiResult<(StatusCode, Json<RestaurantResponse>)> {
    require_role(&principal, &[Role::Restaurant, Role::Admin])?;
    let restaurant = Restaurant {
        id: RestaurantId::new(),
        owner_id: principal.user_id,
        name: required_text("invalid_name", "name", &req.name, MAX_NAME_CHARS)?,
        location: req.location.to_lat_lng("location")?,
        address: required_text(
            "invalid_address",
            "address",
            &req.address,
            MAX_ADDRESS_CHARS,
        )?,
        created_at_ms: now_ms(),
    };
    state.store.insert_restaurant(&restaurant).await?;
    Ok((StatusCode::CREATED, Json(restaurant.into())))
}

async fn get_restaurant(
    State(state): State<AppState>,
    Authenticated(_): Authenticated,
    ApiPath(restaurant_id): ApiPath<RestaurantId>,
) -> ApiResult<Json<RestaurantResponse>> {
    let restaurant = state
        .store
        .restaurant(restaurant_id)
        .await?
        .ok_or(ApiError::NotFound("restaurant"))?;
    Ok(Json(restaurant.into()))
}
