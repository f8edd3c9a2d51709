//! JWT access tokens and the ban list.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use engine::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use clock::{Clock, SystemClock};

use crate::role::Role;

/// A verified caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
}

/// The issuer every access token names (`iss`), checked on verify.
pub const ISSUER: &str = "hexdash";

/// The audience every access token is for (`aud`), checked on verify: a
/// token minted with the same secret for another purpose is refused.
pub const AUDIENCE: &str = "hexdash-api";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: UserId,
    role: Role,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
    /// When it was issued, Unix ms (`iat` in seconds cannot tell a token
    /// from a logout in the same second). Tokens from before it existed
    /// count as issued at `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ims: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("the session was logged out")]
    Revoked,
    #[error("account is banned")]
    Banned,
}

impl AuthError {
    pub fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Invalid => "invalid_token",
            AuthError::Expired => "token_expired",
            AuthError::Revoked => "token_revoked",
            AuthError::Banned => "banned",
        }
    }
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in_s: u64,
}

/// Cloneable; all clones share keys and the ban list.
#[derive(Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
    /// Expiry is checked against this clock, not jsonwebtoken's own reading
    /// of the system clock, so a test can make a token expire by advancing
    /// a manual clock ([`Tokens::with_clock`]).
    clock: Arc<dyn Clock>,
}

/// Seconds of clock skew an expiry check forgives (as jsonwebtoken's
/// default leeway does), so a token is not refused at the very edge.
const LEEWAY_S: u64 = 5;
/// [`LEEWAY_S`] in milliseconds.
const LEEWAY_MS: i64 = 5_000;

/// Logout cutoffs held before the expired ones are swept out.
const CUTOFFS_PRUNE_AT: usize = 10_000;

struct Inner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl_s: u64,
    banned: RwLock<HashSet<UserId>>,
    /// Per user who logged out: tokens issued before this (Unix ms) are
    /// refused ([`Tokens::refuse_issued_before`]).
    cutoffs: RwLock<HashMap<UserId, i64>>,
    /// Every ban, as it is applied: the edges close the banned user's open
    /// sessions ([`Tokens::subscribe_bans`]). Bounded ([`BAN_QUEUE`]); a
    /// listener that lags checks its sessions against the ban list.
    bans: tokio::sync::broadcast::Sender<UserId>,
}

/// Bans a lagging listener may fall behind by before it must sweep its
/// sessions: bans are an admin's act, a handful a minute at most.
const BAN_QUEUE: usize = 256;

