//! The shared transactional pieces of the SQL store: how a write
//! transaction begins ([`SqlStore::begin_write`], with SQLite's in-process
//! write gate), how it appends its event ([`append`]) and wakes the relay
//! after the commit ([`SqlStore::committed`]), and the statements that
//! more than one area writes inside one (status compare-and-set, stock
//! given back, refunds owed). `orders` and `payments` both use these and
//! never each other.
//!
//! Every state-changing store method is one transaction opened with
//! [`SqlStore::begin_write`], appends its event(s) with [`append`] and is
//! committed once at its end, then calls [`SqlStore::committed`]: the change
//! and its event are published together or not at all.
//!
//! Lock order (PostgreSQL deadlock avoidance): a transaction first writes
//! its business rows (menu items by id, then the order, user or
//! restaurant row), and appends last; every transaction appends to one
//! aggregate only (an order's payments and refunds are the order's), so
//! the aggregate's version row is always the last lock taken.

use engine::{OrderId, OrderStatus, PaymentId, UserId};
use sqlx::{Any, Row, Transaction};

use super::rows::{self, select_order};
use super::{Backend, SqlStore};
use crate::store::{Order, Payment, PaymentKind, PaymentStatus, Result};

/// A transaction on the store's pool.
pub(super) type Tx = Transaction<'static, Any>;

/// Held for the length of a write transaction (see [`SqlStore::begin_write`]):
/// on SQLite the turn at the in-process write gate, on PostgreSQL nothing.
pub(super) type WriteGate = Option<tokio::sync::OwnedMutexGuard<()>>;

impl SqlStore {
    /// A transaction that will write (see the module docs), with the
    /// write gate it holds: keep the gate until the transaction ends.
    pub(super) async fn begin_write(&self) -> Result<(WriteGate, Transaction<'static, Any>)> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok((gate, tx))
    }

    /// Call after a commit that appended: wakes this node's relay, which
    /// numbers the events and tells the other nodes.
    pub(super) fn committed(&self) {
        self.log.wake().notify();
    }
}

/// Appends `event` in `tx` (see the module docs for the lock order); the
/// aggregate's new version.
pub(super) async fn append(tx: &mut Tx, event: &events::NewEvent) -> Result<i64> {
    Ok(events::append(tx, event).await?.version)
}

/// Compare-and-set of the order's status. Whether it applied. A step to
/// `paid`, `accepted` or `ready_for_pickup` stamps `paid_at_ms` (the
/// auto-reject deadline's start), `accepted_at_ms` / `ready_at_ms` (each
/// status is reached once in an order's life).
pub(super) async fn set_status(
    tx: &mut Tx,
    order_id: OrderId,
    from: OrderStatus,
    to: OrderStatus,
    at_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE orders SET status = $1, updated_at_ms = $2, \
         paid_at_ms = CASE WHEN $1 = 'paid' THEN $2 ELSE paid_at_ms END, \
         accepted_at_ms = CASE WHEN $1 = 'accepted' THEN $2 ELSE accepted_at_ms END, \
         ready_at_ms = CASE WHEN $1 = 'ready_for_pickup' THEN $2 ELSE ready_at_ms END \
         WHERE id = $3 AND status = $4",
    )
    .bind(to.as_str())
    .bind(at_ms)
    .bind(order_id.to_string())
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(done > 0)
}

/// Puts back the stock the order's lines took. Called once per order: only
/// from the step into a closed status that ends it unfulfilled.
pub(super) async fn give_back_stock(tx: &mut Tx, order_id: OrderId, at_ms: i64) -> Result<()> {
    sqlx::query(
        "UPDATE menu_items SET stock = stock + (SELECT l.quantity FROM order_lines l \
             WHERE l.order_id = $1 AND l.menu_item_id = menu_items.id), updated_at_ms = $2 \
         WHERE stock IS NOT NULL AND id IN \
             (SELECT menu_item_id FROM order_lines WHERE order_id = $1 AND took_stock = 1)",
    )
    .bind(order_id.to_string())
    .bind(at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a payment row (a pending charge or refund) as given.
pub(super) async fn insert_payment(tx: &mut Tx, p: &Payment) -> Result<()> {
    sqlx::query(
        "INSERT INTO payments (id, order_id, kind, amount_cents, status, method, token, gateway_ref, \
         failure, reason, attempts, retries, retry_at_ms, actor_id, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(p.id.to_string())
    .bind(p.order_id.to_string())
    .bind(p.kind.as_str())
    .bind(p.amount_cents)
    .bind(p.status.as_str())
    .bind(&p.method)
    .bind(p.token.as_deref())
    .bind(p.gateway_ref.as_deref())
    .bind(p.failure.as_deref())
    .bind(p.reason.as_deref())
    .bind(p.attempts)
    .bind(p.retries)
    .bind(p.retry_at_ms)
    .bind(p.actor_id.map(|a| a.to_string()))
    .bind(p.created_at_ms)
    .bind(p.updated_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The order as this transaction sees it (without lines).
pub(super) async fn order_in(tx: &mut Tx, order_id: OrderId) -> Result<Order> {
    let row = sqlx::query(concat!(select_order!(), "WHERE o.id = $1"))
        .bind(order_id.to_string())
        .fetch_one(&mut **tx)
        .await?;
    rows::order(&row)
}

/// Locks the order row for the rest of the transaction (a no-op write).
/// Whether the order exists.
pub(super) async fn touch_order(tx: &mut Tx, order_id: OrderId, at_ms: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE orders SET updated_at_ms = $1 WHERE id = $2")
        .bind(at_ms)
        .bind(order_id.to_string())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(done > 0)
}

/// Succeeded charges minus refunds that succeeded or are still pending.
pub(super) async fn refundable_cents(tx: &mut Tx, order_id: OrderId) -> Result<i64> {
    let row = sqlx::query(
        "SELECT \
           CAST(COALESCE(SUM(CASE WHEN kind = 'charge' AND status = 'succeeded' THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS paid, \
           CAST(COALESCE(SUM(CASE WHEN kind = 'refund' AND status <> 'failed' THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS refunded \
         FROM payments WHERE order_id = $1",
    )
    .bind(order_id.to_string())
    .fetch_one(&mut **tx)
    .await?;
    let paid: i64 = row.try_get("paid")?;
    let refunded: i64 = row.try_get("refunded")?;
    Ok((paid - refunded).max(0))
}

/// Writes a pending refund of `amount_cents` of the order, by the method
/// the order was charged with; the refund as written.
pub(super) async fn insert_refund(
    tx: &mut Tx,
    id: PaymentId,
    order_id: OrderId,
    amount_cents: i64,
    reason: &str,
    actor_id: Option<UserId>,
    at_ms: i64,
) -> Result<Payment> {
    // A refund goes back the way the charge came.
    let method: Option<String> =
        sqlx::query("SELECT method FROM payments WHERE order_id = $1 AND kind = 'charge'")
            .bind(order_id.to_string())
            .fetch_optional(&mut **tx)
            .await?
            .map(|row| row.try_get("method"))
            .transpose()?;
    let refund = Payment {
        id,
        order_id,
        kind: PaymentKind::Refund,
        amount_cents,
        status: PaymentStatus::Pending,
        method: method.unwrap_or_else(|| "card".to_owned()),
        token: None,
        gateway_ref: None,
        failure: None,
        reason: Some(reason.to_owned()),
        attempts: 0,
        retries: 0,
        retry_at_ms: None,
        actor_id,
        created_at_ms: at_ms,
        updated_at_ms: at_ms,
    };
    insert_payment(tx, &refund).await?;
    Ok(refund)
}
