//! A restaurant's kitchen: looks for paid orders at its poll interval
//! (`GET /v1/restaurants/{id}/orders?status=paid`, as a restaurant's
//! tablet would), accepts each and starts preparing, and marks it ready
//! for pickup when its drawn preparation time has passed. Every step goes
//! through `POST /v1/orders/{id}/status` as the owner.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::config::Config;
use crate::restaurants::Restaurant;
use crate::stats::Stats;

/// Orders one listing reads; more paid orders wait for the next poll.
const LIST_LIMIT: u32 = 50;
/// Orders a kitchen prepares at once at most: the in-flight limit bounds
/// them already; this bounds one kitchen's list whatever the settings.
const MAX_PREPARING: usize = 1_000;

/// An order on the stove: when it will be ready.
#[derive(Debug, Clone, PartialEq)]
struct Cooking {
    order_id: String,
    ready_at: Instant,
}

/// Runs the kitchen of `restaurant` until shutdown.
pub async fn run(
    restaurant: Arc<Restaurant>,
    config: Config,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) {
    let mut stove: Vec<Cooking> = Vec::new();
    // Orders a previous start accepted and did not finish.
    for status in ["accepted", "preparing"] {
        for order_id in list(&restaurant, status, &stats).await {
            if status == "accepted" {
                step(&restaurant, &order_id, "preparing", &stats).await;
            }
            stove.push(Cooking {
                order_id,
                ready_at: Instant::now() + prep_time(&config),
            });
        }
    }
    let mut every = tokio::time::interval(Duration::from_millis(config.poll_interval_ms));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = Instant::now();
        let (ready, cooking): (Vec<Cooking>, Vec<Cooking>) =
            stove.drain(..).partition(|c| c.ready_at <= now);
        stove = cooking;
        for order in ready {
            step(&restaurant, &order.order_id, "ready_for_pickup", &stats).await;
        }
        if stove.len() >= MAX_PREPARING {
            continue;
        }
        for order_id in list(&restaurant, "paid", &stats).await {
            if step(&restaurant, &order_id, "accepted", &stats).await
                && step(&restaurant, &order_id, "preparing", &stats).await
            {
                stove.push(Cooking {
                    order_id,
                    ready_at: Instant::now() + prep_time(&config),
                });
            }
        }
    }
}

/// A preparation time drawn from the configured range.
fn prep_time(config: &Config) -> Duration {
    Duration::from_secs(rand::rng().random_range(config.prep_min_s..=config.prep_max_s))
}

/// Ids of the restaurant's orders in `status` (the newest
/// [`LIST_LIMIT`]).
async fn list(restaurant: &Restaurant, status: &str, stats: &Stats) -> Vec<String> {
    let path = format!(
        "/v1/restaurants/{}/orders?status={status}&limit={LIST_LIMIT}",
        restaurant.id
    );
    match restaurant.owner.send(Method::GET, &path, None).await {
        Ok(list) => list["orders"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["order_id"].as_str().map(str::to_owned))
            .collect(),
        Err(e) => {
            unexpected(stats, &e);
            Vec::new()
        }
    }
}

/// Takes one step of `order_id`; `false` when the server refused it. A 409
/// is expected (the customer or an admin cancelled meanwhile, or the
/// console reassigned it) and not counted.
async fn step(restaurant: &Restaurant, order_id: &str, status: &str, stats: &Stats) -> bool {
    let path = format!("/v1/orders/{order_id}/status");
    let body = json!({ "status": status });
    match restaurant
        .owner
        .send(Method::POST, &path, Some(&body))
        .await
    {
        Ok(_) => true,
        Err(e) if e.status() == Some(409) => {
            tracing::debug!(restaurant = %restaurant.name, order_id, status, "step refused: {e}");
            false
        }
        Err(e) => {
            unexpected(stats, &e);
            false
        }
    }
}

/// Counts and logs an answer the demo did not expect.
pub(crate) fn unexpected(stats: &Stats, e: &ApiError) {
    Stats::bump(&stats.unexpected);
    tracing::warn!("demo: unexpected answer: {e}");
}
