//! Storage: the source of truth for accounts, restaurants, menus, carts,
//! orders and payments.
//!
//! One [`Store`] (the sum of one trait per area: [`AccountStore`],
//! [`RestaurantStore`], [`CartStore`], [`OrderStore`], [`PaymentStore`],
//! [`GatewayLedger`], the simulated payment gateway's own tables, and
//! [`ReviewStore`], ratings and reviews, [`NotificationStore`], the
//! notification feed, [`ChannelStore`], outside channels: preferences and
//! the log of sends),
//! notification feed, [`RouteStore`], delivered orders' routes),
//! notification feed, [`ReportStore`], the reports projection),
//! written in terms of the records below, and one implementation,
//! [`SqlStore`], that serves SQLite and PostgreSQL with the same statements
//! (see `sql`). Every state change that must leave a trace (an order step,
//! an assignment, a payment) is one method and one transaction, so the
//! event (the transactional outbox, see [`crate::event`]), the stock given
//! back and the refund owed can never be lost from the change that caused
//! them (where it goes: `sql::tx`).
//!
//! Expected situations (a duplicate email, a lost compare-and-set race, an
//! item out of stock) are outcomes in the return value; [`StoreError`] is
//! only for failures.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use auth::Role;
use engine::{
    AddressId, DriverId, Fence, LatLng, MenuItemId, OrderId, OrderStatus, PaymentId, RestaurantId,
    UserId,
};

use crate::channels::prefs::Setting;
use crate::channels::{Channel, SendStatus};
use crate::notify::Language;

mod reports;
mod sql;

pub use reports::*;
pub use sql::{Backend, SqlStore};

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
    /// The event stream refused or failed an append.
    #[error("{0}")]
    Events(#[from] events::Error),
}

impl StoreError {
    /// Whether the database is away for now rather than refusing this
    /// request: no connection could be had in time, a connection broke, or
    /// the disk is full (SQLite's `SQLITE_FULL`, PostgreSQL's class 53,
    /// insufficient resources). A retry later may succeed; the edges
    /// answer 503 with `Retry-After`, not 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            // An event appended in the same transaction fails the same way
            // (often first: it is the transaction's last write).
            Self::Database(e) | Self::Events(events::Error::Database(e)) => unavailable(e),
            _ => false,
        }
    }
}

/// [`StoreError::is_unavailable`] for one database error.
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|code| {
            // SQLite: 13 SQLITE_FULL, 10 SQLITE_IOERR (what a write into a
            // full disk may also say; the extended codes keep the primary
            // in the low byte); PostgreSQL: 53xxx, 57P01-57P03 (the server
            // shutting down or starting).
            code.parse::<u32>()
                .is_ok_and(|n| matches!(n & 0xff, 10 | 13))
                || code.starts_with("53")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod unavailable_tests {
    use super::*;

    #[test]
    fn a_lost_database_is_unavailable_whichever_write_met_it() {
        let broken = || sqlx::Error::Io(std::io::Error::other("connection reset"));
        assert!(StoreError::Database(broken()).is_unavailable());
        // The event appended in the transaction met it first.
        assert!(StoreError::Events(events::Error::Database(broken())).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        // A refusal of this request, not an outage.
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
        assert!(!StoreError::Events(events::Error::Corrupt("x".into())).is_unavailable());
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens the database named by `database_url` and brings its schema up to
/// date: `sqlite://path` (created if missing, WAL), `sqlite::memory:`, or
/// `postgres://…` / `postgresql://…`.
pub async fn connect(database_url: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SqlStore::connect(database_url).await?))
}

/// Walks a keyset-paged listing to its end: `fetch(after, limit)` returns
/// rows strictly after `after`, `key` names a row's position, and each full
/// page is handed to `each` before the next is asked for. How many rows
/// there were. (Start-up loads: the live board, the catalog, payments.)
pub async fn for_each_page<T, K, F, Fut>(
    limit: u32,
    mut fetch: F,
    key: impl Fn(&T) -> K,
    mut each: impl FnMut(Vec<T>),
) -> Result<usize>
where
    F: FnMut(Option<K>, u32) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>>>,
{
    let mut after = None;
    let mut count = 0;
    loop {
        let page = fetch(after.take(), limit).await?;
        count += page.len();
        let full = page.len() == limit as usize;
        after = page.last().map(&key);
        each(page);
        if !full {
            return Ok(count);
        }
    }
}

// ---------------------------------------------------------------- accounts

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// The account's id (a driver's is also its `DriverId`).
    pub id: UserId,
    /// Lower-cased and trimmed.
    pub email: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    /// The name shown to others.
    pub name: String,
    /// An optional phone number, as given.
    pub phone: Option<String>,
    /// What the account may do (fixed at signup).
    pub role: Role,
    /// When an admin banned the user; `None` while not banned.
    pub banned_at_ms: Option<i64>,
    /// When the account was created, Unix ms.
    pub created_at_ms: i64,
    /// The language the user reads notifications in; `None`: not chosen
    /// (English).
    pub language: Option<Language>,
}

/// A refresh token as stored: only its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token the client holds.
    pub hash: String,
    /// Whose token it is.
    pub user_id: UserId,
    /// When it stops being usable, Unix ms.
    pub expires_at_ms: i64,
    /// When it was issued, Unix ms.
    pub created_at_ms: i64,
}

/// A saved delivery address.
#[derive(Clone, Debug, PartialEq)]
pub struct Address {
    /// The address's id.
    pub id: AddressId,
    /// Whose address it is.
    pub user_id: UserId,
    /// "Home", "Work": the customer's own name for it.
    pub label: String,
    /// The street address, as written.
    pub address: String,
    /// Where it is (the delivery point).
    pub location: LatLng,
    /// When it was saved, Unix ms.
    pub created_at_ms: i64,
}

/// Whether a row was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// A row with the same unique key (for users: the email) exists.
    Duplicate,
}

