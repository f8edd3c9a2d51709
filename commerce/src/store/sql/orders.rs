//! Orders: placement (idempotency key, stock, pricing, pending charge in
//! one transaction), reading, listing, steps with their compensations, and
//! driver assignment.

use async_trait::async_trait;
use engine::{DriverId, Fence, MenuItemId, OrderId, OrderStatus, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{self, parse_col, select_order, status_col};
use super::tx::{
    Tx, append, give_back_stock, insert_payment, insert_refund, order_in, refundable_cents,
    set_status, touch_order,
};
use super::{SqlStore, is_unique_violation, terminal_statuses};
use crate::event::{self, ACTOR_ORDERS, OrderChanged, PaymentInfo};
use crate::store::{
    AssignOutcome, ForceCancel, ForceCancelOutcome, NewOrder, Order, OrderCursor, OrderEvent,
    OrderFilter, OrderLine, OrderScope, OrderStore, PageAfter, Payment, PaymentKind, PaymentStatus,
    PlaceOutcome, Preparation, ReassignOutcome, Reassignment, Result, Transition,
    TransitionOutcome,
};

/// The most history entries one order's history returns. An order makes a
/// dozen events in its whole life; the bound only guards the read.
const MAX_HISTORY_EVENTS: i64 = 1_000;

/// The most orders one statement of `order_heads` asks for (the
/// databases' parameter limits are far above it; a consumer's batch of
/// events, `events.consumer_batch`, is below it).
const ORDER_HEADS_PER_READ: usize = 500;

/// Keyset pagination, newest first: `$2`/`$3` are the cursor, `$4` the limit.
macro_rules! page_newest_first {
    () => {
        " AND (o.created_at_ms < $2 OR (o.created_at_ms = $2 AND o.id < $3)) \
         ORDER BY o.created_at_ms DESC, o.id DESC LIMIT $4"
    };
}

#[async_trait]
impl OrderStore for SqlStore {
    async fn place_order(&self, new: &NewOrder, actor_id: UserId) -> Result<PlaceOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;

        // Stock first, in item-id order, so two orders for the same items
        // lock the rows in the same order and cannot deadlock (PostgreSQL);
        // the prices come back from the same statements.
        let mut wanted = new.items.clone();
        wanted.sort_by_key(|&(id, _)| id);
        let mut lines = Vec::with_capacity(wanted.len());
        let mut subtotal: i64 = 0;
        for &(item, quantity) in &wanted {
            match take_stock(&mut tx, &new.order, item, quantity).await? {
                Ok(line) => {
                    subtotal = subtotal.saturating_add(line.0.unit_price_cents * quantity);
                    lines.push(line);
                }
                Err(refusal) => {
                    tx.rollback().await?;
                    return Ok(refusal);
                }
            }
        }
        let mut order = new.order.clone();
        order.subtotal_cents = subtotal;
        order.total_cents = subtotal.saturating_add(order.delivery_fee_cents);
        insert_order_row(&mut tx, &order).await?;

        // Then the key. On PostgreSQL a second request with the same key
        // waits here on the key's unique index until this one commits (it
        // then finds the key and rolls back, stock included) or rolls back.
        if let Some(key) = &new.idempotency {
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, key) DO NOTHING",
            )
            .bind(order.customer_id.to_string())
            .bind(&key.key)
            .bind(&key.request_hash)
            .bind(order.id.to_string())
            .bind(order.created_at_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                let row = sqlx::query(
                    "SELECT request_hash, order_id FROM idempotency_keys WHERE customer_id = $1 AND key = $2",
                )
                .bind(order.customer_id.to_string())
                .bind(&key.key)
                .fetch_one(&mut *tx)
                .await?;
                tx.rollback().await?;
                let hash: String = row.try_get("request_hash")?;
                return Ok(if hash == key.request_hash {
                    PlaceOutcome::Replayed(parse_col(&row, "order_id")?)
                } else {
                    PlaceOutcome::KeyReused
                });
            }
        }
        insert_lines(&mut tx, order.id, &lines).await?;
        let payment = Payment {
            id: new.payment_id,
            order_id: order.id,
            kind: PaymentKind::Charge,
            amount_cents: order.total_cents,
            status: PaymentStatus::Pending,
            method: new.payment_method.clone(),
            token: Some(new.payment_token.clone()),
            gateway_ref: None,
            failure: None,
            reason: None,
            attempts: 0,
            retries: 0,
            retry_at_ms: None,
            actor_id: Some(actor_id),
            created_at_ms: order.created_at_ms,
            updated_at_ms: order.created_at_ms,
        };
        insert_payment(&mut tx, &payment).await?;
        if new.clear_cart {
            sqlx::query("DELETE FROM cart_items WHERE customer_id = $1")
                .bind(order.customer_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let placed = event::new_event(
            events::EventType::OrderPlaced,
            order.id,
            event::actor(Some(actor_id), ACTOR_ORDERS),
            order.created_at_ms,
            &OrderChanged {
                payment: Some(PaymentInfo::from(&payment)),
                ..OrderChanged::of(&order, None, order.created_at_ms)
            },
        )?;
        order.version = append(&mut tx, &placed).await?;
        tx.commit().await?;
        self.committed();

        order.lines = lines.into_iter().map(|(line, _)| line).collect();
        Ok(PlaceOutcome::Placed(order, payment))
    }

    async fn idempotent_order(
        &self,
        customer_id: UserId,
        key: &str,
    ) -> Result<Option<(String, OrderId)>> {
        let row = sqlx::query(
            "SELECT request_hash, order_id FROM idempotency_keys WHERE customer_id = $1 AND key = $2",
        )
        .bind(customer_id.to_string())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| Ok((row.try_get("request_hash")?, parse_col(row, "order_id")?)))
            .transpose()
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        let Some(mut order) = self.order_head(id).await? else {
            return Ok(None);
        };
        let lines = sqlx::query(
            "SELECT menu_item_id, name, unit_price_cents, quantity FROM order_lines \
             WHERE order_id = $1 ORDER BY menu_item_id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        order.lines = lines.iter().map(line_from_row).collect::<Result<_>>()?;
        Ok(Some(order))
    }

    async fn order_head(&self, id: OrderId) -> Result<Option<Order>> {
        let row = sqlx::query(concat!(select_order!(), "WHERE o.id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::order).transpose()
    }

    async fn order_heads(&self, ids: &[OrderId]) -> Result<Vec<Order>> {
        let mut heads = Vec::with_capacity(ids.len());
        // Bounded statements: SQLite allows 32,766 parameters, PostgreSQL
        // 65,535; a consumer's batch is far smaller, this only caps a
        // caller that passes more.
        for chunk in ids.chunks(ORDER_HEADS_PER_READ) {
            let placeholders = (1..=chunk.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(concat!(select_order!(), "WHERE o.id IN ({})"), placeholders);
            // Not kept prepared: its text varies with the batch, and each
            // length would take a slot of the connection's statement cache.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            let rows = query.fetch_all(&self.pool).await?;
            for row in &rows {
                heads.push(rows::order(row)?);
            }
        }
        Ok(heads)
    }

    async fn list_orders(
        &self,
        scope: OrderScope,
        cursor: Option<OrderCursor>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        // Without a cursor, start above every row: any real created_at_ms is
        // below i64::MAX.
        let (before_ms, before_id) = match cursor {
            Some(c) => (c.created_at_ms, c.order_id.to_string()),
            None => (i64::MAX, String::new()),
        };
        if let OrderScope::Restaurant {
            restaurant_id,
            status,
        } = scope
        {
            let sql = concat!(
                select_order!(),
                "WHERE o.restaurant_id = $1 AND ($5 = '' OR o.status = $5)",
                page_newest_first!()
            );
            let rows = sqlx::query(sql)
                .bind(restaurant_id.to_string())
                .bind(before_ms)
                .bind(before_id)
                .bind(i64::from(limit))
                .bind(status.map_or("", |s| s.as_str()))
                .fetch_all(&self.pool)
                .await?;
            return rows.iter().map(rows::order).collect();
        }
        let (sql, party) = match scope {
            OrderScope::Customer(u) => (
                concat!(
                    select_order!(),
                    "WHERE o.customer_id = $1",
                    page_newest_first!()
                ),
                u.to_string(),
            ),
            OrderScope::RestaurantOwner(u) => (
                concat!(
                    select_order!(),
                    "WHERE r.owner_id = $1",
                    page_newest_first!()
                ),
                u.to_string(),
            ),
            OrderScope::Driver(d) => (
                concat!(
                    select_order!(),
                    "WHERE o.driver_id = $1",
                    page_newest_first!()
                ),
                d.to_string(),
            ),
            // `$1` is bound but unused, so every scope binds alike.
            OrderScope::All => (
                concat!(select_order!(), "WHERE $1 = $1", page_newest_first!()),
                String::new(),
            ),
            // Answered above.
            OrderScope::Restaurant { .. } => return Ok(Vec::new()),
        };
        let rows = sqlx::query(sql)
            .bind(party)
            .bind(before_ms)
            .bind(before_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::order).collect()
    }

    async fn search_orders(
        &self,
        filter: &OrderFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        super::listings::orders(self, filter, after, limit).await
    }

    async fn open_orders(&self, after: Option<OrderId>, limit: u32) -> Result<Vec<Order>> {
        let rows = sqlx::query(concat!(
            select_order!(),
            "WHERE o.status NOT IN ",
            terminal_statuses!(),
            " AND o.id > $1 ORDER BY o.id LIMIT $2"
        ))
        .bind(after.map(|id| id.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::order).collect()
    }

    async fn transition_order(&self, t: &Transition) -> Result<TransitionOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;
        if !set_status(&mut tx, t.order_id, t.from, t.to, t.at_ms).await? {
            tx.rollback().await?;
            let current = sqlx::query("SELECT status FROM orders WHERE id = $1")
                .bind(t.order_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
            let current = current
                .as_ref()
                .map(|row| status_col(row, "status"))
                .transpose()?;
            return Ok(TransitionOutcome::Stale(current));
        }
        // The order as the step left it: the event names its driver (a
        // step after the assignment), restaurant, customer and total.
        let mut order = order_in(&mut tx, t.order_id).await?;
        let mut refund = None;
        if matches!(t.to, OrderStatus::Cancelled | OrderStatus::Rejected) {
            give_back_stock(&mut tx, t.order_id, t.at_ms).await?;
            let owed = refundable_cents(&mut tx, t.order_id).await?;
            if owed > 0 {
                let reason = format!("order {}", t.to.as_str());
                refund = Some(
                    insert_refund(
                        &mut tx,
                        t.refund_id,
                        t.order_id,
                        owed,
                        &reason,
                        None,
                        t.at_ms,
                    )
                    .await?,
                );
            }
        }
        let stepped = event::new_event(
            event::step_event_type(t.to),
            t.order_id,
            event::actor(t.actor_id, ACTOR_ORDERS),
            t.at_ms,
            &OrderChanged {
                refund: refund.as_ref().map(PaymentInfo::from),
                ..OrderChanged::of(&order, Some(t.from), t.at_ms)
            },
        )?;
        order.version = append(&mut tx, &stepped).await?;
        tx.commit().await?;
        self.committed();
        Ok(TransitionOutcome::Applied(order, refund))
    }

    async fn assign_driver_fenced(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        at_ms: i64,
        fence: Option<Fence>,
    ) -> Result<AssignOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;
        if let Some(fence) = fence {
            if let Some(refused) = stale_fence(&mut tx, self.backend, fence).await? {
                tx.rollback().await?;
                return Ok(refused);
            }
            // One open order per driver across leaders: the leaders of two
            // regions may offer one driver an order each. The driver's row
            // lock makes their checks take turns (PostgreSQL; SQLite has
            // one writer), so the second sees the first's assignment.
            if self.backend == super::Backend::Postgres {
                sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                    .bind(driver_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            }
            let held: Option<String> = sqlx::query_scalar(concat!(
                "SELECT id FROM orders WHERE driver_id = $1 AND id <> $2 AND status NOT IN ",
                terminal_statuses!(),
                " LIMIT 1"
            ))
            .bind(driver_id.to_string())
            .bind(order_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_some() {
                tx.rollback().await?;
                return Ok(AssignOutcome::DriverBusy);
            }
        }
        let done = sqlx::query(concat!(
            "UPDATE orders SET driver_id = $1, updated_at_ms = $2 ",
            "WHERE id = $3 AND driver_id IS NULL AND status NOT IN ",
            terminal_statuses!()
        ))
        .bind(driver_id.to_string())
        .bind(at_ms)
        .bind(order_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        self.finish_assignment(tx, done, order_id, driver_id, at_ms)
            .await
    }

    async fn bump_lease_epoch(&self, name: &str, holder: &str, at_ms: i64) -> Result<i64> {
        let (_gate, mut tx) = self.begin_write().await?;
        // The row lock this takes waits for assignments that checked the
        // old epoch under their shared lock (see `assign_driver_fenced`).
        let epoch: i64 = sqlx::query_scalar(
            "INSERT INTO lease_epochs (name, epoch, holder, acquired_at_ms) VALUES ($1, 1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET epoch = lease_epochs.epoch + 1, \
             holder = excluded.holder, acquired_at_ms = excluded.acquired_at_ms \
             RETURNING epoch",
        )
        .bind(name)
        .bind(holder)
        .bind(at_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(epoch)
    }

    async fn lease_epoch(&self, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT epoch FROM lease_epochs WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn assign_stacked_driver(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        at_ms: i64,
        fence: Option<Fence>,
    ) -> Result<AssignOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;
        if let Some(fence) = fence
            && let Some(refused) = stale_fence(&mut tx, self.backend, fence).await?
        {
            tx.rollback().await?;
            return Ok(refused);
        }
        if self.backend == super::Backend::Postgres {
            // The driver's accepts queue on its row (as fenced ones do), so
            // two of them cannot both count the driver's other orders
            // before either commits (SQLite has one writer already).
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(driver_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        }
        // The stacking guard, one statement: the order is open and has no
        // driver (as `assign_driver`), and the driver holds at most one
        // other open order, not picked up (from this order's restaurant or
        // another on the way: the matcher's rule decides which).
        let done = sqlx::query(concat!(
            "UPDATE orders SET driver_id = $1, updated_at_ms = $2 ",
            "WHERE id = $3 AND driver_id IS NULL AND status NOT IN ",
            terminal_statuses!(),
            " AND (SELECT COUNT(*) FROM orders held WHERE held.driver_id = $1 ",
            "AND held.status NOT IN ",
            terminal_statuses!(),
            ") <= 1 AND NOT EXISTS (SELECT 1 FROM orders held WHERE held.driver_id = $1 ",
            "AND held.status NOT IN ",
            terminal_statuses!(),
            " AND held.status = 'picked_up')"
        ))
        .bind(driver_id.to_string())
        .bind(at_ms)
        .bind(order_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        self.finish_assignment(tx, done, order_id, driver_id, at_ms)
            .await
    }

    async fn force_cancel_order(&self, c: &ForceCancel) -> Result<ForceCancelOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;
        // The order row locked first (PostgreSQL), so its status cannot
        // move between the read and the compare-and-set below, and a
        // concurrent refund waits for this one's amount.
        if !touch_order(&mut tx, c.order_id, c.at_ms).await? {
            tx.rollback().await?;
            return Ok(ForceCancelOutcome::UnknownOrder);
        }
        let before = order_in(&mut tx, c.order_id).await?;
        if before.status.is_terminal() {
            tx.rollback().await?;
            return Ok(match self.order(c.order_id).await? {
                Some(order) => ForceCancelOutcome::Closed(order),
                None => ForceCancelOutcome::UnknownOrder,
            });
        }
        let from = before.status;
        if !set_status(&mut tx, c.order_id, from, OrderStatus::Cancelled, c.at_ms).await? {
            // Impossible under the row lock (and SQLite's one writer); say
            // so rather than cancel from a status nobody read.
            tx.rollback().await?;
            return Err(crate::store::StoreError::Corrupt(format!(
                "order {} moved under its row lock",
                c.order_id
            )));
        }
        give_back_stock(&mut tx, c.order_id, c.at_ms).await?;
        let mut order = order_in(&mut tx, c.order_id).await?;
        let owed = refundable_cents(&mut tx, c.order_id).await?;
        let refund = if owed > 0 {
            Some(
                insert_refund(
                    &mut tx,
                    c.refund_id,
                    c.order_id,
                    owed,
                    &c.reason,
                    Some(c.actor_id),
                    c.at_ms,
                )
                .await?,
            )
        } else {
            None
        };
        let cancelled = event::new_event(
            events::EventType::OrderCancelled,
            c.order_id,
            events::Actor::User(c.actor_id.as_uuid()),
            c.at_ms,
            &OrderChanged {
                refund: refund.as_ref().map(PaymentInfo::from),
                ..OrderChanged::of(&order, Some(from), c.at_ms)
            },
        )?;
        order.version = append(&mut tx, &cancelled).await?;
        tx.commit().await?;
        self.committed();
        Ok(ForceCancelOutcome::Cancelled {
            order,
            from,
            refund,
        })
    }

    async fn reassign_driver(&self, r: &Reassignment) -> Result<ReassignOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;
        if let Some(to) = r.to {
            // One open order per driver. The driver's row lock makes this
            // check take turns with a fenced accept's (PostgreSQL; see
            // `assign_driver_fenced`); the caller also checks the engine
            // (which binds a driver to one order under its lock), and the
            // matcher offers nothing to a busy driver.
            if self.backend == super::Backend::Postgres {
                sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                    .bind(to.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            }
            let held = sqlx::query(concat!(
                "SELECT id FROM orders WHERE driver_id = $1 AND id <> $2 AND status NOT IN ",
                terminal_statuses!(),
                " LIMIT 1"
            ))
            .bind(to.to_string())
            .bind(r.order_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = held {
                tx.rollback().await?;
                return Ok(ReassignOutcome::DriverBusy(parse_col(&row, "id")?));
            }
        }
        // The guard: one conditional UPDATE on the driver the caller saw
        // (`''` for none, so both backends compare plain text). An accept
        // (`assign_driver`, `driver_id IS NULL`) racing it finds the row
        // changed, or changes it first and this finds it changed: never
        // two drivers on one order.
        let done = sqlx::query(
            "UPDATE orders SET driver_id = $1, updated_at_ms = $2 \
             WHERE id = $3 AND COALESCE(driver_id, '') = $4 \
             AND status IN ('accepted', 'preparing', 'ready_for_pickup')",
        )
        .bind(r.to.map(|d| d.to_string()))
        .bind(r.at_ms)
        .bind(r.order_id.to_string())
        .bind(r.from.map(|d| d.to_string()).unwrap_or_default())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            tx.rollback().await?;
            return Ok(ReassignOutcome::Stale(self.order(r.order_id).await?));
        }
        let mut order = order_in(&mut tx, r.order_id).await?;
        let reassigned = event::new_event(
            events::EventType::OrderReassigned,
            r.order_id,
            events::Actor::User(r.actor_id.as_uuid()),
            r.at_ms,
            &OrderChanged {
                driver_from: r.from,
                ..OrderChanged::of(&order, Some(order.status), r.at_ms)
            },
        )?;
        order.version = append(&mut tx, &reassigned).await?;
        tx.commit().await?;
        self.committed();
        Ok(ReassignOutcome::Applied(order))
    }

    async fn order_events(&self, order_id: OrderId) -> Result<Vec<OrderEvent>> {
        // The order's committed events, by version. Read here rather than
        // through `EventLog::aggregate_events`, which shows only events the
        // relay has sequenced: a change must be in the history as soon as
        // it commits. Versions of one aggregate commit in order (the
        // version row's lock), so what is visible is always a prefix.
        let rows = sqlx::query(
            "SELECT event_type, actor, at_ms, payload_json FROM events \
             WHERE aggregate_kind = 'order' AND aggregate_id = $1 \
             ORDER BY aggregate_version LIMIT $2",
        )
        .bind(order_id.to_string())
        .bind(MAX_HISTORY_EVENTS)
        .fetch_all(&self.pool)
        .await?;
        let mut history = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("event_type")?;
            let actor: String = row.try_get("actor")?;
            let payload: String = row.try_get("payload_json")?;
            let event_type = events::EventType::parse(&name)
                .ok_or_else(|| rows::corrupt("event_type", &name))?;
            let actor =
                events::Actor::parse(&actor).ok_or_else(|| rows::corrupt("actor", &actor))?;
            let body: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
            let at_ms: i64 = row.try_get("at_ms")?;
            if let Some(entry) = event::history_entry(order_id, event_type, &actor, at_ms, &body)? {
                history.push(entry);
            }
        }
        Ok(history)
    }

    async fn recent_preparations(&self, limit: u32) -> Result<Vec<Preparation>> {
        let rows = sqlx::query(
            "SELECT restaurant_id, accepted_at_ms, ready_at_ms FROM orders \
             WHERE ready_at_ms IS NOT NULL AND accepted_at_ms IS NOT NULL \
             ORDER BY ready_at_ms DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Preparation {
                    restaurant_id: parse_col(row, "restaurant_id")?,
                    accepted_at_ms: row.try_get("accepted_at_ms")?,
                    ready_at_ms: row.try_get("ready_at_ms")?,
                })
            })
            .collect()
    }

    async fn orders_awaiting_acceptance(
        &self,
        paid_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<Order>> {
        // `orders_awaiting_acceptance` (migration 0013) holds exactly the
        // paid orders, by payment time.
        let rows = sqlx::query(concat!(
            select_order!(),
            "WHERE o.status = 'paid' AND o.paid_at_ms <= $1 ",
            "ORDER BY o.paid_at_ms, o.id LIMIT $2"
        ))
        .bind(paid_before_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::order).collect()
    }
}

async fn insert_order_row(tx: &mut Tx, order: &Order) -> Result<()> {
    sqlx::query(
        "INSERT INTO orders (id, customer_id, restaurant_id, status, driver_id, pickup_lat, pickup_lng, \
         dropoff_lat, dropoff_lng, delivery_address, subtotal_cents, delivery_fee_cents, total_cents, \
         created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(order.id.to_string())
    .bind(order.customer_id.to_string())
    .bind(order.restaurant_id.to_string())
    .bind(order.status.as_str())
    .bind(order.driver_id.map(|d| d.to_string()))
    .bind(order.pickup.lat)
    .bind(order.pickup.lng)
    .bind(order.dropoff.lat)
    .bind(order.dropoff.lng)
    .bind(&order.delivery_address)
    .bind(order.subtotal_cents)
    .bind(order.delivery_fee_cents)
    .bind(order.total_cents)
    .bind(order.created_at_ms)
    .bind(order.updated_at_ms)
    .execute(&mut **tx)
    .await
    .inspect_err(|e| {
        // A v7 id collision is as good as impossible; report it plainly.
        if is_unique_violation(e) {
            tracing::error!(order_id = %order.id, "order id collision");
        }
    })?;
    Ok(())
}

/// Inserts the order's lines in one statement (orders have few lines; the
/// statement text is cached per line count).
async fn insert_lines(tx: &mut Tx, order_id: OrderId, lines: &[(OrderLine, bool)]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO order_lines (order_id, menu_item_id, name, unit_price_cents, quantity, took_stock) VALUES ",
    );
    for i in 0..lines.len() {
        let p = i * 6;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6
        ));
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (line, took_stock) in lines {
        query = query
            .bind(order_id.to_string())
            .bind(line.menu_item_id.to_string())
            .bind(line.name.clone())
            .bind(line.unit_price_cents)
            .bind(line.quantity)
            .bind(i64::from(*took_stock));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Takes `quantity` of `item` for `order` (price read in the same
/// statement): the line and whether it counted stock, or why not.
async fn take_stock(
    tx: &mut Tx,
    order: &Order,
    item: MenuItemId,
    quantity: i64,
) -> Result<Result<(OrderLine, bool), PlaceOutcome>> {
    // One conditional UPDATE: it only matches while enough is left, so
    // concurrent orders can never take stock below zero.
    let row = sqlx::query(
        "UPDATE menu_items SET stock = CASE WHEN stock IS NULL THEN NULL ELSE stock - $1 END \
         WHERE id = $2 AND restaurant_id = $3 AND available = 1 AND (stock IS NULL OR stock >= $1) \
         RETURNING name, price_cents, stock",
    )
    .bind(quantity)
    .bind(item.to_string())
    .bind(order.restaurant_id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = row {
        let stock: Option<i64> = row.try_get("stock")?;
        return Ok(Ok((
            OrderLine {
                menu_item_id: item,
                name: row.try_get("name")?,
                unit_price_cents: row.try_get("price_cents")?,
                quantity,
            },
            stock.is_some(),
        )));
    }
    // Why not: read the row as it is (under this transaction's lock).
    let row =
        sqlx::query("SELECT available, stock FROM menu_items WHERE id = $1 AND restaurant_id = $2")
            .bind(item.to_string())
            .bind(order.restaurant_id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    let Some(row) = row else {
        return Ok(Err(PlaceOutcome::UnknownItem(item)));
    };
    let available: i64 = row.try_get("available")?;
    if available == 0 {
        return Ok(Err(PlaceOutcome::Unavailable(item)));
    }
    let left: Option<i64> = row.try_get("stock")?;
    Ok(Err(PlaceOutcome::OutOfStock {
        item,
        left: left.unwrap_or(0),
    }))
}

fn line_from_row(row: &AnyRow) -> Result<OrderLine> {
    Ok(OrderLine {
        menu_item_id: parse_col(row, "menu_item_id")?,
        name: row.try_get("name")?,
        unit_price_cents: row.try_get("unit_price_cents")?,
        quantity: row.try_get("quantity")?,
    })
}

impl SqlStore {
    /// The end of an assignment: refused (rolled back, the order as it
    /// stands) when its conditional update changed no row, else
    /// `order.assigned` appended and committed, one transaction with the
    /// update (`assign_driver_fenced` and `assign_stacked_driver` differ
    /// only in their guards).
    async fn finish_assignment(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        updated: u64,
        order_id: OrderId,
        driver_id: DriverId,
        at_ms: i64,
    ) -> Result<AssignOutcome> {
        if updated == 0 {
            tx.rollback().await?;
            return Ok(AssignOutcome::Refused(self.order(order_id).await?));
        }
        let mut order = order_in(&mut tx, order_id).await?;
        let assigned = event::new_event(
            events::EventType::OrderAssigned,
            order_id,
            events::Actor::User(driver_id.as_uuid()),
            at_ms,
            &OrderChanged::of(&order, Some(order.status), at_ms),
        )?;
        order.version = append(&mut tx, &assigned).await?;
        tx.commit().await?;
        self.committed();
        Ok(AssignOutcome::Applied(order))
    }
}

/// [`AssignOutcome::Fenced`] when `fence`'s epoch is no longer its
/// region's current one in `lease_epochs`, else `None`. A shared lock on
/// PostgreSQL: assignments of one region do not wait for each other, a
/// takeover's bump waits for them (and they for it). SQLite's single
/// writer orders them anyway.
async fn stale_fence(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: super::Backend,
    fence: Fence,
) -> Result<Option<AssignOutcome>> {
    let sql = match backend {
        super::Backend::Postgres => "SELECT epoch FROM lease_epochs WHERE name = $1 FOR SHARE",
        super::Backend::Sqlite => "SELECT epoch FROM lease_epochs WHERE name = $1",
    };
    let current: Option<i64> = sqlx::query_scalar(sql)
        .bind(fence.region.lease_name())
        .fetch_optional(&mut **tx)
        .await?;
    Ok((current != Some(fence.epoch)).then_some(AssignOutcome::Fenced { current }))
}
