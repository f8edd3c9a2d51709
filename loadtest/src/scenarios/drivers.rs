//! Driver set-up for every scenario with drivers: who they are (hexdash
//! accounts, or the seeded `cityseed::Fleet` ids for the peer), connecting them
//! over MQTT or WebSocket, and starting their senders.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::accounts::Account;
use crate::cli::{Cli, Target, Transport};
use crate::fleet::{self, DriverSpec, FleetStats, Schedule};
use crate::roads::RoadNetwork;
use crate::stats::Window;
use crate::ws::{self, DriverStreamStats};

/// Connected drivers, not yet sending.
pub enum Connected {
    Mqtt(Vec<fleet::Conn>),
    Ws(Vec<(usize, ws::Socket)>),
}

impl Connected {
    pub fn len(&self) -> usize {
        match self {
            Connected::Mqtt(c) => c.len(),
            Connected::Ws(c) => c.len(),
        }
    }
}

pub fn schedule(cli: &Cli) -> Schedule {
    Schedule {
        ping_hz: cli.ping_hz,
        batch: cli.batch,
        seed: cli.seed,
        min_speed_mps: cli.min_speed_mps,
        max_speed_mps: cli.max_speed_mps,
    }
}

/// MQTT identities: hexdash accounts (username = user id, password =
/// access token), or anonymous seeded ids for the peers' broker; `n` of
/// them. Either way driver `i`'s walker, so its positions, depend on the
/// seed and `i` only: every target sees the same points.
fn specs(cli: &Cli, accounts: &[Account], n: usize) -> Vec<DriverSpec> {
    match cli.target {
        Target::Hexdash => accounts
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, a)| DriverSpec {
                index: i,
                client_id: format!("lt{i}"),
                credentials: Some((a.user_id.clone(), a.access_token.clone())),
                topic: format!("drivers/{}/location", a.user_id),
            })
            .collect(),
        Target::PeerBridge | Target::PeerPostgis => {
            let fleet = cityseed::Fleet::uniform(cli.seed, n, cityseed::City::gothenburg_30km());
            fleet
                .drivers
                .iter()
                .enumerate()
                .map(|(i, id)| DriverSpec {
                    index: i,
                    client_id: format!("lt{i}"),
                    credentials: None,
                    topic: format!("drivers/{id}/location"),
                })
                .collect()
        }
    }
}

/// Pings once from each of `--preload` drivers (see the flag).
pub async fn preload(
    cli: &Cli,
    accounts: &[Account],
    net: &RoadNetwork,
    stats: &FleetStats,
) -> u64 {
    fleet::preload(
        specs(cli, accounts, cli.preload),
        &cli.mqtt_addrs(),
        &schedule(cli),
        net,
        cli.connect_concurrency,
        stats,
    )
    .await
}

pub async fn connect(
    cli: &Cli,
    accounts: &[Account],
    net: &RoadNetwork,
    stats: &FleetStats,
) -> anyhow::Result<Connected> {
    let connected = match cli.transport {
        Transport::Mqtt => {
            let conns = fleet::connect_all(
                specs(cli, accounts, cli.drivers),
                &cli.mqtt_addrs(),
                &schedule(cli),
                net,
                cli.connect_concurrency,
                stats,
            )
            .await;
            Connected::Mqtt(conns)
        }
        Transport::Ws => {
            let url = format!("{}/v1/drivers/stream", cli.ws_url());
            let mut results =
                futures_util::stream::iter(accounts.iter().enumerate().map(|(i, a)| {
                    let url = url.clone();
                    async move { (i, ws::connect(&url, &a.access_token).await) }
                }))
                .buffer_unordered(cli.connect_concurrency.max(1));
            let mut sockets = Vec::new();
            while let Some((i, r)) = results.next().await {
                match r {
                    Ok(s) => {
                        stats.connected.add(1);
                        sockets.push((i, s));
                    }
                    Err(e) => {
                        if stats.connect_failed.get() < 3 {
                            eprintln!("driver {i} failed to connect: {e:#}");
                        }
                        stats.connect_failed.add(1);
                    }
                }
            }
            sockets.sort_by_key(|(i, _)| *i);
            Connected::Ws(sockets)
        }
    };
    if connected.len() == 0 && cli.drivers > 0 {
        anyhow::bail!("no driver could connect");
    }
    Ok(connected)
}

#[allow(clippy::too_many_arguments)]
pub fn start(
    connected: Connected,
    cli: &Cli,
    net: Arc<RoadNetwork>,
    stats: Arc<FleetStats>,
    ws_errors: Arc<DriverStreamStats>,
    window: Window,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let schedule = schedule(cli);
    match connected {
        Connected::Mqtt(conns) => {
            let shards = if cli.shards > 0 {
                cli.shards
            } else {
                std::thread::available_parallelism().map_or(2, |n| n.get())
            };
            fleet::start(conns, shards, schedule, net, stats, window, stop)
        }
        Connected::Ws(sockets) => {
            let period = schedule.period();
            let total = sockets.len().max(1);
            let start = Instant::now() + Duration::from_millis(50);
            sockets
                .into_iter()
                .enumerate()
                .map(|(k, (index, socket))| {
                    let phase = period.mul_f64(k as f64 / total as f64);
                    tokio::spawn(ws::run_driver(
                        socket,
                        index,
                        phase,
                        start,
                        schedule.clone(),
                        net.clone(),
                        stats.clone(),
                        ws_errors.clone(),
                        window.clone(),
                        stop.clone(),
                    ))
                })
                .collect()
        }
    }
}