/// What [`AccountStore::set_banned`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum BanOutcome {
    /// The ban was set or lifted; the user as it is now.
    Changed(User),
    /// The user was already as asked; nothing was written.
    Unchanged(User),
    /// No such user.
    UnknownUser,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn insert_user(&self, user: &User) -> Result<Inserted>;
    /// `email` must already be normalised (trimmed, lower-case).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    /// Sets name, phone and language; the user as it is now, `None` if
    /// unknown.
    async fn update_profile(
        &self,
        id: UserId,
        name: &str,
        phone: Option<&str>,
        language: Option<Language>,
    ) -> Result<Option<User>>;
    /// Bans (`banned`: at `now_ms`) or unbans the user, for `actor_id`
    /// (the admin), if that changes anything: a ban also revokes every
    /// refresh token the user holds, and the change appends `user.banned`
    /// / `user.unbanned` with the admin as its actor, in the same
    /// transaction. Banning a banned user (the first ban time stays) or
    /// unbanning one who is not banned writes nothing.
    async fn set_banned(
        &self,
        id: UserId,
        banned: bool,
        actor_id: UserId,
        now_ms: i64,
    ) -> Result<BanOutcome>;
    /// Every banned user (loaded into the token checker at start-up).
    async fn banned_users(&self) -> Result<Vec<UserId>>;
    /// Users matching `filter`, newest first, strictly after `after`, at
    /// most `limit` (an admin's listing).
    async fn list_users(
        &self,
        filter: &UserFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<User>>;

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()>;
    /// In one transaction: revokes the live (unrevoked, unexpired at
    /// `now_ms`, of a user not banned) token `old_hash` and stores
    /// `new_hash` for the same user, whose id is returned. `None` if
    /// `old_hash` was not live, in which case nothing changes.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<UserId>>;
    /// A logout, in one transaction: revokes the user's live refresh token
    /// `only` (if it is theirs), or every live one with `None`; refuses
    /// their access tokens issued before `now_ms` from now on
    /// (`tokens_valid_from_ms`); appends `user.logged_out`. How many
    /// refresh tokens it revoked.
    async fn log_out(&self, user_id: UserId, only: Option<&str>, now_ms: i64) -> Result<u64>;
    /// Users whose access tokens issued before a time are refused, with
    /// that time, where it is after `after_ms` (loaded into the token
    /// checker at start-up: older cutoffs outlived every token they cut).
    async fn access_cutoffs(&self, after_ms: i64) -> Result<Vec<(UserId, i64)>>;
    /// The user's cutoff, if they ever logged out.
    async fn access_cutoff(&self, user_id: UserId) -> Result<Option<i64>>;

    async fn insert_address(&self, address: &Address) -> Result<()>;
    /// The user's addresses, oldest first.
    async fn addresses(&self, user_id: UserId) -> Result<Vec<Address>>;
    /// Deletes the address if it is the user's. Whether it was.
    async fn delete_address(&self, user_id: UserId, id: AddressId) -> Result<bool>;
}

// ---------------------------------------------------------------- listings

/// A position in a newest-first admin listing: strictly older than this
/// row (by creation time, then id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageAfter {
    /// The last listed row's creation time, Unix ms.
    pub created_at_ms: i64,
    /// The last listed row's id (ties on time), as stored.
    pub id: String,
}

/// Which users an admin listing shows; every field set narrows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Only this role.
    pub role: Option<Role>,
    /// Only banned (`true`) or only not banned (`false`) users.
    pub banned: Option<bool>,
    /// Only users whose name or email contains this text, case-insensitive
    /// (ASCII letters; other characters as written).
    pub text: Option<String>,
}

/// Which restaurants an admin listing shows; every field set narrows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestaurantFilter {
    /// Only restaurants whose name or address contains this text,
    /// case-insensitive (ASCII letters).
    pub text: Option<String>,
    /// Only this owner's.
    pub owner_id: Option<UserId>,
    /// Only those taking orders (`true`) or not (`false`).
    pub accepting: Option<bool>,
}

/// Which orders an admin listing shows; every field set narrows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only this restaurant's.
    pub restaurant_id: Option<RestaurantId>,
    /// Only those this driver has (or delivered).
    pub driver_id: Option<DriverId>,
    /// Only this customer's.
    pub customer_id: Option<UserId>,
    /// Only orders placed at or after this time, Unix ms.
    pub from_ms: Option<i64>,
    /// Only orders placed before this time, Unix ms.
    pub until_ms: Option<i64>,
}

// ------------------------------------------------------------- restaurants

#[derive(Clone, Debug, PartialEq)]
pub struct Restaurant {
    /// The restaurant's id.
    pub id: RestaurantId,
    /// The restaurant account that manages it.
    pub owner_id: UserId,
    /// Its name, as shown and searched.
    pub name: String,
    /// Where orders are picked up.
    pub location: LatLng,
    /// Its street address, as written.
    pub address: String,
    /// Lower-case cuisine names ("pizza", "thai").
    pub cuisines: Vec<String>,
    /// The weekly opening hours as the api validated them (JSON of
    /// `catalog::WeeklyHours`); `None`: always open.
    pub hours_json: Option<String>,
    /// How far from `location` it delivers, straight line.
    pub delivery_radius_m: u32,
    /// Average preparation time.
    pub prep_time_s: u32,
    /// The owner's switch: off, no orders are taken (even while open).
    pub accepting_orders: bool,
    /// When it was created, Unix ms.
    pub created_at_ms: i64,
    /// When it last changed, Unix ms.
    pub updated_at_ms: i64,
}

