//! Restaurants and their menus.

use async_trait::async_trait;
use engine::{MenuItemId, RestaurantId};

use super::SqlStore;
use super::rows::{self, flag, select_menu_item, select_restaurant};
use crate::store::{MenuItem, Restaurant, RestaurantStore, Result, StoreError};

fn cuisines_json(r: &Restaurant) -> Result<String> {
    serde_json::to_string(&r.cuisines).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl RestaurantStore for SqlStore {
    async fn insert_restaurant(&self, r: &Restaurant) -> Result<()> {
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn restaurant(&self, id: RestaurantId) -> Result<Option<Restaurant>> {
        let row = sqlx::query(concat!(select_restaurant!(), "WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::restaurant).transpose()
    }

    async fn update_restaurant(&self, r: &Restaurant) -> Result<bool> {
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
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
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

    async fn insert_menu_items(&self, items: &[MenuItem]) -> Result<()> {
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
        tx.commit().await?;
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

    async fn update_menu_item(&self, item: &MenuItem) -> Result<bool> {
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
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
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
