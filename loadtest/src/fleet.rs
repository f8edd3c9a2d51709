//! The MQTT drivers: connect them (bounded concurrency), then drive them
//! from a few sender tasks ("shards") on an open-loop schedule.
//!
//! Every driver owns a fixed slot in the ping period (its phase), so the
//! offered load is smooth and does not depend on how fast the server
//! answers. A shard visits its drivers in phase order, writes each one's
//! pings with a non-blocking `try_write`, and never waits for a socket:
//! - a socket whose buffer is full (the server is not reading) loses that
//!   tick's pings, counted as `blocked`;
//! - a shard running late by a whole period skips the lost ticks, counted
//!   as `missed` (the generator, not the server, was too slow; the report
//!   shows it so such a run can be discarded);
//! - the delay between a ping's scheduled and actual send is the
//!   generator's `lag` histogram.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::geo::LatLng;
use crate::mqtt;
use crate::ping;
use crate::roads::RoadNetwork;
use crate::stats::{Counter, SharedLatency, Window};
use crate::walker::Walker;

/// Every this many visits a shard reads (and discards) what the broker sent
/// a driver (PINGRESPs, offers), so receive buffers never fill and a
/// closed connection is noticed.
const READ_EVERY_VISITS: u32 = 16;

/// A shard that never sleeps (behind schedule) still publishes its counts
/// this often, so the measurement window sees them.
const FLUSH_EVERY_VISITS: u32 = 256;

/// Scratch space for those reads.
const READ_CHUNK: usize = 4096;

/// One driver as the generator knows it before connecting.
#[derive(Clone, Debug)]
pub struct DriverSpec {
    /// Stable index: seeds the driver's walker.
    pub index: usize,
    pub client_id: String,
    /// `(username, password)`; `None` connects anonymously (the peer).
    pub credentials: Option<(String, String)>,
    pub topic: String,
}

/// What the senders share with the report.
#[derive(Default)]
pub struct FleetStats {
    pub connected: Counter,
    pub connect_failed: Counter,
    pub disconnected: Counter,
    /// Pings fully handed to the kernel.
    pub sent: Counter,
    /// Pings not sent because the socket was full (server backpressure).
    pub blocked: Counter,
    /// Pings not sent because the generator fell a period behind.
    pub missed: Counter,
    /// Scheduled-to-sent delay.
    pub lag: SharedLatency,
}

/// How the drivers ping.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub ping_hz: f64,
    /// Pings per write.
    pub batch: usize,
    pub seed: u64,
    pub min_speed_mps: f64,
    pub max_speed_mps: f64,
}

impl Schedule {
    /// Time between two writes of one driver.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(self.batch as f64 / self.ping_hz)
    }

    /// MQTT keep-alive: at least three writes fit in it, at least a minute.
    pub fn keep_alive_s(&self) -> u16 {
        (self.period().as_secs_f64() * 3.0)
            .ceil()
            .clamp(60.0, 65_535.0) as u16
    }

    /// The walker of driver `index`: its path depends on the seed and the
    /// index only.
    pub fn walker(&self, net: &RoadNetwork, index: usize) -> Walker {
        let seed = self.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Walker::new(net, seed, self.min_speed_mps..=self.max_speed_mps)
    }
}

/// A connected driver.
pub struct Conn {
    index: usize,
    stream: TcpStream,
    topic: Vec<u8>,
    walker: Walker,
    next_due: Instant,
    /// The unsent tail of a partial write; a tick with a tail left is
    /// `blocked`.
    pending: Vec<u8>,
    visits: u32,
    dead: bool,
}

impl Conn {
    /// The driver's index (its account, and the seed of its walker).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The driver's socket, for exchanges before its senders start (a
    /// courier subscribes to its offers and takes one on it).
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Where the driver is now.
    pub fn position(&self, net: &RoadNetwork) -> LatLng {
        self.walker.fix(net).position
    }