impl Restaurant {
    /// The opening hours, `None`: always open (or stored hours that no
    /// longer parse, logged, so a bad row never closes a restaurant).
    pub fn hours(&self) -> Option<catalog::WeeklyHours> {
        let json = self.hours_json.as_deref()?;
        match serde_json::from_str::<catalog::WeeklyHours>(json) {
            Ok(hours) => Some(hours),
            Err(e) => {
                tracing::warn!(restaurant_id = %self.id, error = %e, "stored opening hours do not parse");
                None
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MenuItem {
    /// The item's id.
    pub id: MenuItemId,
    /// Whose menu it is on.
    pub restaurant_id: RestaurantId,
    /// The menu section ("Pizza", "Drinks").
    pub category: String,
    /// Its name, as shown and searched.
    pub name: String,
    /// What it is (may be empty).
    pub description: String,
    /// Its price now; an order keeps the price it was placed at.
    pub price_cents: i64,
    /// The owner's switch: off, it cannot be ordered.
    pub available: bool,
    /// Units left; `None`: not counted.
    pub stock: Option<i64>,
    /// Order on the menu (ascending).
    pub position: i64,
    /// When it was added, Unix ms.
    pub created_at_ms: i64,
    /// When it last changed (stock included), Unix ms.
    pub updated_at_ms: i64,
}

/// Restaurants and their menus. Every write appends `restaurant.updated`
/// or `menu.updated` in its transaction, with `actor_id` (the user who
/// made the change: the owner or an admin) as the event's actor.
#[async_trait]
pub trait RestaurantStore: Send + Sync {
    /// Stores a new restaurant.
    async fn insert_restaurant(&self, restaurant: &Restaurant, actor_id: UserId) -> Result<()>;
    async fn restaurant(&self, id: RestaurantId) -> Result<Option<Restaurant>>;
    /// Writes every mutable field of `restaurant` (all but id, owner and
    /// creation time). Whether the restaurant exists.
    async fn update_restaurant(&self, restaurant: &Restaurant, actor_id: UserId) -> Result<bool>;
    /// By id, strictly after `after`, at most `limit` (start-up load of the
    /// search catalog).
    async fn restaurants_page(
        &self,
        after: Option<RestaurantId>,
        limit: u32,
    ) -> Result<Vec<Restaurant>>;

    /// Restaurants matching `filter`, newest first, strictly after
    /// `after`, at most `limit` (an admin's listing).
    async fn list_restaurants(
        &self,
        filter: &RestaurantFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<Restaurant>>;

    /// Adds the items (all of one restaurant) in one transaction.
    async fn insert_menu_items(&self, items: &[MenuItem], actor_id: UserId) -> Result<()>;
    async fn menu_item(&self, id: MenuItemId) -> Result<Option<MenuItem>>;
    /// The restaurant's menu, by position.
    async fn menu(&self, restaurant_id: RestaurantId) -> Result<Vec<MenuItem>>;
    /// Writes every mutable field of `item`. Whether it exists.
    async fn update_menu_item(&self, item: &MenuItem, actor_id: UserId) -> Result<bool>;
    /// Every menu item by id, strictly after `after`, at most `limit`.
    async fn menu_items_page(&self, after: Option<MenuItemId>, limit: u32)
    -> Result<Vec<MenuItem>>;
}

// -------------------------------------------------------------------- cart

/// One line of a cart, with the item as the menu has it now.
#[derive(Clone, Debug, PartialEq)]
pub struct CartLine {
    /// The menu item as it is now.
    pub item: MenuItem,
    /// How many (1 to the most one order may have).
    pub quantity: i64,
}

/// A customer's cart: lines of one restaurant, oldest first.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Cart {
    /// The restaurant its lines are from; `None` while empty.
    pub restaurant_id: Option<RestaurantId>,
    /// Its lines, oldest first.
    pub lines: Vec<CartLine>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CartChange {
    /// Added `quantity` to the line of `item` (creating it).
    Add {
        /// The menu item.
        item: MenuItemId,
        /// The item's restaurant.
        restaurant_id: RestaurantId,
        /// How many to add.
        quantity: i64,
    },
    /// Sets the line's quantity; 0 removes the line.
    Set {
        /// The menu item.
        item: MenuItemId,
        /// The item's restaurant.
        restaurant_id: RestaurantId,
        /// The line's new quantity.
        quantity: i64,
    },
    Remove(MenuItemId),
    Clear,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CartOutcome {
    /// The cart after the change.
    Changed(Cart),
    /// The cart holds items of another restaurant.
    OtherRestaurant(RestaurantId),
    /// The line would exceed the most of one item an order may have.
    TooMany,
}

#[async_trait]
pub trait CartStore: Send + Sync {
    async fn cart(&self, customer_id: UserId) -> Result<Cart>;
    /// Applies `change` in one transaction; a line never exceeds
    /// `max_quantity`.
    async fn change_cart(
        &self,
        customer_id: UserId,
        change: CartChange,
        max_quantity: i64,
        now_ms: i64,
    ) -> Result<CartOutcome>;
}

// ------------------------------------------------------------------ orders

/// One priced line of an order.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderLine {
    /// The menu item ordered.
    pub menu_item_id: MenuItemId,
    /// Its name when ordered.
    pub name: String,
    /// Its price when ordered.
    pub unit_price_cents: i64,
    /// How many.
    pub quantity: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// The order's id.
    pub id: OrderId,
    /// Who placed it.
    pub customer_id: UserId,
    /// Where it is from.
    pub restaurant_id: RestaurantId,
    /// Read through the restaurant (not stored on the order), so the owner
    /// a restaurant has now is the one who may see its orders.
    pub restaurant_owner_id: UserId,
    /// Where it is in its life (see `lifecycle`).
    pub status: OrderStatus,
    /// The driver who took it; `None` until one accepts.
    pub driver_id: Option<DriverId>,
    /// Where the driver picks it up (the restaurant when placed).
    pub pickup: LatLng,
    /// Where it is delivered.
    pub dropoff: LatLng,
    /// The delivery address as the customer wrote it.
    pub delivery_address: String,
    /// The lines' prices times quantities.
    pub subtotal_cents: i64,
    /// The fee for the distance (`usecase::place::DeliveryFee`).
    pub delivery_fee_cents: i64,
    /// Subtotal plus fee: what is charged.
    pub total_cents: i64,
    /// Filled by [`OrderStore::order`] and [`OrderStore::place_order`];
    /// listings leave it empty.
    pub lines: Vec<OrderLine>,
    /// When it was placed, Unix ms.
    pub created_at_ms: i64,
    /// When it last changed, Unix ms.
    pub updated_at_ms: i64,
    /// When the restaurant accepted it, Unix ms; `None` before. With
    /// [`Order::ready_at_ms`], what the prep-aware matcher learns a
    /// restaurant's preparation time from.
    pub accepted_at_ms: Option<i64>,
    /// When it became ready for pickup, Unix ms; `None` before.
    pub ready_at_ms: Option<i64>,
    /// The order aggregate's version in the event stream as of this read
    /// or change (1 once placed, one more per event; 0 for an order not
    /// stored yet). The live board applies changes by it, so an older
    /// change never overwrites a newer one.
    pub version: i64,
}

/// What an order-history entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The order moved to `status`.
    Status,
    /// A driver took the order (its status unchanged).
    Assigned,
    /// A dispatcher moved the order to another driver, or back to the
    /// matcher (`driver_id` the new driver or none).
    Reassigned,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Assigned => "assigned",
            Self::Reassigned => "reassigned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "status" => Some(Self::Status),
            "assigned" => Some(Self::Assigned),
            "reassigned" => Some(Self::Reassigned),
            _ => None,
        }
    }
}

/// One entry of an order's history (read from the order's events).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderEvent {
    /// The order.
    pub order_id: OrderId,
    /// A step or an assignment.
    pub kind: EventKind,
    /// The order's status after the event.
    pub status: OrderStatus,
    /// The order's driver at the time, if any.
    pub driver_id: Option<DriverId>,
    /// Who caused it; `None` for the system.
    pub actor_id: Option<UserId>,
    /// When, Unix ms.
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
    /// One restaurant's (its kitchen screen), only those in `status` when
    /// given.
    Restaurant {
        /// The restaurant.
        restaurant_id: RestaurantId,
        /// Only orders in this status.
        status: Option<OrderStatus>,
    },
}

/// A position in the newest-first order listing: strictly older than this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderCursor {
    /// The last listed order's creation time.
    pub created_at_ms: i64,
    /// The last listed order's id (ties on time).
    pub order_id: OrderId,
}

