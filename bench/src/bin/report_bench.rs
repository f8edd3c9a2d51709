//! The reports benchmark: report query time over a large projection on
//! PostgreSQL (docs/BENCHMARKS.md, "Reports").
//!
//! ```text
//! cargo run --release -p bench --bin report_bench -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/bench \
//!     --orders 1000000 --days 365 --runs 200
//! ```
//!
//! 1. Seeds the reports projection directly (migration 0014's tables,
//!    through `commerce`'s store, which migrates the database): `--orders`
//!    orders placed uniformly over `--days` days ending 2026-12-01 at
//!    500 restaurants with 1,000 couriers, with the outcomes, times, money
//!    and ratings a projection holds, plus the series rollup and the
//!    couriers' daily online sessions. Orders are written in placement
//!    order, as the live projection writes them (rows of a month lie
//!    together on disk). One `INSERT … SELECT` each, from
//!    `generate_series` with a fixed `setseed`, so a run is repeatable and
//!    a million orders take seconds. `--skip-seed` reuses what is there.
//! 2. Times the reports as the routes compute them (`usecase::report`,
//!    without HTTP): a month's daily orders report (November 2026 in
//!    Europe/Stockholm), the month's restaurants and drivers reports, and
//!    a day's hourly orders report; `--runs` times each after a warm-up,
//!    p50/p99/max.
//! 3. The baseline: the month's daily series computed straight from the
//!    per-order table (each status's time grouped by local day in SQL),
//!    as a report without the quarter-hour rollup would, plus the same
//!    cohort queries.
//!
//! PostgreSQL only (the store runs on SQLite too, but the benchmark is
//! PostgreSQL's).

use std::time::{Duration, Instant};

use commerce::store::{ReportStore, SqlStore};
use commerce::usecase::report::{self, Bucket};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Where the seeded period ends: the month reported is the last one.
const END: &str = "2026-12-01T00:00:00+01:00";
const ZONE: &str = "Europe/Stockholm";
const RESTAURANTS: i64 = 500;
const COURIERS: i64 = 1_000;
/// Warm-up runs before the timed ones.
const WARM_UP: usize = 5;

