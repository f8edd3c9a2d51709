//! Reviews: one per delivered order (a unique index), edited in place,
//! hidden and shown by admins. Each write appends its `review.*` event to
//! the order's stream in its transaction; ratings are added up in SQL over
//! the reviews that are not hidden.

use async_trait::async_trait;
use engine::{OrderId, RestaurantId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{parse_col, parse_opt_col};
use super::tx::append;
use super::{SqlStore, is_unique_violation};
use crate::event::{self, ReviewChanged};
use crate::store::{
    Inserted, PageAfter, RatingTotals, Result, Review, ReviewId, ReviewStore, ReviewsOf,
};

/// The columns of a [`Review`].
const SELECT_REVIEW: &str = "SELECT id, order_id, customer_id, restaurant_id, driver_id, \
     restaurant_stars, restaurant_text, driver_stars, driver_text, hidden_at_ms, hidden_reason, \
     hidden_by, created_at_ms, updated_at_ms FROM reviews ";

fn review(row: &AnyRow) -> Result<Review> {
    Ok(Review {
        id: parse_col(row, "id")?,
        order_id: parse_col(row, "order_id")?,
        customer_id: parse_col(row, "customer_id")?,
        restaurant_id: parse_col(row, "restaurant_id")?,
        driver_id: parse_opt_col(row, "driver_id")?,
        restaurant_stars: row.try_get("restaurant_stars")?,
        restaurant_text: row.try_get("restaurant_text")?,
        driver_stars: row.try_get("driver_stars")?,
        driver_text: row.try_get("driver_text")?,
        hidden_at_ms: row.try_get("hidden_at_ms")?,
        hidden_reason: row.try_get("hidden_reason")?,
        hidden_by: parse_opt_col(row, "hidden_by")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

impl SqlStore {
    /// Appends `event_type` for `r` (its order's stream) by `actor` in `tx`.
    async fn review_changed(
        tx: &mut super::tx::Tx,
        event_type: events::EventType,
        r: &Review,
        actor: UserId,
        at_ms: i64,
    ) -> Result<()> {
        let e = event::new_event(
            event_type,
            r.order_id,
            events::Actor::User(actor.as_uuid()),
            at_ms,
            &ReviewChanged::of(r, at_ms),
        )?;
        append(tx, &e).await?;
        Ok(())
    }
}

#[async_trait]
impl ReviewStore for SqlStore {
    async fn insert_review(&self, r: &Review) -> Result<Inserted> {
        let (_gate, mut tx) = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO reviews (id, order_id, customer_id, restaurant_id, driver_id, \
             restaurant_stars, restaurant_text, driver_stars, driver_text, hidden_at_ms, \
             hidden_reason, hidden_by, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL, $10, $11)",
        )
        .bind(r.id.to_string())
        .bind(r.order_id.to_string())
        .bind(r.customer_id.to_string())
        .bind(r.restaurant_id.to_string())
        .bind(r.driver_id.map(|d| d.to_string()))
        .bind(r.restaurant_stars)
        .bind(r.restaurant_text.as_deref())
        .bind(r.driver_stars)
        .bind(r.driver_text.as_deref())
        .bind(r.created_at_ms)
        .bind(r.updated_at_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Ok(Inserted::Duplicate);
            }
            Err(e) => return Err(e.into()),
        }
        Self::review_changed(
            &mut tx,
            events::EventType::ReviewCreated,
            r,
            r.customer_id,
            r.created_at_ms,
        )
        .await?;
        tx.commit().await?;
        self.committed();
        Ok(Inserted::Created)
    }

    async fn update_review(&self, r: &Review) -> Result<bool> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE reviews SET restaurant_stars = $1, restaurant_text = $2, driver_stars = $3, \
             driver_text = $4, updated_at_ms = $5 WHERE id = $6",
        )
        .bind(r.restaurant_stars)
        .bind(r.restaurant_text.as_deref())
        .bind(r.driver_stars)
        .bind(r.driver_text.as_deref())
        .bind(r.updated_at_ms)
        .bind(r.id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        Self::review_changed(
            &mut tx,
            events::EventType::ReviewUpdated,
            r,
            r.customer_id,
            r.updated_at_ms,
        )
        .await?;
        tx.commit().await?;
        self.committed();
        Ok(true)
    }

    async fn review_of_order(&self, order_id: OrderId) -> Result<Option<Review>> {
        let sql = format!("{SELECT_REVIEW}WHERE order_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(order_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(review).transpose()
    }

    async fn review(&self, id: ReviewId) -> Result<Option<Review>> {
        let sql = format!("{SELECT_REVIEW}WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(review).transpose()
    }

    async fn set_review_hidden(
        &self,
        id: ReviewId,
        hidden: Option<&str>,
        admin: UserId,
        at_ms: i64,
    ) -> Result<Option<Review>> {
        let (_gate, mut tx) = self.begin_write().await?;
        // Only a change writes (and makes an event): hiding a hidden
        // review keeps its first reason, showing a shown one does nothing.
        let done = match hidden {
            Some(reason) => sqlx::query(
                "UPDATE reviews SET hidden_at_ms = $1, hidden_reason = $2, hidden_by = $3, \
                 updated_at_ms = $1 WHERE id = $4 AND hidden_at_ms IS NULL",
            )
            .bind(at_ms)
            .bind(reason)
            .bind(admin.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "UPDATE reviews SET hidden_at_ms = NULL, hidden_reason = NULL, hidden_by = NULL, \
                 updated_at_ms = $1 WHERE id = $2 AND hidden_at_ms IS NOT NULL",
            )
            .bind(at_ms)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if done == 0 {
            tx.rollback().await?;
            return self.review(id).await;
        }
        let sql = format!("{SELECT_REVIEW}WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let r = review(&row)?;
        let event_type = match hidden {
            Some(_) => events::EventType::ReviewHidden,
            None => events::EventType::ReviewUnhidden,
        };
        Self::review_changed(&mut tx, event_type, &r, admin, at_ms).await?;
        tx.commit().await?;
        self.committed();
        Ok(Some(r))
    }

    async fn list_reviews(
        &self,
        of: ReviewsOf,
        include_hidden: bool,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<Review>> {
        let (column, id) = match of {
            ReviewsOf::Restaurant(id) => ("restaurant_id", id.to_string()),
            ReviewsOf::Driver(id) => ("driver_id", id.to_string()),
        };
        let mut sql = format!("{SELECT_REVIEW}WHERE {column} = $1");
        if matches!(of, ReviewsOf::Driver(_)) {
            sql.push_str(" AND driver_stars IS NOT NULL");
        }
        if !include_hidden {
            sql.push_str(" AND hidden_at_ms IS NULL");
        }
        let (before_ms, before_id) = match after {
            Some(a) => (a.created_at_ms, a.id.clone()),
            // Above every row: any real time is below i64::MAX.
            None => (i64::MAX, String::new()),
        };
        sql.push_str(
            " AND (created_at_ms < $2 OR (created_at_ms = $2 AND id < $3)) \
             ORDER BY created_at_ms DESC, id DESC LIMIT $4",
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(before_ms)
            .bind(before_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(review).collect()
    }

    async fn rating(&self, of: ReviewsOf) -> Result<RatingTotals> {
        let sql = match of {
            ReviewsOf::Restaurant(_) => {
                "SELECT CAST(COALESCE(SUM(restaurant_stars), 0) AS BIGINT) AS stars, \
                 CAST(COUNT(*) AS BIGINT) AS n FROM reviews \
                 WHERE restaurant_id = $1 AND hidden_at_ms IS NULL"
            }
            ReviewsOf::Driver(_) => {
                "SELECT CAST(COALESCE(SUM(driver_stars), 0) AS BIGINT) AS stars, \
                 CAST(COUNT(driver_stars) AS BIGINT) AS n FROM reviews \
                 WHERE driver_id = $1 AND hidden_at_ms IS NULL"
            }
        };
        let id = match of {
            ReviewsOf::Restaurant(id) => id.to_string(),
            ReviewsOf::Driver(id) => id.to_string(),
        };
        let row = sqlx::query(sql).bind(id).fetch_one(&self.pool).await?;
        Ok(RatingTotals {
            stars: row.try_get("stars")?,
            count: row.try_get("n")?,
        })
    }

    async fn restaurant_ratings(&self) -> Result<Vec<(RestaurantId, RatingTotals)>> {
        let rows = sqlx::query(
            "SELECT restaurant_id, CAST(SUM(restaurant_stars) AS BIGINT) AS stars, \
             CAST(COUNT(*) AS BIGINT) AS n FROM reviews WHERE hidden_at_ms IS NULL \
             GROUP BY restaurant_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_col(row, "restaurant_id")?,
                    RatingTotals {
                        stars: row.try_get("stars")?,
                        count: row.try_get("n")?,
                    },
                ))
            })
            .collect()
    }
}
