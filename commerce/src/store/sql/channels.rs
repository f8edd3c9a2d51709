//! Outside channels (migration 0010): users' contacts and language, their
//! notification preference settings, and the log of sends, one row per
//! (recipient, event, channel).

use std::collections::HashMap;

use async_trait::async_trait;
use engine::UserId;
use events::EventType;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{corrupt, language, parse_col, parse_opt_col};
use crate::channels::prefs::Setting;
use crate::channels::{Channel, SendStatus};
use crate::notify::Language;
use crate::store::{ChannelSend, ChannelStore, Contact, Result, SendAttempt, SendFilter};

/// The columns of a [`ChannelSend`].
const COLUMNS: &str = "id, user_id, event_id, channel, event_type, party, order_id, language, \
                       to_address, subject, body, status, attempts, last_error, provider_id, \
                       created_at_ms, last_attempt_at_ms, sent_at_ms";

/// The stored `event_type` of a setting for a whole channel.
const WHOLE_CHANNEL: &str = "*";

fn channel(row: &AnyRow, col: &str) -> Result<Channel> {
    let name: String = row.try_get(col)?;
    Channel::parse(&name).ok_or_else(|| corrupt(col, &name))
}

fn send(row: &AnyRow) -> Result<ChannelSend> {
    let status: String = row.try_get("status")?;
    let code: String = row.try_get("language")?;
    Ok(ChannelSend {
        id: row.try_get("id")?,
        last: SendAttempt {
            user_id: parse_col(row, "user_id")?,
            event_id: row.try_get("event_id")?,
            channel: channel(row, "channel")?,
            event_type: row.try_get("event_type")?,
            party: row.try_get("party")?,
            order_id: parse_opt_col(row, "order_id")?,
            language: Language::parse(&code).ok_or_else(|| corrupt("language", &code))?,
            to: row.try_get("to_address")?,
            subject: row.try_get("subject")?,
            body: row.try_get("body")?,
            status: SendStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            error: row.try_get("last_error")?,
            provider_id: row.try_get("provider_id")?,
            at_ms: row.try_get("last_attempt_at_ms")?,
        },
        attempts: row.try_get("attempts")?,
        created_at_ms: row.try_get("created_at_ms")?,
        sent_at_ms: row.try_get("sent_at_ms")?,
    })
}

