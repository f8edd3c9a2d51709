//! Sessions: opening one for an account whose password the edge checked
//! (a login), refreshing it, and closing it (a logout).
//!
//! A session is a short-lived access token (`auth::Tokens`) and a
//! single-use refresh token, stored only as its hash: the edge makes the
//! random token and its hash ([`NewRefresh`]) and hands the token to the
//! client. Refreshing revokes the old refresh token and stores the new one
//! in one transaction, so a refresh token works once. A banned account
//! gets no session (its tokens were revoked with the ban; the token
//! checker also knows bans another node stored).

use auth::{IssuedToken, Principal, Tokens};
use engine::UserId;

use crate::store::{AccountStore, RefreshToken, User};
use crate::{Error, Result};

/// A refresh token to store, made at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefresh {
    /// Hex SHA-256 of the token the client gets.
    pub hash: String,
    /// How long it stays usable, ms.
    pub ttl_ms: i64,
}

/// Which refresh tokens a logout revokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoke<'a> {
    /// Every live refresh token of the account (log out everywhere).
    All,
    /// The refresh token with this hash, if it is the account's.
    One(&'a str),
}

/// The account a login names by `email` (normalised), if any: the caller
/// checks the password against it (with the same work when there is none,
/// so timing does not reveal which emails have accounts).
pub async fn account(store: &(impl AccountStore + ?Sized), email: &str) -> Result<Option<User>> {
    Ok(store.user_by_email(email).await?)
}

/// Opens a session for `user`, whose credentials the caller checked:
/// stores the refresh token and issues an access token. Refused with
/// `banned` for a banned account.
pub async fn open(
    store: &(impl AccountStore + ?Sized),
    tokens: &Tokens,
    user: &User,
    refresh: NewRefresh,
    now_ms: i64,
) -> Result<IssuedToken> {
    refuse_banned(tokens, user)?;
    store
        .insert_refresh_token(&RefreshToken {
            hash: refresh.hash,
            user_id: user.id,
            expires_at_ms: now_ms.saturating_add(refresh.ttl_ms),
            created_at_ms: now_ms,
        })
        .await?;
    Ok(issue(tokens, user, now_ms))
}

/// Trades the refresh token `old_hash` for a new session: the old token is
/// revoked and `refresh` stored in one transaction. Refused with
/// `invalid_refresh_token` (unknown, expired or already used) or `banned`.
pub async fn refresh(
    store: &(impl AccountStore + ?Sized),
    tokens: &Tokens,
    old_hash: &str,
    refresh: NewRefresh,
    now_ms: i64,
) -> Result<IssuedToken> {
    let expires_at_ms = now_ms.saturating_add(refresh.ttl_ms);
    let user_id = store
        .rotate_refresh_token(old_hash, &refresh.hash, expires_at_ms, now_ms)
        .await?
        .ok_or_else(invalid_refresh_token)?;
    let user = store
        .user(user_id)
        .await?
        .ok_or_else(invalid_refresh_token)?;
    refuse_banned(tokens, &user)?;
    Ok(issue(tokens, &user, now_ms))
}

/// Closes sessions of `user_id` (a logout): revokes `which` of its
/// refresh tokens, and refuses every access token the user holds from now
/// on, on this node at once and on the others through `user.logged_out`
/// (a device whose refresh token was not revoked gets a new access token
/// with it). How many refresh tokens were live.
pub async fn close(
    store: &(impl AccountStore + ?Sized),
    tokens: &Tokens,
    user_id: UserId,
    which: Revoke<'_>,
    now_ms: i64,
) -> Result<u64> {
    let only = match which {
        Revoke::All => None,
        Revoke::One(hash) => Some(hash),
    };
    let revoked = store.log_out(user_id, only, now_ms).await?;
    tokens.refuse_issued_before(user_id, now_ms);
    Ok(revoked)
}

fn refuse_banned(tokens: &Tokens, user: &User) -> Result<()> {
    if user.banned_at_ms.is_some() || tokens.is_banned(user.id) {
        Err(Error::Unauthorized {
            code: "banned",
            reason: "account is banned".to_owned(),
        })
    } else {
        Ok(())
    }
}

fn invalid_refresh_token() -> Error {
    Error::Unauthorized {
        code: "invalid_refresh_token",
        reason: "refresh token is invalid, expired or already used".to_owned(),
    }
}

/// An access token for `user` issued now.
fn issue(tokens: &Tokens, user: &User, now_ms: i64) -> IssuedToken {
    tokens.issue_at_ms(
        Principal {
            user_id: user.id,
            role: user.role,
        },
        now_ms,
    )
}
