//! Drivers' positions and presence between nodes, by region, through Redis
//! (ARCHITECTURE.md, "Scale-out"). [`Positions`] is one node's part:
//!
//! - **Out**: the engine's [`engine::Tap`] ([`outbox`]) gathers every local
//!   ping and declaration; every `publish_interval_ms` one pipeline
//!   carries a `PUBLISH` per region (`{prefix}pos:{region}`, a batch in
//!   [`codec`]'s binary form), and every `snapshot_interval_ms` the
//!   regions' snapshots (`{prefix}pos:snap:{region}`, a hash of each
//!   driver's latest record, expiring `snapshot_ttl_s` after its last
//!   write), the active-region list (`{prefix}pos:regions`, a sorted set
//!   by last write) and the drivers' directory (`{prefix}pos:drivers`:
//!   driver → region and node).
//! - **In**: the feed holds a set of regions ([`holds`]): subscribes to
//!   each, then loads its snapshot, and applies what it hears to the
//!   engine ([`engine::Handle::apply_replicas`]), skipping its own
//!   publications. Every `hold_refresh_ms` it asks its [`Interest`] (the
//!   watchers' orders and areas), adds the explicit holds and, on nodes
//!   that hold everything, every active region, and subscribes or drops
//!   the difference. After an outage it connects again, resubscribes and
//!   reloads every held region's snapshot.
//! - **Driver-bound messages** ([`inbox`]): offers and their ends made
//!   here, notifications and declarations for a driver pinging another
//!   node go to that node's channel (`{prefix}node:{id}`) and out through
//!   its local paths there.
//!
//! What may be lost: pings published while Redis is down (dropped and
//! counted; the next ping restates the position) and messages published
//! to a node while its feed reconnects (pub/sub keeps nothing; an offer
//! lost so expires unanswered and the matcher moves on).

pub mod codec;
pub mod holds;
pub mod inbox;
mod outbox;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use engine::{Change, DriverId, RecvError};
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics as m;
use crate::redis_conn::Redis;
pub use engine::Region;
pub use engine::region::MAX_AREA_REGIONS;
pub use holds::Holds;
pub use inbox::{Deliver, DriverMessage, UserNotice};
use outbox::Outbox;

/// Driver-bound messages waiting to be routed: a burst of offers and
/// notifications; each takes one directory read and one `PUBLISH`. When
/// full the newest is dropped and counted (an offer then expires, a
/// notification waits in the driver's feed).
const OUTGOING_QUEUE: usize = 4_096;

/// How soon after an order gets a driver the feed recomputes its regions:
/// a short gather, so a burst of assignments costs one refresh.
const ASSIGNED_REFRESH: Duration = Duration::from_millis(10);

/// How long the publisher's pipeline may take before its connection is
/// replaced: longer than a flush needs on a loaded node, so a slow one is
/// sent rather than dropped (the buffer bounds what waits meanwhile).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// The publisher's pause before it connects again after a failure
/// (updates meanwhile are dropped and counted).
const RECONNECT_PAUSE: Duration = Duration::from_millis(250);

/// The longest pause between reconnection attempts of the feed.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What a node's watchers need: regions, and drivers whose region it must
/// look up in the directory (a watched order's driver it has no fix of).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub regions: Vec<Region>,
    pub drivers: Vec<DriverId>,
}

/// Where the feed learns what this node's watchers need (the binary: the
/// gateway's subscriptions over the engine's board).
pub trait Interest: Send + Sync + 'static {
    /// The regions and drivers wanted now, regions at `resolution`.
    fn wanted(&self, resolution: engine::cells::CellResolution) -> Wanted;
}

/// No watchers (a node that only ingests).
pub struct NoInterest;

impl Interest for NoInterest {
    fn wanted(&self, _: engine::cells::CellResolution) -> Wanted {
        Wanted::default()
    }
}

/// One node's share of drivers' positions, presence and driver-bound
/// messages. Cheap to clone.
#[derive(Clone)]
pub struct Positions {
    shared: Arc<Shared>,
}

