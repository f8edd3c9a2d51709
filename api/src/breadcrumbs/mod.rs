//! Breadcrumbs: each driver's recent path, kept in memory and bounded, for
//! `GET /v1/drivers/{driver_id}/track` and the routes delivered orders
//! keep (`commerce::usecase::route`, through the [`Trails`] port).
//!
//! - [`trail::Trail`]: one driver's path, pure: at most one fix per
//!   `min_spacing_ms`, none older than `window_s` before the newest, so
//!   at most `window_s * 1000 / min_spacing_ms + 1` points of 16 bytes
//!   (the default hour at 5 s: 721 points, about 12 KiB) per driver.
//! - [`Breadcrumbs`]: every driver's trail in a sharded map (short
//!   critical sections; the feeding task is the only writer), and who is
//!   forgotten: a driver not heard from for `forget_after_s` (server
//!   time) loses its trail and its memory.
//! - [`Breadcrumbs::run`]: the task that feeds it from the engine's
//!   `Moved` stream, as the arrival fences do: the ping path does nothing
//!   more (the stream is published under the engine's lock already;
//!   this is one more reader of it). A lagging reader loses the oldest
//!   moves (`hexdash_breadcrumbs_lagged_total`): a gap in a path, which
//!   the downsampling would mostly have dropped anyway.
//!
//! Times in a trail are the fixes' device times (what ingest accepted),
//! so a path reads as the driver moved; only forgetting uses the server's
//! clock.

pub mod trail;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use commerce::ports::Trails;
use commerce::store::RoutePoint;
use engine::{DriverId, Moved, RecvError, TryRecvError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use self::trail::{Bounds, Crumb, Trail};

/// Drivers with a trail now (gauge).
pub const DRIVERS: &str = "hexdash_breadcrumbs_drivers";
/// Fixes kept and dropped by the downsampling, by `outcome`.
pub const FIXES_TOTAL: &str = "hexdash_breadcrumbs_fixes_total";
/// Moves the breadcrumbs task lost because it lagged.
pub const LAGGED_TOTAL: &str = "hexdash_breadcrumbs_lagged_total";

/// The most points one driver's trail may hold (`window_s` over
/// `min_spacing_ms`): bounds memory per driver at 16 bytes a point
/// (about 128 KiB).
pub const MAX_POINTS_PER_DRIVER: usize = 8_192;
/// The most points a delivered order's route may keep.
pub const MAX_ROUTE_POINTS: usize = 10_000;
/// Shards of the driver map: the feeding task and readers rarely meet on
/// one lock.
const SHARDS: usize = 16;
/// How often drivers not heard from are looked for, at most.
const FORGET_SWEEP_MAX: Duration = Duration::from_secs(60);

/// HELP text of this module's metrics (see [`crate::describe_metrics`]).
pub(crate) fn describe() {
    metrics::describe_gauge!(DRIVERS, "Drivers whose recent path is kept in memory");
    metrics::describe_counter!(
        FIXES_TOTAL,
        "Driver fixes offered to the breadcrumb trails, by outcome (kept, or dropped by the downsampling)"
    );
    metrics::describe_counter!(
        LAGGED_TOTAL,
        "Driver moves the breadcrumb trails lost by lagging behind the engine"
    );
}

/// The `[breadcrumbs]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// How far back a driver's path is kept, seconds (before its newest
    /// fix). 0: no breadcrumbs (tracks are empty, delivered orders keep
    /// a straight route from pickup to dropoff).
    pub window_s: u64,
    /// The least time between two kept fixes of a driver, ms: a 1 Hz ping
    /// stream keeps one in five at the default.
    pub min_spacing_ms: u64,
    /// A driver not heard from for this long (offline, gone) is forgotten:
    /// its trail and its memory go, seconds.
    pub forget_after_s: u64,
    /// The most points a delivered order's route keeps, pickup and
    /// dropoff included: the breadcrumbs between are downsampled to fit.
    pub route_max_points: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_s: 3_600,
            min_spacing_ms: 5_000,
            forget_after_s: 3_600,
            route_max_points: 500,
        }
    }
}

/// Settings that cannot work together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `min_spacing_ms` is 0 while breadcrumbs are on.
    #[error("breadcrumbs.min_spacing_ms must be at least 1")]
    NoSpacing,
    /// The window holds more points than a trail may.
    #[error(
        "breadcrumbs.window_s * 1000 / min_spacing_ms + 1 is {0} points per driver, more than {MAX_POINTS_PER_DRIVER}: widen the spacing or shorten the window"
    )]
    TooManyPoints(u64),
    /// `route_max_points` outside 2 to [`MAX_ROUTE_POINTS`].
    #[error("breadcrumbs.route_max_points must be between 2 and {MAX_ROUTE_POINTS}")]
    RoutePoints,
}

impl Config {
    /// Whether breadcrumbs are kept at all.
    pub fn enabled(&self) -> bool {
        self.window_s > 0
    }

