//! [`Store`] on SQLite: one file (WAL, foreign keys on), or memory for tests.
//!
//! Migrations are the SQL files under `api/migrations/sqlite/`, embedded with
//! `include_str!` and applied by sqlx's own migrator (`_sqlx_migrations`
//! table, checksums), built with `Migrator::with_migrations` because the
//! `migrate!` macro needs sqlx's `macros` feature, which we do not build.
//!
//! The SQL uses `$n` placeholders (SQLite accepts them, PostgreSQL requires
//! them), TEXT ids and integer times and cents, so the PostgreSQL store can
//! share most statements. Every transaction writes first, so SQLite's lock
//! upgrade (deferred read → write) never deadlocks two writers.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use auth::Role;
use engine::{DriverId, LatLng, OrderId, OrderStatus, RestaurantId, UserId};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};

use super::{
    AssignOutcome, EventKind, Inserted, Order, OrderCursor, OrderEvent, OrderScope, RefreshToken,
    Restaurant, Result, Store, StoreError, Transition, TransitionOutcome, User,
};

/// Connections in a file-backed pool. SQLite serialises writers (WAL lets
/// readers run beside the one writer); a few connections cover two cores'
/// worth of concurrent requests waiting on I/O without piling up writers.
const MAX_CONNECTIONS: u32 = 8;
/// How long a writer waits for the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded migrations, in order. Never edit an applied one.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "foundation",
    include_str!("../../migrations/sqlite/0001_foundation.sql"),
)];

/// The statuses `OrderStatus::is_terminal` calls terminal, as an SQL list
/// (a macro so it can be spliced into `concat!`; checked by a unit test).
macro_rules! terminal_statuses {
    () => {
        "('delivered', 'cancelled', 'rejected', 'payment_failed')"
    };
}

/// The columns of an [`Order`], with its restaurant's owner.
macro_rules! select_order {
    () => {
        "SELECT o.id, o.customer_id, o.restaurant_id, r.owner_id, o.status, o.driver_id, \
         o.pickup_lat, o.pickup_lng, o.dropoff_lat, o.dropoff_lng, o.delivery_address, \
         o.total_cents, o.created_at_ms, o.updated_at_ms \
         FROM orders o JOIN restaurants r ON r.id = o.restaurant_id "
    };
}

/// Keyset pagination, newest first: `$2`/`$3` are the cursor, `$4` the limit.
macro_rules! page_newest_first {
    () => {
        " AND (o.created_at_ms < $2 OR (o.created_at_ms = $2 AND o.id < $3)) \
         ORDER BY o.created_at_ms DESC, o.id DESC LIMIT $4"
    };
}

