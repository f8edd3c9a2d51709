//! Accounts and sessions: `POST /v1/auth/signup`, `/login`, `/refresh`,
//! `/logout`, and the start-up [`bootstrap_admin`].
//!
//! Logins are rate-limited: failed attempts per account and all attempts
//! per client address, in a window (`Config::login_*`); so are signups per
//! client address (`Config::signup_*`). Over a limit the answer is 429 with
//! `Retry-After`, before any password is hashed.
//!
//! Access tokens are short-lived JWTs from `auth::Tokens`. Refresh tokens
//! are 64 random hex characters (two v4 UUIDs: 244 random bits), stored only
//! as their SHA-256, valid for `Config::refresh_ttl_s`, and single-use: each
//! refresh revokes the old one and issues a new one in one transaction.
//! Password hashing (argon2id) runs on the blocking pool, at most
//! `Config::max_concurrent_hashes` at once ([`bounded`]); a request whose
//! client went away keeps its place until its hash is done.

use std::sync::Arc;

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use commerce::usecase::account::{self as usecase, AdminBootstrap, Signup};
use commerce::usecase::session::{self, NewRefresh, Revoke};
use engine::UserId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{MAX_NAME_CHARS, required_text};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientAddr};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// Shortest accepted password, in characters.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters: hashing cost grows with the
/// input, and nobody types more.
pub(crate) const MAX_PASSWORD_CHARS: usize = 256;
/// Longest email address, in characters (RFC 5321 path limit).
pub(crate) const MAX_EMAIL_CHARS: usize = 254;
/// Longest local part (before the `@`), in characters (RFC 5321).
const MAX_EMAIL_LOCAL_CHARS: usize = 64;
/// The document's pattern for a signup email, exactly what
/// [`normalise_email`] accepts: 1 to 64 characters before one `@`, a
/// dotted domain without empty labels, no whitespace or control
/// characters anywhere.
pub const EMAIL_PATTERN: &str = "^[^@\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]{1,64}@[^@.\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+(\\.[^@.\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+)+$";
/// The roles one may sign up for (the domain's rule, which the document
/// states).
pub(crate) const SIGNUP_ROLES: [Role; 3] = usecase::SIGNUP_ROLES;
/// Longer "refresh tokens" are not ours: refused without a lookup.
const MAX_REFRESH_TOKEN_BYTES: usize = 256;
/// Counter: signups answered 429 (`Config::signup_attempts_per_address`).
pub const SIGNUPS_RATE_LIMITED: &str = "hexdash_signups_rate_limited_total";

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Post "/v1/auth/signup" => create_account),
    route!(Post "/v1/auth/login" => create_session),
    route!(Post "/v1/auth/refresh" => refresh_session),
    route!(Post "/v1/auth/logout" => end_session),
];

