//! Nearest-driver queries: hexdash's `GET /v1/drivers/nearby` (admin token),
//! the Redis peer's `GEOSEARCH key FROMLONLAT lng lat BYRADIUS r m ASC COUNT
//! k`, or the PostGIS peer's KNN `SELECT` (see `postgis`).
//!
//! Closed loop: `conns` workers, each sending its next query when the last
//! answered (measures capacity). Open loop: queries scheduled at a fixed
//! rate, each timed from its scheduled instant, so a stalled server shows
//! as latency (no coordinated omission); a query finding all `conns` slots
//! busy is dropped and counted. The scheduler wakes every millisecond, so
//! open-loop latencies include up to about a millisecond of its own delay.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::geo::LatLng;
use crate::roads::RoadNetwork;
use crate::stats::{Counter, Latency, SharedLatency, Window};
use crate::walker::SplitMix64;

/// How often the open-loop scheduler wakes; it issues every query due
/// since its last wake-up (tokio timers have millisecond resolution).
const SCHEDULER_TICK: Duration = Duration::from_millis(1);

#[derive(Default)]
pub struct NearbyStats {
    pub ok: Counter,
    pub errors: Counter,
    /// Open loop only: queries not sent because every slot was busy.
    pub dropped: Counter,
    /// Drivers returned, summed (mean = results / ok).
    pub results: Counter,
    pub latency: SharedLatency,
}

/// What to ask.
#[derive(Clone, Debug)]
pub struct Query {
    pub radius_m: f64,
    pub limit: usize,
    /// hexdash's `status` filter.
    pub status: String,
}

/// Where queries go.
#[derive(Clone)]
pub enum Backend {
    Hexdash {
        http: reqwest::Client,
        base: String,
        token: String,
    },
    Redis {
        conns: Vec<redis::aio::MultiplexedConnection>,
        key: String,
    },
    /// A pool of `--nearby-conns` PostgreSQL connections.
    Postgis(crate::postgis::Queries),
    /// Restaurant search (`GET /v1/restaurants`), no token needed; each
    /// query asks for one of `terms` ("" = no text), picked by the point.
    Search {
        http: reqwest::Client,
        base: String,
        terms: Arc<Vec<String>>,
    },
}

#[derive(Deserialize)]
struct SearchResponse {
    results: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct NearbyResponse {
    drivers: Vec<IgnoredAny>,
}

impl Backend {
    /// A Redis backend with `n` connections (queries are spread over them).
    pub async fn redis(url: &str, key: &str, n: usize) -> anyhow::Result<Backend> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            conns.push(crate::bridge::redis_connection(url).await?);
        }
        Ok(Backend::Redis {
            conns,
            key: key.to_owned(),
        })
    }

    /// One query; the number of drivers found.
    async fn query(&self, slot: usize, at: LatLng, q: &Query) -> anyhow::Result<usize> {
        match self {
            Backend::Hexdash { http, base, token } => {
                // Numbers and a plain word: nothing to percent-encode.
                let url = format!(
                    "{base}/v1/drivers/nearby?lat={}&lng={}&radius_m={}&limit={}&status={}",
                    at.lat, at.lng, q.radius_m, q.limit, q.status
                );
                let resp = http
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(resp.json::<NearbyResponse>().await?.drivers.len())
            }
            Backend::Search { http, base, terms } => {
                // The point's digits pick the term, so a seeded run asks
                // the same questions.
                let pick = (at.lat * 1e6 + at.lng * 1e6).abs() as usize % terms.len().max(1);
                let term = terms.get(pick).map_or("", String::as_str);
                let url = format!(
                    "{base}/v1/restaurants?lat={}&lng={}&limit={}&q={}",
                    at.lat,
                    at.lng,
                    q.limit,
                    percent_encode(term)
                );
                let resp = http.get(url).send().await?.error_for_status()?;
                Ok(resp.json::<SearchResponse>().await?.results.len())
            }
            Backend::Redis { conns, key } => {
                let mut conn = conns[slot % conns.len()].clone();
                let found: Vec<String> = redis::cmd("GEOSEARCH")
                    .arg(key)
                    .arg("FROMLONLAT")
                    .arg(at.lng)
                    .arg(at.lat)
                    .arg("BYRADIUS")
                    .arg(q.radius_m)
                    .arg("m")
                    .arg("ASC")
                    .arg("COUNT")
                    .arg(q.limit)
                    .query_async(&mut conn)
                    .await?;
                Ok(found.len())
            }
            Backend::Postgis(queries) => {
                crate::postgis::nearest(queries, at, q.radius_m, q.limit).await
            }
        }
    }
}

