//! Orders: placing (priced on the server, paid at placement, idempotent),
//! reading, listing, history, status steps and cancellation.
//!
//! | route                                   | who                                   |
//! |-----------------------------------------|---------------------------------------|
//! | `POST /v1/orders`                       | customer                              |
//! | `GET /v1/orders/{order_id}`             | its customer, restaurant owner, driver; admin |
//! | `GET /v1/orders/{order_id}/history`     | the same                              |
//! | `GET /v1/orders?limit=&cursor=`         | anyone: their own orders (admin: all) |
//! | `POST /v1/orders/{order_id}/status`     | restaurant owner, assigned driver, admin (see `lifecycle`) |
//! | `POST /v1/orders/{order_id}/cancel`     | customer before acceptance; admin until closed |
//!
//! An order the caller is not a party to answers 404, not 403, so ids do
//! not reveal which orders exist. A party asking for a step that is not
//! theirs gets 403; a step the order cannot take now gets 409
//! `illegal_transition` with `current_status`.
//!
//! Placing: the restaurant must be open, accepting, and deliver to the
//! point; items must be on its menu, available and in stock (taken
//! atomically); the charge runs before the answer, so a new order comes
//! back `paid` or `payment_failed`. With an `Idempotency-Key`, the same
//! request again answers with the same order (header `Idempotent-Replayed:
//! true`), never a second order or charge; the key with a different
//! request is 422.
//!
//! Times on the wire (`created_at`, `updated_at`, `at`) are Unix
//! milliseconds.

use std::collections::BTreeMap;

use ::auth::{Authenticated, Principal, Role};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use commerce::usecase::{self, place::Placed};
use engine::{DriverId, MenuItemId, OrderId, OrderStatus, RestaurantId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::{MAX_ADDRESS_CHARS, Point, require_role, required_text};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, IdempotencyHeader};
use crate::lifecycle::{self, Action, Party};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::{IdempotencyKey, Order, OrderCursor, Payment};
use crate::{AppState, live};

/// Most distinct items in one order.
pub(crate) const MAX_ITEMS: usize = 100;
/// Most of one item in one order (the domain's limit, which the document
/// states).
pub(crate) const MAX_QUANTITY: i64 = usecase::place::MAX_QUANTITY;
/// Longest payment token, in characters.
pub(crate) const MAX_TOKEN_CHARS: usize = 255;
/// Payment methods the gateway takes.
pub(crate) const METHODS: &[&str] = &["card"];
/// Page size of `GET /v1/orders` when none is asked for, and the largest.
const DEFAULT_PAGE: u32 = 20;
pub(crate) const MAX_PAGE: u32 = 100;
/// The document's pattern for a page cursor, exactly what
/// [`decode_cursor`] reads: `{created_at_ms}_{order_id}`.
pub const CURSOR_PATTERN: &str =
    "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Post "/v1/orders" => create_order),
    route!(Get "/v1/orders" => list_orders),
    route!(Get "/v1/orders/{order_id}" => get_order),
    route!(Get "/v1/orders/{order_id}/history" => order_history),
    route!(Post "/v1/orders/{order_id}/status" => update_order_status),
    route!(Post "/v1/orders/{order_id}/cancel" => cancel_order),
    route!(Get "/v1/restaurants/{restaurant_id}/orders" => list_restaurant_orders),
];