// ---- wire types ----

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignupRequest {
    /// Stored lower-cased.
    #[schema(
        max_length = 254,
        pattern = "^[^@\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]{1,64}@[^@.\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+(\\.[^@.\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+)+$",
        example = "ann@example.com"
    )]
    pub email: String,
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    /// Leading and trailing whitespace is dropped.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: String,
    /// Admins are not signed up: the first is the bootstrap admin.
    #[schema(value_type = crate::openapi::SignupRole, example = "customer")]
    pub role: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignupResponse {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub email: String,
    #[schema(value_type = crate::openapi::Role)]
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// One of: `refresh_token` (a string), or `all: true` (the document says
/// so with an `anyOf`, added in `openapi`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// The refresh token to revoke.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Revoke every refresh token of the account (log out everywhere).
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogoutResponse {
    /// Refresh tokens revoked.
    pub revoked: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `"Bearer"`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

// ---- handlers ----

#[utoipa::path(
    post,
    path = "/v1/auth/signup",
    tag = "auth",
    summary = "Sign up",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created.", body = SignupResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_email`, `weak_password` (under 8 characters), `invalid_password` (over 256), `invalid_name`, `invalid_role` (not customer, restaurant or driver).", body = ErrorBody),
        (status = 409, description = "`email_taken`: an account with this email exists.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many signups from this address; `retry_after_s` in the body.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
async fn create_account(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<(StatusCode, Json<SignupResponse>)> {
    if let Some(addr) = addr {
        let now = state.clock.now_ms();
        let limit = &state.login_limits.signups_per_address;
        limit
            .attempt(&addr.to_string(), now)
            .await
            .map_err(|retry_after_s| {
                metrics::counter!(SIGNUPS_RATE_LIMITED).increment(1);
                ApiError::TooManyRequests {
                    message: "too many signups from this address; try again later".to_owned(),
                    retry_after_s,
                }
            })?;
    }
    let email = normalise_email(&req.email)?;
    check_password(&req.password)?;
    let name = required_text("invalid_name", "name", &req.name, MAX_NAME_CHARS)?;
    let Some(role) = Role::parse(&req.role).filter(|r| SIGNUP_ROLES.contains(r)) else {
        let names: Vec<&str> = SIGNUP_ROLES.iter().map(|r| r.as_str()).collect();
        return Err(ApiError::bad_request(
            "invalid_role",
            format!("role must be one of {}", names.join(", ")),
        ));
    };
    let password_hash = hash_password(&state, req.password).await?;
    let signup = Signup {
        email,
        password_hash,
        name,
        role,
    };
    let user = usecase::sign_up(
        state.store.as_ref(),
        &state.ids,
        signup,
        state.clock.now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            user_id: user.id,
            email: user.email,
            role: user.role,
        }),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    summary = "Log in",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in.", body = TokenResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields).", body = ErrorBody),
        (status = 401, description = "`invalid_credentials` (unknown email or wrong password: one answer for both) or `banned`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many failed logins for this account, or attempts from this address; `retry_after_s` in the body.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
async fn create_session(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let email = req.email.trim().to_lowercase();
    let now = state.clock.now_ms();
    let limits = &state.login_limits;
    let limited = |retry_after_s| {
        metrics::counter!("hexdash_logins_total", "outcome" => "rate_limited").increment(1);
        ApiError::TooManyRequests {
            message: "too many login attempts; try again later".to_owned(),
            retry_after_s,
        }
    };
    if let Some(addr) = addr {
        limits
            .per_address
            .attempt(&addr.to_string(), now)
            .await
            .map_err(limited)?;
    }
    limits
        .per_account
        .check(&email, now)
        .await
        .map_err(limited)?;
    let user = if email.chars().count() <= MAX_EMAIL_CHARS {
        session::account(state.store.as_ref(), &email).await?
    } else {
        None
    };
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let matches = verify_password(&state, req.password, phc).await?;
    let user = match user {
        Some(user) if matches => user,
        // One answer for an unknown email and a wrong password, after the
        // same amount of hashing work.
        _ => {
            metrics::counter!("hexdash_logins_total", "outcome" => "refused").increment(1);
            if email.chars().count() <= MAX_EMAIL_CHARS {
                limits.per_account.hit(&email, now).await;
            }
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "email or password is incorrect",
            ));
        }
    };
    limits.per_account.reset(&email).await;
    let (refresh_token, refresh) = new_refresh(&state);
    let access = session::open(state.store.as_ref(), &state.tokens, &user, refresh, now).await?;
    metrics::counter!("hexdash_logins_total", "outcome" => "ok").increment(1);
    Ok(Json(token_response(access, refresh_token)))
}

#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    summary = "Refresh the tokens",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and a new refresh token; the old refresh token is revoked.", body = TokenResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields).", body = ErrorBody),
        (status = 401, description = "`invalid_refresh_token` (unknown, expired or already used) or `banned`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    )
)]
async fn refresh_session(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    if req.refresh_token.is_empty() || req.refresh_token.len() > MAX_REFRESH_TOKEN_BYTES {
        // Not one of ours: refused without a lookup, as an unknown one is.
        return Err(ApiError::unauthorized(
            "invalid_refresh_token",
            "refresh token is invalid, expired or already used",
        ));
    }
    let now = state.clock.now_ms();
    let (refresh_token, refresh) = new_refresh(&state);
    let old_hash = sha256_hex(&req.refresh_token);
    let access =
        session::refresh(state.store.as_ref(), &state.tokens, &old_hash, refresh, now).await?;
    Ok(Json(token_response(access, refresh_token)))
}

