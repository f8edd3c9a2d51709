//! Accounts through the public API: signup, login and token refresh, with a
//! cache file so reruns reuse what earlier runs created.
//!
//! Signup and login hash a password with argon2 (tens of milliseconds at
//! the default cost, a few at once), so 10,000 drivers take minutes the
//! first time. The cache (`--accounts-file`, JSON) keeps every account's
//! credentials and tokens; a rerun refreshes expiring tokens (a refresh
//! costs no hash), logs in again where a refresh is refused, and signs up
//! again only if the server lost the account (a fresh database).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;

/// Tokens expiring sooner than this are refreshed before a run: a run
/// must not lose its drivers to expiry halfway through.
const MIN_TOKEN_LIFE_MS: i64 = 20 * 60 * 1000;

/// One account and its current tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub email: String,
    pub password: String,
    pub user_id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at_ms: i64,
}

/// The cache file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    /// The server the accounts live on; another server starts a new cache.
    server: String,
    /// Makes emails unique per cache, so two caches never collide.
    prefix: String,
    /// Accounts by role.
    accounts: BTreeMap<String, Vec<Account>>,
}

#[derive(Deserialize)]
struct SignupResponse {
    user_id: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

/// A REST client for the account endpoints.
#[derive(Clone)]
pub struct AuthApi {
    http: reqwest::Client,
    base: String,
}

/// What a token request ended in.
enum Outcome<T> {
    Ok(T),
    /// 401/404/409: the server does not accept this (refresh token unknown,
    /// wrong password, email taken).
    Refused,
}

impl AuthApi {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.to_owned(),
        }
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<Outcome<T>> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Outcome::Ok(resp.json().await?));
        }
        if matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND | StatusCode::CONFLICT
        ) {
            return Ok(Outcome::Refused);
        }
        let text = resp.text().await.unwrap_or_default();
        bail!("POST {path}: {status}: {text}")
    }

    /// Logs in: `Ok(None)` when the credentials are refused.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<Option<TokensNow>> {
        let body = serde_json::json!({"email": email, "password": password});
        Ok(
            match self.post::<TokenResponse>("/v1/auth/login", body).await? {
                Outcome::Ok(t) => Some(t.into()),
                Outcome::Refused => None,
            },
        )
    }

    async fn refresh(&self, refresh_token: &str) -> anyhow::Result<Option<TokensNow>> {
        let body = serde_json::json!({"refresh_token": refresh_token});
        Ok(
            match self.post::<TokenResponse>("/v1/auth/refresh", body).await? {
                Outcome::Ok(t) => Some(t.into()),
                Outcome::Refused => None,
            },
        )
    }

    /// Signs up: `Ok(None)` when the email is taken.
    async fn signup(
        &self,
        email: &str,
        password: &str,
        role: &str,
    ) -> anyhow::Result<Option<String>> {
        let body = serde_json::json!({
            "email": email, "password": password, "name": format!("loadtest {role}"), "role": role,
        });
        Ok(
            match self.post::<SignupResponse>("/v1/auth/signup", body).await? {
                Outcome::Ok(s) => Some(s.user_id),
                Outcome::Refused => None,
            },
        )
    }

    /// Whether the server accepts `token` at all (a 401 means it does not,
    /// e.g. after a restart with a new random JWT secret). Any role may ask
    /// for a driver; only the status matters.
    async fn token_accepted(&self, user_id: &str, token: &str) -> anyhow::Result<bool> {
        let resp = self
            .http
            .get(format!("{}/v1/drivers/{user_id}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Ok(resp.status() != StatusCode::UNAUTHORIZED)
    }

    /// Makes `account` usable: refresh, else login, else signup + login.
    async fn revive(&self, mut account: Account, role: &str) -> anyhow::Result<Account> {
        if let Some(t) = self.refresh(&account.refresh_token).await? {
            t.apply(&mut account);
            return Ok(account);
        }
        if let Some(t) = self.login(&account.email, &account.password).await? {
            t.apply(&mut account);
            return Ok(account);
        }
        let created = self.create(&account.email, &account.password, role).await?;
        Ok(created)
    }

    /// Signs up (or, if the email exists, logs in) and returns the account.
    async fn create(&self, email: &str, password: &str, role: &str) -> anyhow::Result<Account> {
        let user_id = self.signup(email, password, role).await?;
        let tokens = self
            .login(email, password)
            .await?
            .with_context(|| format!("login refused for {email} right after signup"))?;
        let user_id = match user_id {
            Some(id) => id,
            // Taken email from an earlier run whose cache was lost: the
            // token's subject is the user id.
            None => jwt_subject(&tokens.access_token).context("token without subject")?,
        };
        let mut account = Account {
            email: email.to_owned(),
            password: password.to_owned(),
            user_id,
            access_token: String::new(),
            refresh_token: String::new(),
            expires_at_ms: 0,
        };
        tokens.apply(&mut account);
        Ok(account)
    }
}

/// Fresh tokens with their absolute expiry.
pub struct TokensNow {
    pub access_token: String,
    refresh_token: String,
    expires_at_ms: i64,
}

impl From<TokenResponse> for TokensNow {
    fn from(t: TokenResponse) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_at_ms: now_ms() + t.expires_in * 1000,
        }
    }
}

impl TokensNow {
    fn apply(self, account: &mut Account) {
        account.access_token = self.access_token;
        account.refresh_token = self.refresh_token;
        account.expires_at_ms = self.expires_at_ms;
    }
}