/// A requested step of an order, applied only if the order is still in
/// `from` (compare-and-set), so two racing steps cannot both win.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// The order.
    pub order_id: OrderId,
    /// The status the caller saw.
    pub from: OrderStatus,
    /// The status to move to.
    pub to: OrderStatus,
    /// Who asks; `None`: the system.
    pub actor_id: Option<UserId>,
    /// When, Unix ms.
    pub at_ms: i64,
    /// The id of the refund the step makes owed, if it makes one (a step to
    /// `cancelled` or `rejected` of a paid order); made by the caller from
    /// the app's clock, like every new id.
    pub refund_id: PaymentId,
}

// Returned once per call and matched at once, never stored: boxing the
// order would cost an allocation per call to save stack bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum TransitionOutcome {
    /// Done; the order as it is now, and the refund the step made owed
    /// (written pending, for the payments saga to send to the gateway).
    Applied(Order, Option<Payment>),
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
    /// The writer's fencing token is not the region's current epoch (the
    /// current one, `None` when no node ever took the region): another
    /// node leads the region now, so nothing was written.
    Fenced {
        /// The region's epoch now.
        current: Option<i64>,
    },
    /// The driver holds another open order (checked for a fenced
    /// assignment, under the driver's row lock): nothing was written.
    DriverBusy,
}

/// An admin's force-cancel of an order, whatever its open status.
#[derive(Clone, Debug, PartialEq)]
pub struct ForceCancel {
    /// The order.
    pub order_id: OrderId,
    /// The admin who cancels it.
    pub actor_id: UserId,
    /// Why (kept on the refund it makes owed).
    pub reason: String,
    /// The id of the refund the cancellation makes owed, if any (made by
    /// the caller from the app's clock).
    pub refund_id: PaymentId,
    /// When, Unix ms.
    pub at_ms: i64,
}

// Returned once per call and matched at once, never stored: boxing the
// order would cost an allocation per call to save stack bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ForceCancelOutcome {
    /// Cancelled from `from`; the order as it is now and the refund the
    /// cancellation made owed (written pending).
    Cancelled {
        /// The order as it is now (without lines).
        order: Order,
        /// Its status before.
        from: OrderStatus,
        /// The refund made owed, written pending.
        refund: Option<Payment>,
    },
    /// The order was already closed (`cancelled`, `delivered`, …): nothing
    /// was written. The order as it is.
    Closed(Order),
    /// No such order.
    UnknownOrder,
}

/// A dispatcher's reassignment of an order: from the driver the caller
/// saw (compare-and-set) to another driver or to none (back to dispatch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reassignment {
    /// The order.
    pub order_id: OrderId,
    /// The driver the caller saw on the order (`None`: none); the change
    /// applies only if the order still has exactly this driver.
    pub from: Option<DriverId>,
    /// The new driver; `None`: back to the matcher.
    pub to: Option<DriverId>,
    /// The admin who reassigns it.
    pub actor_id: UserId,
    /// When, Unix ms.
    pub at_ms: i64,
}

// Returned once per call and matched at once, never stored: boxing the
// order would cost an allocation per call to save stack bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ReassignOutcome {
    /// Done, with `order.reassigned` appended; the order as it is now.
    Applied(Order),
    /// The order no longer has the driver the caller saw, or is no longer
    /// waiting for pickup: the order as it is (`None`: no such order).
    Stale(Option<Order>),
    /// The new driver holds another open order (its id).
    DriverBusy(OrderId),
}

/// A customer's `Idempotency-Key` with a digest of the request it came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key as the client sent it.
    pub key: String,
    /// Hex SHA-256 of the request's canonical form.
    pub request_hash: String,
}

/// Everything [`OrderStore::place_order`] needs. The order's money fields
/// and lines are filled in by the store from the menu as it takes stock.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOrder {
    /// `status` must be `placed`; `subtotal_cents`, `total_cents` and
    /// `lines` are ignored (the store prices the order).
    pub order: Order,
    /// Wanted items; each id at most once.
    pub items: Vec<(MenuItemId, i64)>,
    /// The customer's key, if the request had one.
    pub idempotency: Option<IdempotencyKey>,
    /// The charge to create (pending) for the order's total.
    pub payment_id: PaymentId,
    /// How the charge is paid (`card`).
    pub payment_method: String,
    /// The gateway token to charge.
    pub payment_token: String,
    /// Empty the customer's cart in the same transaction (checkout).
    pub clear_cart: bool,
}