// ---- wire types ----

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    #[schema(value_type = String, format = Uuid)]
    pub restaurant_id: RestaurantId,
    /// Repeated items are added up (at most 99 of one item in all).
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<OrderItemRequest>,
    pub delivery: DeliveryRequest,
    pub payment: PaymentRequest,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemRequest {
    #[schema(value_type = String, format = Uuid)]
    pub menu_item_id: MenuItemId,
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRequest {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
    /// Trimmed.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub address: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    #[schema(value_type = crate::openapi::PaymentMethod)]
    pub method: String,
    /// The gateway's token for the card (simulated gateway: `tok_ok`,
    /// `tok_declined`, `tok_error`, `tok_flaky`, `tok_refund_flaky`,
    /// `tok_refund_error`, `tok_hang`).
    #[schema(min_length = 1, max_length = 255, example = "tok_ok")]
    pub token: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderLineResponse {
    #[schema(value_type = String, format = Uuid)]
    pub menu_item_id: MenuItemId,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentSummary {
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub amount_cents: i64,
    /// Why it failed.
    pub failure: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderResponse {
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    #[schema(value_type = crate::openapi::OrderStatus)]
    pub status: OrderStatus,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub driver_id: Option<DriverId>,
    #[schema(value_type = String, format = Uuid)]
    pub restaurant_id: RestaurantId,
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: UserId,
    pub pickup: Point,
    pub dropoff: Point,
    pub delivery_address: String,
    /// Seconds until the driver reaches the next stop (the restaurant
    /// before pickup, the door after); null without a driver position.
    /// On the road graph when `matcher.roads` is set, crow-fly otherwise.
    pub eta_s: Option<u64>,
    /// Seconds until the order reaches the customer's door: before pickup
    /// the driver's drive to the restaurant or the food's remaining
    /// preparation (from the restaurant's learned preparation time),
    /// whichever is longer, then the drive to the door; after pickup the
    /// drive to the door. Null without a driver position.
    pub delivery_eta_s: Option<u64>,
    /// The lines as priced at placement (empty in listings).
    pub items: Vec<OrderLineResponse>,
    pub subtotal_cents: i64,
    pub delivery_fee_cents: i64,
    pub total_cents: i64,
    /// The charge (in single-order answers; absent in listings).
    pub payment: Option<PaymentSummary>,
    /// The search for a driver while there is one (accepted, no driver
    /// yet); null otherwise.
    pub dispatch: Option<OrderDispatch>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where the search for an order's driver stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderDispatchState {
    /// No offer is out: no free driver is near, or every driver near is
    /// cooling down after declining it (they get it again after
    /// `matcher.reoffer_cooldown_s`).
    Searching,
    /// An offer waits for its driver's answer.
    Offered,
}

/// The search for a driver for an accepted order that has none yet.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderDispatch {
    /// Whether an offer is out (`offered`) or the search goes on
    /// (`searching`).
    pub state: OrderDispatchState,
    /// Offers of the order that ended without an accept (declined, lapsed).
    pub attempts: u32,
    /// When the search started (or the server restarted), Unix ms.
    pub since: i64,
    /// When the order was raised to dispatchers because no driver took it
    /// (after `matcher.unassigned_after_offers` offers or
    /// `matcher.unassigned_after_s`), Unix ms; null until then. Offers go on.
    pub unassigned_at: Option<i64>,
    /// Prep-aware dispatch (`matcher.prep_aware`): when the food is
    /// expected ready, Unix ms (the restaurant's acceptance plus its
    /// preparation time as learned from its history, or
    /// `matcher.prep_default_s`); the first offer waits until a courier
    /// would arrive about then. Null when offers are not held (prep-aware
    /// off, or the order is ready).
    pub ready_at: Option<i64>,
}

impl From<matcher::DispatchView> for OrderDispatch {
    fn from(v: matcher::DispatchView) -> Self {
        Self {
            state: match v.state {
                matcher::DispatchState::Searching => OrderDispatchState::Searching,
                matcher::DispatchState::Offered => OrderDispatchState::Offered,
            },
            attempts: v.attempts,
            since: v.since_ms,
            unassigned_at: v.unassigned_at_ms,
            ready_at: v.ready_at_ms,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersQuery {
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

/// `GET /v1/restaurants/{restaurant_id}/orders`'s filter and page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KitchenQuery {
    /// Only orders in this status (`paid`: waiting for the kitchen to
    /// accept; `accepted`, `preparing` …).
    #[param(value_type = Option<crate::openapi::OrderStatus>)]
    pub status: Option<String>,
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderList {
    pub orders: Vec<OrderResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusRequest {
    /// `accepted`, `rejected`, `preparing`, `ready_for_pickup` (the
    /// restaurant), `picked_up`, `delivered` (the assigned driver); to
    /// cancel, `POST …/cancel`.
    #[schema(value_type = crate::openapi::SettableStatus, example = "accepted")]
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// `status` (the order moved to `status`) or `assigned` (a driver
    /// took it).
    pub kind: String,
    #[schema(value_type = crate::openapi::OrderStatus)]
    pub status: OrderStatus,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub driver_id: Option<DriverId>,
    /// Who caused it; null for the system (payments, timeouts).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub actor_id: Option<UserId>,
    pub at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderHistory {
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    pub events: Vec<HistoryEntry>,
}

// ---- handlers ----

#[utoipa::path(
    post,
    path = "/v1/orders",
    tag = "orders",
    summary = "Place an order",
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters (a UUID is typical). The same key with the same request answers with the same order (`Idempotent-Replayed: true`), never a second order or charge; with a different request it is 422 `idempotency_key_reused`.")),
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "Placed and charged: the order comes back `paid` or `payment_failed` (see `payment.failure`). A replayed request answers with the first order.", body = OrderResponse, headers(("Idempotent-Replayed" = String, description = "`true` when this answers a retry of an earlier request with the same `Idempotency-Key`."))),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_items` (1 to 100 distinct items, quantities 1 to 99), `invalid_location` (delivery point), `invalid_address`, `invalid_payment` (method `card`, token 1 to 255 bytes), `invalid_idempotency_key`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: only customers place orders.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such restaurant.", body = ErrorBody),
        (status = 409, description = "`out_of_stock`: an item has too few left (with `menu_item_id`); nothing was taken.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`not_accepting_orders`, `restaurant_closed`, `outside_delivery_area`, `unknown_item` and `item_unavailable` (with `menu_item_id`), `invalid_items` (lines of one item add up to more than 99), `idempotency_key_reused` (the key was used for a different request).", body = ErrorBody),
        (status = 503, description = "`payment_unavailable`: the payment gateway has been failing and its circuit breaker is open; nothing was ordered or charged. `database_unavailable`: the database cannot be reached right now and the order may not have been placed; retry with the same `Idempotency-Key`. `retry_after_s` in the body.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("bearer" = []))
)]
async fn create_order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdempotencyHeader(key): IdempotencyHeader,
    ApiJson(req): ApiJson<CreateOrderRequest>,
) -> ApiResult<(StatusCode, HeaderMap, Json<OrderResponse>)> {
    require_role(&principal, &[Role::Customer])?;
    let request_hash = digest(&req)?;
    let idempotency = key.map(|key| IdempotencyKey { key, request_hash });
    if let Some(replayed) = replay_if_known(&state, &principal, idempotency.as_ref()).await? {
        return Ok(replayed);
    }
    let items = req
        .items
        .iter()
        .map(|i| (i.menu_item_id, i.quantity))
        .collect();
    place(
        &state,
        &principal,
        Placement {
            restaurant_id: req.restaurant_id,
            items,
            delivery: req.delivery,
            payment: req.payment,
            idempotency,
            from_cart: false,
        },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/v1/orders/{order_id}",
    tag = "orders",
    summary = "Get an order",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "The order, with its lines and charge.", body = OrderResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or the caller is not a party to it (ids do not reveal which orders exist).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
) -> ApiResult<Json<OrderResponse>> {
    let (order, _) = visible_order(&state, &principal, order_id).await?;
    let charge = charge_of(&state, order.id).await?;
    Ok(Json(order_response(&state, order, charge.as_ref())))
}

#[utoipa::path(
    get,
    path = "/v1/orders/{order_id}/history",
    tag = "orders",
    summary = "Get an order's history",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "Every transition and assignment, oldest first, timestamped.", body = OrderHistory),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or the caller is not a party to it (ids do not reveal which orders exist).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn order_history(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
) -> ApiResult<Json<OrderHistory>> {
    // The order's event stream read as its history: its committed events
    // by version, steps and assignments only (`commerce::event`).
    let events = usecase::visible_history(state.store.as_ref(), &principal, order_id)
        .await?
        .into_iter()
        .map(|e| HistoryEntry {
            kind: e.kind.as_str().to_owned(),
            status: e.status,
            driver_id: e.driver_id,
            actor_id: e.actor_id,
            at: e.at_ms,
        })
        .collect();
    Ok(Json(OrderHistory { order_id, events }))
}

#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    summary = "List my orders",
    params(ListOrdersQuery),
    responses(
        (status = 200, description = "The caller's orders, newest first (an admin sees all; a restaurant its restaurants' orders; a driver those it carried). `items` is empty and `payment` absent in listings.", body = OrderList),
        (status = 400, description = "`invalid_limit` (1 to 100), `invalid_cursor` (not one this server issued), `invalid_query`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_orders(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<ListOrdersQuery>,
) -> ApiResult<Json<OrderList>> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = usecase::visible_orders(state.store.as_ref(), &principal, cursor, limit).await?;
    let next_cursor = if page.more {
        page.orders.last().map(encode_cursor)
    } else {
        None
    };
    let orders = page
        .orders
        .into_iter()
        .map(|o| order_response(&state, o, None))
        .collect();
    Ok(Json(OrderList {
        orders,
        next_cursor,
    }))
}

#[utoipa::path(
    post,
    path = "/v1/orders/{order_id}/status",
    tag = "orders",
    summary = "Take a status step",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    request_body = StatusRequest,
    responses(
        (status = 200, description = "The order after the step.", body = OrderResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_status` (not a settable status; to cancel use `/cancel`).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: a party to the order, but this step is not theirs (restaurant: `accepted`, `rejected`, `preparing`, `ready_for_pickup`; assigned driver: `picked_up`, `delivered`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or the caller is not a party to it (ids do not reveal which orders exist).", body = ErrorBody),
        (status = 409, description = "`illegal_transition`: the order cannot take this step from where it is (with `current_status`).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn update_order_status(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<StatusRequest>,
) -> ApiResult<Json<OrderResponse>> {
    let (order, party) = visible_order(&state, &principal, order_id).await?;
    let target = match OrderStatus::parse(&req.status) {
        Some(OrderStatus::Cancelled) => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "to cancel, POST /v1/orders/{order_id}/cancel",
            ));
        }
        Some(s) if lifecycle::SETTABLE.contains(&s) => s,
        _ => {
            let names: Vec<&str> = lifecycle::SETTABLE.iter().map(|s| s.as_str()).collect();
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("status must be one of {}", names.join(", ")),
            ));
        }
    };
    let action = Action::Set(target);
    let (order, charge) = usecase::step::step(
        &state.saga(),
        &principal,
        order,
        party,
        action,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(order_response(&state, order, charge.as_ref())))
}

#[utoipa::path(
    post,
    path = "/v1/orders/{order_id}/cancel",
    tag = "orders",
    summary = "Cancel an order",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "The cancelled order; a paid charge is refunded automatically and stock given back.", body = OrderResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: only the customer (before acceptance) or an admin may cancel.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or the caller is not a party to it (ids do not reveal which orders exist).", body = ErrorBody),
        (status = 409, description = "`illegal_transition`: too late to cancel (with `current_status`).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn cancel_order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
) -> ApiResult<Json<OrderResponse>> {
    let (order, party) = visible_order(&state, &principal, order_id).await?;
    let (order, charge) = usecase::step::cancel(
        &state.saga(),
        &principal,
        order,
        party,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(order_response(&state, order, charge.as_ref())))
}

// ---- placing ----

/// An order to place, from `POST /v1/orders` or a cart checkout.
pub(crate) struct Placement {
    pub restaurant_id: RestaurantId,
    pub items: Vec<(MenuItemId, i64)>,
    pub delivery: DeliveryRequest,
    pub payment: PaymentRequest,
    pub idempotency: Option<IdempotencyKey>,
    /// Empty the customer's cart with the order.
    pub from_cart: bool,
}

/// Places an order and collects its payment: the whole of `POST
/// /v1/orders` after parsing and after [`replay_if_known`] (which callers
/// run first: checkout must, before it reads the cart the first attempt
/// emptied). Checks the request's values here, the rest in the use-case
/// (`commerce::usecase::place`).
pub(crate) async fn place(
    state: &AppState,
    principal: &Principal,
    p: Placement,
) -> ApiResult<(StatusCode, HeaderMap, Json<OrderResponse>)> {
    let items = check_items(&p.items)?;
    let dropoff = Point {
        lat: p.delivery.lat,
        lng: p.delivery.lng,
    }
    .to_lat_lng("delivery")?;
    let delivery_address = required_text(
        "invalid_address",
        "delivery.address",
        &p.delivery.address,
        MAX_ADDRESS_CHARS,
    )?;
    check_payment(&p.payment)?;
    let placement = usecase::place::Placement {
        customer_id: principal.user_id,
        restaurant_id: p.restaurant_id,
        items,
        dropoff,
        delivery_address,
        payment_method: p.payment.method,
        payment_token: p.payment.token,
        idempotency: p.idempotency,
        from_cart: p.from_cart,
    };
    let fee = state.config.delivery_fee();
    let roads = state.live();
    let now_ms = state.clock.now_ms();
    let placed = usecase::place::place(&state.saga(), fee, &roads, placement, now_ms).await?;
    Ok(placed_response(state, placed))
}

/// The answer for a key seen before, before anything else is checked, so
/// a retry gets its order even if the menu, the hours or the cart changed
/// since; `None` for a new key (or none).
pub(crate) async fn replay_if_known(
    state: &AppState,
    principal: &Principal,
    key: Option<&IdempotencyKey>,
) -> ApiResult<Option<(StatusCode, HeaderMap, Json<OrderResponse>)>> {
    let placed =
        usecase::place::replay_if_known(state.store.as_ref(), principal.user_id, key).await?;
    Ok(placed.map(|placed| placed_response(state, placed)))
}

/// 201 with the order; a replay says so in `Idempotent-Replayed: true`.
fn placed_response(
    state: &AppState,
    placed: Placed,
) -> (StatusCode, HeaderMap, Json<OrderResponse>) {
    let mut headers = HeaderMap::new();
    let (order, charge) = match placed {
        Placed::New { order, charge } => (order, Some(charge)),
        Placed::Replayed { order, charge } => {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            (order, charge)
        }
    };
    let body = order_response(state, order, charge.as_ref());
    (StatusCode::CREATED, headers, Json(body))
}

/// Merges repeated items and checks counts and quantities.
pub(crate) fn check_items(raw: &[(MenuItemId, i64)]) -> ApiResult<Vec<(MenuItemId, i64)>> {
    if raw.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_items",
            "an order needs at least one item",
        ));
    }
    if raw.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "invalid_items",
            format!("at most {MAX_ITEMS} lines per order"),
        ));
    }
    let mut merged: BTreeMap<MenuItemId, i64> = BTreeMap::new();
    for &(item, quantity) in raw {
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(ApiError::bad_request(
                "invalid_items",
                format!("quantity must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        let total = merged.entry(item).or_default();
        *total = total.saturating_add(quantity);
    }
    if merged.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "invalid_items",
            format!("at most {MAX_ITEMS} different items per order"),
        ));
    }
    // Each line fits the document; lines of one item that add up past the
    // limit are a request that makes no sense as a whole: 422.
    if merged.values().any(|&q| q > MAX_QUANTITY) {
        return Err(ApiError::unprocessable(
            "invalid_items",
            format!("at most {MAX_QUANTITY} of one item per order (its lines add up to more)"),
        ));
    }
    Ok(merged.into_iter().collect())
}

