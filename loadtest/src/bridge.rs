//! The peer stacks' bridge, as a team without hexdash would write it: one
//! MQTT subscriber on `drivers/+/location` at the broker (Mosquitto), and a
//! writer that puts every position into the peer's index: Redis with
//! `GEOADD`, pipelined (`--target peer-bridge`), or a PostGIS table with one
//! batched UPSERT per batch (`--target peer-postgis`, see `postgis`).
//! Nearest-driver queries then go to that index (see `nearby`).
//!
//! It runs inside the load generator, so its CPU shows under the
//! generator's process, not the peer servers'; the report says so.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::GeoAdd;
use crate::clock::{now_ms, now_us};
use crate::mqtt::{self, Packet};
use crate::ping;
use crate::postgis;
use crate::stats::{Counter, SharedLatency, Window};

/// Positions sent to the writer in one message: the reader drains whatever
/// the socket had, up to this.
const MAX_BATCH: usize = 1024;

/// Batches queued between reader and writer. Full: the reader waits, TCP
/// pushes back on the broker, and the broker's own policy (drop or queue)
/// decides; that is the peer's real behaviour under overload.
const QUEUE_BATCHES: usize = 64;

/// The subscriber keeps its connection alive this often when idle.
const PINGREQ_EVERY: Duration = Duration::from_secs(20);

/// Read buffer of the subscriber.
const READ_BUF: usize = 256 * 1024;

#[derive(Default)]
pub struct BridgeStats {
    /// Pings the bridge received from the broker.
    pub received: Counter,
    /// Pings written to the index.
    pub written: Counter,
    /// Pings in batches the index refused (the error is printed).
    pub failed: Counter,
    /// Payloads or topics that were not a ping.
    pub bad: Counter,
    /// Ping `ts` to the write acknowledged (GEOADD, or UPSERT committed).
    pub latency: SharedLatency,
}

impl BridgeStats {
    /// Every received ping has been written, refused or rejected.
    fn caught_up(&self) -> bool {
        self.written.get() + self.failed.get() + self.bad.get() >= self.received.get()
    }
}

/// One driver's position as the bridge read it.
pub struct Position {
    /// The driver id from the topic.
    pub member: String,
    pub lat: f64,
    pub lng: f64,
    pub ts_ms: Option<i64>,
}

/// Where the bridge writes.
pub enum Store {
    Redis {
        conn: redis::aio::MultiplexedConnection,
        key: String,
        mode: GeoAdd,
    },
    Postgis(postgis::Writer),
}

impl Store {
    /// A Redis GEO key, written with GEOADD in `mode`.
    pub async fn redis(url: &str, key: String, mode: GeoAdd) -> anyhow::Result<Store> {
        Ok(Store::Redis {
            conn: redis_connection(url).await?,
            key,
            mode,
        })
    }

    /// What the writes are, for messages.
    pub fn write_name(&self) -> &'static str {
        match self {
            Store::Redis { .. } => "GEOADD",
            Store::Postgis(_) => "UPSERT",
        }
    }

    async fn write(&mut self, batch: &[Position]) -> anyhow::Result<()> {
        match self {
            Store::Redis { conn, key, mode } => {
                match mode {
                    GeoAdd::Pipeline => {
                        let mut pipe = redis::pipe();
                        for p in batch {
                            pipe.cmd("GEOADD")
                                .arg(key.as_str())
                                .arg(p.lng)
                                .arg(p.lat)
                                .arg(&p.member)
                                .ignore();
                        }
                        pipe.query_async::<()>(conn).await?;
                    }
                    GeoAdd::Multi => {
                        let mut cmd = redis::cmd("GEOADD");
                        cmd.arg(key.as_str());
                        for p in batch {
                            cmd.arg(p.lng).arg(p.lat).arg(&p.member);
                        }
                        cmd.query_async::<()>(conn).await?;
                    }
                }
                Ok(())
            }
            Store::Postgis(writer) => writer.write(batch, now_ms()).await,
        }
    }
}

/// The driver id of `drivers/{id}/location`.
fn driver_of(topic: &[u8]) -> Option<&str> {
    let topic = std::str::from_utf8(topic).ok()?;
    topic.strip_prefix("drivers/")?.strip_suffix("/location")
}

/// A Redis connection without the client's default 500 ms response
/// timeout: a load generator measures slow answers, it does not abandon
/// them (a GEOSEARCH over 100,000 drivers can take longer under load).
pub async fn redis_connection(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).context("bad --redis-url")?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .with_context(|| format!("connecting to Redis at {url}"))
}