struct Shared {
    redis: Redis,
    node: String,
    config: Config,
    resolution: engine::cells::CellResolution,
    engine: engine::Handle,
    clock: Arc<dyn clock::Clock>,
    outbox: Arc<Outbox>,
    /// Explicit holds ([`Positions::hold`]).
    holds: Mutex<Holds>,
    /// `hold_regions` and, with `hold_all`, every active region.
    fixed: Vec<Region>,
    hold_all: bool,
    /// What the feed holds now (subscribed and loaded).
    held: Mutex<BTreeSet<Region>>,
    /// Regions held on demand ([`Positions::hold_around`]), each until its
    /// instant.
    on_demand: Mutex<BTreeMap<Region, tokio::time::Instant>>,
    /// Wakes the feed for a refresh now (an on-demand hold).
    wake: tokio::sync::Notify,
    /// Told after every refresh (on-demand holders wait for theirs).
    refreshed: tokio::sync::Notify,
    deliver: OnceLock<Arc<dyn Deliver>>,
    outgoing: mpsc::Sender<DriverMessage>,
    outgoing_rx: Mutex<Option<mpsc::Receiver<DriverMessage>>>,
    /// This node's own channel (`{prefix}node:{id}`) and the cluster's
    /// users' notification channel (`{prefix}notify:users`), named once:
    /// every pub/sub message is matched against them.
    own_channel: String,
    users_channel: String,
    /// Users' notifications to broadcast ([`Positions::broadcast_notify`]).
    notices: mpsc::Sender<UserNotice>,
    notices_rx: Mutex<Option<mpsc::Receiver<UserNotice>>>,
}

impl Positions {
    /// This node's part, publishing what `engine` applies locally from now
    /// on (it becomes the engine's tap). `hold_all`: hold every region
    /// with drivers (matcher nodes, until leases narrow them).
    /// `config` must be valid ([`Config::validate`]).
    pub fn new(
        redis: Redis,
        config: &Config,
        node: &str,
        engine: engine::Handle,
        presence_timeout_ms: i64,
        clock: Arc<dyn clock::Clock>,
        hold_all: bool,
    ) -> Positions {
        let resolution = config.region_resolution();
        let outbox = Arc::new(Outbox::new(
            resolution,
            presence_timeout_ms,
            config.max_pending_updates,
        ));
        if !engine.set_tap(outbox.clone()) {
            tracing::error!("the engine already had a tap; this node's pings are not shared");
        }
        let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
        let (notices, notices_rx) = mpsc::channel(OUTGOING_QUEUE);
        Positions {
            shared: Arc::new(Shared {
                redis,
                node: node.to_owned(),
                resolution,
                fixed: config.held_regions().unwrap_or_default(),
                hold_all: config.hold_all_regions.unwrap_or(hold_all),
                config: config.clone(),
                engine,
                clock,
                outbox,
                holds: Mutex::new(Holds::default()),
                held: Mutex::new(BTreeSet::new()),
                on_demand: Mutex::new(BTreeMap::new()),
                wake: tokio::sync::Notify::new(),
                refreshed: tokio::sync::Notify::new(),
                deliver: OnceLock::new(),
                outgoing,
                outgoing_rx: Mutex::new(Some(outgoing_rx)),
                own_channel: format!("{}node:{node}", config.key_prefix),
                users_channel: format!("{}notify:users", config.key_prefix),
                notices,
                notices_rx: Mutex::new(Some(notices_rx)),
            }),
        }
    }

    /// The same, handing notifications from other nodes to `deliver`.
    /// Only the first call takes effect.
    pub fn with_deliver(self, deliver: Arc<dyn Deliver>) -> Self {
        let _ = self.shared.deliver.set(deliver);
        self
    }

    /// The region of `p` at this cluster's resolution.
    pub fn region_of(&self, p: engine::LatLng) -> Region {
        Region::of_point(p, self.shared.resolution)
    }

    /// One more holder of `region` (a matcher's leased region, an
    /// on-demand query): held from the next refresh on.
    pub fn hold(&self, region: Region) {
        self.shared.holds.lock().hold(region);
    }

    /// One holder fewer of `region`; `false` when nobody held it.
    pub fn release(&self, region: Region) -> bool {
        self.shared.holds.lock().release(region)
    }

