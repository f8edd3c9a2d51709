//! The peer stack's bridge, as a team without hexdash would write it: one
//! MQTT subscriber on `drivers/+/location` at the broker (Mosquitto), and a
//! writer that puts every position into Redis with `GEOADD`, pipelined.
//! Nearest-driver queries then go to Redis (`GEOSEARCH`, see `nearby`).
//!
//! It runs inside the load generator, so its CPU shows under the
//! generator's process, not the peer servers'; the report says so.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::GeoAdd;
use crate::clock::now_us;
use crate::mqtt::{self, Packet};
use crate::ping;
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
    /// Pings written to Redis.
    pub written: Counter,
    /// Payloads or topics that were not a ping.
    pub bad: Counter,
    /// Ping `ts` to GEOADD acknowledged.
    pub latency: SharedLatency,
}

struct Position {
    member: String,
    lat: f64,
    lng: f64,
    ts_ms: Option<i64>,
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

/// Connects to the broker and Redis and starts the bridge's two tasks.
pub async fn start(
    mqtt_addr: &str,
    redis_url: &str,
    key: String,
    mode: GeoAdd,
    stats: std::sync::Arc<BridgeStats>,
    window: Window,
    stop: CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let redis = redis_connection(redis_url).await?;
    let mut stream = mqtt::connect(mqtt_addr, "loadtest-bridge", None, 60).await?;
    mqtt::subscribe(&mut stream, "drivers/+/location").await?;
    let (tx, rx) = mpsc::channel::<Vec<Position>>(QUEUE_BATCHES);
    let reader = tokio::spawn(read_loop(stream, tx, stats.clone(), stop.clone()));
    let writer = tokio::spawn(write_loop(redis, key, mode, rx, stats, window));
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
    mut redis: redis::aio::MultiplexedConnection,
    key: String,
    mode: GeoAdd,
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
        let result = match mode {
            GeoAdd::Pipeline => {
                let mut pipe = redis::pipe();
                for p in &batch {
                    pipe.cmd("GEOADD")
                        .arg(&key)
                        .arg(p.lng)
                        .arg(p.lat)
                        .arg(&p.member)
                        .ignore();
                }
                pipe.query_async::<()>(&mut redis).await
            }
            GeoAdd::Multi => {
                let mut cmd = redis::cmd("GEOADD");
                cmd.arg(&key);
                for p in &batch {
                    cmd.arg(p.lng).arg(p.lat).arg(&p.member);
                }
                cmd.query_async::<()>(&mut redis).await
            }
        };
        if let Err(e) = result {
            eprintln!("bridge: GEOADD failed: {e}");
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
}