fn check_payment(payment: &PaymentRequest) -> ApiResult<()> {
    if !METHODS.contains(&payment.method.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_payment",
            format!("payment.method must be one of {}", METHODS.join(", ")),
        ));
    }
    if payment.token.is_empty() || payment.token.chars().count() > MAX_TOKEN_CHARS {
        return Err(ApiError::bad_request(
            "invalid_payment",
            format!("payment.token must be 1 to {MAX_TOKEN_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Hex SHA-256 of a request's JSON: what an idempotency key is bound to.
pub(crate) fn digest(request: &impl Serialize) -> ApiResult<String> {
    let json = serde_json::to_vec(request).map_err(ApiError::internal)?;
    Ok(format!("{:x}", Sha256::digest(&json)))
}

// ---- helpers ----

/// The order, if the caller is a party to it; otherwise 404 either way.
pub(crate) async fn visible_order(
    state: &AppState,
    principal: &Principal,
    order_id: OrderId,
) -> ApiResult<(Order, Party)> {
    Ok(usecase::visible_order(state.store.as_ref(), principal, order_id).await?)
}

async fn charge_of(state: &AppState, order_id: OrderId) -> ApiResult<Option<Payment>> {
    Ok(usecase::charge_of(state.store.as_ref(), order_id).await?)
}

pub(crate) fn order_response(
    state: &AppState,
    order: Order,
    charge: Option<&Payment>,
) -> OrderResponse {
    let eta = live::eta(state, &order);
    let dispatch = state.matcher.dispatch_state(order.id).map(Into::into);
    OrderResponse {
        order_id: order.id,
        status: order.status,
        driver_id: order.driver_id,
        restaurant_id: order.restaurant_id,
        customer_id: order.customer_id,
        pickup: order.pickup.into(),
        dropoff: order.dropoff.into(),
        delivery_address: order.delivery_address,
        eta_s: eta.map(|e| u64::from(e.next_stop_s)),
        delivery_eta_s: eta.map(|e| u64::from(e.door_s)),
        items: order
            .lines
            .into_iter()
            .map(|l| OrderLineResponse {
                menu_item_id: l.menu_item_id,
                name: l.name,
                unit_price_cents: l.unit_price_cents,
                quantity: l.quantity,
            })
            .collect(),
        subtotal_cents: order.subtotal_cents,
        delivery_fee_cents: order.delivery_fee_cents,
        total_cents: order.total_cents,
        payment: charge.map(|c| PaymentSummary {
            status: c.status.as_str().to_owned(),
            amount_cents: c.amount_cents,
            failure: c.failure.clone(),
        }),
        dispatch,
        created_at: order.created_at_ms,
        updated_at: order.updated_at_ms,
    }
}

#[utoipa::path(
    get,
    path = "/v1/restaurants/{restaurant_id}/orders",
    tag = "orders",
    summary = "List a restaurant's orders (the kitchen screen)",
    description = "The restaurant's orders, newest first, optionally only those in one status; keyset-paged with `next_cursor`. For its owner and admins. Live changes come on the `restaurant:{restaurant_id}` channel of `/v1/ws`: subscribe first, then list, and keep the newest `status` per order. Listed orders carry no `items` (read one order for them).",
    params(("restaurant_id" = uuid::Uuid, Path, description = "The restaurant."), KitchenQuery),
    responses(
        (status = 200, description = "A page of orders.", body = OrderList),
        (status = 400, description = "`invalid_path` (not a UUID), `invalid_limit` (1 to 100), `invalid_cursor`, `invalid_status` (not an order status), `invalid_query`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller neither owns the restaurant nor is an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such restaurant.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_restaurant_orders(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(restaurant_id): ApiPath<RestaurantId>,
    ApiQuery(query): ApiQuery<KitchenQuery>,
) -> ApiResult<Json<OrderList>> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("invalid_status", format!("{s:?} is not an order status"))
        })?),
    };
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = usecase::restaurant::kitchen_orders(
        state.store.as_ref(),
        &principal,
        restaurant_id,
        status,
        cursor,
        limit,
    )
    .await?;
    let next_cursor = if page.more {
        page.orders.last().map(encode_cursor)
    } else {
        None
    };
    let orders = page
        .orders
        .into_iter()
        .map(|o| order_response(&state, o, None))
        .collect();
    Ok(Json(OrderList {
        orders,
        next_cursor,
    }))
}

