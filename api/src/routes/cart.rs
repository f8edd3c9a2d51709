//! The server-side cart: one per customer, items from one restaurant,
//! checked out into an order.
//!
//! | route                                         | who      |
//! |-----------------------------------------------|----------|
//! | `GET /v1/cart`, `DELETE /v1/cart` (clear)     | customer |
//! | `POST /v1/cart/items` (add to a line)         | customer |
//! | `PUT /v1/cart/items/{menu_item_id}` (set quantity; 0 removes) | customer |
//! | `DELETE /v1/cart/items/{menu_item_id}`        | customer |
//! | `POST /v1/cart/checkout`                      | customer |
//!
//! Adding an item of another restaurant than the cart's answers 409
//! `cart_has_other_restaurant` (clear the cart first). Checkout places the
//! cart's lines as an order exactly like `POST /v1/orders` (same checks,
//! `Idempotency-Key`, payment) and empties the cart in the same
//! transaction.

use ::auth::{Authenticated, Principal, Role};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use engine::{MenuItemId, RestaurantId};
use serde::{Deserialize, Serialize};

use super::orders::{
    DeliveryRequest, MAX_QUANTITY, OrderResponse, PaymentRequest, Placement, digest, place,
    replay_if_known,
};
use super::require_role;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, IdempotencyHeader};
use crate::store::{Cart, CartChange, CartOutcome, IdempotencyKey};
use crate::{AppState, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/cart", get(get_cart).delete(clear_cart))
        .route("/v1/cart/items", post(add_item))
        .route(
            "/v1/cart/items/{menu_item_id}",
            put(set_quantity).delete(remove_item),
        )
        .route("/v1/cart/checkout", post(checkout))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItemRequest {
    pub menu_item_id: MenuItemId,
    #[serde(default = "one")]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQuantityRequest {
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub delivery: DeliveryRequest,
    pub payment: PaymentRequest,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CartResponse {
    pub restaurant_id: Option<RestaurantId>,
    pub items: Vec<CartLineResponse>,
    /// Sum of the lines at today's menu prices (the order is priced again
    /// when placed).
    pub subtotal_cents: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CartLineResponse {
    pub menu_item_id: MenuItemId,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: i64,
    /// Whether the item can be ordered now (available; enough stock).
    pub orderable: bool,
}

impl From<Cart> for CartResponse {
    fn from(cart: Cart) -> Self {
        let items: Vec<CartLineResponse> = cart
            .lines
            .into_iter()
            .map(|l| CartLineResponse {
                orderable: l.item.available && l.item.stock.is_none_or(|s| s >= l.quantity),
                menu_item_id: l.item.id,
                name: l.item.name,
                unit_price_cents: l.item.price_cents,
                quantity: l.quantity,
            })
            .collect();
        Self {
            restaurant_id: cart.restaurant_id,
            subtotal_cents: items
                .iter()
                .map(|l| l.unit_price_cents.saturating_mul(l.quantity))
                .sum(),
            items,
        }
    }
}

async fn get_cart(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    Ok(Json(state.store.cart(principal.user_id).await?.into()))
}

async fn add_item(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<AddItemRequest>,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    check_quantity(req.quantity, 1)?;
    let restaurant_id = item_restaurant(&state, req.menu_item_id).await?;
    change(
        &state,
        &principal,
        CartChange::Add {
            item: req.menu_item_id,
            restaurant_id,
            quantity: req.quantity,
        },
    )
    .await
}

async fn set_quantity(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(menu_item_id): ApiPath<MenuItemId>,
    ApiJson(req): ApiJson<SetQuantityRequest>,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    check_quantity(req.quantity, 0)?;
    let restaurant_id = item_restaurant(&state, menu_item_id).await?;
    change(
        &state,
        &principal,
        CartChange::Set {
            item: menu_item_id,
            restaurant_id,
            quantity: req.quantity,
        },
    )
    .await
}

async fn remove_item(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(menu_item_id): ApiPath<MenuItemId>,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    change(&state, &principal, CartChange::Remove(menu_item_id)).await
}

async fn clear_cart(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    change(&state, &principal, CartChange::Clear).await
}

async fn checkout(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdempotencyHeader(key): IdempotencyHeader,
    ApiJson(req): ApiJson<CheckoutRequest>,
) -> ApiResult<(StatusCode, HeaderMap, Json<OrderResponse>)> {
    require_role(&principal, &[Role::Customer])?;
    // The key is bound to the checkout request; a retry replays even
    // though the first attempt emptied the cart.
    let request_hash = digest(&("checkout", &req))?;
    let idempotency = key.map(|key| IdempotencyKey { key, request_hash });
    if let Some(replayed) = replay_if_known(&state, &principal, idempotency.as_ref()).await? {
        return Ok(replayed);
    }
    let cart = state.store.cart(principal.user_id).await?;
    let Some(restaurant_id) = cart.restaurant_id else {
        return Err(ApiError::unprocessable("cart_empty", "the cart is empty"));
    };
    let items: Vec<(MenuItemId, i64)> =
        cart.lines.iter().map(|l| (l.item.id, l.quantity)).collect();
    place(
        &state,
        &principal,
        Placement {
            restaurant_id,
            items,
            delivery: req.delivery,
            payment: req.payment,
            idempotency,
            from_cart: true,
        },
    )
    .await
}

async fn change(
    state: &AppState,
    principal: &Principal,
    change: CartChange,
) -> ApiResult<Json<CartResponse>> {
    match state
        .store
        .change_cart(principal.user_id, change, MAX_QUANTITY, now_ms())
        .await?
    {
        CartOutcome::Changed(cart) => Ok(Json(cart.into())),
        CartOutcome::OtherRestaurant(other) => Err(ApiError::Conflict {
            code: "cart_has_other_restaurant",
            message: "the cart holds items of another restaurant; clear it first".to_owned(),
            detail: Some(("restaurant_id", other.to_string())),
        }),
        CartOutcome::TooMany => Err(ApiError::bad_request(
            "invalid_quantity",
            format!("at most {MAX_QUANTITY} of one item"),
        )),
    }
}

/// The restaurant of a menu item (404 if there is no such item).
async fn item_restaurant(state: &AppState, item: MenuItemId) -> ApiResult<RestaurantId> {
    Ok(state
        .store
        .menu_item(item)
        .await?
        .ok_or(ApiError::NotFound("menu item"))?
        .restaurant_id)
}

fn check_quantity(quantity: i64, min: i64) -> ApiResult<()> {
    if (min..=MAX_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_quantity",
            format!("quantity must be between {min} and {MAX_QUANTITY}"),
        ))
    }
}
