//! The server-side cart: one per customer, items from one restaurant,
//! checked out into an order.
//!
//! | route                                         | who      |
//! |-----------------------------------------------|----------|
//! | `GET /v1/cart?lat=&lng=` (with a quote for the point), `DELETE /v1/cart` (clear) | customer |
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
//!
//! `GET /v1/cart` with the delivery point (`lat`, `lng`) quotes the cart's
//! restaurant for it (`commerce::usecase::quote`): `eta_s` and the
//! delivery fee checkout would charge for that point now.

use ::auth::{Authenticated, Principal, Role};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use commerce::usecase::cart::{self as usecase, Edit};
use engine::{MenuItemId, RestaurantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::orders::{
    DeliveryRequest, MAX_QUANTITY, OrderResponse, PaymentRequest, Placement, digest, place,
    replay_if_known,
};
use super::require_role;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, IdempotencyHeader};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::{Cart, IdempotencyKey};

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/cart" => get_cart),
    route!(Delete "/v1/cart" => clear_cart),
    route!(Post "/v1/cart/items" => add_item),
    route!(Put "/v1/cart/items/{menu_item_id}" => set_quantity),
    route!(Delete "/v1/cart/items/{menu_item_id}" => remove_item),
    route!(Post "/v1/cart/checkout" => checkout),
];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItemRequest {
    #[schema(value_type = String, format = Uuid)]
    pub menu_item_id: MenuItemId,
    /// Added to the line's quantity (default 1); a line holds at most 99.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantityRequest {
    /// 0 removes the line.
    #[schema(minimum = 0, maximum = 99)]
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub delivery: DeliveryRequest,
    pub payment: PaymentRequest,
}

/// `GET /v1/cart`'s optional delivery point: both or neither.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CartQuery {
    /// Degrees north of the delivery point (with `lng`): quotes the cart
    /// for it.
    #[param(minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Degrees east of the delivery point (with `lat`).
    #[param(minimum = -180, maximum = 180)]
    pub lng: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CartResponse {
    #[schema(value_type = Option<String>, format = Uuid)]
    pub restaurant_id: Option<RestaurantId>,
    pub items: Vec<CartLineResponse>,
    /// Sum of the lines at today's menu prices (the order is priced again
    /// when placed).
    pub subtotal_cents: i64,
    /// The cart's restaurant quoted for the delivery point of `GET
    /// /v1/cart?lat=&lng=`: the fee checkout would charge there now, and
    /// the ETA. `null` without a point or for an empty cart (and in the
    /// answers to edits).
    pub quote: Option<contract::Quote>,
    /// With a quote: whether the restaurant delivers to the point
    /// (checkout would otherwise answer `outside_delivery_area`).
    pub deliverable: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CartLineResponse {
    #[schema(value_type = String, format = Uuid)]
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
            quote: None,
            deliverable: None,
        }
    }
}

/// A use-case's quote as the wire's.
pub(crate) fn quote_body(q: commerce::usecase::quote::Quote) -> contract::Quote {
    contract::Quote {
        eta_s: q.eta_s,
        delivery_fee_cents: q.delivery_fee_cents,
        // Decimetres are the road graph's precision.
        distance_m: (q.distance_m * 10.0).round() / 10.0,
        on_roads: q.on_roads,
        prep_s: q.prep_s,
        courier_to_restaurant_s: q.courier_s,
        courier_found: q.courier_found,
        restaurant_to_door_s: q.to_door_s,
    }
}

#[utoipa::path(
    get,
    path = "/v1/cart",
    tag = "cart",
    summary = "Get my cart",
    params(CartQuery),
    responses(
        (status = 200, description = "The caller's cart (empty if none); with `lat` and `lng`, quoted for that delivery point (`quote`, `deliverable`).", body = CartResponse),
        (status = 400, description = "`invalid_location`: `lat` or `lng` out of range; `invalid_query`: a parameter of the wrong type.", body = ErrorBody),
        (status = 422, description = "`invalid_location`: only one of `lat`/`lng` (they go together).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the cart is for customers only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_cart(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<CartQuery>,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    let door = match (query.lat, query.lng) {
        (None, None) => None,
        (Some(lat), Some(lng)) => Some(
            engine::LatLng::new(lat, lng)
                .map_err(|e| ApiError::bad_request("invalid_location", e.to_string()))?,
        ),
        _ => {
            // Each is well-formed alone: the pair is what is wrong, so 422.
            return Err(ApiError::unprocessable(
                "invalid_location",
                "lat and lng go together: the delivery point to quote the cart for",
            ));
        }
    };
    let (cart, quote) = commerce::usecase::quote::cart(
        state.store.as_ref(),
        &state.live(),
        state.config.delivery_fee(),
        principal.user_id,
        door,
    )
    .await?;
    let mut body = CartResponse::from(cart);
    if let Some(q) = quote {
        body.quote = Some(quote_body(q.quote));
        body.deliverable = Some(q.deliverable);
    }
    Ok(Json(body))
}

