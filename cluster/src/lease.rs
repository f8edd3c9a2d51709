//! Leases: one node at a time does a piece of work (dispatches a region,
//! runs the once-per-cluster consumers), through Redis, with a fencing
//! token from the database.
//!
//! A lease is a Redis key: taken with `SET key value NX PX lease_ms`,
//! renewed with a compare-and-extend script (only while the value is
//! still ours), given back at a graceful stop with a compare-and-delete.
//! The value is the node id and a random nonce per acquisition, so a node
//! that lost its lease and took it again never renews the old one. On
//! taking a lease the node raises the lease's epoch in the database
//! ([`Fencing::bump`]); the epoch is its token, which the writes that must
//! come from the holder check (see `engine::region`).
//!
//! [`Leases::run`] is one loop: every `lease_renew_ms` it renews what it
//! holds and tries to take what it wants ([`Leases::want`]). A lease is
//! lost when the extend finds another value (or none), or when Redis could
//! not be reached until the lease ran out (counted from before the last
//! successful command, so the node gives up no later than Redis expires
//! the key). [`Leases::token`] answers `None` from the moment the lease
//! ran out locally, before the loop has even noticed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::redis_conn::{Error, Redis};

/// Extends the lease only while it holds our value: `1` extended, `0` not
/// ours (taken by another node, or expired).
const EXTEND_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// Deletes the lease only while it holds our value.
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) else return 0 end";

/// One lease in Redis, as its holder sees it: the primitives.
#[derive(Clone)]
pub struct Lease {
    redis: Redis,
    key: String,
}

impl Lease {
    /// The lease stored at `key`.
    pub fn new(redis: Redis, key: String) -> Lease {
        Lease { redis, key }
    }

    /// Takes the lease for `ttl_ms` if nobody holds it (`SET NX PX`);
    /// whether we got it.
    pub async fn acquire(&self, value: &str, ttl_ms: u64) -> Result<bool, Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms);
        let reply: Option<String> = self.redis.query(&cmd).await?;
        Ok(reply.is_some())
    }

    /// Extends the lease to `ttl_ms` from now if it still holds `value`;
    /// whether it did.
    pub async fn extend(&self, value: &str, ttl_ms: u64) -> Result<bool, Error> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(EXTEND_SCRIPT)
            .arg(1)
            .arg(&self.key)
            .arg(value)
            .arg(ttl_ms);
        let extended: i64 = self.redis.query(&cmd).await?;
        Ok(extended == 1)
    }

    /// Deletes the lease if it still holds `value`; whether it did.
    pub async fn release(&self, value: &str) -> Result<bool, Error> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE_SCRIPT).arg(1).arg(&self.key).arg(value);
        let deleted: i64 = self.redis.query(&cmd).await?;
        Ok(deleted == 1)
    }
}

/// Raises a lease's epoch in the database: the new holder's token.
#[async_trait::async_trait]
pub trait Fencing: Send + Sync {
    /// The lease `name`'s next epoch, now held by `holder`.
    async fn bump(&self, name: &str, holder: &str) -> Result<i64, String>;
}

/// Told when the node takes or loses a lease. Called from the lease loop:
/// return quickly (spawn what takes longer).
pub trait Listener: Send + Sync {
    /// The node now holds `name` with `token`.
    fn acquired(&self, name: &str, token: i64);
    /// The node no longer holds `name` (it holds no token for it from now
    /// on).
    fn lost(&self, name: &str);
}

/// The timings of [`Leases`].
#[derive(Clone, Copy, Debug)]
pub struct LeaseConfig {
    /// How long a lease lasts without renewal.
    pub lease_ms: u64,
    /// How often held leases are renewed and wanted ones tried.
    pub renew_ms: u64,
}

/// A lease the node holds, as `/readyz` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HeldLease {
    /// The lease (`region:{cell}`, `relay`).
    pub name: String,
    /// The fencing token (the lease's epoch when this node took it).
    pub token: i64,
    /// How long until it runs out unless renewed, ms.
    pub expires_in_ms: u64,
}

/// A lease the node holds.
#[derive(Clone, Debug)]
struct Held {
    token: i64,
    /// Our value in Redis (node id and nonce).
    value: String,
    /// Until when the lease is surely ours: the start of the last command
    /// that set its expiry, plus the lease time.
    valid_until: Instant,
}

/// The node's leases: what it wants, what it holds, and the loop that
/// keeps them. Cheap to clone.
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Redis,
    /// Put before `lease:{name}` in every key.
    key_prefix: String,
    /// This node's id, the first part of every value and the epoch rows'
    /// holder.
    holder: String,
    config: LeaseConfig,
    fencing: Arc<dyn Fencing>,
    wanted: Mutex<BTreeSet<String>>,
    held: Mutex<BTreeMap<String, Held>>,
    /// Wakes the loop when a new lease is wanted.
    wake: Notify,
}

/// The metric label of a lease: its kind, never its name (regions are
/// many).
fn kind(name: &str) -> &'static str {
    if name.starts_with("region:") {
        "region"
    } else if name == "relay" {
        "relay"
    } else {
        "other"
    }
}

impl Leases {
    /// The leases of node `holder`, with keys `{key_prefix}lease:{name}`.
    pub fn new(
        redis: Redis,
        key_prefix: &str,
        holder: &str,
        config: LeaseConfig,
        fencing: Arc<dyn Fencing>,
    ) -> Leases {
        Leases {
            inner: Arc::new(Inner {
                redis,
                key_prefix: key_prefix.to_owned(),
                holder: holder.to_owned(),
                config,
                fencing,
                wanted: Mutex::new(BTreeSet::new()),
                held: Mutex::new(BTreeMap::new()),
                wake: Notify::new(),
            }),
        }
    }

