//! Orders: placing, reading, listing, status steps and cancellation.
//!
//! | route                                   | who                                   |
//! |-----------------------------------------|---------------------------------------|
//! | `POST /v1/orders`                       | customer                              |
//! | `GET /v1/orders/{order_id}`             | its customer, restaurant owner, driver; admin |
//! | `GET /v1/orders?limit=&cursor=`         | anyone: their own orders (admin: all) |
//! | `POST /v1/orders/{order_id}/status`     | restaurant owner, assigned driver, admin (see `lifecycle`) |
//! | `POST /v1/orders/{order_id}/cancel`     | customer while placed; admin until closed |
//!
//! An order the caller is not a party to answers 404, not 403, so ids do
//! not reveal which orders exist. A party asking for a step that is not
//! theirs gets 403; a step the order cannot take now gets 409
//! `illegal_transition` with `current_status`.
//!
//! Times on the wire (`created_at`, `updated_at`) are Unix milliseconds.

use ::auth::{Authenticated, Principal, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::{DriverId, OrderId, OrderStatus, RestaurantId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MAX_ADDRESS_CHARS, Point, require_role, required_text};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::lifecycle::{self, Party, Refusal};
use crate::store::{Order, OrderCursor, OrderScope, Transition, TransitionOutcome};
use crate::{AppState, live, now_ms};

/// Most line items in one order.
const MAX_ITEMS: usize = 100;
/// Most of one item in one order.
const MAX_QUANTITY: u32 = 99;
/// Page size of `GET /v1/orders` when none is asked for, and the largest.
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", post(create_order).get(list_orders))
        .route("/v1/orders/{order_id}", get(get_order))
        .route("/v1/orders/{order_id}/status", post(update_order_status))
        .route("/v1/orders/{order_id}/cancel", post(cancel_order))
}

// ---- wire types ----