struct Args {
    database_url: String,
    orders: i64,
    days: i64,
    runs: usize,
    skip_seed: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        database_url: String::new(),
        orders: 1_000_000,
        days: 365,
        runs: 200,
        skip_seed: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--database-url" => a.database_url = value()?,
            "--orders" => a.orders = value()?.parse()?,
            "--days" => a.days = value()?.parse()?,
            "--runs" => a.runs = value()?.parse()?,
            "--skip-seed" => a.skip_seed = true,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if !a.database_url.starts_with("postgres") {
        return Err("--database-url postgres://… is required".into());
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let store = SqlStore::connect(&args.database_url).await?;
    let end_ms = END.parse::<jiff::Timestamp>()?.as_millisecond();
    if !args.skip_seed {
        let started = Instant::now();
        seed(&store, &args, end_ms).await?;
        println!(
            "seeded {} orders over {} days in {:.1} s",
            args.orders,
            args.days,
            started.elapsed().as_secs_f64()
        );
    }
    let tz = report::zone(ZONE).ok_or("zone")?;
    let at = |s: &str| report::instant(s, &tz).ok_or("instant");
    let month = report::period(at("2026-11-01")?, at("2026-12-01")?, Bucket::Day)?;
    let day = report::period(at("2026-11-16")?, at("2026-11-17")?, Bucket::Hour)?;
    let cohort = store.report_counts(&month.cohort(None)).await?;
    println!(
        "the month's cohort: {} orders ({} delivered)",
        cohort.placed, cohort.delivered
    );
    let check = report::orders(&store, &month).await?;
    let baseline = baseline_orders(&store, &month).await?;
    if check
        .buckets
        .iter()
        .map(|(_, f)| f.clone())
        .collect::<Vec<_>>()
        != baseline
    {
        return Err("the baseline's series differs from the report's".into());
    }
    let on_time_ms = 45 * 60 * 1000;
    let now_ms = end_ms;
    time("orders, month, daily", args.runs, || async {
        report::orders(&store, &month).await.map(|_| ())
    })
    .await?;
    time(
        "baseline: orders, month, daily, from report_orders",
        args.runs,
        || async {
            baseline_orders(&store, &month).await?;
            store.report_counts(&month.cohort(None)).await?;
            store.report_funnel(&month.cohort(None)).await?;
            Ok::<(), Box<dyn std::error::Error>>(())
        },
    )
    .await?;
    time("orders, day, hourly", args.runs, || async {
        report::orders(&store, &day).await.map(|_| ())
    })
    .await?;
    time("restaurants, month", args.runs, || async {
        report::restaurants(&store, &month, None).await.map(|_| ())
    })
    .await?;
    time("drivers, month", args.runs, || async {
        report::drivers(&store, &month, on_time_ms, now_ms)
            .await
            .map(|_| ())
    })
    .await?;
    Ok(())
}

/// Times `f` `runs` times after a warm-up; prints p50, p99 and max.
async fn time<F, Fut, E>(name: &str, runs: usize, f: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), E>>,
    E: Into<Box<dyn std::error::Error>>,
{
    for _ in 0..WARM_UP {
        f().await.map_err(Into::into)?;
    }
    let mut took: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await.map_err(Into::into)?;
        took.push(started.elapsed());
    }
    took.sort();
    let pick = |p: usize| took[(runs * p).div_ceil(100).max(1) - 1];
    println!(
        "{name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({runs} runs)",
        ms(pick(50)),
        ms(pick(99)),
        ms(took[runs - 1])
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs one statement on the store's pool.
async fn exec(store: &SqlStore, sql: String) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Writes the projection: orders, series, restaurants, sessions.
async fn seed(store: &SqlStore, args: &Args, end_ms: i64) -> Result<()> {
    let span_ms = args.days * 86_400_000;
    let start_ms = end_ms - span_ms;
    for table in [
        "report_orders",
        "report_series",
        "report_applied",
        "report_restaurants",
        "report_driver_sessions",
    ] {
        exec(store, format!("TRUNCATE {table}")).await?;
    }
    // One connection for setseed and the inserts that draw from it.
    let mut conn = store.pool().acquire().await?;
    sqlx::query("SELECT setseed(0.42)")
        .execute(&mut *conn)
        .await?;
    // Outcomes: 4 % payment failed, 6 % cancelled before acceptance, 5 %
    // rejected, 3 % cancelled after acceptance, 82 % delivered; half the
    // delivered reviewed. Times in seconds drawn per stage.
    let orders = args.orders;
    let sql = format!(
        "INSERT INTO report_orders (order_id, restaurant_id, customer_id, driver_id, status, \
         version, total_cents, charged_cents, refunded_cents, placed_at_ms, paid_at_ms, \
         accepted_at_ms, ready_at_ms, picked_up_at_ms, delivered_at_ms, cancelled_at_ms, \
         rejected_at_ms, payment_failed_at_ms, restaurant_stars, driver_stars, review_version) \
         SELECT md5('o' || i)::uuid::text, md5('r' || (i % {RESTAURANTS}))::uuid::text, \
           md5('c' || (i % 50000))::uuid::text, \
           CASE WHEN fate >= 0.18 THEN md5('d' || (i % {COURIERS}))::uuid::text END, \
           CASE WHEN fate < 0.04 THEN 'payment_failed' WHEN fate < 0.10 THEN 'cancelled' \
             WHEN fate < 0.15 THEN 'rejected' WHEN fate < 0.18 THEN 'cancelled' ELSE 'delivered' END, \
           8, total, CASE WHEN fate >= 0.04 THEN total ELSE 0 END, \
           CASE WHEN fate >= 0.04 AND fate < 0.18 THEN total ELSE 0 END, \
           placed, CASE WHEN fate >= 0.04 THEN placed END, \
           CASE WHEN fate >= 0.15 THEN placed + a END, \
           CASE WHEN fate >= 0.18 THEN placed + a + p END, \
           CASE WHEN fate >= 0.18 THEN placed + a + p + w END, \
           CASE WHEN fate >= 0.18 THEN placed + a + p + w + t END, \
           CASE WHEN (fate >= 0.04 AND fate < 0.10) THEN placed + 120000 \
             WHEN (fate >= 0.15 AND fate < 0.18) THEN placed + a + 180000 END, \
           CASE WHEN fate >= 0.10 AND fate < 0.15 THEN placed + 120000 END, \
           CASE WHEN fate < 0.04 THEN placed END, \
           CASE WHEN fate >= 0.18 AND review < 0.5 THEN 1 + (stars1 * 5)::bigint % 5 END, \
           CASE WHEN fate >= 0.18 AND review < 0.5 THEN 1 + (stars2 * 5)::bigint % 5 END, \
           CASE WHEN fate >= 0.18 AND review < 0.5 THEN 9 ELSE 0 END \
         FROM (SELECT i, random() AS fate, random() AS review, random() AS stars1, \
           random() AS stars2, \
           {start_ms} + (random() * {span_ms})::bigint AS placed, \
           1500 + (random() * 4500)::bigint AS total, \
           (60 + random() * 180)::bigint * 1000 AS a, \
           (480 + random() * 1320)::bigint * 1000 AS p, \
           (60 + random() * 540)::bigint * 1000 AS w, \
           (240 + random() * 1260)::bigint * 1000 AS t \
           FROM generate_series(1, {orders}) AS i) x ORDER BY placed"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    drop(conn);
    // The series, from the orders: what the consumer adds up per event.
    let unpivot = "(VALUES ('placed', placed_at_ms, 0::bigint), ('paid', paid_at_ms, 0), \
        ('charged', paid_at_ms, charged_cents), ('accepted', accepted_at_ms, 0), \
        ('ready_for_pickup', ready_at_ms, 0), ('picked_up', picked_up_at_ms, 0), \
        ('delivered', delivered_at_ms, 0), ('cancelled', cancelled_at_ms, 0), \
        ('rejected', rejected_at_ms, 0), ('payment_failed', payment_failed_at_ms, 0), \
        ('refunded', COALESCE(cancelled_at_ms, rejected_at_ms), refunded_cents))";
    exec(
        store,
        format!(
            "INSERT INTO report_series (quarter_ms, status, orders, amount_cents) \
             SELECT s.at - s.at % 900000, s.status, COUNT(*), SUM(s.amount) \
             FROM report_orders CROSS JOIN LATERAL {unpivot} AS s(status, at, amount) \
             WHERE s.at IS NOT NULL AND (s.status NOT IN ('charged', 'refunded') OR s.amount > 0) \
             GROUP BY 1, 2"
        ),
    )
    .await?;
    exec(
        store,
        format!(
            "INSERT INTO report_restaurants (restaurant_id, owner_id, name) \
             SELECT md5('r' || i)::uuid::text, md5('u' || i)::uuid::text, 'Restaurant ' || i \
             FROM generate_series(0, {RESTAURANTS} - 1) AS i"
        ),
    )
    .await?;
    // Each courier online 10:00–18:00 UTC every day.
    exec(
        store,
        format!(
            "INSERT INTO report_driver_sessions (driver_id, online_at_ms, offline_at_ms) \
             SELECT md5('d' || d)::uuid::text, {start_ms} + day::bigint * 86400000 + 36000000, \
               {start_ms} + day::bigint * 86400000 + 64800000 \
             FROM generate_series(0, {COURIERS} - 1) AS d, \
               generate_series(0, {days} - 1) AS day",
            days = args.days
        ),
    )
    .await?;
    exec(store, "ANALYZE".to_owned()).await?;
    Ok(())
}

/// The month's daily series straight from `report_orders`: each status's
/// time grouped by local day in SQL (no rollup), in the report's shape.
async fn baseline_orders(
    store: &SqlStore,
    period: &report::Period,
) -> Result<Vec<report::Figures>> {
    use sqlx::Row;
    let tz = period
        .from
        .time_zone()
        .iana_name()
        .unwrap_or("UTC")
        .to_owned();
    let sql = "SELECT s.status, \
         CAST(EXTRACT(EPOCH FROM (date_trunc('day', to_timestamp(s.at / 1000.0) AT TIME ZONE $3) \
           AT TIME ZONE $3)) * 1000 AS BIGINT) AS day_ms, \
         CAST(COUNT(*) AS BIGINT) AS orders, CAST(SUM(s.amount) AS BIGINT) AS amount \
         FROM report_orders CROSS JOIN LATERAL (VALUES ('placed', placed_at_ms, 0::bigint), \
         ('paid', paid_at_ms, 0), ('charged', paid_at_ms, charged_cents), \
         ('accepted', accepted_at_ms, 0), ('ready_for_pickup', ready_at_ms, 0), \
         ('picked_up', picked_up_at_ms, 0), ('delivered', delivered_at_ms, 0), \
         ('cancelled', cancelled_at_ms, 0), ('rejected', rejected_at_ms, 0), \
         ('payment_failed', payment_failed_at_ms, 0), \
         ('refunded', COALESCE(cancelled_at_ms, rejected_at_ms), refunded_cents)) AS s(status, at, amount) \
         WHERE s.at >= $1 AND s.at < $2 \
           AND (s.status NOT IN ('charged', 'refunded') OR s.amount > 0) \
         GROUP BY 1, 2";
    let rows = sqlx::query(sql)
        .bind(period.from_ms())
        .bind(period.to_ms())
        .bind(tz)
        .fetch_all(store.pool())
        .await?;
    let mut figures = vec![report::Figures::default(); period.buckets.len()];
    for row in rows {
        let status: String = row.try_get("status")?;
        let day_ms: i64 = row.try_get("day_ms")?;
        let orders: i64 = row.try_get("orders")?;
        let amount: i64 = row.try_get("amount")?;
        let Some(i) = period.buckets.iter().position(|b| b.start_ms == day_ms) else {
            return Err(format!("no bucket at {day_ms}").into());
        };
        let f = &mut figures[i];
        match status.as_str() {
            "charged" => {
                f.charges += orders;
                f.charged_cents += amount;
            }
            "refunded" => {
                f.refunds += orders;
                f.refunded_cents += amount;
            }
            other => {
                let s = engine::OrderStatus::parse(other).ok_or("status")?;
                let idx = engine::OrderStatus::ALL
                    .iter()
                    .position(|x| *x == s)
                    .ok_or("status")?;
                f.entered[idx] += orders;
            }
        }
    }
    Ok(figures)
}