// Returned once per call and matched at once, never stored: boxing the
// order would cost an allocation per call to save stack bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum PlaceOutcome {
    /// Stored with its lines and its pending charge.
    Placed(Order, Payment),
    /// The key was used before for the same request: that order.
    Replayed(OrderId),
    /// The key was used before for a different request.
    KeyReused,
    /// Not on this restaurant's menu.
    UnknownItem(MenuItemId),
    /// On the menu but switched off.
    Unavailable(MenuItemId),
    /// Fewer left than asked for.
    OutOfStock { item: MenuItemId, left: i64 },
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    /// In one transaction: claims the idempotency key, takes stock of every
    /// item (never below zero, whatever runs concurrently), prices the
    /// order, inserts it with its lines, `order.placed` event and pending
    /// charge, and empties the cart if asked. Nothing is written unless
    /// all of it is.
    async fn place_order(&self, new: &NewOrder, actor_id: UserId) -> Result<PlaceOutcome>;
    /// The request digest and order a customer's idempotency key names.
    async fn idempotent_order(
        &self,
        customer_id: UserId,
        key: &str,
    ) -> Result<Option<(String, OrderId)>>;
    /// The order with its lines.
    async fn order(&self, id: OrderId) -> Result<Option<Order>>;
    /// The order without its lines, in one read: for the event stream's
    /// consumers, which want its parties, status and places for every
    /// event, never its items.
    async fn order_head(&self, id: OrderId) -> Result<Option<Order>>;
    /// [`OrderStore::order_head`] of each of `ids` in one read (a
    /// consumer's batch of events asks about many orders at once; one
    /// statement instead of one per event). Orders the store does not
    /// have are left out; the order of the result is unspecified.
    async fn order_heads(&self, ids: &[OrderId]) -> Result<Vec<Order>>;
    /// Newest first, strictly after `cursor`, at most `limit`; without lines.
    async fn list_orders(
        &self,
        scope: OrderScope,
        cursor: Option<OrderCursor>,
        limit: u32,
    ) -> Result<Vec<Order>>;
    /// Orders matching `filter`, newest first, strictly after `after`, at
    /// most `limit`; without lines (an admin's listing).
    async fn search_orders(
        &self,
        filter: &OrderFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<Order>>;
    /// Orders not in a terminal status, by id, strictly after `after`, at
    /// most `limit` (start-up reload of the live board); without lines.
    async fn open_orders(&self, after: Option<OrderId>, limit: u32) -> Result<Vec<Order>>;
    /// Applies `t` and appends its event (`order.accepted` …) in one transaction. A step to
    /// `cancelled` or `rejected` also gives the stock back and records (as
    /// pending) the refund of whatever was charged and not yet refunded.
    async fn transition_order(&self, t: &Transition) -> Result<TransitionOutcome>;
    /// Gives an open, driverless order to `driver_id` and appends
    /// `order.assigned`, in one transaction.
    async fn assign_driver(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        at_ms: i64,
    ) -> Result<AssignOutcome> {
        self.assign_driver_fenced(order_id, driver_id, at_ms, None)
            .await
    }
    /// [`OrderStore::assign_driver`] by a region's leader: with a `fence`,
    /// refused ([`AssignOutcome::Fenced`]) unless its epoch is still the
    /// region's in `lease_epochs`, checked in the same transaction under
    /// a shared lock on the epoch's row (PostgreSQL), so a takeover's
    /// [`OrderStore::bump_lease_epoch`] waits for an assignment already
    /// checked and every later one sees the new epoch. `None`: no check
    /// (one node, no leases). With a fence the driver must hold no other
    /// open order ([`AssignOutcome::DriverBusy`]): leaders of two regions
    /// may offer one driver an order each, and only the database sees both.
    async fn assign_driver_fenced(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        at_ms: i64,
        fence: Option<Fence>,
    ) -> Result<AssignOutcome>;
    /// Raises the epoch of the lease `name` by one (the first is 1) and
    /// records `holder` as its holder: the holder's fencing token.
    async fn bump_lease_epoch(&self, name: &str, holder: &str, at_ms: i64) -> Result<i64>;
    /// The epoch of the lease `name`; `None` when nobody ever took it.
    async fn lease_epoch(&self, name: &str) -> Result<Option<i64>>;
    /// Stacking (`matcher.stacking`): gives an open, driverless order to
    /// `driver_id` as a second order and appends `order.assigned`, in one
    /// transaction, only if the driver holds at most one other open order
    /// and that one is not picked up (from the same restaurant or another
    /// on the way: the matcher's rule, `matcher::stack`, chose); refused
    /// otherwise (the guard is one conditional `UPDATE`, with the driver's
    /// accepts serialised on PostgreSQL by its row lock). With a `fence`,
    /// refused ([`AssignOutcome::Fenced`]) as in
    /// [`OrderStore::assign_driver_fenced`] unless its epoch is current.
    async fn assign_stacked_driver(
        &self,
        order_id: OrderId,
        driver_id: DriverId,
        at_ms: i64,
        fence: Option<Fence>,
    ) -> Result<AssignOutcome>;
    /// In one transaction: cancels the order from whatever open status it
    /// is in (an admin's force-cancel), gives the stock back, records (as
    /// pending) the refund of whatever was charged and not yet refunded,
    /// with the admin's reason, and appends `order.cancelled`. An order
    /// already closed is left as it is, so a retried force-cancel never
    /// refunds twice.
    async fn force_cancel_order(&self, cancel: &ForceCancel) -> Result<ForceCancelOutcome>;
    /// In one transaction: moves the order from driver `from` to driver
    /// `to` (or to none) if it still has `from` and is accepted,
    /// preparing or ready for pickup, and appends `order.reassigned`
    /// (`driver_from` the old driver). A new driver who holds another open
    /// order is refused.
    async fn reassign_driver(&self, r: &Reassignment) -> Result<ReassignOutcome>;
    /// The order's history, oldest first: its status steps and
    /// assignments, read from the order's committed events (sequenced by
    /// the relay or not yet, so a change is in the history as soon as it
    /// is committed).
    async fn order_events(&self, order_id: OrderId) -> Result<Vec<OrderEvent>>;
    /// The latest `limit` orders that were accepted and then became ready
    /// for pickup, latest first: how long each restaurant took (start-up
    /// warms the prep-aware matcher's estimates with them).
    async fn recent_preparations(&self, limit: u32) -> Result<Vec<Preparation>>;
    /// Orders still `paid` (not accepted, rejected or cancelled) that were
    /// paid at or before `paid_before_ms`, longest waiting first, at most
    /// `limit`; without lines (the auto-reject sweep's question).
    async fn orders_awaiting_acceptance(
        &self,
        paid_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<Order>>;
}

/// One order's preparation: accepted → ready for pickup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preparation {
    /// The restaurant that prepared it.
    pub restaurant_id: RestaurantId,
    /// When it accepted the order, Unix ms.
    pub accepted_at_ms: i64,
    /// When the order was ready for pickup, Unix ms.
    pub ready_at_ms: i64,
}

// ---------------------------------------------------------------- payments

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentKind {
    Charge,
    Refund,
}

impl PaymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Refund => "refund",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "charge" => Some(Self::Charge),
            "refund" => Some(Self::Refund),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Written, gateway not (yet) answered.
    Pending,
    Succeeded,
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Payment {
    /// The payment's id; also its idempotency key at the gateway.
    pub id: PaymentId,
    /// The order it is for.
    pub order_id: OrderId,
    /// A charge or a refund.
    pub kind: PaymentKind,
    /// How much.
    pub amount_cents: i64,
    /// Pending until the gateway answered for good.
    pub status: PaymentStatus,
    /// How it is paid (`card`); a refund goes back the same way.
    pub method: String,
    /// The gateway token charged (charges only).
    pub token: Option<String>,
    /// The gateway's reference once it succeeded.
    pub gateway_ref: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Why it was made (refunds).
    pub reason: Option<String>,
    /// Gateway calls made (recorded when the payment is settled, or when
    /// a refund is put off for a background retry).
    pub attempts: i64,
    /// Background retry rounds so far (refunds the gateway could not be
    /// reached for; see `payments::refund`).
    pub retries: i64,
    /// When the next background retry is due; set only while a pending
    /// refund waits for one.
    pub retry_at_ms: Option<i64>,
    /// Who asked for it; `None`: the system (a compensation).
    pub actor_id: Option<UserId>,
    /// When it was written, Unix ms.
    pub created_at_ms: i64,
    /// When it last changed, Unix ms.
    pub updated_at_ms: i64,
}

/// What the gateway finally said about a pending payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    Succeeded { gateway_ref: String },
    Failed { failure: String },
}

// Returned once per call and matched at once, never stored: boxing the
// order would cost an allocation per call to save stack bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum SettleOutcome {
    /// The payment was settled. `order_status` is the order's status now;
    /// `moved` says whether the settlement moved it (`placed → paid` or
    /// `→ payment_failed`). `refund`: what the settlement made owed (a
    /// charge that succeeded for an order cancelled meanwhile), written
    /// pending.
    Settled {
        /// The payment as settled.
        payment: Payment,
        /// The order's status now.
        order_status: OrderStatus,
        /// Whether the settlement moved the order.
        moved: bool,
        /// The refund it made owed, written pending.
        refund: Option<Payment>,
        /// The order aggregate's version after the settlement's event.
        version: i64,
    },
    /// The payment was not pending (settled before): nothing changed.
    NotPending(Option<Payment>),
}

