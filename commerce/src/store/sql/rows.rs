//! Rows into records: the column lists each area selects and the decoding
//! that checks what the schema promises (ids parse, statuses are known).

use std::str::FromStr;

use auth::Role;
use engine::{LatLng, OrderStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{
    Address, MenuItem, Order, Payment, PaymentKind, PaymentStatus, Restaurant, Result, StoreError,
    User,
};

/// The columns of a [`User`].
macro_rules! select_user {
    () => {
        "SELECT id, email, password_hash, name, phone, role, banned_at_ms, created_at_ms, language \
         FROM users "
    };
}
pub(crate) use select_user;

/// The columns of a [`Restaurant`].
macro_rules! select_restaurant {
    () => {
        "SELECT id, owner_id, name, lat, lng, address, cuisines_json, hours_json, \
         delivery_radius_m, prep_time_s, accepting_orders, created_at_ms, updated_at_ms \
         FROM restaurants "
    };
}
pub(crate) use select_restaurant;

/// The columns of a [`MenuItem`].
macro_rules! select_menu_item {
    () => {
        "SELECT id, restaurant_id, category, name, description, price_cents, available, \
         stock, position, created_at_ms, updated_at_ms FROM menu_items "
    };
}
pub(crate) use select_menu_item;

/// The columns of an [`Order`] (without lines), with its restaurant's owner
/// and its version in the event stream.
macro_rules! select_order {
    () => {
        "SELECT o.id, o.customer_id, o.restaurant_id, r.owner_id, o.status, o.driver_id, \
         o.pickup_lat, o.pickup_lng, o.dropoff_lat, o.dropoff_lng, o.delivery_address, \
         o.subtotal_cents, o.delivery_fee_cents, o.total_cents, o.created_at_ms, o.updated_at_ms, \
         o.accepted_at_ms, o.ready_at_ms, \
         COALESCE(ea.version, 0) AS version \
         FROM orders o JOIN restaurants r ON r.id = o.restaurant_id \
         LEFT JOIN event_aggregates ea ON ea.aggregate_kind = 'order' AND ea.aggregate_id = o.id "
    };
}
pub(crate) use select_order;

/// The columns of a [`Payment`], for `SELECT` and `RETURNING`.
macro_rules! payment_columns {
    () => {
        "id, order_id, kind, amount_cents, status, method, token, gateway_ref, failure, \
         reason, attempts, retries, retry_at_ms, actor_id, created_at_ms, updated_at_ms"
    };
}
pub(crate) use payment_columns;

macro_rules! select_payment {
    () => {
        concat!("SELECT ", payment_columns!(), " FROM payments ")
    };
}
pub(crate) use select_payment;

pub(crate) fn corrupt(column: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("column {column} holds {value:?}"))
}

pub(crate) fn parse_col<T: FromStr>(row: &AnyRow, column: &str) -> Result<T> {
    let s: String = row.try_get(column)?;
    s.parse().map_err(|_| corrupt(column, &s))
}

pub(crate) fn parse_opt_col<T: FromStr>(row: &AnyRow, column: &str) -> Result<Option<T>> {
    let s: Option<String> = row.try_get(column)?;
    s.map(|s| s.parse().map_err(|_| corrupt(column, &s)))
        .transpose()
}

pub(crate) fn status_col(row: &AnyRow, column: &str) -> Result<OrderStatus> {
    let s: String = row.try_get(column)?;
    OrderStatus::parse(&s).ok_or_else(|| corrupt(column, &s))
}

fn flag_col(row: &AnyRow, column: &str) -> Result<bool> {
    let v: i64 = row.try_get(column)?;
    match v {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(corrupt(column, &other.to_string())),
    }
}

