//! An admin's listings of users, restaurants, drivers and orders: filters
//! and keyset pages, newest first (by creation time, then id), so a page
//! boundary never skips or repeats a row while rows are added.
//!
//! Drivers are driver accounts joined with the engine's live state (status,
//! position, current order). Their status is not in the database, so a
//! status filter is applied while walking the accounts, at most
//! [`MAX_DRIVERS_SCANNED`] per request: a page may then hold fewer drivers
//! than asked for while a cursor says more may follow.

use engine::{DriverStatus, DriverView};

use crate::Result;
use crate::ports::Fleet;
use crate::store::{
    AccountStore, Order, OrderFilter, OrderStore, PageAfter, Restaurant, RestaurantFilter,
    RestaurantStore, User, UserFilter,
};

/// Most driver accounts one listing request reads to fill a page with a
/// status filter (bounds its cost when few drivers have the status).
pub const MAX_DRIVERS_SCANNED: usize = 2_000;
/// Driver accounts read per query while filling a page.
const DRIVER_CHUNK: u32 = 200;

/// One page of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The rows, newest first.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageAfter>,
}

/// A driver as an admin listing shows it: its account and its live state.
#[derive(Clone, Debug, PartialEq)]
pub struct DriverRow {
    /// The driver's account.
    pub user: User,
    /// The engine's view (position, status, current order); `None` if the
    /// engine has not heard from it since the server started.
    pub live: Option<DriverView>,
}

impl DriverRow {
    /// The live status (`offline` when the engine does not know it).
    pub fn status(&self) -> DriverStatus {
        self.live.map_or(DriverStatus::Offline, |v| v.status)
    }
}

/// Which drivers a listing shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverFilter {
    /// Only drivers with this live status.
    pub status: Option<DriverStatus>,
    /// Only banned (`true`) or not banned (`false`) drivers.
    pub banned: Option<bool>,
    /// Only drivers whose name or email contains this text.
    pub text: Option<String>,
}

fn user_key(u: &User) -> PageAfter {
    PageAfter {
        created_at_ms: u.created_at_ms,
        id: u.id.to_string(),
    }
}

/// `rows` fetched with one more than `limit`: the page and where the next
/// one starts.
fn page_of<T>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> PageAfter) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(key) } else { None };
    Page { items: rows, next }
}

/// Users matching `filter`.
pub async fn users(
    store: &(impl AccountStore + ?Sized),
    filter: &UserFilter,
    after: Option<&PageAfter>,
    limit: u32,
) -> Result<Page<User>> {
    let rows = store
        .list_users(filter, after, limit.saturating_add(1))
        .await?;
    Ok(page_of(rows, limit, user_key))
}

/// Restaurants matching `filter`.
pub async fn restaurants(
    store: &(impl RestaurantStore + ?Sized),
    filter: &RestaurantFilter,
    after: Option<&PageAfter>,
    limit: u32,
) -> Result<Page<Restaurant>> {
    let rows = store
        .list_restaurants(filter, after, limit.saturating_add(1))
        .await?;
    Ok(page_of(rows, limit, |r| PageAfter {
        created_at_ms: r.created_at_ms,
        id: r.id.to_string(),
    }))
}

/// Orders matching `filter`.
pub async fn orders(
    store: &(impl OrderStore + ?Sized),
    filter: &OrderFilter,
    after: Option<&PageAfter>,
    limit: u32,
) -> Result<Page<Order>> {
    let rows = store
        .search_orders(filter, after, limit.saturating_add(1))
        .await?;
    Ok(page_of(rows, limit, |o| PageAfter {
        created_at_ms: o.created_at_ms,
        id: o.id.to_string(),
    }))
}

/// Drivers matching `filter`, their accounts with their live state (see
/// the module docs for the status filter's bound).
pub async fn drivers(
    store: &(impl AccountStore + ?Sized),
    fleet: &dyn Fleet,
    filter: &DriverFilter,
    after: Option<&PageAfter>,
    limit: u32,
) -> Result<Page<DriverRow>> {
    let accounts = UserFilter {
        role: Some(auth::Role::Driver),
        banned: filter.banned,
        text: filter.text.clone(),
    };
    let limit = limit as usize;
    let mut items: Vec<DriverRow> = Vec::with_capacity(limit);
    let mut cursor = after.cloned();
    let mut scanned = 0;
    loop {
        let chunk = store
            .list_users(&accounts, cursor.as_ref(), DRIVER_CHUNK)
            .await?;
        let last_chunk = chunk.len() < DRIVER_CHUNK as usize;
        for user in chunk {
            scanned += 1;
            let key = user_key(&user);
            let row = DriverRow {
                live: fleet.driver(user.id.into()),
                user,
            };
            if filter.status.is_none_or(|s| s == row.status()) {
                if items.len() == limit {
                    // One more matches: the page is full and another follows.
                    let next = items.last().map(|r| user_key(&r.user));
                    return Ok(Page { items, next });
                }
                items.push(row);
            }
            cursor = Some(key);
        }
        if last_chunk {
            return Ok(Page { items, next: None });
        }
        if scanned >= MAX_DRIVERS_SCANNED {
            // Bounded: the next page goes on from the last account read.
            return Ok(Page {
                items,
                next: cursor,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_knows_whether_another_follows() {
        let key = |&n: &i64| PageAfter {
            created_at_ms: n,
            id: n.to_string(),
        };
        let page = page_of(vec![5, 4, 3], 2, key);
        assert_eq!(page.items, [5, 4]);
        assert_eq!(page.next.map(|k| k.created_at_ms), Some(4));
        let page = page_of(vec![5, 4], 2, key);
        assert_eq!((page.items.len(), page.next), (2, None));
        let page = page_of(Vec::<i64>::new(), 2, key);
        assert_eq!((page.items.len(), page.next), (0, None));
    }
}