    /// Asks for the lease `name` (kept wanted until the node stops): the
    /// loop tries to take it now and at every round while another node
    /// holds it.
    pub fn want(&self, name: &str) {
        let new = self.inner.wanted.lock().insert(name.to_owned());
        if new {
            self.inner.wake.notify_one();
        }
    }

    /// The token of `name` while the node holds it and it has not run out.
    pub fn token(&self, name: &str) -> Option<i64> {
        let held = self.inner.held.lock();
        held.get(name)
            .filter(|h| Instant::now() < h.valid_until)
            .map(|h| h.token)
    }

    /// The leases held now, by name.
    pub fn held(&self) -> Vec<HeldLease> {
        let now = Instant::now();
        self.inner
            .held
            .lock()
            .iter()
            .filter(|(_, h)| now < h.valid_until)
            .map(|(name, h)| HeldLease {
                name: name.clone(),
                token: h.token,
                expires_in_ms: h.valid_until.duration_since(now).as_millis() as u64,
            })
            .collect()
    }

    fn lease(&self, name: &str) -> Lease {
        Lease::new(
            self.inner.redis.clone(),
            format!("{}lease:{name}", self.inner.key_prefix),
        )
    }

    /// Renews and takes leases every `renew_ms` until `shutdown`, telling
    /// `listener`; at the stop gives back what it holds (so another node
    /// takes over at once, not after the lease time).
    pub async fn run(self, listener: Arc<dyn Listener>, shutdown: CancellationToken) {
        let renew = Duration::from_millis(self.inner.config.renew_ms);
        loop {
            self.round(listener.as_ref()).await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(renew) => {}
                () = self.inner.wake.notified() => {}
            }
        }
        let held: Vec<(String, Held)> = std::mem::take(&mut *self.inner.held.lock())
            .into_iter()
            .collect();
        for (name, h) in held {
            listener.lost(&name);
            metrics_held(&name, -1.0);
            if let Err(e) = self.lease(&name).release(&h.value).await {
                tracing::warn!(lease = %name, error = %e, "could not give a lease back at the stop");
            }
        }
    }

    /// One round: renew every held lease, try every wanted one.
    pub async fn round(&self, listener: &dyn Listener) {
        let wanted: Vec<String> = self.inner.wanted.lock().iter().cloned().collect();
        for name in wanted {
            let held = self.inner.held.lock().get(&name).cloned();
            match held {
                Some(h) => self.renew(&name, h, listener).await,
                None => self.try_acquire(&name, listener).await,
            }
        }
    }

    async fn renew(&self, name: &str, h: Held, listener: &dyn Listener) {
        let lease_ms = self.inner.config.lease_ms;
        let started = Instant::now();
        if started >= h.valid_until {
            // Paused, or Redis unreachable, past the lease: another node
            // may hold it by now. Give up before anything else.
            self.lose(name, "expired", listener);
            return;
        }
        match self.lease(name).extend(&h.value, lease_ms).await {
            Ok(true) => {
                if let Some(held) = self.inner.held.lock().get_mut(name) {
                    held.valid_until = started + Duration::from_millis(lease_ms);
                }
            }
            Ok(false) => self.lose(name, "taken", listener),
            Err(e) => {
                if Instant::now() >= h.valid_until {
                    self.lose(name, "unreachable", listener);
                } else {
                    tracing::warn!(lease = %name, error = %e, "could not renew a lease; retrying");
                }
            }
        }
    }

    fn lose(&self, name: &str, why: &'static str, listener: &dyn Listener) {
        if self.inner.held.lock().remove(name).is_none() {
            return;
        }
        tracing::warn!(lease = %name, reason = why, "lease lost: this node stops its work");
        ::metrics::counter!(metrics::LEASE_LOST, "kind" => kind(name), "reason" => why)
            .increment(1);
        metrics_held(name, -1.0);
        listener.lost(name);
    }

    async fn try_acquire(&self, name: &str, listener: &dyn Listener) {
        let lease_ms = self.inner.config.lease_ms;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let value = format!("{}:{}", self.inner.holder, &nonce[..12]);
        let lease = self.lease(name);
        let started = Instant::now();
        match lease.acquire(&value, lease_ms).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::debug!(lease = %name, error = %e, "could not try a lease");
                return;
            }
        }
        let valid_until = started + Duration::from_millis(lease_ms);
        let token = match self.inner.fencing.bump(name, &self.inner.holder).await {
            Ok(token) => token,
            Err(e) => {
                // Without a token the lease is worth nothing: give it back
                // so another node (with a database) can take it.
                tracing::warn!(lease = %name, error = %e, "took a lease but could not raise its epoch; giving it back");
                let _ = lease.release(&value).await;
                return;
            }
        };
        if Instant::now() >= valid_until {
            // The bump outlasted the lease: someone else may hold it now.
            let _ = lease.release(&value).await;
            return;
        }
        self.inner.held.lock().insert(
            name.to_owned(),
            Held {
                token,
                value,
                valid_until,
            },
        );
        tracing::info!(lease = %name, token, "lease taken");
        ::metrics::counter!(metrics::LEASE_ACQUIRED, "kind" => kind(name)).increment(1);
        metrics_held(name, 1.0);
        listener.acquired(name, token);
    }
}

fn metrics_held(name: &str, delta: f64) {
    ::metrics::gauge!(metrics::LEASES_HELD, "kind" => kind(name)).increment(delta);
}