/// `s` for a query string: unreserved ASCII as is, every other byte as
/// `%XX` (UTF-8).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A seeded query point on the road network (where customers and
/// restaurants are).
fn query_point(net: &RoadNetwork, rng: &mut SplitMix64) -> LatLng {
    net.position(rng.below(net.node_count()) as u32)
}

/// Starts the query load; tasks end when `stop` is cancelled.
#[allow(clippy::too_many_arguments)]
pub fn start(
    backend: Backend,
    query: Query,
    conns: usize,
    rate_per_s: f64,
    seed: u64,
    net: Arc<RoadNetwork>,
    stats: Arc<NearbyStats>,
    window: Window,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let conns = conns.max(1);
    if rate_per_s > 0.0 {
        let task = open_loop(
            backend, query, conns, rate_per_s, seed, net, stats, window, stop,
        );
        return vec![tokio::spawn(task)];
    }
    (0..conns)
        .map(|slot| {
            let (backend, query, net, stats, window, stop) = (
                backend.clone(),
                query.clone(),
                net.clone(),
                stats.clone(),
                window.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut rng = SplitMix64::new(seed ^ 0x6E65_6172 ^ slot as u64);
                let mut local = Latency::new();
                while !stop.is_cancelled() {
                    let at = query_point(&net, &mut rng);
                    let started = Instant::now();
                    let r = tokio::select! {
                        () = stop.cancelled() => break,
                        r = backend.query(slot, at, &query) => r,
                    };
                    if let Some(us) = record(&stats, &window, started, r) {
                        local.record_us(us);
                    }
                    if local.len() >= 1024 {
                        stats.latency.merge(&local);
                        local.reset();
                    }
                }
                stats.latency.merge(&local);
            })
        })
        .collect()
}

/// Counts one answer; its latency (µs since `scheduled`) when the window
/// is open.
fn record(
    stats: &NearbyStats,
    window: &Window,
    scheduled: Instant,
    r: anyhow::Result<usize>,
) -> Option<i64> {
    match r {
        Ok(n) => {
            stats.ok.add(1);
            stats.results.add(n as u64);
            window
                .is_open()
                .then(|| scheduled.elapsed().as_micros() as i64)
        }
        Err(e) => {
            if stats.errors.get() < 3 {
                eprintln!("nearby query failed: {e:#}");
            }
            stats.errors.add(1);
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn open_loop(
    backend: Backend,
    query: Query,
    conns: usize,
    rate_per_s: f64,
    seed: u64,
    net: Arc<RoadNetwork>,
    stats: Arc<NearbyStats>,
    window: Window,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(conns));
    let mut rng = SplitMix64::new(seed ^ 0x6E65_6172);
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate_per_s);
    let mut issued: u64 = 0;
    let mut tick = tokio::time::interval(SCHEDULER_TICK);
    let query = Arc::new(query);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let due = crate::clock::due_count(start.elapsed().as_secs_f64(), rate_per_s);
        while issued < due {
            let scheduled = start + interval.mul_f64(issued as f64);
            issued += 1;
            let at = query_point(&net, &mut rng);
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                stats.dropped.add(1);
                continue;
            };
            let (backend, query, stats, window) = (
                backend.clone(),
                query.clone(),
                stats.clone(),
                window.clone(),
            );
            let slot = issued as usize;
            tokio::spawn(async move {
                let r = backend.query(slot, at, &query).await;
                if let Some(us) = record(&stats, &window, scheduled, r) {
                    stats.latency.record_all(&[us]);
                }
                drop(permit);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("pad thai"), "pad%20thai");
        assert_eq!(percent_encode("köttbullar"), "k%C3%B6ttbullar");
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
    }
}