    /// Makes the feed hold every region within `radius_m` of `center` for
    /// `linger` from now (a `nearby` on a node that does not hold every
    /// region), and waits up to `wait` for a region it did not hold yet to
    /// be subscribed and loaded. Whether all of them are held now: `false`
    /// after the wait, or when the circle spans more than
    /// [`MAX_AREA_REGIONS`] regions (the node answers from what it holds).
    /// On nodes holding every active region this returns at once: a
    /// region without drivers has nothing to load.
    pub async fn hold_around(
        &self,
        center: engine::LatLng,
        radius_m: f64,
        linger: Duration,
        wait: Duration,
    ) -> bool {
        let shared = &self.shared;
        if shared.hold_all {
            return true;
        }
        let Some(regions) = Region::around(center, radius_m, shared.resolution) else {
            metrics::counter!(m::ON_DEMAND_HOLDS, "outcome" => "too_wide").increment(1);
            return false;
        };
        let until = tokio::time::Instant::now() + linger;
        {
            let mut on_demand = shared.on_demand.lock();
            for r in &regions {
                let entry = on_demand.entry(*r).or_insert(until);
                *entry = (*entry).max(until);
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut woke = false;
        loop {
            // Registered before the check, so a refresh in between is not
            // missed.
            let refreshed = shared.refreshed.notified();
            if regions.iter().all(|r| shared.held.lock().contains(r)) {
                let outcome = if woke { "loaded" } else { "held" };
                metrics::counter!(m::ON_DEMAND_HOLDS, "outcome" => outcome).increment(1);
                return true;
            }
            if !woke {
                shared.wake.notify_one();
                woke = true;
            }
            if tokio::time::timeout_at(deadline, refreshed).await.is_err() {
                metrics::counter!(m::ON_DEMAND_HOLDS, "outcome" => "timed_out").increment(1);
                return false;
            }
        }
    }

    /// The regions the feed holds now.
    pub fn held(&self) -> Vec<Region> {
        self.shared.held.lock().iter().copied().collect()
    }

    /// Sends `driver`'s stored notification to the node it pings, if that
    /// is another node (this node's own paths deliver it here). Never
    /// waits: a full queue drops it (counted).
    pub fn forward_notify(&self, driver: DriverId, notification: serde_json::Value) {
        if self.shared.outbox.is_local(driver) {
            return;
        }
        self.shared.queue(DriverMessage::Notify {
            driver_id: driver,
            notification,
        });
    }

    /// Sends `user`'s stored notification to every other node, whose
    /// `me` subscribers of the user get it there (this node pushed it to
    /// its own). Never waits: a full queue drops it (counted; the user's
    /// devices catch up from the stored feed when they resubscribe).
    pub fn broadcast_notify(&self, user: engine::UserId, notification: serde_json::Value) {
        let notice = UserNotice {
            node: self.shared.node.clone(),
            user_id: user,
            notification,
        };
        if self.shared.notices.try_send(notice).is_err() {
            metrics::counter!(m::USER_NOTICES, "outcome" => "dropped").increment(1);
        }
    }

    /// Runs the flusher, the feed and the router of driver-bound messages
    /// until `shutdown`. With `forward_offers` (matcher nodes), offers and
    /// offer ends made here for drivers pinging elsewhere go to their
    /// node; the engine's changes are subscribed when this is called.
    pub fn run(
        &self,
        interest: Arc<dyn Interest>,
        forward_offers: bool,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        let changes = forward_offers.then(|| self.shared.engine.subscribe_changes());
        let board = self.shared.engine.subscribe_changes();
        let shared = self.shared.clone();
        let outgoing = shared.outgoing_rx.lock().take();
        let notices = shared.notices_rx.lock().take();
        // The publisher runs on a thread of its own: under full ingest load
        // the runtime's workers are busy with thousands of connection
        // tasks, and a flusher queued behind them would gather seconds of
        // pings into flushes too big to send in time.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let publisher = {
            let shared = shared.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("hexdash-positions".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(flush_loop(&shared, &shutdown)),
                        Err(e) => tracing::error!(
                            error = %e,
                            "cannot start the positions publisher; this node's pings are not shared"
                        ),
                    }
                    let _ = done_tx.send(());
                })
        };
        if let Err(e) = &publisher {
            tracing::error!(error = %e, "cannot start the positions publisher's thread");
        }
        async move {
            tokio::join!(
                async {
                    if publisher.is_ok() {
                        let _ = done_rx.await;
                    }
                },
                feed_loop(&shared, interest, board, &shutdown),
                route_loop(&shared, changes, outgoing, &shutdown),
                notice_loop(&shared, notices, &shutdown),
            );
        }
    }
}

