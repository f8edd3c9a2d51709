//! Storage: the source of truth for accounts, restaurants and orders.
//!
//! One [`Store`] trait, written in terms of the records below, with one
//! implementation per database: [`SqliteStore`] (the embedded default) now,
//! PostgreSQL next, both to pass the same test suite. Every state change that
//! must leave a trace (an order step, an assignment) is one method and one
//! transaction, so the event row can never be lost from its change.
//!
//! Expected situations (a duplicate email, a lost compare-and-set race) are
//! outcomes in the return value; [`StoreError`] is only for failures.

use std::sync::Arc;

use async_trait::async_trait;
use auth::Role;
use engine::{DriverId, LatLng, OrderId, OrderStatus, RestaurantId, UserId};

mod sqlite;

pub use sqlite::SqliteStore;

/// A storage failure. Never shown to clients: the REST layer turns it into a
/// generic 500 and logs it once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that the schema should never allow (an unparsable id or status).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database url: {0}")]
    Unsupported(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens the database named by `database_url` and brings its schema up to
/// date: `sqlite://path` (created if missing) or `sqlite::memory:`.
/// `postgres://` is recognised but answered with an error until the
/// PostgreSQL store lands.
pub async fn connect(database_url: &str) -> Result<Arc<dyn Store>> {
    if database_url.starts_with("sqlite:") {
        let store = SqliteStore::connect(database_url).await?;
        Ok(Arc::new(store))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Err(StoreError::Unsupported(
            "PostgreSQL is not yet supported by this build; use a sqlite:// url".to_owned(),
        ))
    } else {
        Err(StoreError::Unsupported(
            "expected a sqlite:// or postgres:// url".to_owned(),
        ))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    /// Lower-cased and trimmed.
    pub email: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub name: String,
    pub role: Role,
    pub created_at_ms: i64,
}

/// A refresh token as stored: only its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token the client holds.
    pub hash: String,
    pub user_id: UserId,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Restaurant {
    pub id: RestaurantId,
    pub owner_id: UserId,
    pub name: String,
    pub location: LatLng,
    pub address: String,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub customer_id: UserId,
    pub restaurant_id: RestaurantId,
    /// Read through the restaurant (not stored on the order), so the owner
    /// a restaurant has now is the one who may see its orders.
    pub restaurant_owner_id: UserId,
    pub status: OrderStatus,
    pub driver_id: Option<DriverId>,
    pub pickup: LatLng,
    pub dropoff: LatLng,
    pub delivery_address: String,
    pub total_cents: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What an order-history row records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The order moved to `status`.
    Status,
    /// A driver took the order (its status unchanged).
    Assigned,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Assigned => "assigned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "status" => Some(Self::Status),
            "assigned" => Some(Self::Assigned),
            _ => None,
        }
    }
}

/// One row of an order's history.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderEvent {
    pub order_id: OrderId,
    pub kind: EventKind,
    /// The order's status after the event.
    pub status: OrderStatus,
    pub driver_id: Option<DriverId>,
    /// Who caused it; `None` for the system.
    pub actor_id: Option<UserId>,
    pub at_ms: i64,
}

/// Whose orders a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderScope {
    /// Placed by this customer.
    Customer(UserId),
    /// To restaurants this user owns.
    RestaurantOwner(UserId),
    /// Carried by this driver.
    Driver(DriverId),
    /// Every order (admins).
    All,
}

/// A position in the newest-first order listing: strictly older than this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderCursor {
    pub created_at_ms: i64,
    pub order_id: OrderId,
}

/// A requested step of an order, applied only if the order is still in
/// `from` (compare-and-set), so two racing steps cannot both win.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub order_id: OrderId,
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub actor_id: Option<UserId>,
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TransitionOutcome {
    /// Done; the order as it is now.
    Applied(Order),
    /// The order was no longer in `from`: its current status, or `None` if
    /// the order does not exist.
    Stale(Option<OrderStatus>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum AssignOutcome {
    /// The order is now the driver's.
    Applied(Order),
    /// The order is closed, already has a driver, or does not exist
    /// (`None`): the order as it is.
    Refused(Option<Order>),
}

/// Whether a row was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// A row with the same unique key (for users: the email) exists.
    Duplicate,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<()>;

    // ---- accounts ----
    async fn insert_user(&self, user: &User) -> Result<Inserted>;
    /// `email` must already be normalised (trimmed, lower-case).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    async fn user(&self, id: UserId) -> Result<Option<User>>;

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()>;
    /// In one transaction: revokes the live (unrevoked, unexpired at
    /// `now_ms`) token `old_hash` and stores `new_hash` for the same user,
    /// whose id is returned. `None` if `old_hash` was not live (unknown,
    /// expired, or already used), in which case nothing changes.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<UserId>>;

    // ---- restaurants ----
    async fn insert_restaurant(&self, restaurant: &Restaurant) -> Result<()>;
    async fn restaurant(&self, id: RestaurantId) -> Result<Option<Restaurant>>;

    // ---- orders ----
    /// Inserts the order and its first history row (its initial status,
    /// by `actor_id`) in one transaction. `order.restaurant_owner_id` is not
    /// stored (it is read through the restaurant).
    async fn create_order(&self, order: &Order, actor_id: UserId) -> Result<()>;
    async fn order(&self, id: OrderId) -> Result<Option<Order>>;
    /// Newest first, strictly after `cursor`, at most `limit`.
    async fn list_orders(
        &self,
        scope: OrderScope,
        cursor: Option<OrderCursor>,
        limit: u32,
    ) -> Result<Vec<Order>>;
    /// Orders not in a terminal status, by id, strictly after `after`, at
    /// most `limit` (start-up reload of the live board).
    async fn open_orders(&self, after: Option<OrderId>, limit: u32) -> Result<Vec<Order>>;
    /// Applies `t` and appends its history row in one transaction.
    async fn transition_order(&self, t: &Transition) -> Result<TransitionOutcome>;
    /// Gives an open, driverless order to `driver_id` and appends the
    /// history row, in one transaction.
    async fn assign_driver(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        at_ms: i64,
    ) -> Result<AssignOutcome>;
    /// The order's history, oldest first.
    async fn order_events(&self, order_id: OrderId) -> Result<Vec<OrderEvent>>;
}
