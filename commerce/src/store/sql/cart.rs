//! The server-side cart: one per customer, lines of one restaurant.

use async_trait::async_trait;
use engine::{RestaurantId, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::SqlStore;
use super::rows::{self, parse_col};
use crate::store::{Cart, CartChange, CartLine, CartOutcome, CartStore, Result};

/// The cart's lines with their menu items, oldest line first.
const SELECT_LINES: &str = "SELECT m.id, m.restaurant_id, m.category, m.name, m.description, \
     m.price_cents, m.available, m.stock, m.position, m.created_at_ms, m.updated_at_ms, \
     c.quantity FROM cart_items c JOIN menu_items m ON m.id = c.menu_item_id \
     WHERE c.customer_id = $1 ORDER BY c.added_at_ms, m.id";

fn cart_from_rows(rows: &[AnyRow]) -> Result<Cart> {
    let lines = rows
        .iter()
        .map(|row| {
            Ok(CartLine {
                item: rows::menu_item(row)?,
                quantity: row.try_get("quantity")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Cart {
        restaurant_id: lines.first().map(|l| l.item.restaurant_id),
        lines,
    })
}

#[async_trait]
impl CartStore for SqlStore {
    async fn cart(&self, customer_id: UserId) -> Result<Cart> {
        let rows = sqlx::query(SELECT_LINES)
            .bind(customer_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        cart_from_rows(&rows)
    }

    async fn change_cart(
        &self,
        customer_id: UserId,
        change: CartChange,
        max_quantity: i64,
        now_ms: i64,
    ) -> Result<CartOutcome> {
        let customer = customer_id.to_string();
        let (_gate, mut tx) = self.begin_write().await?;
        // Writing the cart row first locks this customer's cart (a row lock
        // on PostgreSQL, the write lock on SQLite), so two changes to one
        // cart cannot both pass the one-restaurant check below.
        sqlx::query(
            "INSERT INTO carts (customer_id, updated_at_ms) VALUES ($1, $2) \
             ON CONFLICT (customer_id) DO UPDATE SET updated_at_ms = $2",
        )
        .bind(&customer)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        match change {
            CartChange::Add {
                item,
                restaurant_id,
                quantity,
            }
            | CartChange::Set {
                item,
                restaurant_id,
                quantity,
            } if quantity > 0 => {
                if let Some(other) = other_restaurant(&mut tx, &customer, restaurant_id).await? {
                    tx.rollback().await?;
                    return Ok(CartOutcome::OtherRestaurant(other));
                }
                let current: Option<i64> = sqlx::query(
                    "SELECT quantity FROM cart_items WHERE customer_id = $1 AND menu_item_id = $2",
                )
                .bind(&customer)
                .bind(item.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get("quantity"))
                .transpose()?;
                let wanted = match change {
                    CartChange::Add { .. } => current.unwrap_or(0).saturating_add(quantity),
                    _ => quantity,
                };
                if wanted > max_quantity {
                    tx.rollback().await?;
                    return Ok(CartOutcome::TooMany);
                }
                sqlx::query(
                    "INSERT INTO cart_items (customer_id, menu_item_id, restaurant_id, quantity, added_at_ms) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (customer_id, menu_item_id) DO UPDATE SET quantity = $4",
                )
                .bind(&customer)
                .bind(item.to_string())
                .bind(restaurant_id.to_string())
                .bind(wanted)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            // Setting 0 (or less, which the api refuses before) removes.
            CartChange::Add { item, .. }
            | CartChange::Set { item, .. }
            | CartChange::Remove(item) => {
                sqlx::query("DELETE FROM cart_items WHERE customer_id = $1 AND menu_item_id = $2")
                    .bind(&customer)
                    .bind(item.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            CartChange::Clear => {
                sqlx::query("DELETE FROM cart_items WHERE customer_id = $1")
                    .bind(&customer)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let rows = sqlx::query(SELECT_LINES)
            .bind(&customer)
            .fetch_all(&mut *tx)
            .await?;
        let cart = cart_from_rows(&rows)?;
        tx.commit().await?;
        Ok(CartOutcome::Changed(cart))
    }
}

/// The restaurant of the cart's lines, if they are not `restaurant_id`'s.
async fn other_restaurant(
    tx: &mut Transaction<'static, Any>,
    customer: &str,
    restaurant_id: RestaurantId,
) -> Result<Option<RestaurantId>> {
    let row = sqlx::query(
        "SELECT restaurant_id FROM cart_items WHERE customer_id = $1 AND restaurant_id <> $2 LIMIT 1",
    )
    .bind(customer)
    .bind(restaurant_id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref()
        .map(|row| parse_col(row, "restaurant_id"))
        .transpose()
}
