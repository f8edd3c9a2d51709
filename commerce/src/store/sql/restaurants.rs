//! Restaurants and their menus. Every write appends `restaurant.updated`
//! or `menu.updated` to the restaurant's stream in its transaction; the
//! actor is the user who made the change (the owner or an admin), as the
//! caller names it.

use async_trait::async_trait;
use engine::{MenuItemId, RestaurantId, UserId};

use super::SqlStore;
use super::rows::{self, flag, select_menu_item, select_restaurant};
use super::tx::{Tx, append};
use crate::event::{self, MenuChanged, RestaurantChanged};
use crate::store::{
    MenuItem, PageAfter, Restaurant, RestaurantFilter, RestaurantStore, Result, StoreError,
};

impl SqlStore {
    /// Appends `restaurant.updated` for `r` by `actor` in `tx`.
    async fn restaurant_changed(
        &self,
        tx: &mut Tx,
        r: &Restaurant,
        created: bool,
        actor: UserId,
    ) -> Result<()> {
        let e = event::new_event(
            events::EventType::RestaurantUpdated,
            r.id,
            events::Actor::User(actor.as_uuid()),
            r.updated_at_ms,
            &RestaurantChanged {
                restaurant_id: r.id,
                owner_id: r.owner_id,
                name: r.name.clone(),
                accepting_orders: r.accepting_orders,
                created,
                at_ms: r.updated_at_ms,
            },
        )?;
        append(tx, &e).await?;
        Ok(())
    }

    /// Appends `menu.updated` for `items` (all of `restaurant_id`) by
    /// `actor` in `tx`.
    async fn menu_changed(
        &self,
        tx: &mut Tx,
        restaurant_id: RestaurantId,
        items: &[&MenuItem],
        added: bool,
        actor: UserId,
    ) -> Result<()> {
        let at_ms = items.iter().map(|i| i.updated_at_ms).max().unwrap_or(0);
        let e = event::new_event(
            events::EventType::MenuUpdated,
            restaurant_id,
            events::Actor::User(actor.as_uuid()),
            at_ms,
            &MenuChanged {
                restaurant_id,
                menu_item_ids: items.iter().map(|i| i.id).collect(),
                added,
                at_ms,
            },
        )?;
        append(tx, &e).await?;
        Ok(())
    }
}