// Returned once per call and matched at once, never stored: boxing the
// payment would cost an allocation per call to save stack bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum RefundOutcome {
    /// Written pending, for the gateway.
    Created(Payment),
    /// More than what was charged and not yet refunded (or being refunded).
    Exceeds {
        /// What can still be refunded.
        refundable_cents: i64,
    },
    UnknownOrder,
}

/// A refund someone asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct RefundRequest {
    /// The refund's id (its idempotency key).
    pub id: PaymentId,
    /// The order to refund.
    pub order_id: OrderId,
    /// How much.
    pub amount_cents: i64,
    /// Why (kept on the refund).
    pub reason: String,
    /// Who asks; `None`: the system.
    pub actor_id: Option<UserId>,
    /// When, Unix ms.
    pub at_ms: i64,
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// The order's charges and refunds, oldest first.
    async fn payments(&self, order_id: OrderId) -> Result<Vec<Payment>>;
    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>>;
    /// Settles a pending charge and, in the same transaction, moves its
    /// order: `placed → paid` on success, `placed → payment_failed` (stock
    /// given back) on failure. If the order left `placed` meanwhile (it was
    /// cancelled), a successful charge is owed back: a pending refund is
    /// written.
    /// `attempts`: the gateway calls it took; `refund_id`: the id of that
    /// refund, if one is owed (made by the caller from the app's clock).
    async fn settle_charge(
        &self,
        id: PaymentId,
        settlement: &Settlement,
        attempts: i64,
        refund_id: PaymentId,
        at_ms: i64,
    ) -> Result<SettleOutcome>;
    /// Records a refund (pending) if the order's succeeded charges minus its
    /// pending and succeeded refunds cover it; serialised per order.
    async fn request_refund(&self, refund: &RefundRequest) -> Result<RefundOutcome>;
    /// Settles a pending refund.
    async fn settle_refund(
        &self,
        id: PaymentId,
        settlement: &Settlement,
        attempts: i64,
        at_ms: i64,
    ) -> Result<Option<Payment>>;
    /// Puts a pending refund off for a background retry: it stays pending
    /// (its amount still owed), `failure` says why, `attempts` more calls
    /// are recorded, `retries` goes up by one and the next round is due at
    /// `retry_at_ms`; only if it has made exactly `retries` background
    /// rounds so far, so that of two rounds racing for the same refund
    /// (two apps after an in-process restart) one defers it and starts the
    /// next timer. The refund as it is now, `None` if it was not pending or
    /// another round deferred it first.
    async fn defer_refund(
        &self,
        id: PaymentId,
        retries: i64,
        failure: &str,
        attempts: i64,
        retry_at_ms: i64,
        at_ms: i64,
    ) -> Result<Option<Payment>>;
    /// Payments still pending (crash recovery at start-up), by id (so
    /// oldest first), strictly after `after`, at most `limit`.
    async fn pending_payments(&self, after: Option<PaymentId>, limit: u32) -> Result<Vec<Payment>>;
}

// ------------------------------------------------------- simulated gateway

/// What the simulated gateway answered to a charge key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeAnswer {
    /// The money moved; the gateway's reference for the charge.
    Charged {
        /// The gateway's reference for the charge.
        reference: String,
    },
    /// A final no, and why.
    Declined { reason: String },
}

/// One charge key in the simulated gateway's ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerCharge {
    /// The idempotency key the charge was asked with.
    pub key: PaymentId,
    /// The final answer given to that key (repeated to every retry).
    pub answer: ChargeAnswer,
    /// The amount asked for, in cents (charged if the answer is
    /// `Charged`).
    pub amount_cents: i64,
    /// The test token charged (it also decides how refunds of it behave).
    pub token: String,
    /// Refunded so far; never more than `amount_cents`.
    pub refunded_cents: i64,
    /// When the gateway first answered the key, Unix ms.
    pub created_at_ms: i64,
}

/// What the simulated gateway answered to a refund key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundVerdict {
    /// The money went back.
    Refunded,
    /// No charge went through with that reference.
    UnknownCharge,
    /// More than what is left of the charge.
    ExceedsCharge,
}

impl RefundVerdict {
    /// The verdict as stored in the ledger's table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refunded => "refunded",
            Self::UnknownCharge => "unknown_charge",
            Self::ExceedsCharge => "exceeds_charge",
        }
    }

    /// The verdict stored as `s` ([`RefundVerdict::as_str`]); `None` for
    /// anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refunded" => Some(Self::Refunded),
            "unknown_charge" => Some(Self::UnknownCharge),
            "exceeds_charge" => Some(Self::ExceedsCharge),
            _ => None,
        }
    }
}

/// The money the simulated gateway moved, for tests: proof that nothing
/// was charged or refunded twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    /// Charges that went through.
    pub charges: u64,
    /// Their amounts added up, in cents.
    pub charged_cents: i64,
    /// Refunds that went through.
    pub refunds: u64,
    /// Their amounts added up, in cents.
    pub refunded_cents: i64,
}

/// The simulated gateway's durable ledger: its own tables, which the rest
/// of the api never reads (a real gateway keeps this on its side). Keyed by
/// the idempotency keys the saga sends, so a repeated call gets the answer
/// the first one got, across restarts.
#[async_trait]
pub trait GatewayLedger: Send + Sync {
    /// The charge recorded under `key`.
    async fn ledger_charge(&self, key: PaymentId) -> Result<Option<LedgerCharge>>;
    /// The charge that went through as `reference`.
    async fn ledger_charge_by_reference(&self, reference: &str) -> Result<Option<LedgerCharge>>;
    /// The verdict recorded for the refund key `key`.
    async fn ledger_refund(&self, key: PaymentId) -> Result<Option<RefundVerdict>>;
    /// Records `charge` unless its key has an answer already; the charge
    /// as recorded (the first answer wins, whatever races).
    async fn record_charge(&self, charge: &LedgerCharge) -> Result<LedgerCharge>;
    /// In one transaction: the verdict recorded for `key` if there is one;
    /// else refunds `amount_cents` of the charge `reference` if what is
    /// left of it covers them, and records the verdict.
    async fn record_refund(
        &self,
        key: PaymentId,
        reference: &str,
        amount_cents: i64,
        at_ms: i64,
    ) -> Result<RefundVerdict>;
    /// Everything that went through so far (charges and refunds, counted
    /// and summed).
    async fn ledger_totals(&self) -> Result<LedgerTotals>;
}

// ----------------------------------------------------------------- reviews

