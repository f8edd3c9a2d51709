//! Placing an order: from `POST /v1/orders` or a cart's checkout. Checks
//! the restaurant (taking orders, open, delivering this far), has the store
//! take stock and write the order with its pending charge in one
//! transaction, shows it to the live side, and collects the charge.
//!
//! Idempotency: a customer's key is bound to a digest of the request.
//! [`replay_if_known`] runs first (checkout must, before it reads the cart
//! the first attempt emptied), so a retry gets its order even if the menu,
//! the hours or the cart changed since.

use engine::{LatLng, MenuItemId, OrderId, OrderStatus, PaymentId, RestaurantId, UserId};

use super::charge_of;
use super::quote::{delivery_fee_cents, outside_delivery_area};
use crate::payments::{self, Saga, run_detached};
use crate::ports::Quoting;
use crate::store::{IdempotencyKey, NewOrder, Order, Payment, PlaceOutcome, SettleOutcome, Store};
use crate::store::{Restaurant, StoreError};
use crate::{Error, Result};

/// Orders placed.
pub const ORDERS_PLACED_TOTAL: &str = "hexdash_orders_placed_total";
/// Placements refused for want of stock.
pub const ORDERS_OUT_OF_STOCK_TOTAL: &str = "hexdash_orders_out_of_stock_total";
/// Requests answered with the order an earlier one with the same key made.
pub const ORDERS_REPLAYED_TOTAL: &str = "hexdash_orders_replayed_total";

/// Most of one item in one order (and in one cart line, which an order is
/// checked out from).
pub const MAX_QUANTITY: i64 = 99;

/// An order to place, its values already parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Who orders.
    pub customer_id: UserId,
    /// From where.
    pub restaurant_id: RestaurantId,
    /// Wanted items, each id at most once, quantities checked.
    pub items: Vec<(MenuItemId, i64)>,
    /// Where to deliver.
    pub dropoff: LatLng,
    /// The delivery address as the customer wrote it (trimmed, bounded).
    pub delivery_address: String,
    /// The payment method (`card`).
    pub payment_method: String,
    /// The gateway token to charge.
    pub payment_token: String,
    /// The customer's `Idempotency-Key` with the request's digest.
    pub idempotency: Option<IdempotencyKey>,
    /// Empty the customer's cart with the order (checkout).
    pub from_cart: bool,
}

pub use super::quote::DeliveryFee;

/// What placing answered.
// Returned once per call and matched at once, never stored.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Placed {
    /// A new order, its charge collected (the order is `paid` or
    /// `payment_failed`).
    New {
        /// The order as it is after the charge settled.
        order: Order,
        /// Its charge, settled.
        charge: Payment,
    },
    /// The key was used before for the same request: that order.
    Replayed {
        /// The order as stored now.
        order: Order,
        /// Its charge, if any.
        charge: Option<Payment>,
    },
}

/// The answer for a key seen before, before anything else is checked;
/// `None` for a new key (or none).
pub async fn replay_if_known(
    store: &dyn Store,
    customer_id: UserId,
    key: Option<&IdempotencyKey>,
) -> Result<Option<Placed>> {
    let Some(key) = key else { return Ok(None) };
    match store.idempotent_order(customer_id, &key.key).await? {
        Some((hash, order_id)) => replay(store, key, &hash, order_id).await.map(Some),
        None => Ok(None),
    }
}

