//! The reports projection (migration 0014): applying one event's update in
//! one transaction with its id, and the report queries. Aggregates run in
//! SQL; percentiles are exact nearest-rank (rank ⌈p·n⌉): by rank over a
//! window (`ROW_NUMBER` within each stage, ordered by duration), which
//! both databases run, except on PostgreSQL the funnel and restaurants'
//! preparation times, which take `percentile_disc` (the same ranks, one
//! in-memory sort per stage or restaurant where the window's one sort of
//! every row spilled to disk: the funnel 6-8× faster over a month of a
//! million orders, docs/BENCHMARKS.md).

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use engine::OrderStatus;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::SqlStore;
use super::rows::{corrupt, parse_col};
use crate::store::{
    Cohort, CohortCounts, DriverFigures, DriverSession, Percentiles, ReportChange, ReportOrder,
    ReportStore, ReportUpdate, RestaurantFigures, Result, SeriesKey, SeriesRow, SeriesStep, Stage,
};

/// The most event ids one statement records as applied (bounded
/// parameters; a consumer's batch, `events.consumer_batch`, is below it).
const APPLIED_PER_STATEMENT: usize = 500;

/// The time column an order's entering `status` stamps; `None` for
/// statuses only the series counts (`preparing`).
fn status_column(status: OrderStatus) -> Option<&'static str> {
    Some(match status {
        OrderStatus::Placed => "placed_at_ms",
        OrderStatus::Paid => "paid_at_ms",
        OrderStatus::PaymentFailed => "payment_failed_at_ms",
        OrderStatus::Accepted => "accepted_at_ms",
        OrderStatus::Rejected => "rejected_at_ms",
        OrderStatus::Preparing => return None,
        OrderStatus::ReadyForPickup => "ready_at_ms",
        OrderStatus::PickedUp => "picked_up_at_ms",
        OrderStatus::Delivered => "delivered_at_ms",
        OrderStatus::Cancelled => "cancelled_at_ms",
    })
}

/// The cohort's `WHERE` clause over `report_orders` (alias-free), with
/// `$1`, `$2` the period and `$3` the owner when there is one.
fn cohort_filter(cohort: &Cohort) -> &'static str {
    if cohort.owner.is_some() {
        "placed_at_ms >= $1 AND placed_at_ms < $2 AND restaurant_id IN \
         (SELECT restaurant_id FROM report_restaurants WHERE owner_id = $3)"
    } else {
        "placed_at_ms >= $1 AND placed_at_ms < $2"
    }
}

/// A query over the cohort with its parameters bound.
fn cohort_query(
    sql: String,
    cohort: &Cohort,
) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
    let q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cohort.from_ms)
        .bind(cohort.to_ms);
    match cohort.owner {
        Some(owner) => q.bind(owner.to_string()),
        None => q,
    }
}

/// The counts' select list (the columns [`counts`] reads).
const COUNT_COLUMNS: &str = "CAST(COUNT(*) AS BIGINT) AS placed, \
     CAST(COUNT(paid_at_ms) AS BIGINT) AS paid, \
     CAST(COUNT(delivered_at_ms) AS BIGINT) AS delivered, \
     CAST(COUNT(cancelled_at_ms) AS BIGINT) AS cancelled, \
     CAST(COUNT(rejected_at_ms) AS BIGINT) AS rejected, \
     CAST(COUNT(payment_failed_at_ms) AS BIGINT) AS payment_failed, \
     CAST(COALESCE(SUM(charged_cents), 0) AS BIGINT) AS charged_cents, \
     CAST(COALESCE(SUM(refunded_cents), 0) AS BIGINT) AS refunded_cents";

fn counts(row: &AnyRow) -> Result<CohortCounts> {
    Ok(CohortCounts {
        placed: row.try_get("placed")?,
        paid: row.try_get("paid")?,
        delivered: row.try_get("delivered")?,
        cancelled: row.try_get("cancelled")?,
        rejected: row.try_get("rejected")?,
        payment_failed: row.try_get("payment_failed")?,
        charged_cents: row.try_get("charged_cents")?,
        refunded_cents: row.try_get("refunded_cents")?,
    })
}

