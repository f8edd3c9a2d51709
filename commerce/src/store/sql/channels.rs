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

/// Parameters of one row of [`ChannelStore::record_sends`]'s insert.
const SEND_PARAMS: usize = 16;
/// The most rows one statement of `record_sends` writes (bounded
/// parameters: 16 a row, far under either database's limit).
const SENDS_PER_STATEMENT: usize = 64;

/// `attempts` in order, cut into runs of at most [`SENDS_PER_STATEMENT`]
/// in which no (recipient, event, channel) comes twice: one multi-row
/// upsert may not touch a row twice (PostgreSQL refuses it), and a later
/// try of the same send must land after the earlier one.
fn send_chunks(attempts: &[SendAttempt]) -> Vec<&[SendAttempt]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut keys = std::collections::HashSet::new();
    for (i, a) in attempts.iter().enumerate() {
        if i - start == SENDS_PER_STATEMENT || !keys.insert((a.user_id, a.event_id, a.channel)) {
            chunks.push(&attempts[start..i]);
            start = i;
            keys.clear();
            keys.insert((a.user_id, a.event_id, a.channel));
        }
    }
    if start < attempts.len() {
        chunks.push(&attempts[start..]);
    }
    chunks
}

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
        for chunk in send_chunks(attempts) {
            let values = (0..chunk.len())
                .map(|i| {
                    let n = i * SEND_PARAMS;
                    let p: Vec<String> = (1..=SEND_PARAMS).map(|k| format!("${}", n + k)).collect();
                    // `last_attempt_at_ms` is `created_at_ms` (the 15th).
                    format!("({}, {}, {})", p[..15].join(", "), p[14], p[15])
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO channel_sends (user_id, event_id, channel, event_type, party, \
                 order_id, language, to_address, subject, body, status, attempts, last_error, \
                 provider_id, created_at_ms, last_attempt_at_ms, sent_at_ms) \
                 VALUES {values} \
                 ON CONFLICT (user_id, event_id, channel) DO UPDATE SET \
                 language = excluded.language, to_address = excluded.to_address, \
                 subject = excluded.subject, body = excluded.body, status = excluded.status, \
                 attempts = channel_sends.attempts + excluded.attempts, \
                 last_error = excluded.last_error, provider_id = excluded.provider_id, \
                 last_attempt_at_ms = excluded.last_attempt_at_ms, sent_at_ms = excluded.sent_at_ms"
            );
            // Not kept prepared: its text varies with the batch's size.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for a in chunk {
                let tried = i64::from(a.status != SendStatus::Skipped);
                let sent_at = (a.status == SendStatus::Sent).then_some(a.at_ms);
                q = q
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
                    .bind(sent_at);
            }
            q.execute(&mut *tx).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(user: u128, event_id: i64, channel: Channel) -> SendAttempt {
        SendAttempt {
            user_id: UserId::from(uuid::Uuid::from_u128(user)),
            event_id,
            channel,
            event_type: "order.paid".into(),
            party: "customer".into(),
            order_id: None,
            language: Language::default(),
            to: None,
            subject: None,
            body: String::new(),
            status: SendStatus::Skipped,
            error: None,
            provider_id: None,
            at_ms: 0,
        }
    }

    /// The chunks' lengths for `attempts`; every attempt lands in order.
    fn check(attempts: &[SendAttempt], expected: &[usize]) {
        let chunks = send_chunks(attempts);
        let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(lens, expected);
        let flat: Vec<&SendAttempt> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert!(flat.iter().zip(attempts).all(|(a, b)| std::ptr::eq(*a, b)));
    }

    #[test]
    fn sends_are_cut_at_the_limit_and_at_a_repeated_key() {
        check(&[], &[]);
        let distinct: Vec<SendAttempt> = (0..150).map(|i| attempt(1, i, Channel::Push)).collect();
        check(&distinct, &[64, 64, 22]);
        let repeated = [
            attempt(1, 7, Channel::Push),
            attempt(2, 7, Channel::Push),
            attempt(1, 7, Channel::Email),
            attempt(1, 7, Channel::Push),
            attempt(3, 8, Channel::Push),
        ];
        check(&repeated, &[3, 2]);
    }
}