    /// Sends one ping from where the driver is, stamped now, and waits until
    /// it is written.
    pub async fn ping_once(&mut self, net: &RoadNetwork) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut payload = Vec::with_capacity(160);
        ping::write_json(&mut payload, &self.walker.fix(net), now_ms());
        let mut packet = Vec::with_capacity(256);
        mqtt::encode_publish(&mut packet, &self.topic, &payload);
        self.stream.write_all(&packet).await
    }
}

/// Connection attempts per driver: a burst of thousands of connects can
/// overflow a broker's accept queue (the kernel then resets some), and a
/// real app reconnects too.
const CONNECT_ATTEMPTS: u32 = 5;
/// Pause before the first retry; doubled for each further one.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

async fn connect_with_retry(
    addr: &str,
    client_id: &str,
    creds: Option<(&str, &str)>,
    keep_alive_s: u16,
) -> anyhow::Result<TcpStream> {
    let mut backoff = CONNECT_BACKOFF;
    let mut attempt = 1;
    loop {
        match mqtt::connect(addr, client_id, creds, keep_alive_s).await {
            Ok(s) => return Ok(s),
            Err(e) if attempt >= CONNECT_ATTEMPTS => return Err(e),
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
        }
    }
}

/// The broker driver `index` connects to: drivers are spread round-robin
/// over `addrs` (several hexdash nodes' brokers), so driver `i` always
/// lands on the same one.
fn broker_of(addrs: &[String], index: usize) -> &str {
    // `Cli::mqtt_addrs` never returns an empty list; an empty one here is
    // a caller's bug, answered with an address nothing listens on.
    addrs
        .get(index % addrs.len().max(1))
        .map_or("127.0.0.1:0", String::as_str)
}

/// Connects every driver, `concurrency` at a time. Failures are counted
/// (and the first few printed); the connected drivers are returned in
/// index order.
pub async fn connect_all(
    specs: Vec<DriverSpec>,
    addrs: &[String],
    schedule: &Schedule,
    net: &RoadNetwork,
    concurrency: usize,
    stats: &FleetStats,
) -> Vec<Conn> {
    let keep_alive_s = schedule.keep_alive_s();
    let mut results = futures_util::stream::iter(specs.into_iter().map(|spec| async move {
        let creds = spec
            .credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()));
        let addr = broker_of(addrs, spec.index);
        let r = connect_with_retry(addr, &spec.client_id, creds, keep_alive_s).await;
        (spec, r)
    }))
    .buffer_unordered(concurrency.max(1));
    let mut conns = Vec::new();
    let mut errors_printed = 0;
    while let Some((spec, r)) = results.next().await {
        match r {
            Ok(stream) => {
                stats.connected.add(1);
                conns.push(Conn {
                    index: spec.index,
                    stream,
                    topic: spec.topic.into_bytes(),
                    walker: schedule.walker(net, spec.index),
                    next_due: Instant::now(),
                    pending: Vec::new(),
                    visits: 0,
                    dead: false,
                });
            }
            Err(e) => {
                stats.connect_failed.add(1);
                if errors_printed < 3 {
                    eprintln!("driver {} failed to connect: {e:#}", spec.client_id);
                    errors_printed += 1;
                }
            }
        }
    }
    conns.sort_by_key(|c| c.index);
    conns
}

/// How long a preloaded driver waits for the broker to close after its
/// DISCONNECT (the broker closing first keeps TIME_WAIT sockets, and so
/// ephemeral ports, on the broker's side). Brief: on loopback Linux reuses
/// TIME_WAIT ports anyway (`tcp_tw_reuse` = 2, the default).
const PRELOAD_CLOSE_WAIT: Duration = Duration::from_millis(200);