fn u32_col(row: &AnyRow, column: &str) -> Result<u32> {
    let v: i64 = row.try_get(column)?;
    u32::try_from(v).map_err(|_| corrupt(column, &v.to_string()))
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

fn lat_lng(row: &AnyRow, lat: &str, lng: &str) -> Result<LatLng> {
    let (la, ln): (f64, f64) = (row.try_get(lat)?, row.try_get(lng)?);
    LatLng::new(la, ln).map_err(|_| corrupt(lat, &format!("{la},{ln}")))
}

pub(crate) fn user(row: &AnyRow) -> Result<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: parse_col(row, "id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        name: row.try_get("name")?,
        phone: row.try_get("phone")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        banned_at_ms: row.try_get("banned_at_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
        language: language(row, "language")?,
    })
}

/// A nullable language column.
pub(crate) fn language(row: &AnyRow, col: &str) -> Result<Option<crate::notify::Language>> {
    let code: Option<String> = row.try_get(col)?;
    code.map(|c| crate::notify::Language::parse(&c).ok_or_else(|| corrupt(col, &c)))
        .transpose()
}

pub(crate) fn address(row: &AnyRow) -> Result<Address> {
    Ok(Address {
        id: parse_col(row, "id")?,
        user_id: parse_col(row, "user_id")?,
        label: row.try_get("label")?,
        address: row.try_get("address")?,
        location: lat_lng(row, "lat", "lng")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

pub(crate) fn restaurant(row: &AnyRow) -> Result<Restaurant> {
    let cuisines: String = row.try_get("cuisines_json")?;
    Ok(Restaurant {
        id: parse_col(row, "id")?,
        owner_id: parse_col(row, "owner_id")?,
        name: row.try_get("name")?,
        location: lat_lng(row, "lat", "lng")?,
        address: row.try_get("address")?,
        cuisines: serde_json::from_str(&cuisines)
            .map_err(|_| corrupt("cuisines_json", &cuisines))?,
        hours_json: row.try_get("hours_json")?,
        delivery_radius_m: u32_col(row, "delivery_radius_m")?,
        prep_time_s: u32_col(row, "prep_time_s")?,
        accepting_orders: flag_col(row, "accepting_orders")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

pub(crate) fn menu_item(row: &AnyRow) -> Result<MenuItem> {
    Ok(MenuItem {
        id: parse_col(row, "id")?,
        restaurant_id: parse_col(row, "restaurant_id")?,
        category: row.try_get("category")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        price_cents: row.try_get("price_cents")?,
        available: flag_col(row, "available")?,
        stock: row.try_get("stock")?,
        position: row.try_get("position")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

pub(crate) fn order(row: &AnyRow) -> Result<Order> {
    Ok(Order {
        id: parse_col(row, "id")?,
        customer_id: parse_col(row, "customer_id")?,
        restaurant_id: parse_col(row, "restaurant_id")?,
        restaurant_owner_id: parse_col(row, "owner_id")?,
        status: status_col(row, "status")?,
        driver_id: parse_opt_col(row, "driver_id")?,
        pickup: lat_lng(row, "pickup_lat", "pickup_lng")?,
        dropoff: lat_lng(row, "dropoff_lat", "dropoff_lng")?,
        delivery_address: row.try_get("delivery_address")?,
        subtotal_cents: row.try_get("subtotal_cents")?,
        delivery_fee_cents: row.try_get("delivery_fee_cents")?,
        total_cents: row.try_get("total_cents")?,
        lines: Vec::new(),
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        accepted_at_ms: row.try_get("accepted_at_ms")?,
        ready_at_ms: row.try_get("ready_at_ms")?,
        version: row.try_get("version")?,
    })
}

pub(crate) fn payment(row: &AnyRow) -> Result<Payment> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    Ok(Payment {
        id: parse_col(row, "id")?,
        order_id: parse_col(row, "order_id")?,
        kind: PaymentKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        amount_cents: row.try_get("amount_cents")?,
        status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        method: row.try_get("method")?,
        token: row.try_get("token")?,
        gateway_ref: row.try_get("gateway_ref")?,
        failure: row.try_get("failure")?,
        reason: row.try_get("reason")?,
        attempts: row.try_get("attempts")?,
        retries: row.try_get("retries")?,
        retry_at_ms: row.try_get("retry_at_ms")?,
        actor_id: parse_opt_col(row, "actor_id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}
