//! The use-cases of the order's life and what it hangs on, one module
//! each: [`place`] (an order, or a cart's checkout, with its charge),
//! [`step`] (a status step, and cancelling, with their compensations),
//! [`refund`] (an admin's refund), [`offer`] (a driver's answer to an
//! offer, with the compensation when the store refuses the assignment),
//! [`cart`] (the customer's cart), [`restaurant`] and [`menu`] (a
//! restaurant's profile and menu, by its owner or an admin), [`quote`]
//! (the delivery fee and ETA before ordering, and the one fee rule
//! placement charges by), [`account`]
//! (signup, the bootstrap admin, profile and saved addresses), [`session`]
//! (opening, refreshing and closing a session), [`ban`] (an admin's
//! ban or unban), [`dispatcher`] (an admin's force-cancel, reassignment
//! and setting a driver offline), [`review`] (ratings and reviews of
//! delivered orders, hidden by admins), [`listing`] (an admin's filtered,
//! keyset-paged listings of users, restaurants, drivers and orders),
//! [`notify`] (the notification feed), [`stuck`] (rejecting paid orders
//! nobody accepted in time) and [`route`] (a delivered order's route).
//!
//! A use-case takes only what it needs: a store trait object (or just the
//! store areas it uses: `&(impl CartStore + RestaurantStore + ?Sized)`,
//! which `&dyn Store` satisfies), the payments
//! [`Saga`](crate::payments::Saga) where money moves (it carries the
//! store, the gateway and the live side), the [`ports`](crate::ports) for
//! the live side, the matcher and the search catalog, the token checker
//! where bans apply, the injected [`clock::Ids`] where it makes rows, and
//! `now_ms` from its caller. It returns domain outcomes or an
//! [`Error`](crate::Error), never HTTP.
//!
//! Input is parsed by the caller (ids, coordinates, text lengths, value
//! ranges); a use-case checks what needs the store or is a rule of the
//! domain (the restaurant is open, the item in stock, the step legal, the
//! caller owns the restaurant, the menu has room, an admin is not banned).

pub mod account;
pub mod ban;
pub mod cart;
pub mod channels;
pub mod dispatcher;
pub mod listing;
pub mod menu;
pub mod notify;
pub mod offer;
pub mod place;
pub mod quote;
pub mod refund;
pub mod report;
pub mod restaurant;
pub mod review;
pub mod route;
pub mod session;
pub mod step;
pub mod stuck;

use auth::{Principal, Role};
use engine::OrderId;

use crate::lifecycle::Party;
use crate::store::{
    Order, OrderCursor, OrderEvent, OrderScope, OrderStore, Payment, PaymentKind, PaymentStore,
    Store,
};
use crate::{Error, Result};

/// The order with its lines, and how `principal` relates to it; not found
/// either way if the caller is not a party to it (ids do not reveal which
/// orders exist).
pub async fn visible_order(
    store: &dyn Store,
    principal: &Principal,
    order_id: OrderId,
) -> Result<(Order, Party)> {
    let order = store
        .order(order_id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    let party = Party::of(principal, &order).ok_or(Error::NotFound("order"))?;
    Ok((order, party))
}

/// The order's charge (an order has one), if any.
pub async fn charge_of(store: &dyn Store, order_id: OrderId) -> Result<Option<Payment>> {
    Ok(store
        .payments(order_id)
        .await?
        .into_iter()
        .find(|p| p.kind == PaymentKind::Charge))
}

/// One page of a listing of orders, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderPage {
    /// The orders of the page, without their lines.
    pub orders: Vec<Order>,
    /// Whether more orders follow the last of this page.
    pub more: bool,
}

/// The orders `principal` may list, newest first, strictly after `cursor`,
/// at most `limit`: a customer's own, a restaurant owner's restaurants', a
/// driver's carried ones; an admin's, all.
pub async fn visible_orders(
    store: &(impl OrderStore + ?Sized),
    principal: &Principal,
    cursor: Option<OrderCursor>,
    limit: u32,
) -> Result<OrderPage> {
    let scope = match principal.role {
        Role::Customer => OrderScope::Customer(principal.user_id),
        Role::Restaurant => OrderScope::RestaurantOwner(principal.user_id),
        Role::Driver => OrderScope::Driver(principal.user_id.into()),
        Role::Admin => OrderScope::All,
    };
    // One more than the page, to know whether another page follows.
    let mut orders = store
        .list_orders(scope, cursor, limit.saturating_add(1))
        .await?;
    let more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    Ok(OrderPage { orders, more })
}

/// The order's charges and refunds, oldest first, if `principal` is a
/// party to it (not found otherwise, as [`visible_order`]).
pub async fn visible_payments(
    store: &dyn Store,
    principal: &Principal,
    order_id: OrderId,
) -> Result<Vec<Payment>> {
    visible_order(store, principal, order_id).await?;
    Ok(PaymentStore::payments(store, order_id).await?)
}

/// The order's history (its status steps and assignments, oldest first,
/// read from its committed events), if `principal` is a party to it (not
/// found otherwise, as [`visible_order`]).
pub async fn visible_history(
    store: &dyn Store,
    principal: &Principal,
    order_id: OrderId,
) -> Result<Vec<OrderEvent>> {
    visible_order(store, principal, order_id).await?;
    Ok(store.order_events(order_id).await?)
}