/// Fills the index without holding connections: every driver connects,
/// sends one ping from its walker's start, disconnects. Returns how many
/// pinged.
pub async fn preload(
    specs: Vec<DriverSpec>,
    addrs: &[String],
    schedule: &Schedule,
    net: &RoadNetwork,
    concurrency: usize,
    stats: &FleetStats,
) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let keep_alive_s = schedule.keep_alive_s();
    let mut results = futures_util::stream::iter(specs.into_iter().map(|spec| async move {
        let creds = spec
            .credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()));
        let addr = broker_of(addrs, spec.index);
        let mut stream = connect_with_retry(addr, &spec.client_id, creds, keep_alive_s).await?;
        let mut packet = Vec::with_capacity(256);
        let mut payload = Vec::with_capacity(160);
        let fix = schedule.walker(net, spec.index).fix(net);
        ping::write_json(&mut payload, &fix, now_ms());
        mqtt::encode_publish(&mut packet, spec.topic.as_bytes(), &payload);
        packet.extend_from_slice(&mqtt::DISCONNECT);
        stream.write_all(&packet).await?;
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(PRELOAD_CLOSE_WAIT, async {
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        anyhow::Ok(())
    }))
    .buffer_unordered(concurrency.max(1));
    let mut ok = 0;
    while let Some(r) = results.next().await {
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                if stats.connect_failed.get() < 3 {
                    eprintln!("preloading a driver failed: {e:#}");
                }
                stats.connect_failed.add(1);
            }
        }
    }
    ok
}

/// Spreads `conns` over `shards` sender tasks and starts them; they run
/// until `stop` is cancelled, then send DISCONNECT and close.
pub fn start(
    conns: Vec<Conn>,
    shards: usize,
    schedule: Schedule,
    net: Arc<RoadNetwork>,
    stats: Arc<FleetStats>,
    window: Window,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let shards = shards.max(1);
    let total = conns.len();
    let period = schedule.period();
    // A small head start so every shard begins on the same schedule.
    let start = Instant::now() + Duration::from_millis(50);
    let mut per_shard: Vec<Vec<Conn>> = (0..shards).map(|_| Vec::new()).collect();
    for (k, mut c) in conns.into_iter().enumerate() {
        // Phases spread evenly over the period, interleaved across shards.
        c.next_due = start + period.mul_f64(k as f64 / total.max(1) as f64);
        per_shard[k % shards].push(c);
    }
    per_shard
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|conns| {
            let sender = Shard {
                conns,
                schedule: schedule.clone(),
                net: net.clone(),
                stats: stats.clone(),
                window: window.clone(),
            };
            tokio::spawn(sender.run(stop.clone()))
        })
        .collect()
}

struct Shard {
    conns: Vec<Conn>,
    schedule: Schedule,
    net: Arc<RoadNetwork>,
    stats: Arc<FleetStats>,
    window: Window,
}

/// Counts kept locally and added to the shared counters when the shard
/// sleeps (one atomic add per counter per wake-up, not per ping).
#[derive(Default)]
struct Local {
    sent: u64,
    blocked: u64,
    missed: u64,
    disconnected: u64,
    /// Lag samples (µs) not yet in the shared histogram.
    lag_us: Vec<i64>,
}