/// A stored preference setting; `None` for an event type a later version
/// stopped knowing (ignored, not an error: the user cannot be told of it).
fn setting(row: &AnyRow) -> Result<Option<Setting>> {
    let event: String = row.try_get("event_type")?;
    let event_type = if event == WHOLE_CHANNEL {
        None
    } else {
        match EventType::parse(&event) {
            Some(t) => Some(t),
            None => return Ok(None),
        }
    };
    let enabled: i64 = row.try_get("enabled")?;
    Ok(Some(Setting {
        channel: channel(row, "channel")?,
        event_type,
        enabled: enabled != 0,
    }))
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl ChannelStore for SqlStore {
    async fn contacts(&self, users: &[UserId]) -> Result<Vec<Contact>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, name, email, phone, language FROM users WHERE id IN ({})",
            placeholders(1, users.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for user in users {
            query = query.bind(user.to_string());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(Contact {
                    user_id: parse_col(row, "id")?,
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    phone: row.try_get("phone")?,
                    language: language(row, "language")?,
                })
            })
            .collect()
    }

    async fn preference_settings(&self, user: UserId) -> Result<Vec<Setting>> {
        let rows = sqlx::query(
            "SELECT channel, event_type, enabled FROM notification_preferences \
             WHERE user_id = $1 ORDER BY channel, event_type",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut settings = Vec::with_capacity(rows.len());
        for row in &rows {
            settings.extend(setting(row)?);
        }
        Ok(settings)
    }

    async fn preference_settings_of(
        &self,
        users: &[UserId],
    ) -> Result<HashMap<UserId, Vec<Setting>>> {
        let mut of: HashMap<UserId, Vec<Setting>> = HashMap::new();
        if users.is_empty() {
            return Ok(of);
        }
        let sql = format!(
            "SELECT user_id, channel, event_type, enabled FROM notification_preferences \
             WHERE user_id IN ({}) ORDER BY user_id, channel, event_type",
            placeholders(1, users.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for user in users {
            query = query.bind(user.to_string());
        }
        for row in &query.fetch_all(&self.pool).await? {
            if let Some(s) = setting(row)? {
                of.entry(parse_col(row, "user_id")?).or_default().push(s);
            }
        }
        Ok(of)
    }

    async fn replace_preference_settings(
        &self,
        user: UserId,
        settings: &[Setting],
        now_ms: i64,
    ) -> Result<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        sqlx::query("DELETE FROM notification_preferences WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        for s in settings {
            sqlx::query(
                "INSERT INTO notification_preferences \
                 (user_id, channel, event_type, enabled, updated_at_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_id, channel, event_type) DO UPDATE SET \
                 enabled = excluded.enabled, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(user.to_string())
            .bind(s.channel.as_str())
            .bind(s.event_type.map_or(WHOLE_CHANNEL, EventType::as_str))
            .bind(i64::from(s.enabled))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn channel_sends(
        &self,
        channel: Channel,
        users: &[UserId],
        event_ids: &[i64],
    ) -> Result<Vec<ChannelSend>> {
        if users.is_empty() || event_ids.is_empty() {
            return Ok(Vec::new());
        }
        // `user_id IN` leads the unique (user_id, event_id, channel) index.
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_sends \
             WHERE channel = $1 AND user_id IN ({}) AND event_id IN ({})",
            placeholders(2, users.len()),
            placeholders(2 + users.len(), event_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(channel.as_str());
        for user in users {
            query = query.bind(user.to_string());
        }
        for id in event_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(send).collect()
    }

    async fn record_sends(&self, attempts: &[SendAttempt]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let (_gate, mut tx) = self.begin_write().await?;
        for a in attempts {
            let tried = i64::from(a.status != SendStatus::Skipped);
            let sent_at = (a.status == SendStatus::Sent).then_some(a.at_ms);
            sqlx::query(
                "INSERT INTO channel_sends (user_id, event_id, channel, event_type, party, \
                 order_id, language, to_address, subject, body, status, attempts, last_error, \
                 provider_id, created_at_ms, last_attempt_at_ms, sent_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16) \
                 ON CONFLICT (user_id, event_id, channel) DO UPDATE SET \
                 language = excluded.language, to_address = excluded.to_address, \
                 subject = excluded.subject, body = excluded.body, status = excluded.status, \
                 attempts = channel_sends.attempts + excluded.attempts, \
                 last_error = excluded.last_error, provider_id = excluded.provider_id, \
                 last_attempt_at_ms = excluded.last_attempt_at_ms, sent_at_ms = excluded.sent_at_ms",
            )
            .bind(a.user_id.to_string())
            .bind(a.event_id)
            .bind(a.channel.as_str())
            .bind(&a.event_type)
            .bind(&a.party)
            .bind(a.order_id.map(|id| id.to_string()))
            .bind(a.language.code())
            .bind(a.to.as_deref())
            .bind(a.subject.as_deref())
            .bind(&a.body)
            .bind(a.status.as_str())
            .bind(tried)
            .bind(a.error.as_deref())
            .bind(a.provider_id.as_deref())
            .bind(a.at_ms)
            .bind(sent_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_sends(
        &self,
        filter: &SendFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChannelSend>> {
        let mut conditions = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut text = |column: &str, value: String| {
            texts.push(value);
            conditions.push(format!("{column} = ${}", texts.len()));
        };
        if let Some(user) = filter.user_id {
            text("user_id", user.to_string());
        }
        if let Some(channel) = filter.channel {
            text("channel", channel.as_str().to_owned());
        }
        if let Some(status) = filter.status {
            text("status", status.as_str().to_owned());
        }
        let n = texts.len();
        conditions.push(format!("id < ${}", n + 1));
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_sends WHERE {} ORDER BY id DESC LIMIT ${}",
            conditions.join(" AND "),
            n + 2
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in texts {
            query = query.bind(value);
        }
        let rows = query
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(send).collect()
    }
}