/// The `sub` claim of a JWT, read without verifying (the server just
/// issued it to us).
fn jwt_subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Returns `n` usable accounts of `role`, creating, refreshing and caching
/// as needed.
pub async fn ensure(
    api: &AuthApi,
    file: &Path,
    role: &str,
    n: usize,
    concurrency: usize,
    quiet: bool,
) -> anyhow::Result<Vec<Account>> {
    let mut cache = load(file, &api.base)?;
    let mut have = cache.accounts.remove(role).unwrap_or_default();
    let started = Instant::now();

    // Tokens signed with a secret the server no longer has are refused
    // everywhere: probe one and revive them all if so.
    let all_invalid = match have.first() {
        Some(a) => !api.token_accepted(&a.user_id, &a.access_token).await?,
        None => false,
    };
    let deadline = now_ms() + MIN_TOKEN_LIFE_MS;
    let (stale, fresh): (Vec<Account>, Vec<Account>) = have
        .drain(..)
        .partition(|a| all_invalid || a.expires_at_ms < deadline);
    let mut ready = fresh;
    let (revived, mut failure) = run_bounded(stale, concurrency, quiet, "refreshing", |a| {
        let api = api.clone();
        async move { api.revive(a, role).await }
    })
    .await;
    ready.extend(revived);

    let missing: Vec<usize> = (ready.len()..n).collect();
    if failure.is_none() && !missing.is_empty() {
        let prefix = cache.prefix.clone();
        let (created, e) = run_bounded(missing, concurrency, quiet, "signing up", |i| {
            let api = api.clone();
            let email = format!("lt-{prefix}-{role}-{i}@loadtest.example.com");
            let password = format!("lt-pass-{prefix}-{i}");
            async move { api.create(&email, &password, role).await }
        })
        .await;
        ready.extend(created);
        failure = e;
    }
    // Cache what exists even after a failure: the next run reuses it.
    cache.accounts.insert(role.to_owned(), ready.clone());
    save(file, &cache)?;
    if let Some(e) = failure {
        return Err(e.context(format!(
            "preparing {role} accounts ({} of {n} ready and cached); if signups or logins \
             are rate limited (429), start hexdash with HEXDASH_API__SIGNUP_ATTEMPTS_PER_ADDRESS=0 \
             HEXDASH_API__LOGIN_ATTEMPTS_PER_ADDRESS=0",
            ready.len()
        )));
    }
    if !quiet && started.elapsed() > Duration::from_secs(1) {
        eprintln!(
            "accounts: {} {role} accounts ready in {:.1}s (cached in {})",
            ready.len(),
            started.elapsed().as_secs_f64(),
            file.display()
        );
    }
    ready.truncate(n);
    Ok(ready)
}

/// Runs `f` over `items` with at most `concurrency` in flight, printing a
/// progress line. Stops at the first error and returns it with the accounts
/// made so far (which the caller still caches).
async fn run_bounded<I, F, Fut>(
    items: Vec<I>,
    concurrency: usize,
    quiet: bool,
    what: &str,
    f: F,
) -> (Vec<Account>, Option<anyhow::Error>)
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Account>>,
{
    let total = items.len();
    let mut out = Vec::with_capacity(total);
    let mut stream =
        futures_util::stream::iter(items.into_iter().map(f)).buffer_unordered(concurrency.max(1));
    let mut last_print = Instant::now();
    while let Some(r) = stream.next().await {
        match r {
            Ok(a) => out.push(a),
            Err(e) => return (out, Some(e)),
        }
        if !quiet && last_print.elapsed() >= Duration::from_secs(2) {
            eprintln!("accounts: {what} {}/{total}", out.len());
            last_print = Instant::now();
        }
    }
    (out, None)
}

fn load(file: &Path, server: &str) -> anyhow::Result<Cache> {
    let fresh = || Cache {
        server: server.to_owned(),
        prefix: format!("{:08x}", rand::random::<u32>()),
        accounts: BTreeMap::new(),
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let cache: Cache = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an accounts file", file.display()))?;
    Ok(if cache.server == server {
        cache
    } else {
        fresh()
    })
}

/// Writes the cache atomically (temporary file, then rename).
fn save(file: &Path, cache: &Cache) -> anyhow::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(cache)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

/// The admin's access token.
pub async fn admin_token(
    api: &AuthApi,
    email: &str,
    password: Option<&str>,
) -> anyhow::Result<String> {
    let password = password.context(
        "this scenario needs the admin (dispatcher): pass --admin-password or set \
         HEXDASH_ADMIN_PASSWORD (and --admin-email / HEXDASH_ADMIN_EMAIL)",
    )?;
    let tokens = api
        .login(email, password)
        .await?
        .with_context(|| format!("admin login refused for {email}"))?;
    Ok(tokens.access_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jwt_subject() {
        // {"alg":"HS256"} . {"sub":"0192-abc","role":"driver"} . sig
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMTkyLWFiYyIsInJvbGUiOiJkcml2ZXIifQ.c2ln";
        assert_eq!(jwt_subject(token).as_deref(), Some("0192-abc"));
        assert_eq!(jwt_subject("x"), None);
    }

    #[test]
    fn cache_round_trip_and_other_server() {
        let dir = std::env::temp_dir().join(format!("lt-accounts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let file = dir.join("sub").join("a.json");
        let mut cache = load(&file, "http://a").expect("fresh");
        cache.accounts.insert(
            "driver".into(),
            vec![Account {
                email: "e".into(),
                password: "p".into(),
                user_id: "u".into(),
                access_token: "t".into(),
                refresh_token: "r".into(),
                expires_at_ms: 1,
            }],
        );
        save(&file, &cache).expect("save");
        let again = load(&file, "http://a").expect("load");
        assert_eq!(again.prefix, cache.prefix);
        assert_eq!(again.accounts["driver"].len(), 1);
        let other = load(&file, "http://b").expect("load");
        assert!(other.accounts.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