/// Revokes the given refresh token (it must be the caller's), or all of
/// them with `all: true`, and ends every access token the caller holds
/// (`401 token_revoked` from then on, on every node); a device whose
/// refresh token was not revoked gets a new one with it.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    summary = "Log out (revoke refresh tokens)",
    request_body = LogoutRequest,
    responses(
        (status = 200, description = "The number of refresh tokens revoked. Every access token the caller held before now is refused from now on (`token_revoked`); refresh to get a new one where the refresh token was not revoked.", body = LogoutResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), or `invalid_body` when neither `refresh_token` nor `all: true` is given.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn end_session(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<LogoutRequest>,
) -> ApiResult<Json<LogoutResponse>> {
    let now = state.clock.now_ms();
    let store = state.store.as_ref();
    let hash = match (req.all, req.refresh_token.as_deref()) {
        (true, _) => None,
        (false, Some(token)) if !token.is_empty() && token.len() <= MAX_REFRESH_TOKEN_BYTES => {
            Some(sha256_hex(token))
        }
        // Not one of ours: no refresh token matches it, the access tokens
        // still end.
        (false, Some(_)) => Some(String::new()),
        (false, None) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give the refresh_token to revoke, or all: true",
            ));
        }
    };
    let which = hash.as_deref().map_or(Revoke::All, Revoke::One);
    let revoked = session::close(store, &state.tokens, principal.user_id, which, now).await?;
    Ok(Json(LogoutResponse { revoked }))
}

// ---- bootstrap ----

/// Makes sure an admin account with `email` exists, creating it with
/// `password` if not (`commerce::usecase::account`: an existing account
/// with that email and another role is an error, never silently promoted).
/// The password is hashed only when the account is created.
pub async fn bootstrap_admin(
    state: &AppState,
    email: &str,
    password: &str,
) -> ApiResult<AdminBootstrap> {
    let email = normalise_email(email)?;
    check_password(password)?;
    let store = state.store.as_ref();
    if let Some(existing) = usecase::existing_admin(store, &email).await? {
        return Ok(existing);
    }
    let password_hash = hash_password(state, password.to_owned()).await?;
    let now_ms = state.clock.now_ms();
    Ok(usecase::create_admin(store, &state.ids, &email, password_hash, now_ms).await?)
}

// ---- helpers ----

/// Checks an email address's shape ([`EMAIL_PATTERN`]: one `@`, a local
/// part of 1 to 64 characters, a dotted domain, no whitespace or control
/// characters, at most 254 characters) and lower-cases it.
pub(crate) fn normalise_email(raw: &str) -> ApiResult<String> {
    let well_formed = raw.chars().count() <= MAX_EMAIL_CHARS
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
        && match raw.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.chars().count() <= MAX_EMAIL_LOCAL_CHARS
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if well_formed {
        Ok(raw.to_lowercase())
    } else {
        Err(ApiError::bad_request(
            "invalid_email",
            "email address is not valid",
        ))
    }
}

pub(crate) fn check_password(password: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            "invalid_password",
            format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

async fn hash_password(state: &AppState, password: String) -> ApiResult<String> {
    let hasher = state.hasher.clone();
    bounded(&state.hashing, move || hasher.hash(&password))
        .await?
        .map_err(ApiError::internal)
}

/// Whether `password` matches `phc`. Without a `phc` (unknown account) the
/// same work is done and the answer is no, so timing does not reveal which
/// emails have accounts.
async fn verify_password(
    state: &AppState,
    password: String,
    phc: Option<String>,
) -> ApiResult<bool> {
    let hasher = state.hasher.clone();
    bounded(&state.hashing, move || match phc {
        Some(phc) => hasher.verify(&password, &phc),
        None => {
            let _ = hasher.hash(&password);
            false
        }
    })
    .await
}

/// Runs `work` on the blocking pool once one of `permits` is free. The
/// permit goes with the work, not with the waiting request: a client that
/// disconnects drops its request, but the hash already started runs to the
/// end and must go on counting against the bound.
async fn bounded<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        let out = work();
        drop(permit);
        out
    })
    .await
    .map_err(ApiError::internal)
}