impl Shared {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn channel(&self, region: Region) -> String {
        format!("{}pos:{region}", self.config.key_prefix)
    }

    fn snapshot_key(&self, region: Region) -> String {
        format!("{}pos:snap:{region}", self.config.key_prefix)
    }

    fn regions_key(&self) -> String {
        format!("{}pos:regions", self.config.key_prefix)
    }

    fn directory_key(&self) -> String {
        format!("{}pos:drivers", self.config.key_prefix)
    }

    fn node_channel(&self, node: &str) -> String {
        format!("{}node:{node}", self.config.key_prefix)
    }

    fn queue(&self, msg: DriverMessage) {
        if self.outgoing.try_send(msg).is_err() {
            metrics::counter!(m::DRIVER_MESSAGES, "outcome" => "dropped").increment(1);
        }
    }
}

// ---- out: the flusher ----

async fn flush_loop(shared: &Shared, shutdown: &CancellationToken) {
    let interval = Duration::from_millis(shared.config.publish_interval_ms);
    let snapshot_every = shared
        .config
        .snapshot_interval_ms
        .div_ceil(shared.config.publish_interval_ms)
        .max(1);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    // A connection of the publisher's own (on its thread's runtime), made
    // again after a failure, at most every RECONNECT_PAUSE.
    let mut conn: Option<crate::redis_conn::Connection> = None;
    let mut retry_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        n += 1;
        let now = shared.now_ms();
        let flush = shared.outbox.take(n.is_multiple_of(snapshot_every), now);
        if flush.dropped > 0 {
            metrics::counter!(m::POSITIONS_DROPPED, "why" => "buffer_full")
                .increment(flush.dropped);
        }
        for (driver, availability, at_ms) in &flush.declarations {
            shared.queue(DriverMessage::availability(*driver, *availability, *at_ms));
        }
        if conn.is_none() && tokio::time::Instant::now() >= retry_at {
            match shared.redis.dedicated(PUBLISH_TIMEOUT).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    retry_at = tokio::time::Instant::now() + RECONNECT_PAUSE;
                    tracing::debug!(error = %e, "positions publisher cannot reach Redis");
                }
            }
        }
        let sent = match conn.as_mut() {
            Some(c) => send_flush(shared, c, flush, now).await,
            None => {
                drop_flush(&flush);
                true
            }
        };
        if !sent {
            conn = None;
            retry_at = tokio::time::Instant::now() + RECONNECT_PAUSE;
        }
    }
}

/// Counts a flush's live updates as dropped (Redis unreachable).
fn drop_flush(flush: &outbox::Flush) {
    if flush.live_count > 0 {
        metrics::counter!(m::POSITIONS_DROPPED, "why" => "redis")
            .increment(flush.live_count as u64);
    }
}

