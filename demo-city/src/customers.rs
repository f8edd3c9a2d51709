//! The customers: a stream of orders at the configured rate (exponential
//! gaps), each placed over REST by a random customer at a random
//! restaurant for a door on the roads around it, paid with the simulated
//! gateway's `tok_ok`, then watched over WebSocket (`order:{id}`) until it
//! ends. At most `max_in_flight` orders are open at once (a semaphore);
//! an order that would exceed it is skipped and counted.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::api::Session;
use crate::config::Config;
use crate::kitchen::unexpected;
use crate::map::Map;
use crate::restaurants::Restaurant;
use crate::stats::Stats;

/// An order open this long is stuck (no courier took it, or one vanished
/// with it): the demo's dispatcher cancels it through the admin API, so
/// the in-flight limit never fills with dead orders.
const STUCK_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a watcher also asks REST for the order's status, in case a
/// socket message was missed (a reconnect, a lagging gateway).
const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// The shortest gap between two orders, so an extreme rate cannot spin.
const MIN_GAP: Duration = Duration::from_millis(10);

/// What the order stream needs.
pub struct Customers {
    /// Every customer's session.
    pub sessions: Vec<Session>,
    /// The restaurants they order from.
    pub restaurants: Vec<Arc<Restaurant>>,
    /// Cancels stuck orders.
    pub admin: Arc<Session>,
    /// Where doors are drawn.
    pub map: Arc<Map>,
    /// `ws://host:port`.
    pub ws_base: String,
}

/// Places orders until shutdown.
pub async fn run(
    customers: Arc<Customers>,
    config: Config,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.max_in_flight as usize));
    let mean_gap_s = 60.0 / config.orders_per_min;
    loop {
        // Exponential gaps: a Poisson stream of orders.
        let u: f64 = rand::rng().random_range(f64::EPSILON..1.0);
        let gap = Duration::from_secs_f64(-u.ln() * mean_gap_s).max(MIN_GAP);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(gap) => {}
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            Stats::bump(&stats.skipped);
            continue;
        };
        let Some(order) = draw(&customers, &config) else {
            continue;
        };
        tokio::spawn(place_and_watch(
            customers.clone(),
            order,
            permit,
            stats.clone(),
            shutdown.clone(),
        ));
    }
}

/// One order to place: who, where from, what, where to.
struct Draw {
    customer: usize,
    restaurant: usize,
    body: Value,
}

fn draw(customers: &Customers, config: &Config) -> Option<Draw> {
    let mut rng = rand::rng();
    let customer = rng.random_range(0..customers.sessions.len());
    let restaurant = rng.random_range(0..customers.restaurants.len());
    let r = &customers.restaurants[restaurant];
    let door = customers
        .map
        .place_in_ring(
            &mut rng,
            r.place.position,
            config.trip_min_m,
            config.trip_max_m,
        )
        .ok()?;
    let lines = rng.random_range(1..=3usize.min(r.dishes.len()));
    let items: Vec<Value> = r
        .dishes
        .choose_multiple(&mut rng, lines)
        .map(|id| json!({"menu_item_id": id, "quantity": rng.random_range(1..=2)}))
        .collect();
    let body = json!({
        "restaurant_id": r.id,
        "items": items,
        "delivery": {
            "lat": door.position.lat,
            "lng": door.position.lng,
            "address": format!("Demo door {}", door.node),
        },
        "payment": {"method": "card", "token": "tok_ok"},
    });
    Some(Draw {
        customer,
        restaurant,
        body,
    })
}

/// Places one order and watches it to its end; the permit is the order's
/// place among the in-flight ones.
async fn place_and_watch(
    customers: Arc<Customers>,
    order: Draw,
    _permit: OwnedSemaphorePermit,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) {
    let session = &customers.sessions[order.customer];
    let key = uuid::Uuid::new_v4().to_string();
    let placed = match session
        .send_with_key(Method::POST, "/v1/orders", Some(&order.body), Some(&key))
        .await
    {
        Ok(placed) => placed,
        Err(e) => {
            if !shutdown.is_cancelled() {
                unexpected(&stats, &e);
            }
            return;
        }
    };
    Stats::bump(&stats.placed);
    let Some(order_id) = placed["order_id"].as_str().map(str::to_owned) else {
        return;
    };
    tracing::debug!(
        order_id,
        restaurant = %customers.restaurants[order.restaurant].name,
        "demo order placed"
    );
    let mut status = placed["status"].as_str().unwrap_or_default().to_owned();
    if !is_terminal(&status) {
        let stuck = tokio::time::sleep(STUCK_AFTER);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            s = watch(&customers.ws_base, session, &order_id) => status = s,
            _ = stuck => {
                status = cancel_stuck(&customers.admin, &order_id, &stats).await;
            }
        }
    }
    if status == "delivered" {
        Stats::bump(&stats.delivered);
    } else {
        Stats::bump(&stats.ended_otherwise);
    }
}

/// Watches `order:{order_id}` over WebSocket until a terminal status, with
/// a REST look at the start (what happened before the subscription) and
/// every [`RECHECK_EVERY`]. Falls back to REST alone when the socket
/// fails.
async fn watch(ws_base: &str, session: &Session, order_id: &str) -> String {
    let url = format!("{ws_base}/v1/ws?token={}", session.token());
    let mut socket = match tokio_tungstenite::connect_async(url).await {
        Ok((mut ws, _)) => {
            let subscribe = json!({"op": "subscribe", "channel": format!("order:{order_id}")});
            match ws.send(Message::text(subscribe.to_string())).await {
                Ok(()) => Some(ws),
                Err(_) => None,
            }
        }
        Err(_) => None,
    };
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    loop {
        let from_socket = async {
            match socket.as_mut() {
                Some(ws) => ws.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = from_socket => match msg {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if v["type"] == "status"
                        && let Some(s) = v["status"].as_str()
                        && is_terminal(s)
                    {
                        return s.to_owned();
                    }
                }
                Some(Ok(_)) => {}
                // Closed or broken: REST from here on.
                Some(Err(_)) | None => socket = None,
            },
            _ = recheck.tick() => {
                let path = format!("/v1/orders/{order_id}");
                if let Ok(order) = session.send(Method::GET, &path, None).await
                    && let Some(s) = order["status"].as_str()
                    && is_terminal(s)
                {
                    return s.to_owned();
                }
            }
        }
    }
}

/// Cancels a stuck order as the admin (with its refund); the status it
/// ends in.
async fn cancel_stuck(admin: &Session, order_id: &str, stats: &Stats) -> String {
    tracing::info!(order_id, "demo: cancelling an order open for 30 minutes");
    let path = format!("/v1/admin/orders/{order_id}/cancel");
    let body = json!({"reason": "demo: stuck for 30 minutes"});
    match admin.send(Method::POST, &path, Some(&body)).await {
        Ok(v) => v["status"].as_str().unwrap_or("cancelled").to_owned(),
        Err(e) => {
            unexpected(stats, &e);
            "cancelled".to_owned()
        }
    }
}

/// Whether `status` (a wire name) is terminal.
fn is_terminal(status: &str) -> bool {
    contract::OrderStatus::parse(status).is_some_and(contract::OrderStatus::is_terminal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses() {
        for (s, terminal) in [
            ("delivered", true),
            ("cancelled", true),
            ("rejected", true),
            ("payment_failed", true),
            ("paid", false),
            ("picked_up", false),
            ("nonsense", false),
        ] {
            assert_eq!(is_terminal(s), terminal, "{s}");
        }
    }
}