    /// Checks the settings work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(commerce::usecase::route::MIN_ROUTE_POINTS..=MAX_ROUTE_POINTS)
            .contains(&self.route_max_points)
        {
            return Err(ConfigError::RoutePoints);
        }
        if !self.enabled() {
            return Ok(());
        }
        if self.min_spacing_ms == 0 {
            return Err(ConfigError::NoSpacing);
        }
        let points = self.window_s.saturating_mul(1_000) / self.min_spacing_ms + 1;
        if points > MAX_POINTS_PER_DRIVER as u64 {
            return Err(ConfigError::TooManyPoints(points));
        }
        Ok(())
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            window_ms: i64::try_from(self.window_s.saturating_mul(1_000)).unwrap_or(i64::MAX),
            min_spacing_ms: i64::try_from(self.min_spacing_ms.max(1)).unwrap_or(i64::MAX),
        }
    }
}

/// Every driver's recent path. Cheap to share (`Arc`); one task writes
/// ([`Breadcrumbs::run`]), requests read.
pub struct Breadcrumbs {
    config: Config,
    bounds: Bounds,
    shards: Box<[Mutex<HashMap<DriverId, Trail>>]>,
}

impl Breadcrumbs {
    /// Empty trails kept by `config` (validated by the caller).
    pub fn new(config: Config) -> Breadcrumbs {
        Breadcrumbs {
            bounds: config.bounds(),
            config,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn shard(&self, driver_id: DriverId) -> &Mutex<HashMap<DriverId, Trail>> {
        // UUIDv7's low bits are random: an even spread.
        let i = (driver_id.as_uuid().as_u128() % SHARDS as u128) as usize;
        &self.shards[i]
    }

    /// Offers `driver_id`'s fix at `position`, recorded at `at_ms` (device
    /// time), heard at `now_ms` (server time); whether it was kept.
    pub fn record(
        &self,
        driver_id: DriverId,
        position: engine::LatLng,
        at_ms: i64,
        now_ms: i64,
    ) -> bool {
        if !self.config.enabled() {
            return false;
        }
        let mut shard = self.shard(driver_id).lock();
        let trail = shard.entry(driver_id).or_default();
        trail.last_seen_ms = now_ms;
        trail.push(Crumb::new(position, at_ms), self.bounds)
    }

    /// `driver_id`'s kept fixes from `from_ms` to `to_ms` (inclusive),
    /// oldest first.
    pub fn between(&self, driver_id: DriverId, from_ms: i64, to_ms: i64) -> Vec<Crumb> {
        self.shard(driver_id)
            .lock()
            .get(&driver_id)
            .map_or_else(Vec::new, |t| t.between(from_ms, to_ms))
    }

    /// Drivers with a trail.
    pub fn drivers(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Forgets the drivers not heard from since before `now_ms -
    /// forget_after_s`; how many.
    pub fn forget_idle(&self, now_ms: i64) -> usize {
        let horizon_ms =
            i64::try_from(self.config.forget_after_s.saturating_mul(1_000)).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(horizon_ms);
        let mut forgotten = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let before = shard.len();
            shard.retain(|_, t| t.last_seen_ms >= cutoff);
            forgotten += before - shard.len();
        }
        forgotten
    }

    /// Feeds the trails from `engine`'s moves until `shutdown`, forgetting
    /// idle drivers as it goes. Subscribes when called (before ingest
    /// applies a ping, so no fix is missed); does nothing when off.
    pub fn run(
        self: Arc<Self>,
        engine: engine::Handle,
        clock: Arc<dyn clock::Clock>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        let moves = self.config.enabled().then(|| engine.subscribe_moves());
        async move {
            let Some(moves) = moves else { return };
            describe();
            self.feed(moves, clock, shutdown).await;
        }
    }

    async fn feed(
        &self,
        mut moves: engine::Receiver<Moved>,
        clock: Arc<dyn clock::Clock>,
        shutdown: CancellationToken,
    ) {
        let every = Duration::from_secs(self.config.forget_after_s.max(1)).min(FORGET_SWEEP_MAX);
        let mut sweep = tokio::time::interval(every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = sweep.tick() => {
                    self.forget_idle(clock.now_ms());
                    metrics::gauge!(DRIVERS).set(self.drivers() as f64);
                }
                m = moves.recv_direct() => {
                    let now_ms = clock.now_ms();
                    match m {
                        Ok(m) => self.on_move(&m, now_ms),
                        Err(RecvError::Overflowed(n)) => {
                            metrics::counter!(LAGGED_TOTAL).increment(n);
                        }
                        Err(RecvError::Closed) => return,
                    }
                    // What queued meanwhile, under the same clock reading
                    // (at most what the stream holds, so a flood cannot
                    // keep it here).
                    for _ in 0..moves.len() {
                        match moves.try_recv() {
                            Ok(m) => self.on_move(&m, now_ms),
                            Err(TryRecvError::Overflowed(n)) => {
                                metrics::counter!(LAGGED_TOTAL).increment(n);
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Closed) => return,
                        }
                    }
                }
            }
            // The stream is not tokio-aware: give other tasks on this
            // worker their turn under sustained load.
            tokio::task::coop::consume_budget().await;
        }
    }

    fn on_move(&self, m: &Moved, now_ms: i64) {
        let kept = self.record(m.driver_id, m.position, m.recorded_at_ms, now_ms);
        let outcome = if kept { "kept" } else { "dropped" };
        metrics::counter!(FIXES_TOTAL, "outcome" => outcome).increment(1);
    }
}

impl Trails for Breadcrumbs {
    fn between(&self, driver_id: DriverId, from_ms: i64, to_ms: i64) -> Vec<RoutePoint> {
        Breadcrumbs::between(self, driver_id, from_ms, to_ms)
            .into_iter()
            .map(|c| RoutePoint {
                position: c.position(),
                at_ms: c.at_ms,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use clock::Clock;
    use engine::LatLng;

    use super::*;

    fn config() -> Config {
        Config {
            window_s: 60,
            min_spacing_ms: 5_000,
            forget_after_s: 600,
            route_max_points: 50,
        }
    }

    #[test]
    fn settings_are_checked() {
        let check = |c: Config, expected: Result<(), ConfigError>| {
            assert_eq!(c.validate(), expected, "{c:?}");
        };
        check(Config::default(), Ok(()));
        check(
            Config {
                min_spacing_ms: 0,
                ..config()
            },
            Err(ConfigError::NoSpacing),
        );
        check(
            Config {
                window_s: 24 * 3_600,
                min_spacing_ms: 1_000,
                ..config()
            },
            Err(ConfigError::TooManyPoints(86_401)),
        );
        check(
            Config {
                route_max_points: 1,
                ..config()
            },
            Err(ConfigError::RoutePoints),
        );
        // Off: spacing does not matter.
        check(
            Config {
                window_s: 0,
                min_spacing_ms: 0,
                ..config()
            },
            Ok(()),
        );
        assert_eq!(Config::default().bounds().max_points(), 721);
    }

    #[test]
    fn drivers_not_heard_from_are_forgotten() {
        let crumbs = Breadcrumbs::new(config());
        let here = LatLng::new(57.7, 11.97).unwrap();
        let (a, b) = (DriverId::new(), DriverId::new());
        assert!(crumbs.record(a, here, 1_000, 1_000_000));
        assert!(crumbs.record(b, here, 1_000, 1_500_000));
        assert_eq!(crumbs.drivers(), 2);
        // a was last heard 600 s before: kept at the horizon, gone after.
        assert_eq!(crumbs.forget_idle(1_600_000), 0);
        assert_eq!(crumbs.forget_idle(1_600_001), 1);
        assert!(crumbs.between(a, i64::MIN, i64::MAX).is_empty());
        assert_eq!(crumbs.between(b, i64::MIN, i64::MAX).len(), 1);
    }

    #[test]
    fn off_keeps_nothing() {
        let crumbs = Breadcrumbs::new(Config {
            window_s: 0,
            ..config()
        });
        let here = LatLng::new(57.7, 11.97).unwrap();
        assert!(!crumbs.record(DriverId::new(), here, 1, 1));
        assert_eq!(crumbs.drivers(), 0);
    }

    /// The task keeps what the engine's moves say, downsampled.
    #[tokio::test]
    async fn the_task_reads_the_engines_moves() {
        let engine = engine::Handle::new(engine::Config::default());
        let crumbs = Arc::new(Breadcrumbs::new(config()));
        let clock = Arc::new(clock::ManualClock::new(1_700_000_000_000));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(crumbs.clone().run(
            engine.clone(),
            clock.clone(),
            shutdown.clone(),
        ));
        let driver = DriverId::new();
        let t0 = 1_700_000_000_000 - 30_000;
        for i in 0..30 {
            let ping = engine::Ping {
                driver_id: driver,
                position: LatLng::new(57.7 + i as f64 * 1e-4, 11.97).unwrap(),
                recorded_at_ms: t0 + i * 1_000,
                heading_deg: None,
                speed_mps: None,
                accuracy_m: None,
            };
            engine.apply_ping(&ping, clock.now_ms());
        }
        let kept = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let kept = crumbs.between(driver, i64::MIN, i64::MAX);
                if kept.last().is_some_and(|c| c.at_ms == t0 + 25_000) {
                    return kept;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the task keeps the last kept fix");
        let times: Vec<i64> = kept.iter().map(|c| (c.at_ms - t0) / 1_000).collect();
        assert_eq!(times, [0, 5, 10, 15, 20, 25]);
        shutdown.cancel();
        task.await.unwrap();
    }
}