/// The answer to a request whose idempotency key was used before.
async fn replay(
    store: &dyn Store,
    key: &IdempotencyKey,
    stored_hash: &str,
    order_id: OrderId,
) -> Result<Placed> {
    if stored_hash != key.request_hash {
        return Err(key_reused());
    }
    metrics::counter!(ORDERS_REPLAYED_TOTAL).increment(1);
    let order = store
        .order(order_id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    let charge = charge_of(store, order_id).await?;
    Ok(Placed::Replayed { order, charge })
}

/// The restaurant and items of the customer's cart, for a checkout.
pub async fn cart_items(
    store: &dyn Store,
    customer_id: UserId,
) -> Result<(RestaurantId, Vec<(MenuItemId, i64)>)> {
    let cart = store.cart(customer_id).await?;
    let Some(restaurant_id) = cart.restaurant_id else {
        return Err(Error::invalid("cart_empty", "the cart is empty"));
    };
    let items = cart.lines.iter().map(|l| (l.item.id, l.quantity)).collect();
    Ok((restaurant_id, items))
}

/// Places `p` and collects its charge (after [`replay_if_known`], which
/// callers run first). The delivery fee is `fee` on the distance `roads`
/// give ([`super::quote::delivery_fee_cents`]: the rule quotes use).
pub async fn place(
    saga: &Saga,
    fee: DeliveryFee,
    roads: &dyn Quoting,
    p: Placement,
    now_ms: i64,
) -> Result<Placed> {
    if let Some(left_ms) = saga.gateway.unavailable_for_ms() {
        // Refused before anything is written: no order to fail, no stock
        // held, no charge to settle later.
        return Err(Error::Unavailable {
            code: "payment_unavailable",
            reason: "payments cannot be taken right now (the payment gateway is failing); \
                     nothing was ordered or charged"
                .to_owned(),
            retry_after_s: left_ms.div_ceil(1000).max(1),
        });
    }
    let store = saga.store.as_ref();
    let restaurant = store
        .restaurant(p.restaurant_id)
        .await?
        .ok_or(Error::NotFound("restaurant"))?;
    if !restaurant.accepting_orders {
        return Err(Error::invalid(
            "not_accepting_orders",
            "the restaurant is not taking orders right now",
        ));
    }
    if restaurant.hours().is_some_and(|h| !h.is_open(now_ms)) {
        return Err(Error::invalid(
            "restaurant_closed",
            "the restaurant is closed now",
        ));
    }
    if let Some(refusal) = outside_delivery_area(&restaurant, p.dropoff) {
        return Err(refusal);
    }
    let fee_cents = delivery_fee_cents(roads, fee, restaurant.location, p.dropoff);
    let ids = (saga.ids.next(), saga.ids.next());
    let new = new_order(&restaurant, fee_cents, &p, ids, now_ms);
    let (order, charge) = match store.place_order(&new, p.customer_id).await? {
        PlaceOutcome::Placed(order, charge) => (order, charge),
        PlaceOutcome::Replayed(order_id) => {
            // Lost the race to a concurrent request with the same key.
            let key = p
                .idempotency
                .as_ref()
                .ok_or_else(|| StoreError::Corrupt("replay reported without a key".to_owned()))?;
            return replay(store, key, &key.request_hash, order_id).await;
        }
        PlaceOutcome::KeyReused => return Err(key_reused()),
        PlaceOutcome::UnknownItem(item) => {
            return Err(item_error(
                "unknown_item",
                format!("menu item {item} is not on this restaurant's menu"),
                item,
            ));
        }
        PlaceOutcome::Unavailable(item) => {
            return Err(item_error(
                "item_unavailable",
                format!("menu item {item} is not available now"),
                item,
            ));
        }
        PlaceOutcome::OutOfStock { item, left } => {
            metrics::counter!(ORDERS_OUT_OF_STOCK_TOTAL).increment(1);
            return Err(Error::Conflict {
                code: "out_of_stock",
                reason: format!("out of stock: menu item {item} has {left} left"),
                detail: Some(("menu_item_id", item.to_string())),
            });
        }
    };
    metrics::counter!(ORDERS_PLACED_TOTAL).increment(1);
    // `order.placed` is the order's first event: version 1.
    saga.live.order_placed(&order, order.version, now_ms);
    // The charge runs in its own task: a client hanging up must not
    // abandon a payment halfway.
    let (outcome, order) =
        run_detached(payments::collect(saga.clone(), charge.clone(), order)).await?;
    let charge = match outcome {
        SettleOutcome::Settled { payment, .. } => payment,
        // Settled by someone else (start-up recovery): read it back.
        SettleOutcome::NotPending(_) => charge_of(store, order.id).await?.unwrap_or(charge),
    };
    Ok(Placed::New { order, charge })
}

/// The order to store for `p` at `restaurant` (the store prices it), with
/// its id and its charge's.
fn new_order(
    restaurant: &Restaurant,
    delivery_fee_cents: i64,
    p: &Placement,
    (order_id, payment_id): (OrderId, PaymentId),
    now_ms: i64,
) -> NewOrder {
    NewOrder {
        order: Order {
            id: order_id,
            customer_id: p.customer_id,
            restaurant_id: restaurant.id,
            restaurant_owner_id: restaurant.owner_id,
            status: OrderStatus::Placed,
            driver_id: None,
            pickup: restaurant.location,
            dropoff: p.dropoff,
            delivery_address: p.delivery_address.clone(),
            subtotal_cents: 0,
            delivery_fee_cents,
            total_cents: 0,
            lines: Vec::new(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            accepted_at_ms: None,
            ready_at_ms: None,
            version: 0,
        },
        items: p.items.clone(),
        idempotency: p.idempotency.clone(),
        payment_id,
        payment_method: p.payment_method.clone(),
        payment_token: p.payment_token.clone(),
        clear_cart: p.from_cart,
    }
}

fn key_reused() -> Error {
    Error::invalid(
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different request",
    )
}

fn item_error(code: &'static str, reason: String, item: MenuItemId) -> Error {
    Error::Invalid {
        code,
        reason,
        detail: Some(("menu_item_id", item.to_string())),
    }
}