#[utoipa::path(
    post,
    path = "/v1/cart/items",
    tag = "cart",
    summary = "Add an item to my cart",
    request_body = AddItemRequest,
    responses(
        (status = 200, description = "The cart, with the quantity added to the item's line.", body = CartResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_quantity` (1 to 99).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the cart is for customers only.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such menu item.", body = ErrorBody),
        (status = 409, description = "`cart_has_other_restaurant`: the cart holds another restaurant's items (with `restaurant_id`); clear it first.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_quantity`: with what the cart holds, the line would pass 99.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn add_item(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<AddItemRequest>,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    check_quantity(req.quantity, 1)?;
    let edit = Edit::Add {
        item: req.menu_item_id,
        quantity: req.quantity,
    };
    change(&state, &principal, edit).await
}

#[utoipa::path(
    put,
    path = "/v1/cart/items/{menu_item_id}",
    tag = "cart",
    summary = "Set an item's quantity in my cart",
    params(("menu_item_id" = uuid::Uuid, Path, description = "The menu item.")),
    request_body = SetQuantityRequest,
    responses(
        (status = 200, description = "The cart; quantity 0 removes the line.", body = CartResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_quantity` (0 to 99).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the cart is for customers only.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such menu item.", body = ErrorBody),
        (status = 409, description = "`cart_has_other_restaurant`: the cart holds another restaurant's items (with `restaurant_id`); clear it first.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_quantity`: with what the cart holds, the line would pass 99.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn set_quantity(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(menu_item_id): ApiPath<MenuItemId>,
    ApiJson(req): ApiJson<SetQuantityRequest>,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    check_quantity(req.quantity, 0)?;
    let edit = Edit::Set {
        item: menu_item_id,
        quantity: req.quantity,
    };
    change(&state, &principal, edit).await
}

#[utoipa::path(
    delete,
    path = "/v1/cart/items/{menu_item_id}",
    tag = "cart",
    summary = "Remove an item from my cart",
    params(("menu_item_id" = uuid::Uuid, Path, description = "The menu item.")),
    responses(
        (status = 200, description = "The cart without that line (unchanged if it had none).", body = CartResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the cart is for customers only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn remove_item(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(menu_item_id): ApiPath<MenuItemId>,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    change(&state, &principal, Edit::Remove(menu_item_id)).await
}

#[utoipa::path(
    delete,
    path = "/v1/cart",
    tag = "cart",
    summary = "Clear my cart",
    responses(
        (status = 200, description = "The emptied cart.", body = CartResponse),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the cart is for customers only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn clear_cart(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<CartResponse>> {
    require_role(&principal, &[Role::Customer])?;
    change(&state, &principal, Edit::Clear).await
}

#[utoipa::path(
    post,
    path = "/v1/cart/checkout",
    tag = "cart",
    summary = "Check out my cart into an order",
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters (a UUID is typical). The same key with the same request answers with the same order (`Idempotent-Replayed: true`), never a second order or charge; with a different request it is 422 `idempotency_key_reused`.")),
    request_body = CheckoutRequest,
    responses(
        (status = 201, description = "Placed and charged: the order comes back `paid` or `payment_failed` (see `payment.failure`). A replayed request answers with the first order.", body = OrderResponse, headers(("Idempotent-Replayed" = String, description = "`true` when this answers a retry of an earlier request with the same `Idempotency-Key`."))),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_items` (1 to 100 distinct items, quantities 1 to 99), `invalid_location` (delivery point), `invalid_address`, `invalid_payment` (method `card`, token 1 to 255 bytes), `invalid_idempotency_key`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the cart is for customers only.", body = ErrorBody),
        (status = 404, description = "`not_found`: the cart's restaurant no longer exists.", body = ErrorBody),
        (status = 409, description = "`out_of_stock`: an item has too few left (with `menu_item_id`); nothing was taken.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`cart_empty`, `not_accepting_orders`, `restaurant_closed`, `outside_delivery_area`, `unknown_item` and `item_unavailable` (with `menu_item_id`), `idempotency_key_reused` (the key was used for a different request).", body = ErrorBody),
        (status = 503, description = "`payment_unavailable`: the payment gateway has been failing and its circuit breaker is open; nothing was ordered or charged. `database_unavailable`: the database cannot be reached right now and the order may not have been placed; retry with the same `Idempotency-Key`. `retry_after_s` in the body.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("bearer" = []))
)]
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
    let (restaurant_id, items) =
        commerce::usecase::place::cart_items(state.store.as_ref(), principal.user_id).await?;
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

/// Applies `edit` to the caller's cart (`commerce::usecase::cart`).
async fn change(
    state: &AppState,
    principal: &Principal,
    edit: Edit,
) -> ApiResult<Json<CartResponse>> {
    let now_ms = state.clock.now_ms();
    let cart = usecase::edit(state.store.as_ref(), principal.user_id, edit, now_ms).await?;
    Ok(Json(cart.into()))
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
