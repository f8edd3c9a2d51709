//! Request rate limits of the REST API: per client address and per account
//! (the subject of the request's access token), answered with `429
//! rate_limited` and `Retry-After`.
//!
//! Each limit is a token bucket per client kept as GCRA
//! ([`engine::rate::Rate`]: one timestamp per client). A client under its
//! rate is never refused; a client over it is refused until its bucket has
//! room again, which is the `Retry-After`. A bucket whose timestamp is in
//! the past is full, the same as no entry: those are swept out when a
//! shard grows, so a flood of distinct addresses cannot grow the map
//! without bound.
//!
//! The buckets live in this node's memory. In a cluster each node limits
//! on its own (behind a balancer that spreads a client over N nodes the
//! client gets up to N times the rate): a shared count would put a Redis
//! round trip in front of every request, and the login and signup limits
//! that guard the expensive paths are shared already ([`crate::limiter`]).
//!
//! Exempt: addresses in [`crate::Config::rate_limit_exempt`] from the address
//! limit (loopback by default: a reverse proxy on the same host, the load
//! generator), and admin tokens from the account limit (operators'
//! tools and the console). A refused request costs a hash lookup; it never
//! reaches a handler, the store or the password hasher.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::UserId;
use metrics::{Counter, counter};
use parking_lot::Mutex;

use crate::ApiError;

/// Counter, label `scope` (`address` or `account`): requests refused with
/// 429 by the REST API's request rate limits.
pub const RATE_LIMITED_TOTAL: &str = "hexdash_http_rate_limited_total";

/// Shards of each bucket map: requests of different clients rarely wait
/// for the same lock.
const SHARDS: usize = 16;

/// Entries a shard holds before its full buckets are first swept out.
const PRUNE_AT: usize = 10_000;

/// Token buckets by key, as GCRA timestamps ([`engine::rate::Rate`]).
pub struct Buckets<K> {
    rate: engine::rate::Rate,
    shards: Box<[Mutex<Shard<K>>]>,
}

/// One shard's timestamps, and the size at which full buckets are next
/// swept out: doubled past the live entries after a sweep, so a shard
/// full of live clients is not swept on every request.
struct Shard<K> {
    tats: HashMap<K, i64>,
    prune_at: usize,
}

impl<K: Hash + Eq> Buckets<K> {
    /// `per_s` requests a second sustained, `burst` at once from a full
    /// bucket (at least one). `None` when `per_s` is 0 (no limit).
    pub fn new(per_s: u32, burst: u32) -> Option<Self> {
        Some(Self {
            rate: engine::rate::Rate::new(per_s, burst)?,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        tats: HashMap::new(),
                        prune_at: PRUNE_AT,
                    })
                })
                .collect(),
        })
    }

    /// Takes one request from `key`'s bucket at `now_ms`, or
    /// `Err(milliseconds until it has room)`.
    pub fn take(&self, key: K, now_ms: i64) -> Result<(), u64> {
        let now_us = now_ms.saturating_mul(1000);
        let mut shard = self.shards[shard_of(&key)].lock();
        if shard.tats.len() >= shard.prune_at {
            shard.tats.retain(|_, tat| *tat > now_us);
            shard.prune_at = (shard.tats.len() * 2).max(PRUNE_AT);
        }
        let tat = shard.tats.get(&key).copied().unwrap_or(0);
        match self.rate.take(tat, now_us) {
            Ok(tat) => {
                shard.tats.insert(key, tat);
                Ok(())
            }
            // A refusal's wait is positive: the bucket leads the clock.
            Err(wait_us) => Err(u64::try_from(wait_us).unwrap_or(1).div_ceil(1000)),
        }
    }
}

fn shard_of<K: Hash>(key: &K) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    // The remainder of a division by SHARDS fits a usize.
    (hasher.finish() % SHARDS as u64) as usize
}