/// The stage index the funnel query tags rows with.
fn stage_of(index: i64) -> Result<Stage> {
    usize::try_from(index)
        .ok()
        .and_then(|i| Stage::ALL.get(i).copied())
        .ok_or_else(|| corrupt("stage", &index.to_string()))
}

/// Folds the ranked rows of a percentile query (`n`, `rn`, `d`: the
/// group's size, the row's rank and its duration) into percentiles: the
/// rank of the p-th is ⌈p·n⌉, so p50 is rank ⌈n/2⌉ and p90 ⌈9n/10⌉.
fn fold_percentile(p: &mut Percentiles, n: i64, rn: i64, d: i64) {
    p.count = n;
    if rn == (n + 1) / 2 {
        p.p50_ms = Some(d);
    }
    if rn == (9 * n + 9) / 10 {
        p.p90_ms = Some(d);
    }
}

/// The rank condition of a percentile query's outer `WHERE`.
const RANKS: &str = "rn = (n + 1) / 2 OR rn = (9 * n + 9) / 10";

impl SqlStore {
    /// The funnel on PostgreSQL: per stage its count and `percentile_disc`
    /// at 0.5 and 0.9, the first duration whose cumulative share reaches
    /// the fraction, i.e. rank ⌈p·n⌉, the ranks [`RANKS`] picks (⌊(n+1)/2⌋
    /// and ⌊9(n+1)/10⌋ equal ⌈n/2⌉ and ⌈9n/10⌉ for whole n; PostgreSQL's
    /// `ceil(0.9 * n)` in doubles is exact too: 0.9's error times n stays
    /// below half a unit of the product). NULL durations are left out, as
    /// the window query's `d IS NOT NULL` does.
    async fn report_funnel_postgres(&self, cohort: &Cohort) -> Result<Vec<(Stage, Percentiles)>> {
        let columns = Stage::ALL
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let (start, end) = stage.columns();
                let d = format!("{end} - {start}");
                format!(
                    "CAST(COUNT({d}) AS BIGINT) AS n{i}, \
                     CAST(percentile_disc(0.5) WITHIN GROUP (ORDER BY {d}) AS BIGINT) AS p50_{i}, \
                     CAST(percentile_disc(0.9) WITHIN GROUP (ORDER BY {d}) AS BIGINT) AS p90_{i}"
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM report_orders WHERE {}",
            cohort_filter(cohort)
        );
        let row = cohort_query(sql, cohort).fetch_one(&self.pool).await?;
        Stage::ALL
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                Ok((
                    *stage,
                    Percentiles {
                        count: row.try_get(format!("n{i}").as_str())?,
                        p50_ms: row.try_get(format!("p50_{i}").as_str())?,
                        p90_ms: row.try_get(format!("p90_{i}").as_str())?,
                    },
                ))
            })
            .collect()
    }

    /// Applies `update`'s change (not its series: [`SqlStore::add_series`]
    /// adds up a batch's) inside `tx`; the caller has recorded its event
    /// as applied in the same transaction.
    async fn apply_in(tx: &mut Transaction<'static, Any>, update: &ReportUpdate) -> Result<()> {
        match &update.change {
            ReportChange::Order(o) => Self::apply_order(tx, o).await?,
            ReportChange::Refund {
                order_id,
                amount_cents,
            } => {
                sqlx::query(
                    "UPDATE report_orders SET refunded_cents = refunded_cents + $2 \
                     WHERE order_id = $1",
                )
                .bind(order_id.to_string())
                .bind(*amount_cents)
                .execute(&mut **tx)
                .await?;
            }
            ReportChange::Review {
                order_id,
                version,
                restaurant_stars,
                driver_stars,
            } => {
                sqlx::query(
                    "UPDATE report_orders SET restaurant_stars = $2, driver_stars = $3, \
                     review_version = $4 WHERE order_id = $1 AND review_version < $4",
                )
                .bind(order_id.to_string())
                .bind(*restaurant_stars)
                .bind(*driver_stars)
                .bind(*version)
                .execute(&mut **tx)
                .await?;
            }
            ReportChange::Restaurant {
                restaurant_id,
                owner_id,
                name,
            } => {
                sqlx::query(
                    "INSERT INTO report_restaurants (restaurant_id, owner_id, name) \
                     VALUES ($1, $2, $3) ON CONFLICT (restaurant_id) DO UPDATE SET \
                     owner_id = excluded.owner_id, name = excluded.name",
                )
                .bind(restaurant_id.to_string())
                .bind(owner_id.to_string())
                .bind(name)
                .execute(&mut **tx)
                .await?;
            }
            ReportChange::DriverOnline { driver_id, at_ms } => {
                // A second online without an offline between (a lost
                // offline: presence is a level) keeps the open session.
                sqlx::query(
                    "INSERT INTO report_driver_sessions (driver_id, online_at_ms) \
                     SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM report_driver_sessions \
                     WHERE driver_id = $1 AND offline_at_ms IS NULL) \
                     ON CONFLICT (driver_id, online_at_ms) DO NOTHING",
                )
                .bind(driver_id.to_string())
                .bind(*at_ms)
                .execute(&mut **tx)
                .await?;
            }
            ReportChange::DriverOffline { driver_id, at_ms } => {
                sqlx::query(
                    "UPDATE report_driver_sessions SET offline_at_ms = $2 \
                     WHERE driver_id = $1 AND offline_at_ms IS NULL AND online_at_ms <= $2",
                )
                .bind(driver_id.to_string())
                .bind(*at_ms)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    /// Records each of `event_ids` as applied in `tx`, a statement per
    /// [`APPLIED_PER_STATEMENT`]; those that were not before (the others
    /// were applied by an earlier delivery and must not count again).
    async fn claim_applied(
        tx: &mut Transaction<'static, Any>,
        event_ids: &[i64],
    ) -> Result<HashSet<i64>> {
        let mut fresh = HashSet::with_capacity(event_ids.len());
        for chunk in event_ids.chunks(APPLIED_PER_STATEMENT) {
            let values = (1..=chunk.len())
                .map(|n| format!("(${n})"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO report_applied (event_id) VALUES {values} \
                 ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            );
            // Not kept prepared: its text varies with the batch's size.
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).persistent(false);
            for id in chunk {
                q = q.bind(*id);
            }
            fresh.extend(q.fetch_all(&mut **tx).await?);
        }
        Ok(fresh)
    }

    /// Adds `steps` to the series in `tx`: summed per quarter and key
    /// first (the increments commute), so a batch writes each of its
    /// series rows once, not once per event.
    async fn add_series(tx: &mut Transaction<'static, Any>, steps: &[SeriesStep]) -> Result<()> {
        let mut sums: BTreeMap<(i64, &'static str), (i64, i64)> = BTreeMap::new();
        for step in steps {
            let sum = sums
                .entry((step.quarter_ms, step.key.as_str()))
                .or_default();
            sum.0 += 1;
            sum.1 += step.amount_cents;
        }
        for ((quarter_ms, key), (orders, amount_cents)) in sums {
            sqlx::query(
                "INSERT INTO report_series (quarter_ms, status, orders, amount_cents) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (quarter_ms, status) DO UPDATE SET \
                 orders = report_series.orders + excluded.orders, \
                 amount_cents = report_series.amount_cents + excluded.amount_cents",
            )
            .bind(quarter_ms)
            .bind(key)
            .bind(orders)
            .bind(amount_cents)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn apply_order(tx: &mut Transaction<'static, Any>, o: &ReportOrder) -> Result<()> {
        let stamp = o
            .entered
            .and_then(|(status, at)| status_column(status).map(|c| (c, at)));
        let (column, set) = match stamp {
            Some((c, _)) => (
                format!(", {c}"),
                format!(", {c} = COALESCE(report_orders.{c}, excluded.{c})"),
            ),
            None => (String::new(), String::new()),
        };
        let placeholder = if stamp.is_some() { ", $9" } else { "" };
        // Status and driver are the newest event's (by the order's
        // version); times keep the first entry; charges add up (the
        // applied-event guard makes each count once).
        let sql = format!(
            "INSERT INTO report_orders (order_id, restaurant_id, customer_id, driver_id, status, \
             version, total_cents, charged_cents{column}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8{placeholder}) \
             ON CONFLICT (order_id) DO UPDATE SET \
             driver_id = CASE WHEN excluded.version > report_orders.version \
               THEN excluded.driver_id ELSE report_orders.driver_id END, \
             status = CASE WHEN excluded.version > report_orders.version \
               THEN excluded.status ELSE report_orders.status END, \
             version = CASE WHEN excluded.version > report_orders.version \
               THEN excluded.version ELSE report_orders.version END, \
             total_cents = excluded.total_cents, \
             charged_cents = report_orders.charged_cents + excluded.charged_cents{set}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(o.order_id.to_string())
            .bind(o.restaurant_id.to_string())
            .bind(o.customer_id.to_string())
            .bind(o.driver_id.map(|d| d.to_string()))
            .bind(o.status.as_str())
            .bind(o.version)
            .bind(o.total_cents)
            .bind(o.charged_cents);
        if let Some((_, at)) = stamp {
            q = q.bind(at);
        }
        q.execute(&mut **tx).await?;
        Ok(())
    }
}

#[async_trait]
impl ReportStore for SqlStore {
    async fn apply_reports(&self, updates: &[ReportUpdate]) -> Result<usize> {
        if updates.is_empty() {
            return Ok(0);
        }
        let (_gate, mut tx) = self.begin_write().await?;
        let ids: Vec<i64> = updates.iter().map(|u| u.event_id).collect();
        let mut fresh = Self::claim_applied(&mut tx, &ids).await?;
        let mut applied = 0;
        let mut series = Vec::new();
        for update in updates {
            // `remove`: an event twice in one batch counts once.
            if fresh.remove(&update.event_id) {
                Self::apply_in(&mut tx, update).await?;
                series.extend_from_slice(&update.series);
                applied += 1;
            }
        }
        Self::add_series(&mut tx, &series).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn clear_reports(&self, consumer: &str, now_ms: i64) -> Result<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        for table in [
            "report_orders",
            "report_series",
            "report_applied",
            "report_restaurants",
            "report_driver_sessions",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO event_consumers (name, position, updated_at_ms) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO UPDATE SET position = 0, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(consumer)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn report_series(&self, from_ms: i64, to_ms: i64) -> Result<Vec<SeriesRow>> {
        let rows = sqlx::query(
            "SELECT quarter_ms, status, orders, amount_cents FROM report_series \
             WHERE quarter_ms >= $1 AND quarter_ms < $2",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get("status")?;
                Ok(SeriesRow {
                    quarter_ms: row.try_get("quarter_ms")?,
                    key: SeriesKey::parse(&name).ok_or_else(|| corrupt("status", &name))?,
                    orders: row.try_get("orders")?,
                    amount_cents: row.try_get("amount_cents")?,
                })
            })
            .collect()
    }

    async fn report_counts(&self, cohort: &Cohort) -> Result<CohortCounts> {
        let sql = format!(
            "SELECT {COUNT_COLUMNS} FROM report_orders WHERE {}",
            cohort_filter(cohort)
        );
        let row = cohort_query(sql, cohort).fetch_one(&self.pool).await?;
        counts(&row)
    }

    async fn report_funnel(&self, cohort: &Cohort) -> Result<Vec<(Stage, Percentiles)>> {
        if self.backend == super::Backend::Postgres {
            return self.report_funnel_postgres(cohort).await;
        }
        // One pass over the cohort: each order once per stage (a
        // five-row stage table joined in), its duration picked by stage.
        let stages = (0..Stage::ALL.len())
            .map(|i| format!("SELECT CAST({i} AS BIGINT) AS stage"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let durations = Stage::ALL
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let (start, end) = stage.columns();
                format!("WHEN {i} THEN {end} - {start}")
            })
            .collect::<Vec<_>>()
            .join(" ");
        let sql = format!(
            "SELECT stage, n, rn, d FROM (SELECT stage, d, \
             ROW_NUMBER() OVER (PARTITION BY stage ORDER BY d) AS rn, \
             COUNT(*) OVER (PARTITION BY stage) AS n FROM \
             (SELECT st.stage, CASE st.stage {durations} END AS d \
             FROM report_orders CROSS JOIN ({stages}) st WHERE {}) s \
             WHERE d IS NOT NULL) r WHERE {RANKS}",
            cohort_filter(cohort)
        );
        let rows = cohort_query(sql, cohort).fetch_all(&self.pool).await?;
        let mut funnel: Vec<(Stage, Percentiles)> = Stage::ALL
            .iter()
            .map(|s| (*s, Percentiles::default()))
            .collect();
        for row in rows {
            let stage = stage_of(row.try_get("stage")?)?;
            if let Some((_, p)) = funnel.iter_mut().find(|(s, _)| *s == stage) {
                fold_percentile(p, row.try_get("n")?, row.try_get("rn")?, row.try_get("d")?);
            }
        }
        Ok(funnel)
    }

    async fn report_restaurants(&self, cohort: &Cohort) -> Result<Vec<RestaurantFigures>> {
        let filter = cohort_filter(cohort);
        let sql = format!(
            "SELECT o.restaurant_id, n.name, {COUNT_COLUMNS}, \
             CAST(COALESCE(SUM(restaurant_stars), 0) AS BIGINT) AS stars, \
             CAST(COUNT(restaurant_stars) AS BIGINT) AS ratings \
             FROM report_orders o LEFT JOIN report_restaurants n \
             ON n.restaurant_id = o.restaurant_id \
             WHERE o.{filter} GROUP BY o.restaurant_id, n.name ORDER BY o.restaurant_id"
        )
        // The filter's own columns are the orders'.
        .replace("AND restaurant_id IN", "AND o.restaurant_id IN");
        let rows = cohort_query(sql, cohort).fetch_all(&self.pool).await?;
        let mut figures = rows
            .iter()
            .map(|row| {
                Ok(RestaurantFigures {
                    restaurant_id: parse_col(row, "restaurant_id")?,
                    name: row.try_get("name")?,
                    counts: counts(row)?,
                    prep: Percentiles::default(),
                    stars: row.try_get("stars")?,
                    ratings: row.try_get("ratings")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (start, end) = Stage::AcceptedToReady.columns();
        let durations = format!(
            "SELECT restaurant_id, {end} - {start} AS d FROM report_orders WHERE {filter} \
             AND {start} IS NOT NULL AND {end} IS NOT NULL"
        );
        let index: std::collections::HashMap<engine::RestaurantId, usize> = figures
            .iter()
            .enumerate()
            .map(|(i, f)| (f.restaurant_id, i))
            .collect();
        if self.backend == super::Backend::Postgres {
            // The same nearest ranks by `percentile_disc`, one small sort
            // per restaurant (see `report_funnel_postgres`).
            let sql = format!(
                "SELECT restaurant_id, CAST(COUNT(d) AS BIGINT) AS n, \
                 CAST(percentile_disc(0.5) WITHIN GROUP (ORDER BY d) AS BIGINT) AS p50, \
                 CAST(percentile_disc(0.9) WITHIN GROUP (ORDER BY d) AS BIGINT) AS p90 \
                 FROM ({durations}) s GROUP BY restaurant_id"
            );
            for row in cohort_query(sql, cohort).fetch_all(&self.pool).await? {
                let id: engine::RestaurantId = parse_col(&row, "restaurant_id")?;
                if let Some(&i) = index.get(&id) {
                    figures[i].prep = Percentiles {
                        count: row.try_get("n")?,
                        p50_ms: row.try_get("p50")?,
                        p90_ms: row.try_get("p90")?,
                    };
                }
            }
            return Ok(figures);
        }
        let sql = format!(
            "SELECT restaurant_id, n, rn, d FROM (SELECT restaurant_id, d, \
             ROW_NUMBER() OVER (PARTITION BY restaurant_id ORDER BY d) AS rn, \
             COUNT(*) OVER (PARTITION BY restaurant_id) AS n FROM ({durations}) s) r \
             WHERE {RANKS}"
        );
        let rows = cohort_query(sql, cohort).fetch_all(&self.pool).await?;
        for row in rows {
            let id: engine::RestaurantId = parse_col(&row, "restaurant_id")?;
            if let Some(&i) = index.get(&id) {
                fold_percentile(
                    &mut figures[i].prep,
                    row.try_get("n")?,
                    row.try_get("rn")?,
                    row.try_get("d")?,
                );
            }
        }
        Ok(figures)
    }

    async fn report_drivers(&self, cohort: &Cohort, on_time_ms: i64) -> Result<Vec<DriverFigures>> {
        let sql = format!(
            "SELECT driver_id, CAST(COUNT(*) AS BIGINT) AS deliveries, \
             CAST(SUM(CASE WHEN delivered_at_ms - placed_at_ms <= $9 THEN 1 ELSE 0 END) AS BIGINT) \
             AS on_time, \
             CAST(COALESCE(SUM(driver_stars), 0) AS BIGINT) AS stars, \
             CAST(COUNT(driver_stars) AS BIGINT) AS ratings \
             FROM report_orders WHERE {} AND delivered_at_ms IS NOT NULL \
             AND driver_id IS NOT NULL GROUP BY driver_id ORDER BY driver_id",
            cohort_filter(cohort)
        );
        // The target's placeholder follows the cohort's ($1–$3).
        let target = if cohort.owner.is_some() { "$4" } else { "$3" };
        let sql = sql.replace("$9", target);
        let rows = cohort_query(sql, cohort)
            .bind(on_time_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DriverFigures {
                    driver_id: parse_col(row, "driver_id")?,
                    deliveries: row.try_get("deliveries")?,
                    on_time: row.try_get("on_time")?,
                    stars: row.try_get("stars")?,
                    ratings: row.try_get("ratings")?,
                })
            })
            .collect()
    }

    async fn report_sessions(&self, from_ms: i64, to_ms: i64) -> Result<Vec<DriverSession>> {
        let rows = sqlx::query(
            "SELECT driver_id, online_at_ms, offline_at_ms FROM report_driver_sessions \
             WHERE online_at_ms < $2 AND (offline_at_ms IS NULL OR offline_at_ms > $1) \
             ORDER BY driver_id, online_at_ms",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DriverSession {
                    driver_id: parse_col(row, "driver_id")?,
                    online_at_ms: row.try_get("online_at_ms")?,
                    offline_at_ms: row.try_get("offline_at_ms")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        // n orders with durations 1..=n: p50 is ⌈n/2⌉, p90 ⌈0.9 n⌉.
        for (n, p50, p90) in [(1, 1, 1), (2, 1, 2), (3, 2, 3), (10, 5, 9), (11, 6, 10)] {
            let mut p = Percentiles::default();
            for rn in 1..=n {
                fold_percentile(&mut p, n, rn, rn);
            }
            assert_eq!(
                (p.count, p.p50_ms, p.p90_ms),
                (n, Some(p50), Some(p90)),
                "{n}"
            );
        }
    }

    #[test]
    fn every_status_but_preparing_has_a_time_column() {
        for status in OrderStatus::ALL {
            assert_eq!(
                status_column(status).is_none(),
                status == OrderStatus::Preparing
            );
        }
    }
}