#[derive(Debug, Deserialize)]
pub struct CreateOrderRequest {
    pub restaurant_id: RestaurantId,
    /// Checked for shape and accepted, but not priced or stored until menus
    /// exist (Commerce issue); the total is 0 meanwhile.
    #[serde(default)]
    pub items: Vec<OrderItemRequest>,
    pub delivery: DeliveryRequest,
    /// Accepted and ignored until payments exist (Commerce issue).
    #[serde(default)]
    pub payment: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct OrderItemRequest {
    pub menu_item_id: Uuid,
    pub quantity: u32,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryRequest {
    pub lat: f64,
    pub lng: f64,
    pub address: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OrderItemResponse {
    pub menu_item_id: Uuid,
    pub quantity: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OrderResponse {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub driver_id: Option<DriverId>,
    pub restaurant_id: RestaurantId,
    pub customer_id: UserId,
    pub pickup: Point,
    pub dropoff: Point,
    pub delivery_address: String,
    /// Seconds until the driver reaches the next stop; null without a
    /// driver position.
    pub eta_s: Option<u64>,
    /// Empty until menus exist.
    pub items: Vec<OrderItemResponse>,
    pub total_cents: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListOrdersQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OrderList {
    pub orders: Vec<OrderResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StatusRequest {
    pub status: String,
}

// ---- handlers ----

async fn create_order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<CreateOrderRequest>,
) -> ApiResult<(StatusCode, Json<OrderResponse>)> {
    require_role(&principal, &[Role::Customer])?;
    if req.items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "invalid_items",
            format!("at most {MAX_ITEMS} items per order"),
        ));
    }
    if req
        .items
        .iter()
        .any(|i| i.quantity == 0 || i.quantity > MAX_QUANTITY)
    {
        return Err(ApiError::bad_request(
            "invalid_items",
            format!("quantity must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    let dropoff = Point {
        lat: req.delivery.lat,
        lng: req.delivery.lng,
    }
    .to_lat_lng("delivery")?;
    let delivery_address = required_text(
        "invalid_address",
        "delivery.address",
        &req.delivery.address,
        MAX_ADDRESS_CHARS,
    )?;
    let restaurant = state
        .store
        .restaurant(req.restaurant_id)
        .await?
        .ok_or(ApiError::NotFound("restaurant"))?;
    let now = now_ms();
    let order = Order {
        id: OrderId::new(),
        customer_id: principal.user_id,
        restaurant_id: restaurant.id,
        restaurant_owner_id: restaurant.owner_id,
        status: OrderStatus::Placed,
        driver_id: None,
        pickup: restaurant.location,
        dropoff,
        delivery_address,
        total_cents: 0,
        created_at_ms: now,
        updated_at_ms: now,
    };
    state.store.create_order(&order, principal.user_id).await?;
    metrics::counter!("hexdash_orders_placed_total").increment(1);
    live::on_order_placed(&state, &order, now);
    Ok((StatusCode::CREATED, Json(order_response(&state, order))))
}

async fn get_order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
) -> ApiResult<Json<OrderResponse>> {
    let (order, _) = visible_order(&state, &principal, order_id).await?;
    Ok(Json(order_response(&state, order)))
}

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
    let scope = match principal.role {
        Role::Customer => OrderScope::Customer(principal.user_id),
        Role::Restaurant => OrderScope::RestaurantOwner(principal.user_id),
        Role::Driver => OrderScope::Driver(principal.user_id.into()),
        Role::Admin => OrderScope::All,
    };
    // One more than the page, to know whether another page follows.
    let mut orders = state.store.list_orders(scope, cursor, limit + 1).await?;
    let next_cursor = if orders.len() > limit as usize {
        orders.truncate(limit as usize);
        orders.last().map(encode_cursor)
    } else {
        None
    };
    let orders = orders
        .into_iter()
        .map(|o| order_response(&state, o))
        .collect();
    Ok(Json(OrderList {
        orders,
        next_cursor,
    }))
}

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
    if !lifecycle::may_set(party, target) {
        return Err(ApiError::forbidden(format!(
            "you may not set an order to {}",
            target.as_str()
        )));
    }
    lifecycle::check_step(&order, target).map_err(|r| illegal(order.status, target, r))?;
    let order = apply(&state, &principal, &order, target).await?;
    Ok(Json(order_response(&state, order)))
}

async fn cancel_order(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
) -> ApiResult<Json<OrderResponse>> {
    let (order, party) = visible_order(&state, &principal, order_id).await?;
    if !lifecycle::may_cancel(party) {
        return Err(ApiError::forbidden(
            "only the customer or an admin may cancel an order",
        ));
    }
    lifecycle::check_cancel(party, &order)
        .map_err(|r| illegal(order.status, OrderStatus::Cancelled, r))?;
    let order = apply(&state, &principal, &order, OrderStatus::Cancelled).await?;
    Ok(Json(order_response(&state, order)))
}

// ---- helpers ----

/// The order, if the caller is a party to it; otherwise 404 either way.
async fn visible_order(
    state: &AppState,
    principal: &Principal,
    order_id: OrderId,
) -> ApiResult<(Order, Party)> {
    let order = state
        .store
        .order(order_id)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    let party = Party::of(principal, &order).ok_or(ApiError::NotFound("order"))?;
    Ok((order, party))
}

/// Stores the checked step `order.status → to` (compare-and-set: a racing
/// step makes this one 409), then tells the live side.
async fn apply(
    state: &AppState,
    principal: &Principal,
    order: &Order,
    to: OrderStatus,
) -> ApiResult<Order> {
    let now = now_ms();
    let transition = Transition {
        order_id: order.id,
        from: order.status,
        to,
        actor_id: Some(principal.user_id),
        at_ms: now,
    };
    match state.store.transition_order(&transition).await? {
        TransitionOutcome::Applied(order) => {
            metrics::counter!("hexdash_order_steps_total", "status" => to.as_str()).increment(1);
            live::on_status_changed(state, &order, now);
            Ok(order)
        }
        TransitionOutcome::Stale(Some(current)) => Err(illegal(current, to, Refusal::NoSuchStep)),
        TransitionOutcome::Stale(None) => Err(ApiError::NotFound("order")),
    }
}

fn illegal(current: OrderStatus, target: OrderStatus, refusal: Refusal) -> ApiError {
    ApiError::IllegalTransition {
        current,
        target,
        reason: refusal.reason(),
    }
}

fn order_response(state: &AppState, order: Order) -> OrderResponse {
    let eta_s = live::eta_s(state, &order);
    OrderResponse {
        order_id: order.id,
        status: order.status,
        driver_id: order.driver_id,
        restaurant_id: order.restaurant_id,
        customer_id: order.customer_id,
        pickup: order.pickup.into(),
        dropoff: order.dropoff.into(),
        delivery_address: order.delivery_address,
        eta_s,
        items: Vec::new(),
        total_cents: order.total_cents,
        created_at: order.created_at_ms,
        updated_at: order.updated_at_ms,
    }
}

/// Cursors are opaque to clients: `{created_at_ms}_{order_id}` of the last
/// order of the previous page.
fn encode_cursor(order: &Order) -> String {
    format!("{}_{}", order.created_at_ms, order.id)
}

fn decode_cursor(s: &str) -> ApiResult<OrderCursor> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this server issued");
    let (ms, id) = s.split_once('_').ok_or_else(bad)?;
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
    }
}