fn refresh_ttl_ms(state: &AppState) -> i64 {
    i64::try_from(state.config.refresh_ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
}

/// A fresh refresh token for the client and what the store keeps of it.
fn new_refresh(state: &AppState) -> (String, NewRefresh) {
    let (token, hash) = new_refresh_token();
    let ttl_ms = refresh_ttl_ms(state);
    (token, NewRefresh { hash, ttl_ms })
}

/// A fresh refresh token and the hash we store for it.
fn new_refresh_token() -> (String, String) {
    let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let hash = sha256_hex(&token);
    (token, hash)
}

fn sha256_hex(s: &str) -> String {
    format!("{:x}", Sha256::digest(s.as_bytes()))
}

fn token_response(access: ::auth::IssuedToken, refresh_token: String) -> TokenResponse {
    TokenResponse {
        access_token: access.token,
        refresh_token,
        token_type: "Bearer".to_owned(),
        expires_in: access.expires_in_s,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Counts the pieces of work running at once and the most seen.
    #[derive(Default)]
    struct InFlight {
        now: AtomicUsize,
        max: AtomicUsize,
    }

    impl InFlight {
        fn enter(&self) {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(now, Ordering::SeqCst);
        }

        fn leave(&self) {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_is_bounded() {
        let permits = Arc::new(Semaphore::new(2));
        let seen = Arc::new(InFlight::default());
        let hasher = ::auth::password::Hasher::new(8 * 1024, 1).unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let (permits, seen, hasher) = (permits.clone(), seen.clone(), hasher.clone());
                tokio::spawn(async move {
                    bounded(&permits, move || {
                        seen.enter();
                        let phc = hasher.hash(&format!("password {i}"));
                        seen.leave();
                        phc
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_ok());
        }
        let max = seen.max.load(Ordering::SeqCst);
        assert!((1..=2).contains(&max), "{max} hashes at once");
    }

    /// A request dropped while its hash runs (the client went away) does not
    /// free its place early.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_hashes_still_count() {
        let permits = Arc::new(Semaphore::new(1));
        let seen = Arc::new(InFlight::default());
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = tokio::sync::oneshot::channel();
        let first = {
            let (permits, seen) = (permits.clone(), seen.clone());
            tokio::spawn(async move {
                bounded(&permits, move || {
                    seen.enter();
                    let _ = started.send(());
                    let _ = wait.recv();
                    seen.leave();
                })
                .await
            })
        };
        has_started.await.unwrap();
        first.abort();
        let second = {
            let (permits, seen) = (permits.clone(), seen.clone());
            tokio::spawn(async move {
                bounded(&permits, move || {
                    seen.enter();
                    seen.leave();
                })
                .await
            })
        };
        // Give the second request every chance to start too early (no
        // assertion on time: only on how many ran at once).
        tokio::time::sleep(Duration::from_millis(100)).await;
        release.send(()).unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(seen.max.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn email_shapes() {
        let check = |raw: &str, expected: Option<&str>| {
            assert_eq!(normalise_email(raw).ok().as_deref(), expected, "{raw:?}");
        };
        check("Ann@Example.COM", Some("ann@example.com"));
        check(" ann@example.com", None);
        check("a.b+c@mail.example.org", Some("a.b+c@mail.example.org"));
        check("", None);
        check("ann", None);
        check("@example.com", None);
        check("ann@", None);
        check("ann@localhost", None);
        check("ann@@example.com", None);
        check("a nn@example.com", None);
        check("ann@example..com", None);
        check("ann@.example.com", None);
    }

    #[test]
    fn passwords() {
        assert!(check_password("12345678").is_ok());
        assert!(check_password("1234567").is_err());
        assert!(check_password("").is_err());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, ha) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(ha, sha256_hex(&a));
        assert_eq!(ha.len(), 64);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