impl Shard {
    async fn run(mut self, stop: CancellationToken) {
        let period = self.schedule.period();
        let batch = self.schedule.batch;
        let sub_dt_s = 1.0 / self.schedule.ping_hz;
        let mut buf = Vec::with_capacity(batch * 192);
        let mut payload = Vec::with_capacity(160);
        let mut scratch = vec![0u8; READ_CHUNK];
        let mut local = Local::default();
        let n = self.conns.len();
        let mut idx = 0;
        let mut visits_since_flush = 0u32;
        loop {
            let due = self.conns[idx].next_due;
            let now = Instant::now();
            if due > now {
                self.flush(&mut local);
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
            // Behind schedule this loop never sleeps: let the runtime's
            // other tasks (watchers, the progress line) run now and then,
            // publish the counts, and notice the stop.
            tokio::task::coop::consume_budget().await;
            visits_since_flush += 1;
            if visits_since_flush >= FLUSH_EVERY_VISITS {
                visits_since_flush = 0;
                self.flush(&mut local);
            }
            if stop.is_cancelled() {
                break;
            }
            let conn = &mut self.conns[idx];
            idx = (idx + 1) % n;
            if conn.dead {
                conn.next_due += period * 1000;
                continue;
            }
            let mut late = now - due;
            if late >= period {
                let skipped = (late.as_nanos() / period.as_nanos()) as u32;
                local.missed += u64::from(skipped) * batch as u64;
                conn.next_due += period * skipped;
                late -= period * skipped;
            }
            conn.next_due += period;
            if self.window.is_open() {
                local.lag_us.push(late.as_micros() as i64);
            }

            buf.clear();
            let ts_now = now_ms();
            for b in 0..batch {
                conn.walker.advance(&self.net, sub_dt_s);
                let fix = conn.walker.fix(&self.net);
                let back_ms = ((batch - 1 - b) as f64 * sub_dt_s * 1000.0) as i64;
                payload.clear();
                ping::write_json(&mut payload, &fix, ts_now - back_ms);
                mqtt::encode_publish(&mut buf, &conn.topic, &payload);
            }
            match write(conn, &buf) {
                Write::Sent => local.sent += batch as u64,
                Write::Blocked => local.blocked += batch as u64,
                Write::Closed => {
                    conn.dead = true;
                    local.disconnected += 1;
                }
            }
            conn.visits = conn.visits.wrapping_add(1);
            if conn.visits.is_multiple_of(READ_EVERY_VISITS) && !drain(conn, &mut scratch) {
                conn.dead = true;
                local.disconnected += 1;
            }
        }
        self.flush(&mut local);
        for conn in &mut self.conns {
            if !conn.dead {
                let _ = conn.stream.try_write(&mqtt::DISCONNECT);
            }
        }
    }

    fn flush(&self, local: &mut Local) {
        self.stats.sent.add(std::mem::take(&mut local.sent));
        self.stats.blocked.add(std::mem::take(&mut local.blocked));
        self.stats.missed.add(std::mem::take(&mut local.missed));
        self.stats
            .disconnected
            .add(std::mem::take(&mut local.disconnected));
        self.stats.lag.record_all(&local.lag_us);
        local.lag_us.clear();
    }
}

enum Write {
    Sent,
    Blocked,
    Closed,
}

/// Writes `buf` without waiting: first any unsent tail of the last write,
/// then the new packets (or none if the tail is still stuck).
fn write(conn: &mut Conn, buf: &[u8]) -> Write {
    if !conn.pending.is_empty() {
        match conn.stream.try_write(&conn.pending) {
            Ok(w) => {
                conn.pending.drain(..w);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Write::Closed,
        }
        if !conn.pending.is_empty() {
            return Write::Blocked;
        }
    }
    match conn.stream.try_write(buf) {
        Ok(w) => {
            if w < buf.len() {
                conn.pending.extend_from_slice(&buf[w..]);
            }
            Write::Sent
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Write::Blocked,
        Err(_) => Write::Closed,
    }
}

/// Reads whatever is waiting; `false` when the broker closed the
/// connection.
fn drain(conn: &mut Conn, scratch: &mut [u8]) -> bool {
    loop {
        match conn.stream.try_read(scratch) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_period_and_keep_alive() {
        let s = Schedule {
            ping_hz: 2.0,
            batch: 16,
            seed: 1,
            min_speed_mps: 5.0,
            max_speed_mps: 15.0,
        };
        assert_eq!(s.period(), Duration::from_secs(8));
        assert_eq!(s.keep_alive_s(), 60);
        let slow = Schedule {
            ping_hz: 0.01,
            batch: 1,
            ..s
        };
        assert_eq!(slow.keep_alive_s(), 300);
    }
}
