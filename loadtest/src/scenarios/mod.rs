//! Scenario orchestration. Every scenario is a mix of the same components
//! (drivers, watchers, nearest-driver queries, orders; the bridge for the
//! peer) run through the same phases:
//!
//! 1. set-up: road network, accounts, connections (not measured);
//! 2. warm-up: full load for `--warmup-s` (fills the index);
//! 3. the measurement window: `--duration-s` of load, counters and the
//!    servers' CPU read at both ends;
//! 4. drain: the load stops, receivers keep listening for a second so
//!    late positions count (as latency, not as loss);
//! 5. the report.

mod deliveries;
mod drivers;
mod feeds;
pub(crate) mod orders;
mod watchers;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::accounts::{self, AuthApi};
use crate::bridge::{self, BridgeStats, Store};
use crate::cli::{Cli, Scenario, Target, Transport};
use crate::clock::now_ms;
use crate::fleet::FleetStats;
use crate::nearby::{self, Backend, NearbyStats, Query};
use crate::postgis;
use crate::proc_stats::{self, ProcessReport, Reading};
use crate::progress::{self, Rate};
use crate::report::{self, IngestReport, NearbyReport, OrdersReport, Report, TrackReport};
use crate::roads::RoadNetwork;
use crate::server_metrics::{self, PingCounts};
use crate::stats::Window;
use crate::ws::{DriverStreamStats, WatcherStats};

/// After the load stops, receivers listen this long for late positions.
const DRAIN: Duration = Duration::from_secs(1);
/// Tasks get this long, together, to finish after being stopped.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP request timeout of the REST client.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// After the preload, the peers' bridge gets this long to write what it
/// received before the run goes on regardless (and says so).
const BRIDGE_CATCH_UP: Duration = Duration::from_secs(120);

/// Which components a scenario runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    drivers: bool,
    watchers: bool,
    nearby: bool,
    orders: bool,
}

impl Plan {
    fn of(cli: &Cli) -> Plan {
        let none = Plan {
            drivers: false,
            watchers: false,
            nearby: false,
            orders: false,
        };
        match cli.scenario {
            Scenario::Ingest => Plan {
                drivers: true,
                watchers: cli.watchers > 0,
                ..none
            },
            Scenario::Track => Plan {
                drivers: true,
                watchers: true,
                ..none
            },
            Scenario::Nearby => Plan {
                drivers: true,
                nearby: true,
                ..none
            },
            Scenario::Orders => Plan {
                orders: true,
                ..none
            },
            // Search queries run through the nearby machinery.
            Scenario::Search => Plan {
                nearby: true,
                ..none
            },
            Scenario::Mixed => Plan {
                drivers: true,
                watchers: true,
                nearby: true,
                orders: cli.order_rate > 0.0,
            },
            Scenario::Accounts => none,
        }
    }
}

/// A measured server: one process, or a process with its children
/// (PostgreSQL's postmaster and its backends).
struct Watched {
    name: String,
    pid: u32,
    children: bool,
}

impl Watched {
    fn one(name: &str, pid: u32) -> Watched {
        Watched {
            name: name.to_owned(),
            pid,
            children: false,
        }
    }
}

/// The processes measured: given pids, or found by name (and, for
/// peer-postgis, `postgres_pid`: the postmaster found through a
/// connection).
fn servers(cli: &Cli, postgres_pid: Option<u32>, notes: &mut Vec<String>) -> Vec<Watched> {
    let mut out = Vec::new();
    if !cli.server_pid.is_empty() {
        for &pid in &cli.server_pid {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim_end().to_owned())
                .unwrap_or_else(|_| format!("pid {pid}"));
            out.push(Watched::one(&name, pid));
        }
    } else {
        let names: &[&str] = match cli.target {
            Target::Hexdash => &["hexdash"],
            Target::PeerBridge => &["mosquitto", "redis-server"],
            Target::PeerPostgis => &["mosquitto"],
        };
        for name in names {
            match proc_stats::find_by_name(name) {
                Ok(pid) => out.push(Watched::one(name, pid)),
                Err(e) => notes.push(format!("server CPU/RSS not measured: {e:#}")),
            }
        }
        if let Some(pid) = postgres_pid {
            out.push(Watched {
                name: "postgres".to_owned(),
                pid,
                children: true,
            });
            notes.push(
                "postgres: the PostgreSQL server's postmaster and all its child processes \
                 (this run's backends, and any other sessions, autovacuum, checkpointer and \
                 WAL writer of the whole server), summed; RSS counts shared buffers once \
                 per process"
                    .to_owned(),
            );
        }
    }
    out.push(Watched::one("loadtest", std::process::id()));
    out
}

