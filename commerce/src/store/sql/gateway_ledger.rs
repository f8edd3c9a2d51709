//! The simulated gateway's ledger (`simulated_gateway_charges`,
//! `simulated_gateway_refunds`): what it answered to each idempotency key
//! and how much of each charge it refunded.
//!
//! Keys are claimed with `INSERT … ON CONFLICT DO NOTHING`, so of two racing
//! calls with one key the first answer is recorded and both get it (on
//! PostgreSQL the second insert waits for the first transaction, then does
//! nothing). A refund takes its amount with a conditional `UPDATE` on the
//! charge row, which never lets the refunded total pass the charge.

use async_trait::async_trait;
use engine::PaymentId;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{corrupt, parse_col};
use crate::store::{
    ChargeAnswer, GatewayLedger, LedgerCharge, LedgerTotals, RefundVerdict, Result,
};

/// The columns of a [`LedgerCharge`] (a macro so it can go into `concat!`).
macro_rules! select_charge {
    () => {
        "SELECT idempotency_key, reference, declined, amount_cents, token, refunded_cents, \
         created_at_ms FROM simulated_gateway_charges "
    };
}

fn charge(row: &AnyRow) -> Result<LedgerCharge> {
    let reference: Option<String> = row.try_get("reference")?;
    let declined: Option<String> = row.try_get("declined")?;
    let answer = match (reference, declined) {
        (Some(reference), None) => ChargeAnswer::Charged { reference },
        (None, Some(reason)) => ChargeAnswer::Declined { reason },
        // The table's CHECK allows exactly one of the two.
        _ => {
            return Err(corrupt(
                "reference",
                "both or neither of reference, declined",
            ));
        }
    };
    Ok(LedgerCharge {
        key: parse_col(row, "idempotency_key")?,
        answer,
        amount_cents: row.try_get("amount_cents")?,
        token: row.try_get("token")?,
        refunded_cents: row.try_get("refunded_cents")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

#[async_trait]
impl GatewayLedger for SqlStore {
    async fn ledger_charge(&self, key: PaymentId) -> Result<Option<LedgerCharge>> {
        let row = sqlx::query(concat!(select_charge!(), "WHERE idempotency_key = $1"))
            .bind(key.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(charge).transpose()
    }

    async fn ledger_charge_by_reference(&self, reference: &str) -> Result<Option<LedgerCharge>> {
        let row = sqlx::query(concat!(select_charge!(), "WHERE reference = $1"))
            .bind(reference)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(charge).transpose()
    }

    async fn ledger_refund(&self, key: PaymentId) -> Result<Option<RefundVerdict>> {
        let row =
            sqlx::query("SELECT outcome FROM simulated_gateway_refunds WHERE idempotency_key = $1")
                .bind(key.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            let outcome: String = row.try_get("outcome")?;
            RefundVerdict::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))
        })
        .transpose()
    }

    async fn record_charge(&self, c: &LedgerCharge) -> Result<LedgerCharge> {
        let (reference, declined) = match &c.answer {
            ChargeAnswer::Charged { reference } => (Some(reference.as_str()), None),
            ChargeAnswer::Declined { reason } => (None, Some(reason.as_str())),
        };
        let (gate, mut tx) = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO simulated_gateway_charges (idempotency_key, reference, declined, \
             amount_cents, token, refunded_cents, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (idempotency_key) DO NOTHING \
             RETURNING idempotency_key, reference, declined, amount_cents, token, \
             refunded_cents, created_at_ms",
        )
        .bind(c.key.to_string())
        .bind(reference)
        .bind(declined)
        .bind(c.amount_cents)
        .bind(&c.token)
        .bind(c.created_at_ms)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        drop(gate);
        if let Some(row) = inserted {
            return charge(&row);
        }
        // Answered before (or just now, by a racing call that committed).
        self.ledger_charge(c.key).await?.ok_or_else(|| {
            corrupt(
                "idempotency_key",
                "a charge key vanished right after it was recorded",
            )
        })
    }

    async fn record_refund(
        &self,
        key: PaymentId,
        reference: &str,
        amount_cents: i64,
        at_ms: i64,
    ) -> Result<RefundVerdict> {
        let (gate, mut tx) = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO simulated_gateway_refunds (idempotency_key, charge_reference, \
             amount_cents, outcome, created_at_ms) VALUES ($1, $2, $3, 'refunded', $4) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key.to_string())
        .bind(reference)
        .bind(amount_cents)
        .bind(at_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            // Answered before (or just now, by a racing call that has
            // committed): that answer again, and no money moves.
            tx.rollback().await?;
            drop(gate);
            return self.ledger_refund(key).await?.ok_or_else(|| {
                corrupt("idempotency_key", "a refund key claimed but not recorded")
            });
        }
        let taken = sqlx::query(
            "UPDATE simulated_gateway_charges SET refunded_cents = refunded_cents + $1 \
             WHERE reference = $2 AND refunded_cents + $1 <= amount_cents",
        )
        .bind(amount_cents)
        .bind(reference)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let verdict = if taken > 0 {
            RefundVerdict::Refunded
        } else {
            let known = sqlx::query("SELECT 1 FROM simulated_gateway_charges WHERE reference = $1")
                .bind(reference)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            let verdict = if known {
                RefundVerdict::ExceedsCharge
            } else {
                RefundVerdict::UnknownCharge
            };
            sqlx::query(
                "UPDATE simulated_gateway_refunds SET outcome = $1 WHERE idempotency_key = $2",
            )
            .bind(verdict.as_str())
            .bind(key.to_string())
            .execute(&mut *tx)
            .await?;
            verdict
        };
        tx.commit().await?;
        Ok(verdict)
    }

    async fn ledger_totals(&self) -> Result<LedgerTotals> {
        let charges = sqlx::query(
            "SELECT CAST(COUNT(reference) AS BIGINT) AS charges, \
               CAST(COALESCE(SUM(CASE WHEN reference IS NOT NULL THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS charged, \
               CAST(COALESCE(SUM(refunded_cents), 0) AS BIGINT) AS refunded \
             FROM simulated_gateway_charges",
        )
        .fetch_one(&self.pool)
        .await?;
        let refunds = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS refunds FROM simulated_gateway_refunds \
             WHERE outcome = 'refunded'",
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |row: &AnyRow, column: &str| -> Result<u64> {
            let n: i64 = row.try_get(column)?;
            u64::try_from(n).map_err(|_| corrupt(column, &n.to_string()))
        };
        Ok(LedgerTotals {
            charges: count(&charges, "charges")?,
            charged_cents: charges.try_get("charged")?,
            refunds: count(&refunds, "refunds")?,
            refunded_cents: charges.try_get("refunded")?,
        })
    }
}