/// Cursors are opaque to clients: `{created_at_ms}_{order_id}` of the last
/// order of the previous page.
fn encode_cursor(order: &Order) -> String {
    format!("{}_{}", order.created_at_ms, order.id)
}

fn decode_cursor(s: &str) -> ApiResult<OrderCursor> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this server issued");
    let (ms, id) = s.split_once('_').ok_or_else(bad)?;
    // Exactly CURSOR_PATTERN: plain digits (no sign), a hyphenated UUID.
    if ms.is_empty() || ms.len() > 18 || !ms.bytes().all(|b| b.is_ascii_digit()) || id.len() != 36 {
        return Err(bad());
    }
    Ok(OrderCursor {
        created_at_ms: ms.parse().map_err(|_| bad())?,
        order_id: id.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let id = OrderId::new();
        let c = decode_cursor(&format!("1763700000000_{id}")).unwrap();
        assert_eq!(
            c,
            OrderCursor {
                created_at_ms: 1_763_700_000_000,
                order_id: id
            }
        );
        assert!(decode_cursor("nope").is_err());
        assert!(decode_cursor("12_not-a-uuid").is_err());
        assert!(decode_cursor(&format!("x_{id}")).is_err());
        assert!(decode_cursor(&format!("+1_{id}")).is_err());
        assert!(decode_cursor(&format!("1_{}", id.to_string().replace('-', ""))).is_err());
    }

    #[test]
    fn items_are_merged_and_bounded() {
        let a = MenuItemId::new();
        let b = MenuItemId::new();
        let merged = check_items(&[(a, 2), (b, 1), (a, 3)]).unwrap();
        assert_eq!(merged.len(), 2);
        assert!(merged.contains(&(a, 5)));
        assert!(check_items(&[]).is_err());
        assert!(check_items(&[(a, 0)]).is_err());
        assert!(check_items(&[(a, -1)]).is_err());
        assert!(check_items(&[(a, 60), (a, 40)]).is_err());
    }
}
