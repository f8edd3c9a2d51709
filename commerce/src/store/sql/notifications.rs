//! The notification feed (migration 0009): one row per recipient and
//! event, numbered per recipient.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use engine::{OrderId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{parse_col, parse_opt_col};
use crate::store::{
    NewNotification, Notification, NotificationStore, Result, StoreError, UnreadCount,
};

/// Parameters of one row of [`NotificationStore::insert_notifications`].
const NOTIFICATION_PARAMS: usize = 9;
/// The most rows one statement of `insert_notifications` writes (bounded
/// parameters and text).
const NOTIFICATIONS_PER_STATEMENT: usize = 50;

/// `new` in order, cut into runs of at most [`NOTIFICATIONS_PER_STATEMENT`]
/// in which no recipient comes twice (see `insert_notifications`).
fn notification_chunks(new: &[NewNotification]) -> Vec<&[NewNotification]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut users = HashSet::new();
    for (i, n) in new.iter().enumerate() {
        if i - start == NOTIFICATIONS_PER_STATEMENT || !users.insert(n.user_id) {
            chunks.push(&new[start..i]);
            start = i;
            users.clear();
            users.insert(n.user_id);
        }
    }
    if start < new.len() {
        chunks.push(&new[start..]);
    }
    chunks
}

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
        for chunk in notification_chunks(new) {
            // Each row the recipient's next id (one consumer writes; a
            // second writer would collide on the primary key and fail, the
            // runner retries, never share an id). A recipient comes once
            // per statement (each row's `MAX` sees the rows before the
            // statement only), so the chunks, in order, number a
            // recipient's notifications in the events' order.
            let selects = (0..chunk.len())
                .map(|i| {
                    let n = i * NOTIFICATION_PARAMS;
                    format!(
                        "SELECT ${u} AS user_id, COALESCE(MAX(seq), 0) + 1 AS seq, \
                         ${} AS event_id, ${} AS event_type, ${} AS order_id, \
                         ${} AS restaurant_id, ${} AS status, ${} AS text, ${} AS at_ms, \
                         ${} AS created_at_ms FROM notifications WHERE user_id = ${u}",
                        n + 2,
                        n + 3,
                        n + 4,
                        n + 5,
                        n + 6,
                        n + 7,
                        n + 8,
                        n + 9,
                        u = n + 1,
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let sql = format!(
                "INSERT INTO notifications \
                 (user_id, seq, event_id, event_type, order_id, restaurant_id, status, text, \
                  at_ms, created_at_ms) \
                 SELECT user_id, seq, event_id, event_type, order_id, restaurant_id, status, \
                 text, at_ms, created_at_ms FROM ({selects}) AS n WHERE true \
                 ON CONFLICT (user_id, event_id) DO NOTHING \
                 RETURNING user_id, event_id, seq"
            );
            // Not kept prepared: its text varies with the batch's size.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for n in chunk {
                q = q
                    .bind(n.user_id.to_string())
                    .bind(n.event_id)
                    .bind(&n.event_type)
                    .bind(n.order_id.map(|id| id.to_string()))
                    .bind(n.restaurant_id.map(|id| id.to_string()))
                    .bind(n.status.map(|s| s.as_str()))
                    .bind(&n.text)
                    .bind(n.at_ms)
                    .bind(n.created_at_ms);
            }
            let mut seqs = HashMap::with_capacity(chunk.len());
            for row in q.fetch_all(&mut *tx).await? {
                let user: UserId = parse_col(&row, "user_id")?;
                let event_id: i64 = row.try_get("event_id")?;
                seqs.insert((user, event_id), row.try_get::<i64, _>("seq")?);
            }
            // Newly stored ones in the chunk's order (RETURNING has none).
            for n in chunk {
                if let Some(&seq) = seqs.get(&(n.user_id, n.event_id)) {
                    stored.push(Notification {
                        seq,
                        new: n.clone(),
                        read_at_ms: None,
                    });
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn note(user: u128, event_id: i64) -> NewNotification {
        NewNotification {
            user_id: UserId::from(uuid::Uuid::from_u128(user)),
            event_id,
            event_type: "order.paid".into(),
            order_id: None,
            restaurant_id: None,
            status: None,
            text: String::new(),
            at_ms: 0,
            created_at_ms: 0,
        }
    }

    /// The chunks' lengths for `new`; every notification lands in order.
    fn check(new: &[NewNotification], expected: &[usize]) {
        let chunks = notification_chunks(new);
        let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(lens, expected);
        let flat: Vec<&NewNotification> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert!(flat.iter().zip(new).all(|(a, b)| std::ptr::eq(*a, b)));
    }

    #[test]
    fn notifications_are_cut_at_the_limit_and_at_a_repeated_recipient() {
        check(&[], &[]);
        let distinct: Vec<NewNotification> = (0..120).map(|u| note(u, 1)).collect();
        check(&distinct, &[50, 50, 20]);
        // The customer and the owner of one order, then of the next.
        check(
            &[note(1, 7), note(2, 7), note(1, 8), note(2, 8), note(3, 8)],
            &[2, 3],
        );
    }
}