/// A customer's review of a delivered order: the restaurant's rating and,
/// optionally, the driver's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// The review's id.
    pub id: ReviewId,
    /// The order reviewed (one review per order).
    pub order_id: OrderId,
    /// Who wrote it: the order's customer.
    pub customer_id: UserId,
    /// The restaurant rated.
    pub restaurant_id: RestaurantId,
    /// The driver who delivered the order.
    pub driver_id: Option<DriverId>,
    /// The restaurant's rating, 1 to 5.
    pub restaurant_stars: i64,
    /// What the customer says of the restaurant.
    pub restaurant_text: Option<String>,
    /// The driver's rating, 1 to 5; `None`: not rated.
    pub driver_stars: Option<i64>,
    /// What the customer says of the driver.
    pub driver_text: Option<String>,
    /// When an admin hid it; `None` while it counts.
    pub hidden_at_ms: Option<i64>,
    /// Why it was hidden.
    pub hidden_reason: Option<String>,
    /// The admin who hid it.
    pub hidden_by: Option<UserId>,
    /// When it was written, Unix ms.
    pub created_at_ms: i64,
    /// When it was last edited (or hidden), Unix ms.
    pub updated_at_ms: i64,
}

/// A review's id (a UUID).
pub type ReviewId = uuid::Uuid;

/// Stars added up and counted over the reviews that count (not hidden):
/// averages from these are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RatingTotals {
    /// Stars added up.
    pub stars: i64,
    /// Reviews counted.
    pub count: i64,
}

/// Which of a restaurant's or driver's reviews a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewsOf {
    /// A restaurant's.
    Restaurant(RestaurantId),
    /// A driver's (those that rate the driver).
    Driver(DriverId),
}

/// Reviews, one per delivered order. Every write appends its event to the
/// order's stream (`review.created`, `review.updated`, `review.hidden`,
/// `review.unhidden`) in its transaction.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Stores a new review; `Duplicate` if the order has one.
    async fn insert_review(&self, review: &Review) -> Result<Inserted>;
    /// Writes the ratings and texts of `review` (as edited). Whether it
    /// exists.
    async fn update_review(&self, review: &Review) -> Result<bool>;
    /// The order's review.
    async fn review_of_order(&self, order_id: OrderId) -> Result<Option<Review>>;
    /// A review by id.
    async fn review(&self, id: ReviewId) -> Result<Option<Review>>;
    /// Hides (`Some(reason)`) or shows again (`None`) the review for
    /// `admin` (the event's actor), if that changes anything (hiding a
    /// hidden review keeps its first reason). The review as it is now;
    /// `None` if unknown.
    async fn set_review_hidden(
        &self,
        id: ReviewId,
        hidden: Option<&str>,
        admin: UserId,
        at_ms: i64,
    ) -> Result<Option<Review>>;
    /// Reviews of `of`, newest first, strictly after `after`, at most
    /// `limit`; hidden ones only with `include_hidden`.
    async fn list_reviews(
        &self,
        of: ReviewsOf,
        include_hidden: bool,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<Review>>;
    /// The stars and count of the visible reviews of `of`.
    async fn rating(&self, of: ReviewsOf) -> Result<RatingTotals>;
    /// Every rated restaurant's totals over its visible reviews (what the
    /// search catalog loads at start-up; one row per restaurant with a
    /// visible review).
    async fn restaurant_ratings(&self) -> Result<Vec<(RestaurantId, RatingTotals)>>;
}

// ------------------------------------------------------------ notifications

/// A notification to store for one recipient (`commerce::notify` makes
/// them from an event).
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    /// Who it is for.
    pub user_id: UserId,
    /// The event it tells of (the stream's global id); one notification per
    /// recipient and event.
    pub event_id: i64,
    /// The event's type name (`order.accepted`).
    pub event_type: String,
    /// The order it is about, if any.
    pub order_id: Option<OrderId>,
    /// That order's restaurant.
    pub restaurant_id: Option<RestaurantId>,
    /// The order's status after the event, if the event tells it.
    pub status: Option<OrderStatus>,
    /// The sentence shown, rendered for the recipient.
    pub text: String,
    /// When the event happened, Unix ms.
    pub at_ms: i64,
    /// When it is stored, Unix ms.
    pub created_at_ms: i64,
}

/// A stored notification: [`NewNotification`] with the recipient's own id.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Per recipient 1, 2, 3 … in the order stored: the resync cursor.
    pub seq: i64,
    /// What was stored.
    pub new: NewNotification,
    /// When the recipient marked it read; `None` while unread.
    pub read_at_ms: Option<i64>,
}

/// A user's unread count and their newest notification's id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnreadCount {
    /// Notifications not marked read.
    pub unread: i64,
    /// The newest notification's id; 0 with none.
    pub last_id: i64,
}

/// The notification feed.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Stores each notification whose (recipient, event) is not stored yet,
    /// in one transaction, each with its recipient's next id; the newly
    /// stored ones, in input order (a redelivered event stores nothing).
    async fn insert_notifications(&self, new: &[NewNotification]) -> Result<Vec<Notification>>;
    /// `user`'s notifications with ids above `after`, oldest first, at
    /// most `limit`.
    async fn notifications_after(
        &self,
        user: UserId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>>;
    /// `user`'s unread count and newest id.
    async fn unread_notifications(&self, user: UserId) -> Result<UnreadCount>;
    /// Marks `user`'s notification `seq` read (keeping the first time);
    /// the notification as stored now, `None` when `user` has none with
    /// that id.
    async fn mark_notification_read(
        &self,
        user: UserId,
        seq: i64,
        now_ms: i64,
    ) -> Result<Option<Notification>>;
    /// Marks `user`'s unread notifications with ids up to `up_to` (all
    /// with `None`) read; how many it marked.
    async fn mark_all_notifications_read(
        &self,
        user: UserId,
        up_to: Option<i64>,
        now_ms: i64,
    ) -> Result<u64>;
    /// Who was told already, by an event other than `except_event`, that
    /// nobody takes `order_id` (`order.dispatch_stalled`, told once per
    /// order whatever repeats it; the event being handled is left out, so
    /// the outside channels, which run after the feed has stored it, still
    /// send it).
    async fn notified_of_stall(&self, order_id: OrderId, except_event: i64) -> Result<Vec<UserId>>;
    /// Every admin's id (the recipients of admin-relevant events).
    async fn admin_ids(&self) -> Result<Vec<UserId>>;
}

// ---------------------------------------------------------------- channels

/// Where and how to reach a user on the outside channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The user.
    pub user_id: UserId,
    /// The name to greet them by.
    pub name: String,
    /// The account's email address.
    pub email: String,
    /// The profile's phone number, if any (SMS needs one).
    pub phone: Option<String>,
    /// Their language, if chosen.
    pub language: Option<Language>,
}

