//! Charges and refunds: settling what the gateway answered, and refunds
//! that can never exceed what was paid.
//!
//! Every write that depends on an order's money first locks the order row
//! (`touch_order`), so refunds of one order are serialised on PostgreSQL as
//! they are by the write lock on SQLite: two concurrent refunds cannot both
//! see the same refundable amount.

use async_trait::async_trait;
use engine::{OrderId, OrderStatus, PaymentId};

use super::SqlStore;
use super::rows::{self, payment_columns, select_payment};
use super::tx::{
    Tx, append, give_back_stock, insert_refund, order_in, refundable_cents, set_status, touch_order,
};
use crate::event::{self, ACTOR_PAYMENTS, OrderChanged, PaymentInfo, RefundSettled};
use crate::store::{
    Payment, PaymentKind, PaymentStatus, PaymentStore, RefundOutcome, RefundRequest, Result,
    SettleOutcome, Settlement,
};

#[async_trait]
impl PaymentStore for SqlStore {
    async fn payments(&self, order_id: OrderId) -> Result<Vec<Payment>> {
        let rows = sqlx::query(concat!(
            select_payment!(),
            "WHERE order_id = $1 ORDER BY created_at_ms, id"
        ))
        .bind(order_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::payment).collect()
    }

    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>> {
        let row = sqlx::query(concat!(select_payment!(), "WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::payment).transpose()
    }

    async fn settle_charge(
        &self,
        id: PaymentId,
        settlement: &Settlement,
        attempts: i64,
        refund_id: PaymentId,
        at_ms: i64,
    ) -> Result<SettleOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;
        // The settlement need not wait for its WAL flush: a commit lost in
        // a crash leaves the charge pending, and start-up resumes it with
        // the same idempotency key, so the gateway answers as before and
        // the order settles the same way. (SQLite already commits without
        // a flush in WAL mode with `synchronous = NORMAL`.)
        if self.backend == super::Backend::Postgres {
            sqlx::query("SET LOCAL synchronous_commit TO OFF")
                .execute(&mut *tx)
                .await?;
        }
        let settled = settle(
            &mut tx,
            id,
            PaymentKind::Charge,
            settlement,
            attempts,
            at_ms,
        )
        .await?;
        let Some(payment) = settled else {
            tx.rollback().await?;
            return Ok(SettleOutcome::NotPending(self.payment(id).await?));
        };
        let order_id = payment.order_id;
        let (from, to) = match settlement {
            Settlement::Succeeded { .. } => (OrderStatus::Placed, OrderStatus::Paid),
            Settlement::Failed { .. } => (OrderStatus::Placed, OrderStatus::PaymentFailed),
        };
        // The usual case: the order still waits in `placed` and moves.
        let moved = set_status(&mut tx, order_id, from, to, at_ms).await?;
        let mut refund = None;
        if moved {
            if to == OrderStatus::PaymentFailed {
                give_back_stock(&mut tx, order_id, at_ms).await?;
            }
        } else {
            // The order left `placed` while the gateway worked (it was
            // cancelled, its stock given back then). A charge that went
            // through is owed back: lock the order to compute what is
            // refundable.
            touch_order(&mut tx, order_id, at_ms).await?;
            if to == OrderStatus::Paid {
                let owed = refundable_cents(&mut tx, order_id).await?;
                if owed > 0 {
                    refund = Some(
                        insert_refund(
                            &mut tx,
                            refund_id,
                            order_id,
                            owed,
                            "order closed before the charge went through",
                            None,
                            at_ms,
                        )
                        .await?,
                    );
                }
            }
        }
        // The settlement is an event of the order either way: moved, it is
        // the order's step (`status_from` is `placed`); not moved, the
        // charge's outcome on an order already closed (`status_from` equals
        // `status`, and the history leaves it out).
        let order = order_in(&mut tx, order_id).await?;
        let event_type = match settlement {
            Settlement::Succeeded { .. } => events::EventType::OrderPaid,
            Settlement::Failed { .. } => events::EventType::PaymentFailed,
        };
        let status_from = if moved { from } else { order.status };
        let settled = event::new_event(
            event_type,
            order_id,
            events::Actor::System(ACTOR_PAYMENTS.to_owned()),
            at_ms,
            &OrderChanged {
                payment: Some(PaymentInfo::from(&payment)),
                refund: refund.as_ref().map(PaymentInfo::from),
                ..OrderChanged::of(&order, Some(status_from), at_ms)
            },
        )?;
        let version = append(&mut tx, &settled).await?;
        tx.commit().await?;
        self.committed();
        Ok(SettleOutcome::Settled {
            payment,
            order_status: order.status,
            moved,
            refund,
            version,
        })
    }

    async fn request_refund(&self, r: &RefundRequest) -> Result<RefundOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;
        if !touch_order(&mut tx, r.order_id, r.at_ms).await? {
            tx.rollback().await?;
            return Ok(RefundOutcome::UnknownOrder);
        }
        let refundable = refundable_cents(&mut tx, r.order_id).await?;
        if r.amount_cents > refundable {
            tx.rollback().await?;
            return Ok(RefundOutcome::Exceeds {
                refundable_cents: refundable,
            });
        }
        let refund = insert_refund(
            &mut tx,
            r.id,
            r.order_id,
            r.amount_cents,
            &r.reason,
            r.actor_id,
            r.at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(RefundOutcome::Created(refund))
    }

    async fn settle_refund(
        &self,
        id: PaymentId,
        settlement: &Settlement,
        attempts: i64,
        at_ms: i64,
    ) -> Result<Option<Payment>> {
        let (_gate, mut tx) = self.begin_write().await?;
        let settled = settle(
            &mut tx,
            id,
            PaymentKind::Refund,
            settlement,
            attempts,
            at_ms,
        )
        .await?;
        let Some(refund) = settled else {
            tx.rollback().await?;
            return Ok(None);
        };
        let event_type = match settlement {
            Settlement::Succeeded { .. } => events::EventType::RefundSucceeded,
            Settlement::Failed { .. } => events::EventType::RefundFailed,
        };
        let event = event::new_event(
            event_type,
            refund.order_id,
            events::Actor::System(ACTOR_PAYMENTS.to_owned()),
            at_ms,
            &RefundSettled {
                order_id: refund.order_id,
                refund: PaymentInfo::from(&refund),
                at_ms,
            },
        )?;
        append(&mut tx, &event).await?;
        tx.commit().await?;
        self.committed();
        Ok(Some(refund))
    }

    async fn defer_refund(
        &self,
        id: PaymentId,
        retries: i64,
        failure: &str,
        attempts: i64,
        retry_at_ms: i64,
        at_ms: i64,
    ) -> Result<Option<Payment>> {
        let (_gate, mut tx) = self.begin_write().await?;
        let row = sqlx::query(concat!(
            "UPDATE payments SET failure = $1, attempts = attempts + $2, retries = retries + 1, \
             retry_at_ms = $3, updated_at_ms = $4 \
             WHERE id = $5 AND kind = 'refund' AND status = 'pending' AND retries = $6 RETURNING ",
            payment_columns!()
        ))
        .bind(failure)
        .bind(attempts)
        .bind(retry_at_ms)
        .bind(at_ms)
        .bind(id.to_string())
        .bind(retries)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(rows::payment).transpose()
    }

    async fn pending_payments(&self, after: Option<PaymentId>, limit: u32) -> Result<Vec<Payment>> {
        let rows = sqlx::query(concat!(
            select_payment!(),
            "WHERE status = 'pending' AND id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.map(|id| id.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::payment).collect()
    }
}

/// Moves a pending payment of `kind` to its settled status; the payment as
/// it is now, `None` if it was not pending.
async fn settle(
    tx: &mut Tx,
    id: PaymentId,
    kind: PaymentKind,
    settlement: &Settlement,
    attempts: i64,
    at_ms: i64,
) -> Result<Option<Payment>> {
    let (status, gateway_ref, failure) = match settlement {
        Settlement::Succeeded { gateway_ref } => {
            (PaymentStatus::Succeeded, Some(gateway_ref.as_str()), None)
        }
        Settlement::Failed { failure } => (PaymentStatus::Failed, None, Some(failure.as_str())),
    };
    let row = sqlx::query(concat!(
        "UPDATE payments SET status = $1, gateway_ref = $2, failure = $3, updated_at_ms = $4, \
         attempts = attempts + $7, retry_at_ms = NULL \
         WHERE id = $5 AND kind = $6 AND status = 'pending' RETURNING ",
        payment_columns!()
    ))
    .bind(status.as_str())
    .bind(gateway_ref)
    .bind(failure)
    .bind(at_ms)
    .bind(id.to_string())
    .bind(kind.as_str())
    .bind(attempts)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(rows::payment).transpose()
}