/// Connects to the broker and starts the bridge's two tasks, writing into
/// `store`.
pub async fn start(
    mqtt_addr: &str,
    store: Store,
    stats: std::sync::Arc<BridgeStats>,
    window: Window,
    stop: CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut stream = mqtt::connect(mqtt_addr, "loadtest-bridge", None, 60).await?;
    mqtt::subscribe(&mut stream, "drivers/+/location").await?;
    let (tx, rx) = mpsc::channel::<Vec<Position>>(QUEUE_BATCHES);
    let reader = tokio::spawn(read_loop(stream, tx, stats.clone(), stop.clone()));
    let writer = tokio::spawn(write_loop(store, rx, stats, window));
    Ok(vec![reader, writer])
}

async fn read_loop(
    stream: tokio::net::TcpStream,
    tx: mpsc::Sender<Vec<Position>>,
    stats: std::sync::Arc<BridgeStats>,
    stop: CancellationToken,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    let mut chunk = vec![0u8; READ_BUF];
    let mut keepalive = tokio::time::interval(PINGREQ_EVERY);
    loop {
        let n = tokio::select! {
            () = stop.cancelled() => break,
            _ = keepalive.tick() => {
                if wr.write_all(&mqtt::PINGREQ).await.is_err() { break; }
                continue;
            }
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => { eprintln!("bridge: the broker closed the subscription"); break; }
                Ok(n) => n,
            },
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        let mut batch = Vec::new();
        loop {
            match mqtt::decode(&buf[used..]) {
                Ok(Some((packet, len))) => {
                    if let Packet::Publish { topic, payload } = packet {
                        stats.received.add(1);
                        match (driver_of(topic), ping::decode(payload)) {
                            (Some(id), Some(p)) => batch.push(Position {
                                member: id.to_owned(),
                                lat: p.lat,
                                lng: p.lng,
                                ts_ms: p.ts,
                            }),
                            _ => stats.bad.add(1),
                        }
                    }
                    used += len;
                    if batch.len() >= MAX_BATCH
                        && tx.send(std::mem::take(&mut batch)).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("bridge: {e:#}");
                    return;
                }
            }
        }
        buf.drain(..used);
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return;
        }
    }
}

async fn write_loop(
    mut store: Store,
    mut rx: mpsc::Receiver<Vec<Position>>,
    stats: std::sync::Arc<BridgeStats>,
    window: Window,
) {
    let mut samples = Vec::with_capacity(MAX_BATCH);
    while let Some(mut batch) = rx.recv().await {
        // Coalesce what else is queued, up to a few batches.
        while batch.len() < MAX_BATCH * 4 {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        if let Err(e) = store.write(&batch).await {
            eprintln!("bridge: {} failed: {e:#}", store.write_name());
            stats.failed.add(batch.len() as u64);
            continue;
        }
        stats.written.add(batch.len() as u64);
        if window.is_open() {
            let now = now_us();
            samples.clear();
            samples.extend(
                batch
                    .iter()
                    .filter_map(|p| p.ts_ms)
                    .map(|ts| now - ts * 1000),
            );
            stats.latency.record_all(&samples);
        }
    }
}

/// How often [`wait_caught_up`] looks.
const CATCH_UP_POLL: Duration = Duration::from_millis(50);
/// The bridge counts as caught up once nothing new arrived for this long.
const CATCH_UP_QUIET: Duration = Duration::from_millis(500);

/// Waits, at most `limit`, until every ping the bridge received has been
/// written and none arrived for [`CATCH_UP_QUIET`] (pings still in the
/// broker arrive meanwhile). Returns whether it caught up.
pub async fn wait_caught_up(stats: &BridgeStats, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = stats.received.get();
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        let received = stats.received.get();
        if received != last {
            last = received;
            quiet_since = now;
        }
        if stats.caught_up() && now - quiet_since >= CATCH_UP_QUIET {
            return true;
        }
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
}

/// Empties the peer's index before a run.
pub async fn clear_index(redis_url: &str, key: &str) -> anyhow::Result<()> {
    let mut conn = redis_connection(redis_url).await?;
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_to_driver() {
        assert_eq!(driver_of(b"drivers/abc/location"), Some("abc"));
        assert_eq!(driver_of(b"drivers/abc/offers"), None);
        assert_eq!(driver_of(b"x/abc/location"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_until_written_and_quiet() {
        let stats = std::sync::Arc::new(BridgeStats::default());
        stats.received.add(10);
        stats.written.add(9);
        // One ping short: never caught up within the limit.
        assert!(!wait_caught_up(&stats, Duration::from_secs(2)).await);
        stats.bad.add(1);
        let t0 = tokio::time::Instant::now();
        assert!(wait_caught_up(&stats, Duration::from_secs(2)).await);
        assert!(t0.elapsed() >= CATCH_UP_QUIET);
        // Refused writes count as handled.
        stats.received.add(5);
        stats.failed.add(5);
        assert!(wait_caught_up(&stats, Duration::from_secs(2)).await);
    }
}