/// One try (or a skip) of a message on a channel, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendAttempt {
    /// The recipient.
    pub user_id: UserId,
    /// The event the message is about (with the recipient, the
    /// notification's identity).
    pub event_id: i64,
    /// The channel.
    pub channel: Channel,
    /// The event's type: which template.
    pub event_type: String,
    /// The recipient's part in the event (`customer`, `restaurant` …): the
    /// template's other half.
    pub party: String,
    /// The order it is about, if any.
    pub order_id: Option<OrderId>,
    /// The language it was written in.
    pub language: Language,
    /// The address; `None` when the user has none on the channel.
    pub to: Option<String>,
    /// Email subject or push title.
    pub subject: Option<String>,
    /// The rendered text.
    pub body: String,
    /// How the try ended (`Skipped`: not tried).
    pub status: SendStatus,
    /// The provider's refusal, when it failed.
    pub error: Option<String>,
    /// The provider's id of the message, when sent.
    pub provider_id: Option<String>,
    /// When, Unix ms.
    pub at_ms: i64,
}

/// A message as the log of sends has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSend {
    /// The log's id: rises with each new (recipient, event, channel).
    pub id: i64,
    /// The latest try; `at_ms` is the latest try's time.
    pub last: SendAttempt,
    /// Tries so far (0 for a skip).
    pub attempts: i64,
    /// When the first try (or the skip) was recorded, Unix ms.
    pub created_at_ms: i64,
    /// When the provider took it, Unix ms.
    pub sent_at_ms: Option<i64>,
}

/// Which sends an admin lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendFilter {
    /// Only this recipient's.
    pub user_id: Option<UserId>,
    /// Only on this channel.
    pub channel: Option<Channel>,
    /// Only in this status.
    pub status: Option<SendStatus>,
}

/// Users' contacts and notification preferences, and the log of sends.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// The contacts of those of `users` who exist, in no order.
    async fn contacts(&self, users: &[UserId]) -> Result<Vec<Contact>>;
    /// `user`'s stored preference settings (what differs from the
    /// defaults).
    async fn preference_settings(&self, user: UserId) -> Result<Vec<Setting>>;
    /// The stored preference settings of each of `users` who has any
    /// (one query for a batch of sends).
    async fn preference_settings_of(
        &self,
        users: &[UserId],
    ) -> Result<HashMap<UserId, Vec<Setting>>>;
    /// Replaces `user`'s preference settings, in one transaction.
    async fn replace_preference_settings(
        &self,
        user: UserId,
        settings: &[Setting],
        now_ms: i64,
    ) -> Result<()>;
    /// The log's rows on `channel` of any of `users` about any of
    /// `event_ids` (a superset of the pairs a batch asks about: the
    /// caller picks its pairs), in no order.
    async fn channel_sends(
        &self,
        channel: Channel,
        users: &[UserId],
        event_ids: &[i64],
    ) -> Result<Vec<ChannelSend>>;
    /// Records each try (adding one to its row's attempts) or skip,
    /// creating the row on the first, all in one transaction.
    async fn record_sends(&self, attempts: &[SendAttempt]) -> Result<()>;
    /// Sends matching `filter`, newest first (by id), with ids below
    /// `before`, at most `limit`.
    async fn list_sends(
        &self,
        filter: &SendFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChannelSend>>;
}

// ------------------------------------------------------------------ routes

/// One point of a delivered order's route.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoutePoint {
    /// Where.
    pub position: LatLng,
    /// When, Unix ms: the step's time for the pickup and the dropoff, the
    /// device's time of the fix for a breadcrumb.
    pub at_ms: i64,
}

/// A delivered order's route, kept with it: pickup, the courier's
/// breadcrumbs between pickup and delivery, dropoff.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRoute {
    /// The order.
    pub order_id: OrderId,
    /// The courier who delivered it.
    pub driver_id: Option<DriverId>,
    /// When it was picked up, Unix ms.
    pub picked_up_at_ms: i64,
    /// When it was delivered, Unix ms.
    pub delivered_at_ms: i64,
    /// How many of [`OrderRoute::points`] are breadcrumbs (the others are
    /// the pickup and the dropoff), so a reader can tell a recorded path
    /// from a straight line.
    pub breadcrumbs: u32,
    /// Pickup, breadcrumbs, dropoff, in time order.
    pub points: Vec<RoutePoint>,
    /// When it was recorded, Unix ms.
    pub created_at_ms: i64,
}

/// Delivered orders' routes.
#[async_trait]
pub trait RouteStore: Send + Sync {
    /// Keeps `route` with its order unless one is kept already (a
    /// redelivered `order.delivered`); whether it was stored now.
    async fn insert_order_route(&self, route: &OrderRoute) -> Result<bool>;
    /// The order's route, if one is kept.
    async fn order_route(&self, order_id: OrderId) -> Result<Option<OrderRoute>>;
}

// ------------------------------------------------------------------- store

/// Everything the api stores.
#[async_trait]
pub trait Store:
    AccountStore
    + RestaurantStore
    + CartStore
    + OrderStore
    + PaymentStore
    + GatewayLedger
    + ReviewStore
    + NotificationStore
    + ChannelStore
    + RouteStore
    + ReportStore
    + Send
    + Sync
{
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<()>;
    /// Which database this is.
    fn backend(&self) -> Backend;
    /// The event stream over the same pool: with the store's SQLite write
    /// gate, PostgreSQL's url for LISTEN, and the same [`events::Wake`]
    /// the store notifies after every commit that appended. Cheap to
    /// clone; every call shares one wake-up.
    fn event_log(&self) -> events::EventLog;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_are_walked_to_the_end() {
        let rows: Vec<u32> = (1..=7).collect();
        let mut seen = Vec::new();
        let mut asked = Vec::new();
        let count = for_each_page(
            3,
            |after: Option<u32>, limit| {
                asked.push(after);
                let page: Vec<u32> = rows
                    .iter()
                    .copied()
                    .filter(|&r| after.is_none_or(|a| r > a))
                    .take(limit as usize)
                    .collect();
                async move { Ok(page) }
            },
            |&r| r,
            |page| seen.extend(page),
        )
        .await
        .unwrap();
        assert_eq!(count, 7);
        assert_eq!(seen, rows);
        assert_eq!(asked, [None, Some(3), Some(6)]);
        // A last page that is exactly full costs one more (empty) call.
        let mut calls = 0;
        let count = for_each_page(
            2,
            |after: Option<u32>, _| {
                calls += 1;
                let page = if after.is_none() { vec![1, 2] } else { vec![] };
                async move { Ok(page) }
            },
            |&r| r,
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!((count, calls), (2, 2));
    }
}