fn sample_all(procs: &[Watched]) -> Vec<Option<Reading>> {
    procs
        .iter()
        .map(|w| proc_stats::read(w.pid, w.children).ok())
        .collect()
}

/// The peers' bridge store, ready and (unless --keep-index) empty; `None`
/// for hexdash.
async fn bridge_store(cli: &Cli) -> anyhow::Result<Option<Store>> {
    Ok(Some(match cli.target {
        Target::Hexdash => return Ok(None),
        Target::PeerBridge => {
            if !cli.keep_index {
                bridge::clear_index(&cli.redis_url, &cli.redis_key).await?;
            }
            Store::redis(&cli.redis_url, cli.redis_key.clone(), cli.bridge_geoadd).await?
        }
        Target::PeerPostgis => {
            postgis::prepare(&cli.postgis_url, &cli.postgis_table, cli.keep_index).await?;
            Store::Postgis(postgis::Writer::connect(&cli.postgis_url, &cli.postgis_table).await?)
        }
    }))
}

/// Counter readings at one instant.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    sent: u64,
    blocked: u64,
    missed: u64,
    received: u64,
    server: PingCounts,
    bridge_written: u64,
    positions: u64,
    frames: u64,
    delivered: u64,
    delivery_frames: u64,
    nearby_ok: u64,
    nearby_errors: u64,
    nearby_dropped: u64,
    nearby_results: u64,
    orders_ok: u64,
    orders_errors: u64,
    orders_dropped: u64,
    notifications: u64,
}

struct Components {
    fleet: Arc<FleetStats>,
    ws_errors: Arc<DriverStreamStats>,
    bridge: Arc<BridgeStats>,
    watchers: Arc<WatcherStats>,
    /// Customers watching their orders (`--deliveries`).
    customers: Arc<WatcherStats>,
    nearby: Arc<NearbyStats>,
    orders: Arc<orders::OrderStats>,
    /// Customers' notification feeds (`--notify-feeds`).
    feeds: Arc<WatcherStats>,
}

impl Components {
    fn snapshot(&self, server: PingCounts) -> Snapshot {
        Snapshot {
            sent: self.fleet.sent.get(),
            blocked: self.fleet.blocked.get(),
            missed: self.fleet.missed.get(),
            received: self.bridge.received.get(),
            server,
            bridge_written: self.bridge.written.get(),
            positions: self.watchers.positions.get(),
            frames: self.watchers.frames.get(),
            delivered: self.customers.positions.get(),
            delivery_frames: self.customers.frames.get(),
            nearby_ok: self.nearby.ok.get(),
            nearby_errors: self.nearby.errors.get(),
            nearby_dropped: self.nearby.dropped.get(),
            nearby_results: self.nearby.results.get(),
            orders_ok: self.orders.ok.get(),
            orders_errors: self.orders.errors.get(),
            orders_dropped: self.orders.dropped.get(),
            notifications: self.feeds.positions.get(),
        }
    }
}

