//! An admin's ban or unban of a user.
//!
//! A ban is stored (so it survives restarts and reaches every node on its
//! next start) and applied to this node's token checker at once: every
//! access token of the user stops working, and the store revokes every
//! refresh token in the ban's transaction. Admins cannot be banned (an
//! admin locking out every admin would need database surgery). The store
//! writes `user.banned` / `user.unbanned` with the acting admin only when
//! the ban changes: banning a banned user keeps the first ban time and
//! writes nothing, as does unbanning a user who is not banned.

use auth::{Role, Tokens};
use engine::UserId;

use crate::store::{AccountStore, BanOutcome, User};
use crate::{Error, Result};

/// Counter: users banned (bans that changed something).
pub const BANS_TOTAL: &str = "hexdash_bans_total";

/// Bans `user_id` for `admin`; the user as stored now (`banned_at_ms` the
/// first ban's time). Not found for an unknown user, forbidden for an
/// admin.
pub async fn ban(
    store: &(impl AccountStore + ?Sized),
    tokens: &Tokens,
    admin: UserId,
    user_id: UserId,
    now_ms: i64,
) -> Result<User> {
    let target = store.user(user_id).await?.ok_or(Error::NotFound("user"))?;
    if target.role == Role::Admin {
        return Err(Error::forbidden("admins cannot be banned"));
    }
    let user = match store.set_banned(user_id, true, admin, now_ms).await? {
        BanOutcome::Changed(user) => {
            metrics::counter!(BANS_TOTAL).increment(1);
            tracing::info!(%user_id, by = %admin, "user banned");
            user
        }
        BanOutcome::Unchanged(user) => user,
        BanOutcome::UnknownUser => return Err(Error::NotFound("user")),
    };
    // Also when nothing changed: this node's checker may have missed a ban
    // another node stored.
    tokens.ban(user_id);
    Ok(user)
}

/// Lifts any ban of `user_id` for `admin`; the user as stored now. Not
/// found for an unknown user.
pub async fn unban(
    store: &(impl AccountStore + ?Sized),
    tokens: &Tokens,
    admin: UserId,
    user_id: UserId,
    now_ms: i64,
) -> Result<User> {
    let user = match store.set_banned(user_id, false, admin, now_ms).await? {
        BanOutcome::Changed(user) => {
            tracing::info!(%user_id, by = %admin, "user unbanned");
            user
        }
        BanOutcome::Unchanged(user) => user,
        BanOutcome::UnknownUser => return Err(Error::NotFound("user")),
    };
    tokens.unban(user_id);
    Ok(user)
}
