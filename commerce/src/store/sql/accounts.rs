//! Users, refresh tokens, bans and saved addresses.

use async_trait::async_trait;
use engine::{AddressId, UserId};
use sqlx::Row;

use super::rows::{self, parse_col, select_user};
use super::tx::append;
use super::{SqlStore, is_unique_violation};
use crate::event::{self, BanChanged, LoggedOut};
use crate::notify::Language;
use crate::store::{
    AccountStore, Address, BanOutcome, Inserted, PageAfter, RefreshToken, Result, User, UserFilter,
};

#[async_trait]
impl AccountStore for SqlStore {
    async fn list_users(
        &self,
        filter: &UserFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<User>> {
        super::listings::users(self, filter, after, limit).await
    }

    async fn insert_user(&self, user: &User) -> Result<Inserted> {
        let result = sqlx::query(
            "INSERT INTO users \
             (id, email, password_hash, name, phone, role, banned_at_ms, created_at_ms, language) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(user.phone.as_deref())
        .bind(user.role.as_str())
        .bind(user.banned_at_ms)
        .bind(user.created_at_ms)
        .bind(user.language.map(|l| l.code()))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(Inserted::Created),
            Err(e) if is_unique_violation(&e) => Ok(Inserted::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = concat!(select_user!(), "WHERE lower(email) = lower($1)");
        let row = sqlx::query(sql)
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let sql = concat!(select_user!(), "WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn update_profile(
        &self,
        id: UserId,
        name: &str,
        phone: Option<&str>,
        language: Option<Language>,
    ) -> Result<Option<User>> {
        let done =
            sqlx::query("UPDATE users SET name = $1, phone = $2, language = $3 WHERE id = $4")
                .bind(name)
                .bind(phone)
                .bind(language.map(|l| l.code()))
                .bind(id.to_string())
                .execute(&self.pool)
                .await?
                .rows_affected();
        if done == 0 {
            return Ok(None);
        }
        self.user(id).await
    }

    async fn set_banned(
        &self,
        id: UserId,
        banned: bool,
        actor_id: UserId,
        now_ms: i64,
    ) -> Result<BanOutcome> {
        let (_gate, mut tx) = self.begin_write().await?;
        // Only a change is written: a ban keeps the first ban's time, and
        // neither a repeated ban nor an unban of an unbanned user appends
        // an event.
        let done = if banned {
            sqlx::query("UPDATE users SET banned_at_ms = $1 WHERE id = $2 AND banned_at_ms IS NULL")
                .bind(now_ms)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query(
                "UPDATE users SET banned_at_ms = NULL WHERE id = $1 AND banned_at_ms IS NOT NULL",
            )
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
        }
        .rows_affected();
        let row = sqlx::query(concat!(select_user!(), "WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(BanOutcome::UnknownUser);
        };
        let user = rows::user(&row)?;
        if done == 0 {
            tx.rollback().await?;
            return Ok(BanOutcome::Unchanged(user));
        }
        if banned {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at_ms = $1 \
                 WHERE user_id = $2 AND revoked_at_ms IS NULL",
            )
            .bind(now_ms)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let e = event::new_event(
            if banned {
                events::EventType::UserBanned
            } else {
                events::EventType::UserUnbanned
            },
            id,
            events::Actor::User(actor_id.as_uuid()),
            now_ms,
            &BanChanged {
                user_id: id,
                role: user.role.as_str().to_owned(),
                banned_at_ms: user.banned_at_ms,
                at_ms: now_ms,
            },
        )?;
        append(&mut tx, &e).await?;
        tx.commit().await?;
        self.committed();
        Ok(BanOutcome::Changed(user))
    }

    async fn banned_users(&self) -> Result<Vec<UserId>> {
        let rows = sqlx::query("SELECT id FROM users WHERE banned_at_ms IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| parse_col(row, "id")).collect()
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, user_id, expires_at_ms, revoked_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, NULL, $4)",
        )
        .bind(&token.hash)
        .bind(token.user_id.to_string())
        .bind(token.expires_at_ms)
        .bind(token.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<UserId>> {
        let (_gate, mut tx) = self.begin_write().await?;
        // The user must not be banned (a ban revokes tokens too; this also
        // covers a token issued in a race with the ban).
        let row = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at_ms = $1 \
             WHERE hash = $2 AND revoked_at_ms IS NULL AND expires_at_ms > $1 \
             AND user_id IN (SELECT id FROM users WHERE banned_at_ms IS NULL) \
             RETURNING user_id",
        )
        .bind(now_ms)
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let user_id: UserId = parse_col(&row, "user_id")?;
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, user_id, expires_at_ms, revoked_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, NULL, $4)",
        )
        .bind(new_hash)
        .bind(user_id.to_string())
        .bind(new_expires_at_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }

    async fn log_out(&self, user_id: UserId, only: Option<&str>, now_ms: i64) -> Result<u64> {
        let (_gate, mut tx) = self.begin_write().await?;
        let revoked = match only {
            Some(hash) => sqlx::query(
                "UPDATE refresh_tokens SET revoked_at_ms = $1 \
                 WHERE hash = $2 AND user_id = $3 AND revoked_at_ms IS NULL AND expires_at_ms > $1",
            )
            .bind(now_ms)
            .bind(hash)
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "UPDATE refresh_tokens SET revoked_at_ms = $1 \
                 WHERE user_id = $2 AND revoked_at_ms IS NULL AND expires_at_ms > $1",
            )
            .bind(now_ms)
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        // A later logout moves the cutoff on, never back.
        let found = sqlx::query(
            "UPDATE users SET tokens_valid_from_ms = $1 \
             WHERE id = $2 AND (tokens_valid_from_ms IS NULL OR tokens_valid_from_ms < $1)",
        )
        .bind(now_ms)
        .bind(user_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let e = event::new_event(
            events::EventType::UserLoggedOut,
            user_id,
            events::Actor::User(user_id.as_uuid()),
            now_ms,
            &LoggedOut {
                user_id,
                all: only.is_none(),
                revoked,
                tokens_valid_from_ms: now_ms,
            },
        )?;
        if found > 0 {
            append(&mut tx, &e).await?;
        }
        tx.commit().await?;
        self.committed();
        Ok(revoked)
    }

    async fn access_cutoffs(&self, after_ms: i64) -> Result<Vec<(UserId, i64)>> {
        let rows = sqlx::query(
            "SELECT id, tokens_valid_from_ms FROM users WHERE tokens_valid_from_ms > $1",
        )
        .bind(after_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((parse_col(row, "id")?, row.try_get("tokens_valid_from_ms")?)))
            .collect()
    }

    async fn access_cutoff(&self, user_id: UserId) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT tokens_valid_from_ms FROM users WHERE id = $1")
            .bind(user_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("tokens_valid_from_ms")?,
            None => None,
        })
    }

    async fn insert_address(&self, a: &Address) -> Result<()> {
        sqlx::query(
            "INSERT INTO addresses (id, user_id, label, address, lat, lng, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(a.id.to_string())
        .bind(a.user_id.to_string())
        .bind(&a.label)
        .bind(&a.address)
        .bind(a.location.lat)
        .bind(a.location.lng)
        .bind(a.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn addresses(&self, user_id: UserId) -> Result<Vec<Address>> {
        let rows = sqlx::query(
            "SELECT id, user_id, label, address, lat, lng, created_at_ms FROM addresses \
             WHERE user_id = $1 ORDER BY created_at_ms, id",
        )
        .bind(user_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::address).collect()
    }

    async fn delete_address(&self, user_id: UserId, id: AddressId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM addresses WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done > 0)
    }
}