/// hexdash's ping counters for the transport in use (zeros for the peer or
/// when /metrics cannot be read; the latter is noted once).
async fn scrape(cli: &Cli, http: &reqwest::Client, notes: &mut Vec<String>) -> PingCounts {
    if cli.target != Target::Hexdash {
        return PingCounts::default();
    }
    let path = match cli.transport {
        Transport::Mqtt => "mqtt",
        Transport::Ws => "ws",
    };
    let mut total = PingCounts::default();
    for base in cli.metrics_bases() {
        match server_metrics::scrape(http, &base, path).await {
            Ok(c) => total = total.plus(&c),
            Err(e) => notes.push(format!("could not read {base}/metrics: {e:#}")),
        }
    }
    total
}

pub async fn run(cli: &Cli) -> anyhow::Result<Report> {
    let plan = Plan::of(cli);
    let mut notes = Vec::new();
    let http = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .pool_max_idle_per_host(cli.nearby_conns.max(cli.order_conns).max(16))
        .build()
        .context("building the HTTP client")?;
    let auth = AuthApi::new(http.clone(), cli.http_base());
    let hexdash = cli.target == Target::Hexdash;

    // ---- set-up
    let needs_drivers = plan.drivers || cli.scenario == Scenario::Accounts;
    let driver_accounts = if hexdash && needs_drivers {
        accounts::ensure(
            &auth,
            &cli.accounts_file,
            "driver",
            cli.drivers.max(cli.preload),
            cli.signup_concurrency,
            cli.quiet,
        )
        .await?
    } else {
        Vec::new()
    };
    if cli.scenario == Scenario::Accounts {
        return Ok(empty_report(
            cli,
            vec![format!(
                "{} driver accounts ready in {}",
                driver_accounts.len(),
                cli.accounts_file.display()
            )],
        ));
    }
    let net = Arc::new(RoadNetwork::load_geojson_gz(&cli.roads).context(
        "loading the road network (--roads; the repository ships data/gothenburg_roads_2016.geojson.gz)",
    )?);
    if !cli.quiet {
        eprintln!(
            "roads: {} nodes, {} edges, {:.0} km (OpenStreetMap, ODbL)",
            net.node_count(),
            net.edge_count(),
            net.length_km()
        );
    }
    let admin = if hexdash && ((plan.watchers && cli.watchers > 0) || plan.nearby) {
        Some(accounts::admin_token(&auth, &cli.admin_email, cli.admin_password.as_deref()).await?)
    } else {
        None
    };

    let c = Components {
        fleet: Arc::default(),
        ws_errors: Arc::default(),
        bridge: Arc::default(),
        watchers: Arc::default(),
        customers: Arc::default(),
        nearby: Arc::default(),
        orders: Arc::default(),
        feeds: Arc::default(),
    };
    let window = Window::default();
    let stop_load = CancellationToken::new();
    let stop_all = CancellationToken::new();
    let since_ms = Arc::new(AtomicI64::new(i64::MAX));
    let mut load_tasks = Vec::new();
    let mut listen_tasks = Vec::new();

    let mut write_name = "";
    if let Some(store) = bridge_store(cli).await? {
        write_name = store.write_name();
        listen_tasks.extend(
            bridge::start(
                &cli.mqtt_addr(),
                store,
                c.bridge.clone(),
                window.clone(),
                stop_all.clone(),
            )
            .await?,
        );
    }
    let postgres_pid = if cli.target == Target::PeerPostgis {
        match postgis::server_pid(&cli.postgis_url).await {
            Ok(pid) => Some(pid),
            Err(e) => {
                notes.push(format!("PostgreSQL CPU/RSS not measured: {e:#}"));
                None
            }
        }
    } else {
        None
    };

    let mut watchers_connect_s = 0.0;
    if plan.watchers && cli.watchers > 0 {
        let token = admin.as_deref().context("watchers need the admin token")?;
        let t0 = Instant::now();
        let sockets = watchers::connect(cli, token, &net, &c.watchers).await;
        watchers_connect_s = t0.elapsed().as_secs_f64();
        if !cli.quiet {
            eprintln!(
                "watchers: {} connected, {} failed, in {:.1}s",
                sockets.len(),
                c.watchers.connect_failed.get(),
                t0.elapsed().as_secs_f64()
            );
        }
        listen_tasks.extend(watchers::start(
            sockets,
            c.watchers.clone(),
            window.clone(),
            since_ms.clone(),
            stop_all.clone(),
        ));
    }

    if plan.drivers && cli.preload > 0 {
        let t0 = Instant::now();
        let ok = drivers::preload(cli, &driver_accounts, &net, &c.fleet).await;
        if !cli.quiet {
            eprintln!(
                "preload: {ok} drivers pinged once in {:.1}s",
                t0.elapsed().as_secs_f64()
            );
        }
        notes.push(format!(
            "{ok} drivers preloaded (one ping each) before the run"
        ));
        if !hexdash {
            // Queries should find the preloaded fleet, not a half-written one.
            let t0 = Instant::now();
            let caught_up = bridge::wait_caught_up(&c.bridge, BRIDGE_CATCH_UP).await;
            let (received, written) = (c.bridge.received.get(), c.bridge.written.get());
            if !cli.quiet {
                eprintln!(
                    "preload: the bridge wrote {written} of {received} pings received, \
                     {:.1}s after the preload",
                    t0.elapsed().as_secs_f64()
                );
            }
            if !caught_up {
                notes.push(format!(
                    "the bridge had not caught up {} s after the preload ({written} of {received} \
                     pings written); the run went on",
                    BRIDGE_CATCH_UP.as_secs()
                ));
            }
        }
    }
    if cli.target == Target::PeerPostgis {
        // Planner statistics for the filled table, as a long-lived one has.
        postgis::analyze(&cli.postgis_url, &cli.postgis_table).await?;
    }

    let mut drivers_connect_s = 0.0;
    let mut connected = if plan.drivers {
        let t0 = Instant::now();
        let connected = drivers::connect(cli, &driver_accounts, &net, &c.fleet).await?;
        drivers_connect_s = t0.elapsed().as_secs_f64();
        if !cli.quiet {
            eprintln!(
                "drivers: {} connected over {:?}, {} failed, in {:.1}s",
                connected.len(),
                cli.transport,
                c.fleet.connect_failed.get(),
                t0.elapsed().as_secs_f64()
            );
        }
        Some(connected)
    } else {
        None
    };

    let mut deliveries_connect_s = 0.0;
    let mut under_way = Vec::new();
    if let Some(drivers::Connected::Mqtt(conns)) = connected.as_mut()
        && cli.deliveries > 0
    {
        let t0 = Instant::now();
        let prepared = deliveries::prepare(
            cli,
            &http,
            &auth,
            &net,
            &driver_accounts,
            conns,
            &c.customers,
        )
        .await?;
        deliveries_connect_s = t0.elapsed().as_secs_f64();
        if prepared.sockets.is_empty() {
            anyhow::bail!("no delivery could be set up (the first errors are above)");
        }
        if !cli.quiet {
            eprintln!(
                "deliveries: {} customers watching their courier, {} failed, set up in {:.1}s",
                prepared.sockets.len(),
                c.customers.connect_failed.get(),
                deliveries_connect_s
            );
        }
        under_way = prepared.deliveries;
        listen_tasks.extend(watchers::start(
            prepared.sockets,
            c.customers.clone(),
            window.clone(),
            since_ms.clone(),
            stop_all.clone(),
        ));
    }

    let nearby_backend = if plan.nearby && cli.scenario == Scenario::Search {
        let t0 = Instant::now();
        let seeded = crate::search::seed(cli, &http, &auth)
            .await
            .context("seeding restaurants for search")?;
        if !cli.quiet {
            eprintln!(
                "search: {seeded} restaurants × {} dishes created in {:.1}s",
                cli.dishes_per_restaurant,
                t0.elapsed().as_secs_f64()
            );
        }
        Some(Backend::Search {
            http: http.clone(),
            base: cli.http_base().to_owned(),
            terms: crate::search::terms(),
        })
    } else if plan.nearby {
        Some(match cli.target {
            Target::Hexdash => Backend::Hexdash {
                http: http.clone(),
                base: cli.http_base().to_owned(),
                token: admin.clone().context("nearby needs the admin token")?,
            },
            Target::PeerBridge => {
                Backend::redis(&cli.redis_url, &cli.redis_key, cli.nearby_conns).await?
            }
            Target::PeerPostgis => Backend::Postgis(
                postgis::query_pool(&cli.postgis_url, &cli.postgis_table, cli.nearby_conns).await?,
            ),
        })
    } else {
        None
    };

    let catalog = if plan.orders {
        match orders::prepare(cli, &http, &auth, &net).await {
            Ok(c) => Some(c),
            Err(e) if cli.scenario == Scenario::Mixed => {
                notes.push(format!("orders skipped: set-up failed: {e:#}"));
                None
            }
            Err(e) => return Err(e.context("setting up the orders scenario")),
        }
    } else {
        None
    };

    let feeds_started = Instant::now();
    let feed_sockets = match &catalog {
        Some(catalog) if cli.notify_feeds && hexdash => {
            Some(feeds::connect(cli, catalog.customers(), &c.feeds).await)
        }
        _ => None,
    };
    let feeds_connect_s = feeds_started.elapsed().as_secs_f64();
    if let Some(sockets) = feed_sockets {
        listen_tasks.extend(feeds::start(
            sockets,
            c.feeds.clone(),
            window.clone(),
            since_ms.clone(),
            stop_all.clone(),
        ));
    }

    let procs = servers(cli, postgres_pid, &mut notes);

    // ---- load: drivers first (they fill the index), then queries/orders
    if let Some(connected) = connected {
        load_tasks.extend(drivers::start(
            connected,
            cli,
            net.clone(),
            c.fleet.clone(),
            c.ws_errors.clone(),
            window.clone(),
            stop_load.clone(),
        ));
    }
    if let Some(backend) = nearby_backend {
        load_tasks.extend(nearby::start(
            backend,
            Query {
                radius_m: cli.radius_m,
                limit: cli.limit,
                status: cli.status.clone(),
            },
            cli.nearby_conns,
            cli.nearby_rate,
            cli.seed,
            net.clone(),
            c.nearby.clone(),
            window.clone(),
            stop_load.clone(),
        ));
    }
    if let Some(catalog) = catalog {
        load_tasks.push(orders::start(
            catalog,
            cli,
            http.clone(),
            net.clone(),
            c.orders.clone(),
            window.clone(),
            stop_load.clone(),
        ));
    }

    let stop_progress = CancellationToken::new();
    let progress = progress::start(cli.quiet, stop_progress.clone(), {
        let (fleet, bridge, watchers, customers, nearby, orders) = (
            c.fleet.clone(),
            c.bridge.clone(),
            c.watchers.clone(),
            c.customers.clone(),
            c.nearby.clone(),
            c.orders.clone(),
        );
        let (warmup, duration) = (cli.warmup_s as f64, cli.duration_s as f64);
        let mut rates: Vec<Rate> = (0..6).map(|_| Rate::new(0)).collect();
        move |t, dt| {
            let phase = if t < warmup {
                format!("warm-up {t:>4.0}/{warmup:.0}s")
            } else {
                format!("measuring {:>4.0}/{duration:.0}s", t - warmup)
            };
            format!(
                "{phase} | sent {:>8.0}/s blocked {} missed {} | bridge {:>8.0}/s | watch {:>8.0} pos/s | customers {:>6.0} pos/s | nearby {:>6.0}/s | orders {:>5.0}/s",
                rates[0].per_s(fleet.sent.get(), dt),
                fleet.blocked.get(),
                fleet.missed.get(),
                rates[1].per_s(bridge.received.get(), dt),
                rates[2].per_s(watchers.positions.get(), dt),
                rates[3].per_s(customers.positions.get(), dt),
                rates[4].per_s(nearby.ok.get(), dt),
                rates[5].per_s(orders.ok.get(), dt),
            )
        }
    });

    tokio::time::sleep(Duration::from_secs(cli.warmup_s)).await;

    // ---- measurement window
    let server_start = scrape(cli, &http, &mut notes).await;
    let cpu_start = sample_all(&procs);
    let started_at_ms = now_ms();
    since_ms.store(started_at_ms, Ordering::Relaxed);
    let before = c.snapshot(server_start);
    window.open();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(cli.duration_s)).await;
    stop_load.cancel();
    let window_s = t0.elapsed().as_secs_f64();
    let cpu_end = sample_all(&procs);
    let sent_end = c.snapshot(PingCounts::default());
    tokio::time::sleep(DRAIN).await;
    window.close();
    let server_end = scrape(cli, &http, &mut notes).await;
    let after = c.snapshot(server_end);
    stop_all.cancel();
    stop_progress.cancel();
    let all = load_tasks.into_iter().chain(listen_tasks).chain(progress);
    if tokio::time::timeout(JOIN_TIMEOUT, futures_util::future::join_all(all))
        .await
        .is_err()
    {
        notes.push("some connection tasks did not end within 10 s of the stop".to_owned());
    }
    let unfinished = deliveries::finish(&http, cli.http_base(), &under_way).await;
    if unfinished > 0 {
        notes.push(format!(
            "{unfinished} of {} deliveries could not be taken to delivered after the run",
            under_way.len()
        ));
    }

    // ---- report
    let mut processes = Vec::new();
    for (w, (a, b)) in procs.iter().zip(cpu_start.iter().zip(&cpu_end)) {
        if let (Some(a), Some(b)) = (a, b) {
            processes.push(ProcessReport::new(&w.name, w.pid, a, b, window_s));
        }
    }
    if !hexdash {
        notes.push(format!(
            "the peer bridge (MQTT subscriber + {write_name} writer) runs inside loadtest: its CPU is in the loadtest line"
        ));
    }
    let per_s = |n: u64| n as f64 / window_s;
    let ingest = plan.drivers.then(|| {
        let sent = sent_end.sent - before.sent;
        let (received, applied, rejected, stale_dup) = if hexdash {
            let d = after.server.since(&before.server);
            (d.received(), d.applied, d.rejected, d.stale + d.duplicate)
        } else {
            (
                after.received - before.received,
                after.bridge_written - before.bridge_written,
                c.bridge.bad.get(),
                0,
            )
        };
        let lost = sent.saturating_sub(received);
        let latency = (!hexdash).then(|| c.bridge.latency.snapshot().summary());
        IngestReport {
            connected: c.fleet.connected.get(),
            connect_s: drivers_connect_s,
            connect_failed: c.fleet.connect_failed.get(),
            disconnected: c.fleet.disconnected.get(),
            offered_per_s: cli.drivers as f64 * cli.ping_hz,
            sent,
            sent_per_s: per_s(sent),
            blocked: sent_end.blocked - before.blocked,
            missed: sent_end.missed - before.missed,
            received,
            received_per_s: per_s(received),
            applied,
            rejected,
            stale_or_duplicate: stale_dup,
            lost,
            loss_pct: if sent > 0 {
                lost as f64 * 100.0 / sent as f64
            } else {
                0.0
            },
            generator_lag: c.fleet.lag.snapshot().summary(),
            latency,
            latency_of: match cli.target {
                Target::Hexdash => None,
                Target::PeerBridge => Some("ping ts to GEOADD acknowledged by Redis".to_owned()),
                Target::PeerPostgis => {
                    Some("ping ts to the batch's UPSERT committed by PostgreSQL".to_owned())
                }
            },
        }
    });
    let track = (plan.watchers && cli.watchers > 0).then(|| {
        let frames = after.frames - before.frames;
        let positions = after.positions - before.positions;
        watchers_report(&c.watchers, watchers_connect_s, frames, positions, window_s)
    });
    let deliveries = (cli.deliveries > 0).then(|| {
        let frames = after.delivery_frames - before.delivery_frames;
        let positions = after.delivered - before.delivered;
        watchers_report(
            &c.customers,
            deliveries_connect_s,
            frames,
            positions,
            window_s,
        )
    });
    let notifications = (cli.notify_feeds && c.feeds.connected.get() > 0).then(|| {
        let received = after.notifications - before.notifications;
        watchers_report(&c.feeds, feeds_connect_s, received, received, window_s)
    });
    let nearby = plan.nearby.then(|| {
        let ok = sent_end.nearby_ok - before.nearby_ok;
        NearbyReport {
            mode: if cli.nearby_rate > 0.0 {
                "open"
            } else {
                "closed"
            }
            .to_owned(),
            conns: cli.nearby_conns,
            target_rate_per_s: cli.nearby_rate,
            ok,
            errors: sent_end.nearby_errors - before.nearby_errors,
            dropped: sent_end.nearby_dropped - before.nearby_dropped,
            rate_per_s: per_s(ok),
            mean_results: if ok > 0 {
                (sent_end.nearby_results - before.nearby_results) as f64 / ok as f64
            } else {
                0.0
            },
            latency: c.nearby.latency.snapshot().summary(),
        }
    });
    let orders = (plan.orders && c.orders.ok.get() + c.orders.errors.get() > 0).then(|| {
        let ok = sent_end.orders_ok - before.orders_ok;
        OrdersReport {
            target_rate_per_s: cli.order_rate,
            ok,
            errors: sent_end.orders_errors - before.orders_errors,
            dropped: sent_end.orders_dropped - before.orders_dropped,
            rate_per_s: per_s(ok),
            latency: c.orders.latency.snapshot().summary(),
        }
    });
    if let Some(i) = &ingest
        && i.missed > 0
    {
        notes.push(format!(
            "the generator missed {} scheduled pings (it, not the server, was too slow): treat the rates as a lower bound",
            i.missed
        ));
    }

    let mut report = Report {
        scenario: cli.scenario,
        target: cli.target,
        transport: cli.transport,
        started_at_ms,
        seed: cli.seed,
        duration_s: window_s,
        drivers: cli.drivers,
        ping_hz: cli.ping_hz,
        batch: cli.batch,
        watchers: cli.watchers,
        ingest,
        track,
        deliveries,
        nearby,
        orders,
        notifications,
        processes,
        slo: Vec::new(),
        notes,
    };
    let (p99s, rates) = report.slo_subjects();
    report.slo = report::slo_checks(&p99s, &rates, cli.max_p99_ms, cli.min_rate);
    Ok(report)
}

/// One group of watchers (dispatchers, or customers) over the window.
fn watchers_report(
    stats: &WatcherStats,
    connect_s: f64,
    frames: u64,
    positions: u64,
    window_s: f64,
) -> TrackReport {
    TrackReport {
        connected: stats.connected.get(),
        connect_s,
        connect_failed: stats.connect_failed.get(),
        disconnected: stats.disconnected.get(),
        frames,
        positions,
        positions_per_s: positions as f64 / window_s,
        error_messages: stats.error_messages.get(),
        latency: stats.latency.snapshot().summary(),
    }
}

fn empty_report(cli: &Cli, notes: Vec<String>) -> Report {
    Report {
        scenario: cli.scenario,
        target: cli.target,
        transport: cli.transport,
        started_at_ms: now_ms(),
        seed: cli.seed,
        duration_s: 0.0,
        drivers: cli.drivers,
        ping_hz: cli.ping_hz,
        batch: cli.batch,
        watchers: cli.watchers,
        ingest: None,
        track: None,
        deliveries: None,
        nearby: None,
        orders: None,
        notifications: None,
        processes: Vec::new(),
        slo: Vec::new(),
        notes,
    }
}
