//! The search catalog as the api keeps it: the `catalog` crate's in-memory
//! index of restaurants and dishes, loaded from the store at start-up
//! ([`load`]) and updated after every committed write to a restaurant or a
//! menu item (the use-cases call it as their `commerce::ports::CatalogSide`);
//! restaurants' ratings follow the `review.*` events (`consumers::catalog`).
//!
//! Searches never touch the database. On one node the catalog is exact
//! after each write returns; with several nodes, each sees only its own
//! writes until it restarts (the scale-out work carries changes between
//! nodes over Redis). Stock counts are not in the catalog: a sold-out dish
//! can still be found; ordering it answers `out_of_stock`.

use std::sync::Arc;

use catalog::{Catalog, DishEntry, Rating, RestaurantEntry, WeeklyHours};
use commerce::ports::CatalogSide;
use engine::RestaurantId;
use parking_lot::RwLock;

use crate::AppState;
use crate::store::{self, MenuItem, RatingTotals, Restaurant, StoreError};

/// Rows read per page while loading.
const LOAD_PAGE: u32 = 1_000;

/// The catalog shared by every handler: searches under the read lock.
#[derive(Clone, Default)]
pub struct SharedCatalog(Arc<RwLock<Catalog>>);

impl SharedCatalog {
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, Catalog> {
        self.0.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, Catalog> {
        self.0.write()
    }
}

/// The restaurant's opening hours, parsed; `None` (always open) also for
/// stored hours that no longer parse (logged: the api validated them on
/// the way in, so only a tz database change could cause it).
pub fn hours_of(restaurant: &Restaurant) -> Option<WeeklyHours> {
    restaurant.hours()
}

fn restaurant_entry(r: &Restaurant) -> RestaurantEntry {
    RestaurantEntry {
        id: r.id,
        name: r.name.clone(),
        location: r.location,
        cuisines: r.cuisines.clone(),
        hours: hours_of(r),
        delivery_radius_m: r.delivery_radius_m,
        accepting_orders: r.accepting_orders,
    }
}

fn dish_entry(item: &MenuItem) -> DishEntry {
    DishEntry {
        id: item.id.as_uuid(),
        restaurant_id: item.restaurant_id,
        name: item.name.clone(),
        category: item.category.clone(),
        price_cents: item.price_cents,
        available: item.available,
    }
}

/// The use-cases tell the catalog of every committed write to a
/// restaurant or a menu item.
/// What the live side keeps of restaurants, as the use-cases tell it after
/// each commit: the search catalog's entries and the matcher's declared
/// preparation times (its estimate until a restaurant has history).
pub struct RestaurantSide<'a> {
    /// The search catalog.
    pub catalog: &'a SharedCatalog,
    /// The matcher.
    pub matcher: &'a matcher::Matcher,
}

impl CatalogSide for RestaurantSide<'_> {
    fn restaurant_changed(&self, restaurant: &Restaurant) {
        self.catalog.restaurant_changed(restaurant);
        self.matcher
            .declare_prep(restaurant.id, restaurant.prep_time_s);
    }

    fn item_changed(&self, item: &MenuItem) {
        self.catalog.item_changed(item);
    }
}

impl CatalogSide for SharedCatalog {
    fn restaurant_changed(&self, restaurant: &Restaurant) {
        self.write().upsert_restaurant(restaurant_entry(restaurant));
    }

    fn item_changed(&self, item: &MenuItem) {
        if !self.write().upsert_dish(dish_entry(item)) {
            tracing::warn!(menu_item_id = %item.id, "menu item of a restaurant the catalog does not hold");
        }
    }
}

/// A restaurant and its whole menu as stored, into `catalog` (the event
/// stream's catalog consumer).
pub fn reload(catalog: &SharedCatalog, restaurant: &Restaurant, menu: &[MenuItem]) {
    let mut catalog = catalog.write();
    catalog.upsert_restaurant(restaurant_entry(restaurant));
    for item in menu {
        catalog.upsert_dish(dish_entry(item));
    }
}

/// A restaurant's rating (its visible reviews' totals) into `catalog`.
pub fn set_rating(catalog: &SharedCatalog, id: RestaurantId, totals: RatingTotals) {
    catalog.write().set_rating(id, rating(totals));
}

/// The store's totals as the catalog keeps them (negative counts cannot
/// come from SQL sums of 1..5 stars; they read as none).
fn rating(totals: RatingTotals) -> Rating {
    Rating {
        stars: u64::try_from(totals.stars).unwrap_or(0),
        count: u64::try_from(totals.count).unwrap_or(0),
    }
}

/// Loads every restaurant, menu item and rating from the store. Call once
/// at start-up, before serving.
pub async fn load(state: &AppState) -> Result<(), StoreError> {
    let restaurants = store::for_each_page(
        LOAD_PAGE,
        |after, limit| state.store.restaurants_page(after, limit),
        |r| r.id,
        |page| {
            let mut catalog = state.catalog.write();
            for r in &page {
                catalog.upsert_restaurant(restaurant_entry(r));
                // The matcher's prep estimate before the restaurant has
                // history (kept current by `consumers::catalog`).
                state.matcher.declare_prep(r.id, r.prep_time_s);
            }
        },
    )
    .await?;
    let dishes = store::for_each_page(
        LOAD_PAGE,
        |after, limit| state.store.menu_items_page(after, limit),
        |item| item.id,
        |page| {
            let mut catalog = state.catalog.write();
            for item in &page {
                catalog.upsert_dish(dish_entry(item));
            }
        },
    )
    .await?;
    let ratings = state.store.restaurant_ratings().await?;
    {
        let mut catalog = state.catalog.write();
        for (id, totals) in &ratings {
            catalog.set_rating(*id, rating(*totals));
        }
    }
    let rated = ratings.len();
    tracing::info!(restaurants, dishes, rated, "search catalog loaded");
    Ok(())
}