/// One pipeline for everything gathered; on failure the live updates are
/// dropped and counted (the next ping restates a position) and the
/// snapshot waits for the next tick's. `false`: the connection may be
/// broken.
async fn send_flush(
    shared: &Shared,
    conn: &mut crate::redis_conn::Connection,
    flush: outbox::Flush,
    now_ms: i64,
) -> bool {
    let mut pipe = redis::pipe();
    let mut commands = 0;
    let batches = (flush.live.len() + flush.full.len()) as u64;
    for (region, buf) in flush
        .live
        .iter()
        .chain(flush.full.iter().map(|(r, b)| (r, b)))
    {
        let mut payload = Vec::with_capacity(buf.records.len() + 80);
        codec::batch_header(&mut payload, &shared.node, buf.base_ms);
        payload.extend_from_slice(&buf.records);
        pipe.cmd("PUBLISH")
            .arg(shared.channel(*region))
            .arg(payload)
            .ignore();
        commands += 1;
    }
    for (region, drivers) in &flush.leaving {
        pipe.cmd("HDEL")
            .arg(shared.snapshot_key(*region))
            .arg(
                drivers
                    .iter()
                    .map(|d| d.as_uuid().into_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
            .ignore();
        commands += 1;
    }
    let ttl_ms = shared.config.snapshot_ttl_s * 1000;
    for (region, drivers) in &flush.snapshot {
        if drivers.is_empty() {
            continue;
        }
        let key = shared.snapshot_key(*region);
        let fields: Vec<(Vec<u8>, Vec<u8>)> = drivers
            .iter()
            .map(|(d, r)| {
                (
                    d.as_uuid().into_bytes().to_vec(),
                    codec::snapshot_entry(r, now_ms),
                )
            })
            .collect();
        pipe.cmd("HSET").arg(&key).arg(fields).ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
        pipe.cmd("ZADD")
            .arg(shared.regions_key())
            .arg(now_ms)
            .arg(region.to_string())
            .ignore();
        commands += 3;
    }
    if !flush.directory.is_empty() {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = flush
            .directory
            .iter()
            .map(|(d, region)| {
                (
                    d.as_uuid().into_bytes().to_vec(),
                    inbox::directory_entry(*region, &shared.node),
                )
            })
            .collect();
        pipe.cmd("HSET")
            .arg(shared.directory_key())
            .arg(entries)
            .ignore();
        // Regions nobody wrote to for the snapshots' lifetime are gone.
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(shared.regions_key())
            .arg("-inf")
            .arg(now_ms - i64::try_from(ttl_ms).unwrap_or(i64::MAX))
            .ignore();
        commands += 2;
    }
    if !flush.gone.is_empty() {
        pipe.cmd("HDEL")
            .arg(shared.directory_key())
            .arg(
                flush
                    .gone
                    .iter()
                    .map(|d| d.as_uuid().into_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
            .ignore();
        commands += 1;
    }
    if commands == 0 {
        return true;
    }
    match conn.query::<()>(&pipe).await {
        Ok(()) => {
            metrics::counter!(m::POSITIONS_PUBLISHED).increment(flush.live_count as u64);
            metrics::counter!(m::POSITIONS_BATCHES, "direction" => "published").increment(batches);
            true
        }
        Err(e) => {
            metrics::counter!(m::REDIS_ERRORS, "op" => "positions_publish").increment(1);
            drop_flush(&flush);
            tracing::debug!(error = %e, dropped = flush.live_count, "could not publish positions");
            !crate::redis_conn::broken(&e.0)
        }
    }
}

// ---- in: the feed ----

async fn feed_loop(
    shared: &Shared,
    interest: Arc<dyn Interest>,
    mut board: engine::Receiver<Change>,
    shutdown: &CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let node_channel = &shared.own_channel;
    let users_channel = &shared.users_channel;
    loop {
        shared.held.lock().clear();
        metrics::gauge!(m::REGIONS_HELD).set(0.0);
        let connected = tokio::select! {
            () = shutdown.cancelled() => return,
            c = shared.redis.pubsub() => c,
        };
        let ended = match connected {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                let (mut sink, mut stream) = pubsub.split();
                match sink.subscribe(&[&node_channel, &users_channel]).await {
                    Ok(()) => {
                        run_feed(
                            shared,
                            &interest,
                            &mut board,
                            &mut sink,
                            &mut stream,
                            shutdown,
                        )
                        .await
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match ended {
            Ok(()) => return,
            Err(e) => {
                metrics::counter!(m::REDIS_ERRORS, "op" => "positions_feed").increment(1);
                tracing::warn!(error = %e, "positions feed lost Redis; reconnecting");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Holds and applies until shutdown (`Ok`) or the connection fails.
/// Refreshes every `hold_refresh_ms`, and within [`ASSIGNED_REFRESH`] of
/// an order getting a driver on the board (a watcher of it needs the
/// driver's region from its first ping).
async fn run_feed(
    shared: &Shared,
    interest: &Arc<dyn Interest>,
    board: &mut engine::Receiver<Change>,
    sink: &mut redis::aio::PubSubSink,
    stream: &mut redis::aio::PubSubStream,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let every = Duration::from_millis(shared.config.hold_refresh_ms);
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            msg = stream.next() => match msg {
                Some(msg) => on_message(shared, &msg),
                None => return Err("the subscription connection closed".into()),
            },
            change = board.recv_direct() => match change {
                Ok(Change::Order(track)) if track.driver_id.is_some() => {
                    next = next.min(tokio::time::Instant::now() + ASSIGNED_REFRESH);
                }
                // The engine is gone: the app is stopping.
                Err(RecvError::Closed) => return Ok(()),
                // A lag loses nothing here: the next tick recomputes.
                _ => {}
            },
            () = shared.wake.notified() => {
                next = tokio::time::Instant::now();
            }
            () = tokio::time::sleep_until(next) => {
                refresh(shared, interest, sink).await?;
                shared.refreshed.notify_waiters();
                next = tokio::time::Instant::now() + every;
            }
        }
    }
}

/// Recomputes the regions to hold; subscribes to the new ones before
/// reading their snapshots, so nothing published in between is missed
/// (a fix both ways is applied once: the engine keeps the newest).
async fn refresh(
    shared: &Shared,
    interest: &Arc<dyn Interest>,
    sink: &mut redis::aio::PubSubSink,
) -> Result<(), String> {
    let wanted = interest.wanted(shared.resolution);
    let mut regions = wanted.regions;
    regions.extend(shared.fixed.iter().copied());
    if shared.hold_all {
        regions.extend(active_regions(shared).await);
    }
    if !wanted.drivers.is_empty() {
        regions.extend(directory_regions(shared, &wanted.drivers).await);
    }
    {
        let now = tokio::time::Instant::now();
        let mut on_demand = shared.on_demand.lock();
        on_demand.retain(|_, until| *until > now);
        regions.extend(on_demand.keys().copied());
    }
    let current = shared.held.lock().clone();
    let (_, plan) = shared.holds.lock().plan(regions, &current);
    if !plan.stop.is_empty() {
        let channels: Vec<String> = plan.stop.iter().map(|r| shared.channel(*r)).collect();
        sink.unsubscribe(channels)
            .await
            .map_err(|e| e.to_string())?;
        let mut held = shared.held.lock();
        for r in &plan.stop {
            held.remove(r);
        }
    }
    if !plan.start.is_empty() {
        let channels: Vec<String> = plan.start.iter().map(|r| shared.channel(*r)).collect();
        sink.subscribe(channels).await.map_err(|e| e.to_string())?;
        load_snapshots(shared, &plan.start).await?;
        shared.held.lock().extend(plan.start.iter().copied());
    }
    metrics::gauge!(m::REGIONS_HELD).set(shared.held.lock().len() as f64);
    Ok(())
}

/// Every region written to within the snapshots' lifetime.
async fn active_regions(shared: &Shared) -> Vec<Region> {
    let since = shared.now_ms() - i64::try_from(shared.config.snapshot_ttl_s * 1000).unwrap_or(0);
    let mut cmd = redis::cmd("ZRANGEBYSCORE");
    cmd.arg(shared.regions_key()).arg(since).arg("+inf");
    match shared.redis.query::<Vec<String>>(&cmd).await {
        Ok(names) => names
            .iter()
            .filter_map(|n| Region::parse(n, shared.resolution))
            .collect(),
        Err(e) => {
            metrics::counter!(m::REDIS_ERRORS, "op" => "positions_regions").increment(1);
            tracing::debug!(error = %e, "could not read the active regions");
            Vec::new()
        }
    }
}

/// The regions the directory places `drivers` in.
async fn directory_regions(shared: &Shared, drivers: &[DriverId]) -> Vec<Region> {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(shared.directory_key());
    for d in drivers {
        cmd.arg(d.as_uuid().into_bytes().to_vec());
    }
    match shared.redis.query::<Vec<Option<Vec<u8>>>>(&cmd).await {
        Ok(entries) => entries
            .iter()
            .flatten()
            .filter_map(|e| inbox::parse_directory_entry(e))
            .filter_map(|(index, _)| Region::from_index(index, shared.resolution))
            .collect(),
        Err(e) => {
            metrics::counter!(m::REDIS_ERRORS, "op" => "positions_directory").increment(1);
            tracing::debug!(error = %e, "could not read the drivers' directory");
            Vec::new()
        }
    }
}

/// Reads and applies the snapshots of `regions` (entries older than the
/// presence timeout are skipped: those drivers are offline).
async fn load_snapshots(shared: &Shared, regions: &[Region]) -> Result<(), String> {
    let mut pipe = redis::pipe();
    for r in regions {
        pipe.cmd("HGETALL").arg(shared.snapshot_key(*r));
    }
    let snapshots: Vec<std::collections::HashMap<Vec<u8>, Vec<u8>>> = shared
        .redis
        .query(&pipe)
        .await
        .map_err(|e| format!("cannot read snapshots: {e}"))?;
    let now = shared.now_ms();
    let mut replicas = Vec::new();
    let mut bad = 0u64;
    for value in snapshots.iter().flat_map(|s| s.values()) {
        match codec::parse_snapshot_entry(value) {
            Ok(r) => replicas.push(r),
            Err(_) => bad += 1,
        }
    }
    if bad > 0 {
        metrics::counter!(m::POSITIONS_UNREADABLE).increment(bad);
    }
    let applied = shared.engine.apply_replicas(&replicas, now);
    metrics::counter!(m::SNAPSHOT_LOADS).increment(regions.len() as u64);
    tracing::debug!(
        regions = regions.len(),
        entries = replicas.len(),
        applied,
        "loaded region snapshots"
    );
    Ok(())
}

fn on_message(shared: &Shared, msg: &redis::Msg) {
    let payload = msg.get_payload_bytes();
    if msg.get_channel_name() == shared.own_channel {
        match serde_json::from_slice::<DriverMessage>(payload) {
            Ok(message) => {
                metrics::counter!(m::DRIVER_MESSAGES, "outcome" => "received").increment(1);
                deliver(shared, message);
            }
            Err(_) => metrics::counter!(m::POSITIONS_UNREADABLE).increment(1),
        }
        return;
    }
    if msg.get_channel_name() == shared.users_channel {
        match serde_json::from_slice::<UserNotice>(payload) {
            Ok(notice) if notice.node == shared.node => {}
            Ok(notice) => {
                metrics::counter!(m::USER_NOTICES, "outcome" => "received").increment(1);
                if let Some(deliver) = shared.deliver.get() {
                    deliver.notify_user(notice.user_id, &notice.notification);
                }
            }
            Err(_) => metrics::counter!(m::POSITIONS_UNREADABLE).increment(1),
        }
        return;
    }
    let batch = match codec::Batch::parse(payload) {
        Ok(b) => b,
        Err(e) => {
            metrics::counter!(m::POSITIONS_UNREADABLE).increment(1);
            tracing::debug!(error = %e, channel = msg.get_channel_name(), "unreadable positions batch");
            return;
        }
    };
    if batch.node == shared.node {
        return;
    }
    let mut bad = 0u64;
    let replicas: Vec<engine::Replica> = batch
        .replicas()
        .filter_map(|r| r.map_err(|_| bad += 1).ok())
        .collect();
    if bad > 0 {
        metrics::counter!(m::POSITIONS_UNREADABLE).increment(bad);
    }
    shared.engine.apply_replicas(&replicas, shared.now_ms());
    metrics::counter!(m::POSITIONS_RECEIVED).increment(replicas.len() as u64);
    metrics::counter!(m::POSITIONS_BATCHES, "direction" => "received").increment(1);
}

/// A driver-bound message from another node, out through this node's
/// local paths.
fn deliver(shared: &Shared, message: DriverMessage) {
    match message {
        DriverMessage::Offer { .. } => {
            if let Some(offer) = message.to_offer() {
                shared.engine.publish_offer(Arc::new(offer));
            }
        }
        DriverMessage::OfferEnded {
            offer_id,
            driver_id,
            end,
        } => {
            let end = if end == "expired" {
                engine::OfferEnd::Expired
            } else {
                engine::OfferEnd::Withdrawn
            };
            shared.engine.publish_offer_end(offer_id, driver_id, end);
        }
        DriverMessage::Notify {
            driver_id,
            notification,
        } => {
            if let Some(deliver) = shared.deliver.get() {
                deliver.notify(driver_id, &notification);
            }
        }
        DriverMessage::Availability {
            driver_id,
            available,
            at_ms,
        } => {
            let availability = if available {
                engine::Availability::Available
            } else {
                engine::Availability::Offline
            };
            shared.outbox.declared(driver_id, availability, at_ms);
            shared.engine.apply_replicas(
                &[engine::Replica {
                    driver_id,
                    fix: None,
                    seen_at_ms: 0,
                    availability,
                    availability_at_ms: at_ms,
                }],
                shared.now_ms(),
            );
        }
    }
}

// ---- driver-bound messages out ----

async fn route_loop(
    shared: &Shared,
    mut changes: Option<engine::Receiver<Change>>,
    mut outgoing: Option<mpsc::Receiver<DriverMessage>>,
    shutdown: &CancellationToken,
) {
    loop {
        let message = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            Some(msg) = async {
                match outgoing.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => msg,
            change = async {
                match changes.as_mut() {
                    Some(rx) => rx.recv_direct().await,
                    None => std::future::pending().await,
                }
            } => match change {
                Ok(Change::Offer(offer)) if !offer.relayed => DriverMessage::offer(&offer),
                Ok(Change::OfferEnded { offer_id, driver_id, end }) => {
                    DriverMessage::offer_ended(offer_id, driver_id, end)
                }
                Ok(_) => continue,
                Err(RecvError::Overflowed(n)) => {
                    tracing::warn!(missed = n, "offer router fell behind the change stream; offers to other nodes were lost");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        let driver = message.driver();
        if shared.outbox.is_local(driver) {
            continue;
        }
        route(shared, &message).await;
    }
}

/// Publishes users' notifications to every node until `shutdown`.
async fn notice_loop(
    shared: &Shared,
    mut notices: Option<mpsc::Receiver<UserNotice>>,
    shutdown: &CancellationToken,
) {
    let Some(notices) = notices.as_mut() else {
        return;
    };
    loop {
        let notice = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            n = notices.recv() => match n {
                Some(n) => n,
                None => return,
            },
        };
        let Ok(payload) = serde_json::to_vec(&notice) else {
            continue;
        };
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(&shared.users_channel).arg(payload);
        match shared.redis.query::<i64>(&publish).await {
            Ok(_) => metrics::counter!(m::USER_NOTICES, "outcome" => "sent").increment(1),
            Err(e) => {
                metrics::counter!(m::REDIS_ERRORS, "op" => "user_notices").increment(1);
                metrics::counter!(m::USER_NOTICES, "outcome" => "dropped").increment(1);
                tracing::debug!(error = %e, user = %notice.user_id, "cannot broadcast a notification");
            }
        }
    }
}

/// Sends `message` to the node the directory names for its driver, if
/// another node.
async fn route(shared: &Shared, message: &DriverMessage) {
    let driver = message.driver();
    let mut cmd = redis::cmd("HGET");
    cmd.arg(shared.directory_key())
        .arg(driver.as_uuid().into_bytes().to_vec());
    let entry = match shared.redis.query::<Option<Vec<u8>>>(&cmd).await {
        Ok(entry) => entry,
        Err(e) => {
            metrics::counter!(m::REDIS_ERRORS, "op" => "driver_messages").increment(1);
            metrics::counter!(m::DRIVER_MESSAGES, "outcome" => "dropped").increment(1);
            tracing::debug!(error = %e, %driver, "cannot look a driver up");
            return;
        }
    };
    let Some(node) = entry
        .as_deref()
        .and_then(inbox::parse_directory_entry)
        .map(|(_, node)| node.to_owned())
    else {
        metrics::counter!(m::DRIVER_MESSAGES, "outcome" => "no_node").increment(1);
        return;
    };
    if node == shared.node {
        return;
    }
    let payload = match serde_json::to_vec(message) {
        Ok(p) => p,
        Err(_) => return,
    };
    let mut publish = redis::cmd("PUBLISH");
    publish.arg(shared.node_channel(&node)).arg(payload);
    match shared.redis.query::<i64>(&publish).await {
        Ok(_) => metrics::counter!(m::DRIVER_MESSAGES, "outcome" => "sent").increment(1),
        Err(e) => {
            metrics::counter!(m::REDIS_ERRORS, "op" => "driver_messages").increment(1);
            metrics::counter!(m::DRIVER_MESSAGES, "outcome" => "dropped").increment(1);
            tracing::debug!(error = %e, %driver, "cannot send a driver's message");
        }
    }
}
