//! Watchers: dispatchers on `/v1/ws`, each subscribed to an `area` box of
//! `--watch-box-m` around a seeded point of the road network.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::cli::Cli;
use crate::roads::RoadNetwork;
use crate::stats::Window;
use crate::walker::SplitMix64;
use crate::ws::{self, Socket, WatcherStats};

/// Seed tweak so watcher boxes do not coincide with query points.
const WATCH_SEED: u64 = 0x7761_7463_6821;

pub async fn connect(
    cli: &Cli,
    token: &str,
    net: &RoadNetwork,
    stats: &WatcherStats,
) -> Vec<Socket> {
    let url = format!("{}/v1/ws", cli.watch_ws_url());
    let mut rng = SplitMix64::new(cli.seed ^ WATCH_SEED);
    let subs: Vec<String> = (0..cli.watchers)
        .map(|_| {
            let centre = net.position(rng.below(net.node_count()) as u32);
            ws::subscribe_area(centre, cli.watch_box_m)
        })
        .collect();
    let mut results = futures_util::stream::iter(subs.into_iter().map(|sub| {
        let url = url.clone();
        async move { ws::connect_watcher(&url, token, sub).await }
    }))
    .buffer_unordered(cli.connect_concurrency.max(1));
    let mut sockets = Vec::with_capacity(cli.watchers);
    while let Some(r) = results.next().await {
        match r {
            Ok(s) => {
                stats.connected.add(1);
                sockets.push(s);
            }
            Err(e) => {
                if stats.connect_failed.get() < 3 {
                    eprintln!("watcher failed to connect: {e:#}");
                }
                stats.connect_failed.add(1);
            }
        }
    }
    sockets
}

pub fn start(
    sockets: Vec<Socket>,
    stats: Arc<WatcherStats>,
    window: Window,
    since_ms: Arc<AtomicI64>,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    sockets
        .into_iter()
        .map(|s| {
            tokio::spawn(ws::run_watcher(
                s,
                stats.clone(),
                window.clone(),
                since_ms.clone(),
                stop.clone(),
            ))
        })
        .collect()
}