/// The REST API's request limits ([`limit_requests`] applies them).
pub struct Throttle {
    per_address: Option<Buckets<IpAddr>>,
    per_account: Option<Buckets<UserId>>,
    exempt: Vec<ipnet::IpNet>,
    tokens: auth::Tokens,
    clock: Arc<dyn clock::Clock>,
    refused_address: Counter,
    refused_account: Counter,
}

impl Throttle {
    /// The limits `config` sets, checking tokens with `tokens`.
    pub fn new(config: &crate::Config, tokens: auth::Tokens, clock: Arc<dyn clock::Clock>) -> Self {
        Self {
            per_address: Buckets::new(
                config.requests_per_address_per_s,
                config.request_burst_per_address,
            ),
            per_account: Buckets::new(
                config.requests_per_account_per_s,
                config.request_burst_per_account,
            ),
            exempt: config.rate_limit_exempt.clone(),
            tokens,
            clock,
            refused_address: counter!(RATE_LIMITED_TOTAL, "scope" => "address"),
            refused_account: counter!(RATE_LIMITED_TOTAL, "scope" => "account"),
        }
    }

    /// `addr` is canonical (an IPv4 client on a dual-stack socket as IPv4).
    fn is_exempt(&self, addr: IpAddr) -> bool {
        self.exempt.iter().any(|net| net.contains(&addr))
    }
}

/// Middleware: refuses a request over its address's or its account's rate
/// with `429 rate_limited` and `Retry-After`. A request with a valid token
/// carries its [`auth::Verified`] principal on, so the handler does not
/// check the token a second time.
pub async fn limit_requests(
    State(throttle): State<Arc<Throttle>>,
    request: Request,
    next: Next,
) -> Response {
    let now_ms = throttle.clock.now_ms();
    let (mut parts, body) = request.into_parts();
    if let Some(buckets) = &throttle.per_address {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            // An IPv4 client on a dual-stack socket is the same client (one
            // bucket, the IPv4 exemptions).
            .map(|info| info.0.ip().to_canonical());
        if let Some(addr) = addr.filter(|a| !throttle.is_exempt(*a))
            && let Err(wait_ms) = buckets.take(addr, now_ms)
        {
            throttle.refused_address.increment(1);
            return refusal("this address", wait_ms);
        }
    }
    if let Some(buckets) = &throttle.per_account
        && let Some(token) = auth::extract::bearer_token(&parts)
        && let Ok(principal) = throttle.tokens.verify(&token)
    {
        if principal.role != contract::Role::Admin
            && let Err(wait_ms) = buckets.take(principal.user_id, now_ms)
        {
            throttle.refused_account.increment(1);
            return refusal("this account", wait_ms);
        }
        parts.extensions.insert(auth::Verified(principal));
    }
    next.run(Request::from_parts(parts, body)).await
}

fn refusal(whom: &str, wait_ms: u64) -> Response {
    let retry_after_s = wait_ms.div_ceil(1000).max(1);
    ApiError::TooManyRequests {
        message: format!("too many requests from {whom}; retry in {retry_after_s} s"),
        retry_after_s,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_bucket() {
        let buckets = Buckets::new(10, 2).unwrap();
        assert_eq!(buckets.take("a", 1_000), Ok(()));
        assert_eq!(buckets.take("a", 1_000), Ok(()));
        // The third waits one interval (100 ms at 10/s), in whole ms.
        assert_eq!(buckets.take("a", 1_000), Err(100));
        assert_eq!(buckets.take("b", 1_000), Ok(()));
        assert_eq!(buckets.take("a", 1_100), Ok(()));
    }

    #[test]
    fn rate_zero_is_no_limit() {
        assert!(Buckets::<u8>::new(0, 10).is_none());
    }

    #[test]
    fn full_buckets_are_swept_when_a_shard_grows() {
        let buckets = Buckets::new(1_000, 1).unwrap();
        for i in 0..(PRUNE_AT * SHARDS * 2) as u32 {
            buckets.take(i, i64::from(i)).unwrap();
        }
        let held: usize = buckets.shards.iter().map(|s| s.lock().tats.len()).sum();
        assert!(held <= PRUNE_AT * SHARDS, "held {held}");
    }
}