/// The columns of a [`User`].
macro_rules! select_user {
    () => {
        "SELECT id, email, password_hash, name, role, created_at_ms FROM users "
    };
}

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing, with its directory) and migrates the
    /// database at `url` (`sqlite://path`, `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // Every connection to a private memory database is a new, empty
            // database: one connection, kept forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?
        } else {
            if let Some(dir) = options
                .get_filename()
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?
        };
        migrator().run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_user(&self, user: &User) -> Result<Inserted> {
        let result = sqlx::query(
            "INSERT INTO users (id, email, password_hash, name, role, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(user.created_at_ms)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(Inserted::Created),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Inserted::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = concat!(select_user!(), "WHERE lower(email) = lower($1)");
        let row = sqlx::query(sql)
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let sql = concat!(select_user!(), "WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, user_id, expires_at_ms, revoked_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, NULL, $4)",
        )
        .bind(&token.hash)
        .bind(token.user_id.to_string())
        .bind(token.expires_at_ms)
        .bind(token.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<UserId>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at_ms = $1 \
             WHERE hash = $2 AND revoked_at_ms IS NULL AND expires_at_ms > $1 RETURNING user_id",
        )
        .bind(now_ms)
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let user_id: UserId = parse_col(&row, "user_id")?;
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, user_id, expires_at_ms, revoked_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, NULL, $4)",
        )
        .bind(new_hash)
        .bind(user_id.to_string())
        .bind(new_expires_at_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }

    async fn insert_restaurant(&self, r: &Restaurant) -> Result<()> {
        sqlx::query(
            "INSERT INTO restaurants (id, owner_id, name, lat, lng, address, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.id.to_string())
        .bind(r.owner_id.to_string())
        .bind(&r.name)
        .bind(r.location.lat)
        .bind(r.location.lng)
        .bind(&r.address)
        .bind(r.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn restaurant(&self, id: RestaurantId) -> Result<Option<Restaurant>> {
        let row = sqlx::query(
            "SELECT id, owner_id, name, lat, lng, address, created_at_ms FROM restaurants WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| {
                Ok(Restaurant {
                    id: parse_col(row, "id")?,
                    owner_id: parse_col(row, "owner_id")?,
                    name: row.try_get("name")?,
                    location: lat_lng(row, "lat", "lng")?,
                    address: row.try_get("address")?,
                    created_at_ms: row.try_get("created_at_ms")?,
                })
            })
            .transpose()
    }

    async fn create_order(&self, order: &Order, actor_id: UserId) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO orders (id, customer_id, restaurant_id, status, driver_id, pickup_lat, pickup_lng, \
             dropoff_lat, dropoff_lng, delivery_address, total_cents, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
        .bind(order.total_cents)
        .bind(order.created_at_ms)
        .bind(order.updated_at_ms)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            &OrderEvent {
                order_id: order.id,
                kind: EventKind::Status,
                status: order.status,
                driver_id: None,
                actor_id: Some(actor_id),
                at_ms: order.created_at_ms,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        let row = sqlx::query(concat!(select_order!(), "WHERE o.id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
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
        };
        let rows = sqlx::query(sql)
            .bind(party)
            .bind(before_ms)
            .bind(before_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
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
        rows.iter().map(order_from_row).collect()
    }

    async fn transition_order(&self, t: &Transition) -> Result<TransitionOutcome> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE orders SET status = $1, updated_at_ms = $2 WHERE id = $3 AND status = $4",
        )
        .bind(t.to.as_str())
        .bind(t.at_ms)
        .bind(t.order_id.to_string())
        .bind(t.from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
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
        insert_event(
            &mut tx,
            &OrderEvent {
                order_id: t.order_id,
                kind: EventKind::Status,
                status: t.to,
                driver_id: None,
                actor_id: t.actor_id,
                at_ms: t.at_ms,
            },
        )
        .await?;
        let row = sqlx::query(concat!(select_order!(), "WHERE o.id = $1"))
            .bind(t.order_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let order = order_from_row(&row)?;
        tx.commit().await?;
        Ok(TransitionOutcome::Applied(order))
    }

    async fn assign_driver(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        at_ms: i64,
    ) -> Result<AssignOutcome> {
        let mut tx = self.pool.begin().await?;
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
        if done == 0 {
            tx.rollback().await?;
            return Ok(AssignOutcome::Refused(self.order(order_id).await?));
        }
        let row = sqlx::query(concat!(select_order!(), "WHERE o.id = $1"))
            .bind(order_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let order = order_from_row(&row)?;
        insert_event(
            &mut tx,
            &OrderEvent {
                order_id,
                kind: EventKind::Assigned,
                status: order.status,
                driver_id: Some(driver_id),
                actor_id: Some(driver_id.into()),
                at_ms,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(AssignOutcome::Applied(order))
    }

    async fn order_events(&self, order_id: OrderId) -> Result<Vec<OrderEvent>> {
        let rows = sqlx::query(
            "SELECT order_id, kind, status, driver_id, actor_id, at_ms FROM order_events WHERE order_id = $1 ORDER BY id",
        )
        .bind(order_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(OrderEvent {
                    order_id: parse_col(row, "order_id")?,
                    kind: EventKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
                    status: status_col(row, "status")?,
                    driver_id: parse_opt_col(row, "driver_id")?,
                    actor_id: parse_opt_col(row, "actor_id")?,
                    at_ms: row.try_get("at_ms")?,
                })
            })
            .collect()
    }
}

async fn insert_event(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, e: &OrderEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO order_events (order_id, kind, status, driver_id, actor_id, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.order_id.to_string())
    .bind(e.kind.as_str())
    .bind(e.status.as_str())
    .bind(e.driver_id.map(|d| d.to_string()))
    .bind(e.actor_id.map(|a| a.to_string()))
    .bind(e.at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn corrupt(column: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("column {column} holds {value:?}"))
}

fn parse_col<T: FromStr>(row: &SqliteRow, column: &str) -> Result<T> {
    let s: String = row.try_get(column)?;
    s.parse().map_err(|_| corrupt(column, &s))
}

fn parse_opt_col<T: FromStr>(row: &SqliteRow, column: &str) -> Result<Option<T>> {
    let s: Option<String> = row.try_get(column)?;
    s.map(|s| s.parse().map_err(|_| corrupt(column, &s)))
        .transpose()
}

fn status_col(row: &SqliteRow, column: &str) -> Result<OrderStatus> {
    let s: String = row.try_get(column)?;
    OrderStatus::parse(&s).ok_or_else(|| corrupt(column, &s))
}

fn lat_lng(row: &SqliteRow, lat: &str, lng: &str) -> Result<LatLng> {
    let (la, ln): (f64, f64) = (row.try_get(lat)?, row.try_get(lng)?);
    LatLng::new(la, ln).map_err(|_| corrupt(lat, &format!("{la},{ln}")))
}

fn user_from_row(row: &SqliteRow) -> Result<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: parse_col(row, "id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn order_from_row(row: &SqliteRow) -> Result<Order> {
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
        total_cents: row.try_get("total_cents")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_list_matches_the_engine() {
        let listed: Vec<&str> = terminal_statuses!()
            .trim_matches(|c| c == '(' || c == ')')
            .split(", ")
            .map(|s| s.trim_matches('\''))
            .collect();
        for status in OrderStatus::ALL {
            assert_eq!(
                listed.contains(&status.as_str()),
                status.is_terminal(),
                "{status:?}"
            );
        }
    }
}