fn cuisines_json(r: &Restaurant) -> Result<String> {
    serde_json::to_string(&r.cuisines).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl RestaurantStore for SqlStore {
    async fn list_restaurants(
        &self,
        filter: &RestaurantFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<Restaurant>> {
        super::listings::restaurants(self, filter, after, limit).await
    }

    async fn insert_restaurant(&self, r: &Restaurant, actor_id: UserId) -> Result<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO restaurants (id, owner_id, name, lat, lng, address, cuisines_json, hours_json, \
             delivery_radius_m, prep_time_s, accepting_orders, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(r.id.to_string())
        .bind(r.owner_id.to_string())
        .bind(&r.name)
        .bind(r.location.lat)
        .bind(r.location.lng)
        .bind(&r.address)
        .bind(cuisines_json(r)?)
        .bind(r.hours_json.as_deref())
        .bind(i64::from(r.delivery_radius_m))
        .bind(i64::from(r.prep_time_s))
        .bind(flag(r.accepting_orders))
        .bind(r.created_at_ms)
        .bind(r.updated_at_ms)
        .execute(&mut *tx)
        .await?;
        self.restaurant_changed(&mut tx, r, true, actor_id).await?;
        tx.commit().await?;
        self.committed();
        Ok(())
    }

    async fn restaurant(&self, id: RestaurantId) -> Result<Option<Restaurant>> {
        let row = sqlx::query(concat!(select_restaurant!(), "WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::restaurant).transpose()
    }

    async fn update_restaurant(&self, r: &Restaurant, actor_id: UserId) -> Result<bool> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE restaurants SET name = $1, lat = $2, lng = $3, address = $4, cuisines_json = $5, \
             hours_json = $6, delivery_radius_m = $7, prep_time_s = $8, accepting_orders = $9, \
             updated_at_ms = $10 WHERE id = $11",
        )
        .bind(&r.name)
        .bind(r.location.lat)
        .bind(r.location.lng)
        .bind(&r.address)
        .bind(cuisines_json(r)?)
        .bind(r.hours_json.as_deref())
        .bind(i64::from(r.delivery_radius_m))
        .bind(i64::from(r.prep_time_s))
        .bind(flag(r.accepting_orders))
        .bind(r.updated_at_ms)
        .bind(r.id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        // The owner as stored (the caller's record may not name it right).
        let stored = sqlx::query(concat!(select_restaurant!(), "WHERE id = $1"))
            .bind(r.id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        self.restaurant_changed(&mut tx, &rows::restaurant(&stored)?, false, actor_id)
            .await?;
        tx.commit().await?;
        self.committed();
        Ok(true)
    }

    async fn restaurants_page(
        &self,
        after: Option<RestaurantId>,
        limit: u32,
    ) -> Result<Vec<Restaurant>> {
        let rows = sqlx::query(concat!(
            select_restaurant!(),
            "WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.map(|id| id.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::restaurant).collect()
    }

    async fn insert_menu_items(&self, items: &[MenuItem], actor_id: UserId) -> Result<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        for item in items {
            sqlx::query(
                "INSERT INTO menu_items (id, restaurant_id, category, name, description, price_cents, \
                 available, stock, position, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(item.id.to_string())
            .bind(item.restaurant_id.to_string())
            .bind(&item.category)
            .bind(&item.name)
            .bind(&item.description)
            .bind(item.price_cents)
            .bind(flag(item.available))
            .bind(item.stock)
            .bind(item.position)
            .bind(item.created_at_ms)
            .bind(item.updated_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        // One event per restaurant the items are on (the api adds one
        // restaurant's items at a time), in id order (the lock order).
        let mut by_restaurant: Vec<&MenuItem> = items.iter().collect();
        by_restaurant.sort_by_key(|i| i.restaurant_id);
        for group in by_restaurant.chunk_by(|a, b| a.restaurant_id == b.restaurant_id) {
            self.menu_changed(&mut tx, group[0].restaurant_id, group, true, actor_id)
                .await?;
        }
        tx.commit().await?;
        if !items.is_empty() {
            self.committed();
        }
        Ok(())
    }

    async fn menu_item(&self, id: MenuItemId) -> Result<Option<MenuItem>> {
        let row = sqlx::query(concat!(select_menu_item!(), "WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::menu_item).transpose()
    }

    async fn menu(&self, restaurant_id: RestaurantId) -> Result<Vec<MenuItem>> {
        let rows = sqlx::query(concat!(
            select_menu_item!(),
            "WHERE restaurant_id = $1 ORDER BY position, id"
        ))
        .bind(restaurant_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::menu_item).collect()
    }

    async fn update_menu_item(&self, item: &MenuItem, actor_id: UserId) -> Result<bool> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE menu_items SET category = $1, name = $2, description = $3, price_cents = $4, \
             available = $5, stock = $6, position = $7, updated_at_ms = $8 WHERE id = $9",
        )
        .bind(&item.category)
        .bind(&item.name)
        .bind(&item.description)
        .bind(item.price_cents)
        .bind(flag(item.available))
        .bind(item.stock)
        .bind(item.position)
        .bind(item.updated_at_ms)
        .bind(item.id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        // The restaurant as stored: the item's row says whose menu it is on.
        let stored = sqlx::query(concat!(select_menu_item!(), "WHERE id = $1"))
            .bind(item.id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let stored = rows::menu_item(&stored)?;
        self.menu_changed(&mut tx, stored.restaurant_id, &[&stored], false, actor_id)
            .await?;
        tx.commit().await?;
        self.committed();
        Ok(true)
    }

    async fn menu_items_page(
        &self,
        after: Option<MenuItemId>,
        limit: u32,
    ) -> Result<Vec<MenuItem>> {
        let rows = sqlx::query(concat!(
            select_menu_item!(),
            "WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.map(|id| id.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::menu_item).collect()
    }
}
