//! [`Windows`]: fixed-window hit counters every node shares, for limits
//! that must hold across the cluster (login and signup attempts). A window
//! is one key, `{prefix}limit:{name}`, holding its hit count and expiring
//! when the window ends: the first hit opens it (`INCR`, then `PEXPIRE`
//! in the same script, so a window can never be left without an end).

use crate::redis_conn::{Error, Redis};

/// Counts a hit and opens the window on the first: returns the hits and
/// the milliseconds left. A key found without an end (it cannot be made by
/// this script, but an operator may have written one) gets one.
const HIT_SCRIPT: &str = "local n = redis.call('INCR', KEYS[1]) \
     local left = redis.call('PTTL', KEYS[1]) \
     if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) left = tonumber(ARGV[1]) end \
     return {n, left}";

/// A window's state as read from Redis: hits and milliseconds left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Hits counted in the window (0: none open).
    pub hits: u64,
    /// Milliseconds until it ends (0 when none is open).
    pub left_ms: u64,
}

/// The shared windows under `{key_prefix}limit:`. Cheap to clone.
#[derive(Clone)]
pub struct Windows {
    redis: Redis,
    key_prefix: String,
}

impl Windows {
    /// The windows under `{key_prefix}limit:`.
    pub fn new(redis: Redis, key_prefix: &str) -> Windows {
        Windows {
            redis,
            key_prefix: key_prefix.to_owned(),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}limit:{name}", self.key_prefix)
    }

    /// Counts one hit on `name`, opening a window of `window_ms` if none
    /// is open; the window after the hit.
    pub async fn hit(&self, name: &str, window_ms: u64) -> Result<Window, Error> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(HIT_SCRIPT)
            .arg(1)
            .arg(self.key(name))
            .arg(window_ms.max(1));
        let (hits, left_ms): (i64, i64) = self.redis.query(&cmd).await?;
        Ok(window(hits, left_ms))
    }

    /// `name`'s window without counting a hit.
    pub async fn peek(&self, name: &str) -> Result<Window, Error> {
        let key = self.key(name);
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
        let (hits, left_ms): (Option<i64>, i64) = self.redis.query(&pipe).await?;
        Ok(window(hits.unwrap_or(0), left_ms))
    }

    /// Closes `name`'s window.
    pub async fn clear(&self, name: &str) -> Result<(), Error> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(name));
        self.redis.query::<()>(&del).await
    }
}

/// Redis's answers as a [`Window`]: a missing key (PTTL -2) is no window.
fn window(hits: i64, left_ms: i64) -> Window {
    if left_ms == -2 || hits <= 0 {
        return Window {
            hits: 0,
            left_ms: 0,
        };
    }
    Window {
        hits: u64::try_from(hits).unwrap_or(0),
        left_ms: u64::try_from(left_ms).unwrap_or(0),
    }
}
