//! The notification feed (migration 0009): one row per recipient and
//! event, numbered per recipient.

use async_trait::async_trait;
use engine::{OrderId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{parse_col, parse_opt_col};
use crate::store::{
    NewNotification, Notification, NotificationStore, Result, StoreError, UnreadCount,
};

/// The columns of a [`Notification`].
const COLUMNS: &str = "user_id, seq, event_id, event_type, order_id, restaurant_id, status, \
                       text, at_ms, created_at_ms, read_at_ms";

fn notification(row: &AnyRow) -> Result<Notification> {
    let status: Option<String> = row.try_get("status")?;
    let status = status
        .map(|s| {
            engine::OrderStatus::parse(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("notification status {s:?}")))
        })
        .transpose()?;
    Ok(Notification {
        seq: row.try_get("seq")?,
        new: NewNotification {
            user_id: parse_col(row, "user_id")?,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            order_id: parse_opt_col(row, "order_id")?,
            restaurant_id: parse_opt_col(row, "restaurant_id")?,
            status,
            text: row.try_get("text")?,
            at_ms: row.try_get("at_ms")?,
            created_at_ms: row.try_get("created_at_ms")?,
        },
        read_at_ms: row.try_get("read_at_ms")?,
    })
}

#[async_trait]
impl NotificationStore for SqlStore {
    async fn insert_notifications(&self, new: &[NewNotification]) -> Result<Vec<Notification>> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let (_gate, mut tx) = self.begin_write().await?;
        let mut stored = Vec::with_capacity(new.len());
        for n in new {
            // The recipient's next id. One consumer writes, an event at a
            // time; a second writer would collide on the primary key and
            // fail (the runner retries), never share an id.
            let row = sqlx::query(
                "INSERT INTO notifications \
                 (user_id, seq, event_id, event_type, order_id, restaurant_id, status, text, \
                  at_ms, created_at_ms) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9 \
                 FROM notifications WHERE user_id = $1 \
                 ON CONFLICT (user_id, event_id) DO NOTHING \
                 RETURNING seq",
            )
            .bind(n.user_id.to_string())
            .bind(n.event_id)
            .bind(&n.event_type)
            .bind(n.order_id.map(|id| id.to_string()))
            .bind(n.restaurant_id.map(|id| id.to_string()))
            .bind(n.status.map(|s| s.as_str()))
            .bind(&n.text)
            .bind(n.at_ms)
            .bind(n.created_at_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                stored.push(Notification {
                    seq: row.try_get(0)?,
                    new: n.clone(),
                    read_at_ms: None,
                });
            }
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn notifications_after(
        &self,
        user: UserId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.to_string())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(notification).collect()
    }

    async fn unread_notifications(&self, user: UserId) -> Result<UnreadCount> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS unread, \
             CAST(COALESCE((SELECT MAX(seq) FROM notifications WHERE user_id = $1), 0) AS BIGINT) AS last_id \
             FROM notifications WHERE user_id = $1 AND read_at_ms IS NULL",
        )
        .bind(user.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(UnreadCount {
            unread: row.try_get("unread")?,
            last_id: row.try_get("last_id")?,
        })
    }

    async fn mark_notification_read(
        &self,
        user: UserId,
        seq: i64,
        now_ms: i64,
    ) -> Result<Option<Notification>> {
        let (_gate, mut tx) = self.begin_write().await?;
        sqlx::query(
            "UPDATE notifications SET read_at_ms = $1 \
             WHERE user_id = $2 AND seq = $3 AND read_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(user.to_string())
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.to_string())
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(notification).transpose()
    }

    async fn mark_all_notifications_read(
        &self,
        user: UserId,
        up_to: Option<i64>,
        now_ms: i64,
    ) -> Result<u64> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE notifications SET read_at_ms = $1 \
             WHERE user_id = $2 AND seq <= $3 AND read_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(user.to_string())
        .bind(up_to.unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done)
    }

    async fn notified_of_stall(&self, order_id: OrderId, except_event: i64) -> Result<Vec<UserId>> {
        // The literal type matches the partial index of migration 0013.
        let rows = sqlx::query(
            "SELECT user_id FROM notifications \
             WHERE order_id = $1 AND event_type = 'order.dispatch_stalled' AND event_id <> $2",
        )
        .bind(order_id.to_string())
        .bind(except_event)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| parse_col(row, "user_id")).collect()
    }

    async fn admin_ids(&self) -> Result<Vec<UserId>> {
        let rows = sqlx::query("SELECT id FROM users WHERE role = 'admin' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| parse_col(row, "id")).collect()
    }
}