impl Tokens {
    /// `secret` signs and verifies tokens (HS256); `access_ttl_s` is how long
    /// an access token lives.
    pub fn new(secret: &[u8], access_ttl_s: u64) -> Self {
        // The algorithm is pinned: a token whose header names another
        // (`none`, RS256 with the secret as a public key …) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_S;
        // Expiry is checked in `verify` against the injected clock.
        validation.validate_exp = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        Self {
            inner: Arc::new(Inner {
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
                validation,
                access_ttl_s,
                banned: RwLock::new(HashSet::new()),
                cutoffs: RwLock::new(HashMap::new()),
                bans: tokio::sync::broadcast::channel(BAN_QUEUE).0,
            }),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same tokens checking expiry against `clock` (the application's
    /// injected clock; the system clock by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now on this tokens' clock, in Unix seconds: what [`Tokens::issue`]
    /// takes to issue a token valid from now.
    pub fn now_s(&self) -> u64 {
        u64::try_from(self.clock.now_ms().div_euclid(1000)).unwrap_or(0)
    }

    pub fn access_ttl_s(&self) -> u64 {
        self.inner.access_ttl_s
    }

    /// A signed access token for `principal`, valid from `now_s` (Unix seconds).
    pub fn issue(&self, principal: Principal, now_s: u64) -> IssuedToken {
        let now_ms = i64::try_from(now_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.issue_at_ms(principal, now_ms)
    }

    /// A signed access token for `principal`, valid from `now_ms` (Unix ms).
    pub fn issue_at_ms(&self, principal: Principal, now_ms: i64) -> IssuedToken {
        // Before 1970 counts as 1970 (see `clock::SystemClock`).
        let now_s = u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0);
        let claims = Claims {
            sub: principal.user_id,
            role: principal.role,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now_s,
            exp: now_s + self.inner.access_ttl_s,
            ims: Some(now_ms),
        };
        let token = match jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.encoding,
        ) {
            Ok(t) => t,
            // HS256 over serialisable claims has no failure mode.
            Err(e) => unreachable!("HS256 signing cannot fail: {e}"),
        };
        IssuedToken {
            token,
            expires_in_s: self.inner.access_ttl_s,
        }
    }

    /// Checks the algorithm (HS256 only), signature, issuer, audience,
    /// expiry and the ban list.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, &self.inner.validation)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                })?;
        if data.claims.exp.saturating_add(LEEWAY_S) < self.now_s() {
            return Err(AuthError::Expired);
        }
        let principal = Principal {
            user_id: data.claims.sub,
            role: data.claims.role,
        };
        if self.is_banned(principal.user_id) {
            return Err(AuthError::Banned);
        }
        if let Some(&cutoff) = self.inner.cutoffs.read().get(&principal.user_id) {
            let issued_ms = data.claims.ims.unwrap_or_else(|| {
                i64::try_from(data.claims.iat.saturating_mul(1000)).unwrap_or(i64::MAX)
            });
            if issued_ms < cutoff {
                return Err(AuthError::Revoked);
            }
        }
        Ok(principal)
    }

    /// Refuses `user`'s tokens issued before `cutoff_ms` (a logout), here;
    /// an earlier cutoff than the one held changes nothing. Cutoffs older
    /// than any live token (the access lifetime ago) are forgotten as new
    /// ones come, so the map holds the recent logouts only.
    pub fn refuse_issued_before(&self, user: UserId, cutoff_ms: i64) {
        let mut cutoffs = self.inner.cutoffs.write();
        if cutoffs.len() >= CUTOFFS_PRUNE_AT {
            let ttl_ms =
                i64::try_from(self.inner.access_ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX);
            let oldest_live = self.clock.now_ms().saturating_sub(ttl_ms + LEEWAY_MS);
            cutoffs.retain(|_, cut| *cut > oldest_live);
        }
        let held = cutoffs.entry(user).or_insert(cutoff_ms);
        *held = (*held).max(cutoff_ms);
    }

    /// Refuses `user`'s tokens from now on, and tells the listeners of
    /// [`Tokens::subscribe_bans`] (which close the user's open sessions).
    pub fn ban(&self, user: UserId) {
        self.inner.banned.write().insert(user);
        // No listener (tests of other parts, start-up) is fine.
        let _ = self.inner.bans.send(user);
    }

    /// Every ban from now on, as it is applied: what the edges listen to
    /// to close a banned user's open sessions. On `Lagged`, check every
    /// session against [`Tokens::is_banned`].
    pub fn subscribe_bans(&self) -> tokio::sync::broadcast::Receiver<UserId> {
        self.inner.bans.subscribe()
    }

    pub fn unban(&self, user: UserId) {
        self.inner.banned.write().remove(&user);
    }

    pub fn is_banned(&self, user: UserId) -> bool {
        self.inner.banned.read().contains(&user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_s() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn issue_then_verify() {
        let tokens = Tokens::new(b"secret", 60);
        let p = Principal {
            user_id: UserId::new(),
            role: Role::Driver,
        };
        let t = tokens.issue(p, now_s());
        assert_eq!(tokens.verify(&t.token), Ok(p));
    }

    #[test]
    fn rejects_other_key_garbage_expired_and_banned() {
        let tokens = Tokens::new(b"secret", 60);
        let p = Principal {
            user_id: UserId::new(),
            role: Role::Customer,
        };
        let other = Tokens::new(b"other", 60).issue(p, now_s());
        assert_eq!(tokens.verify(&other.token), Err(AuthError::Invalid));
        assert_eq!(tokens.verify("not-a-jwt"), Err(AuthError::Invalid));
        let old = tokens.issue(p, now_s() - 3600);
        assert_eq!(tokens.verify(&old.token), Err(AuthError::Expired));
        let t = tokens.issue(p, now_s());
        tokens.ban(p.user_id);
        assert_eq!(tokens.verify(&t.token), Err(AuthError::Banned));
        tokens.unban(p.user_id);
        assert_eq!(tokens.verify(&t.token), Ok(p));
    }

    #[test]
    fn a_logout_refuses_the_tokens_issued_before_it_only() {
        let clock = Arc::new(clock::ManualClock::new(1_700_000_000_123));
        let tokens = Tokens::new(b"secret", 3600).with_clock(clock.clone());
        let p = Principal {
            user_id: UserId::new(),
            role: Role::Customer,
        };
        let other = Principal {
            user_id: UserId::new(),
            role: Role::Customer,
        };
        let before = tokens.issue_at_ms(p, clock.now_ms());
        let others = tokens.issue_at_ms(other, clock.now_ms());
        clock.advance(1);
        tokens.refuse_issued_before(p.user_id, clock.now_ms());
        assert_eq!(tokens.verify(&before.token), Err(AuthError::Revoked));
        assert_eq!(tokens.verify(&others.token), Ok(other));
        // A login in the same millisecond as the logout, after it, works.
        let after = tokens.issue_at_ms(p, clock.now_ms());
        assert_eq!(tokens.verify(&after.token), Ok(p));
        // An older cutoff (a late event from another node) moves nothing.
        tokens.refuse_issued_before(p.user_id, clock.now_ms() - 10_000);
        assert_eq!(tokens.verify(&before.token), Err(AuthError::Revoked));
        assert_eq!(tokens.verify(&after.token), Ok(p));
    }

    /// Same secret, but the wrong issuer or audience, one missing, or
    /// another algorithm in the header (HS512, `none`): all refused.
    #[test]
    fn pins_algorithm_issuer_and_audience() {
        let secret = b"secret";
        let tokens = Tokens::new(secret, 60);
        let user = UserId::new();
        let sign = |alg: Algorithm, claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(alg),
                &claims,
                &EncodingKey::from_secret(secret),
            )
            .unwrap()
        };
        let claims = |iss: Option<&str>, aud: Option<&str>| {
            let mut c = serde_json::json!({"sub": user, "role": "admin", "iat": now_s(), "exp": now_s() + 60});
            if let Some(iss) = iss {
                c["iss"] = iss.into();
            }
            if let Some(aud) = aud {
                c["aud"] = aud.into();
            }
            c
        };
        let good = sign(Algorithm::HS256, claims(Some(ISSUER), Some(AUDIENCE)));
        assert!(tokens.verify(&good).is_ok(), "the control token verifies");
        for refused in [
            sign(
                Algorithm::HS256,
                claims(Some("someone-else"), Some(AUDIENCE)),
            ),
            sign(
                Algorithm::HS256,
                claims(Some(ISSUER), Some("another-service")),
            ),
            sign(Algorithm::HS256, claims(None, Some(AUDIENCE))),
            sign(Algorithm::HS256, claims(Some(ISSUER), None)),
            sign(Algorithm::HS512, claims(Some(ISSUER), Some(AUDIENCE))),
        ] {
            assert_eq!(
                tokens.verify(&refused),
                Err(AuthError::Invalid),
                "{refused}"
            );
        }
        // `alg: none`, unsigned: the good token's claims with its header
        // swapped and the signature dropped.
        let payload = good.split('.').nth(1).unwrap();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        let unsigned = format!("{none_header}.{payload}.");
        assert_eq!(tokens.verify(&unsigned), Err(AuthError::Invalid));
    }

    #[test]
    fn expiry_is_checked_against_the_injected_clock() {
        let clock = clock::ManualClock::new(1_765_000_000_000);
        let tokens = Tokens::new(b"secret", 60).with_clock(Arc::new(clock.clone()));
        let p = Principal {
            user_id: UserId::new(),
            role: Role::Driver,
        };
        let t = tokens.issue(p, tokens.now_s());
        clock.advance((60 + LEEWAY_S as i64) * 1000);
        assert_eq!(tokens.verify(&t.token), Ok(p));
        clock.advance(1_000);
        assert_eq!(tokens.verify(&t.token), Err(AuthError::Expired));
    }
}
