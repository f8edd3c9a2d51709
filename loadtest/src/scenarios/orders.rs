//! Order placement over REST: restaurants with menus and customers are set
//! up through the public API, then orders are placed open loop at
//! `--order-rate`, each with a fresh `Idempotency-Key`, timed from its
//! scheduled instant.
//!
//! Coded against the order API of the commerce issue:
//! `POST /v1/restaurants {name, location, address, cuisines,
//! delivery_radius_m}` (no opening hours: always open),
//! `POST /v1/restaurants/{id}/menu {"items":[{name, price_cents, category}]}`
//! → `{"items":[{"menu_item_id",…}]}`, and `POST /v1/orders {restaurant_id,
//! items:[{menu_item_id, quantity}], delivery:{lat,lng,address},
//! payment:{method:"card", token:"tok_ok"}}` → 201 `{order_id, status,
//! total_cents}`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::accounts::{self, Account, AuthApi};
use crate::cli::Cli;
use crate::geo::LatLng;
use crate::roads::RoadNetwork;
use crate::stats::{Counter, SharedLatency, Window};
use crate::walker::SplitMix64;

/// Menu items per restaurant.
const MENU_ITEMS: usize = 8;
/// Delivery radius given to load-test restaurants: every point of the
/// road network is deliverable, so orders fail only for real reasons.
const DELIVERY_RADIUS_M: u32 = 50_000;
/// How often the scheduler wakes (tokio timers have ms resolution).
const SCHEDULER_TICK: Duration = Duration::from_millis(1);
/// Seed tweak for order choices.
const ORDER_SEED: u64 = 0x6F72_6465_7273;

#[derive(Default)]
pub struct OrderStats {
    pub ok: Counter,
    pub errors: Counter,
    pub dropped: Counter,
    pub latency: SharedLatency,
}

pub(crate) struct Restaurant {
    pub id: String,
    pub items: Vec<String>,
}

/// What orders are placed with.
pub struct Catalog {
    restaurants: Vec<Restaurant>,
    customers: Vec<Account>,
}

impl Catalog {
    /// The customers orders are placed for.
    pub fn customers(&self) -> &[Account] {
        &self.customers
    }
}

#[derive(Deserialize)]
struct CreatedRestaurant {
    restaurant_id: String,
}

#[derive(Deserialize)]
struct CreatedMenu {
    items: Vec<CreatedItem>,
}

#[derive(Deserialize)]
struct CreatedItem {
    menu_item_id: String,
}

/// POSTs `body` with `token`; the answer's JSON, or the status and text.
pub(crate) async fn post_json<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> anyhow::Result<T> {
    json_answer(http.post(url).bearer_auth(token).json(body), "POST", url).await
}

/// GETs `url` with `token`; the answer's JSON, or the status and text.
pub(crate) async fn get_json<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<T> {
    json_answer(http.get(url).bearer_auth(token), "GET", url).await
}

async fn json_answer<T: for<'de> Deserialize<'de>>(
    request: reqwest::RequestBuilder,
    method: &str,
    url: &str,
) -> anyhow::Result<T> {
    let resp = request.send().await?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        bail!("{method} {url}: {status}: {text}");
    }
    Ok(resp.json().await?)
}

/// Creates the restaurants (with menus) and customers.
pub async fn prepare(
    cli: &Cli,
    http: &reqwest::Client,
    auth: &AuthApi,
    net: &RoadNetwork,
) -> anyhow::Result<Catalog> {
    let file = &cli.accounts_file;
    let owners = accounts::ensure(
        auth,
        file,
        "restaurant",
        cli.restaurants,
        cli.signup_concurrency,
        cli.quiet,
    )
    .await?;
    let customers = accounts::ensure(
        auth,
        file,
        "customer",
        cli.customers,
        cli.signup_concurrency,
        cli.quiet,
    )
    .await?;
    let base = cli.http_base();
    let mut rng = SplitMix64::new(cli.seed ^ ORDER_SEED);
    let mut restaurants = Vec::with_capacity(owners.len());
    for (i, owner) in owners.iter().enumerate() {
        let at = net.position(rng.below(net.node_count()) as u32);
        restaurants.push(create_restaurant(http, base, &owner.access_token, i, at).await?);
    }
    if restaurants.is_empty() || customers.is_empty() {
        bail!("the orders scenario needs --restaurants and --customers above 0");
    }
    Ok(Catalog {
        restaurants,
        customers,
    })
}

/// Creates restaurant number `i` at `at`, owned by `owner_token`, with its
/// menu.
pub(crate) async fn create_restaurant(
    http: &reqwest::Client,
    base: &str,
    owner_token: &str,
    i: usize,
    at: LatLng,
) -> anyhow::Result<Restaurant> {
    let body = serde_json::json!({
        "name": format!("Loadtest kitchen {i}"),
        "location": {"lat": at.lat, "lng": at.lng},
        "address": format!("Loadtest street {i}, Göteborg"),
        "cuisines": ["pizza"],
        "delivery_radius_m": DELIVERY_RADIUS_M,
    });
    let created: CreatedRestaurant =
        post_json(http, &format!("{base}/v1/restaurants"), owner_token, &body)
            .await
            .context("creating a restaurant")?;
    let items: Vec<serde_json::Value> = (0..MENU_ITEMS)
        .map(|k| {
            serde_json::json!({
                "name": format!("Dish {k}"),
                "price_cents": 9_900 + 500 * k as i64,
                "category": if k % 2 == 0 { "mains" } else { "sides" },
            })
        })
        .collect();
    let menu: CreatedMenu = post_json(
        http,
        &format!("{base}/v1/restaurants/{}/menu", created.restaurant_id),
        owner_token,
        &serde_json::json!({ "items": items }),
    )
    .await
    .context("creating a menu")?;
    Ok(Restaurant {
        id: created.restaurant_id,
        items: menu.items.into_iter().map(|i| i.menu_item_id).collect(),
    })
}

/// The body of one order.
pub(crate) fn order_body(
    restaurant: &Restaurant,
    rng: &mut SplitMix64,
    delivery: LatLng,
) -> serde_json::Value {
    let lines = 1 + rng.below(3);
    let items: Vec<serde_json::Value> = (0..lines)
        .map(|_| {
            let item = &restaurant.items[rng.below(restaurant.items.len())];
            serde_json::json!({"menu_item_id": item, "quantity": 1 + rng.below(2)})
        })
        .collect();
    serde_json::json!({
        "restaurant_id": restaurant.id,
        "items": items,
        "delivery": {"lat": delivery.lat, "lng": delivery.lng, "address": "Loadtest gatan 1"},
        "payment": {"method": "card", "token": "tok_ok"},
    })
}

/// Places orders at `cli.order_rate` until `stop`.
pub fn start(
    catalog: Catalog,
    cli: &Cli,
    http: reqwest::Client,
    net: Arc<RoadNetwork>,
    stats: Arc<OrderStats>,
    window: Window,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let rate = cli.order_rate.max(0.001);
    let urls: Vec<String> = cli
        .order_bases()
        .iter()
        .map(|base| format!("{base}/v1/orders"))
        .collect();
    let slots = Arc::new(Semaphore::new(cli.order_conns.max(1)));
    let seed = cli.seed ^ ORDER_SEED;
    tokio::spawn(async move {
        let mut rng = SplitMix64::new(seed);
        let start = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / rate);
        let mut issued: u64 = 0;
        let mut tick = tokio::time::interval(SCHEDULER_TICK);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let due = crate::clock::due_count(start.elapsed().as_secs_f64(), rate);
            while issued < due {
                let scheduled = start + interval.mul_f64(issued as f64);
                let customer = &catalog.customers[issued as usize % catalog.customers.len()];
                issued += 1;
                let restaurant = &catalog.restaurants[rng.below(catalog.restaurants.len())];
                let delivery = net.position(rng.below(net.node_count()) as u32);
                let body = order_body(restaurant, &mut rng, delivery);
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    stats.dropped.add(1);
                    continue;
                };
                // Round-robin over the nodes (`--order-url`).
                let url = &urls[(issued as usize - 1) % urls.len()];
                let request = http
                    .post(url)
                    .bearer_auth(&customer.access_token)
                    .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                    .json(&body);
                let (stats, window) = (stats.clone(), window.clone());
                tokio::spawn(async move {
                    let result = request.send().await;
                    match result {
                        Ok(resp) if resp.status().as_u16() == 201 => {
                            stats.ok.add(1);
                            if window.is_open() {
                                stats
                                    .latency
                                    .record_all(&[scheduled.elapsed().as_micros() as i64]);
                            }
                        }
                        Ok(resp) => {
                            if stats.errors.get() < 3 {
                                let status = resp.status();
                                let text = resp.text().await.unwrap_or_default();
                                eprintln!("order refused: {status}: {text}");
                            }
                            stats.errors.add(1);
                        }
                        Err(e) => {
                            if stats.errors.get() < 3 {
                                eprintln!("order failed: {e}");
                            }
                            stats.errors.add(1);
                        }
                    }
                    drop(permit);
                });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_bodies_follow_the_contract() {
        let r = Restaurant {
            id: "r1".into(),
            items: vec!["a".into(), "b".into()],
        };
        let mut rng = SplitMix64::new(1);
        for _ in 0..20 {
            let body = order_body(
                &r,
                &mut rng,
                LatLng {
                    lat: 57.7,
                    lng: 11.9,
                },
            );
            assert_eq!(body["restaurant_id"], "r1");
            assert_eq!(body["payment"]["token"], "tok_ok");
            let items = body["items"].as_array().expect("items");
            assert!((1..=3).contains(&items.len()));
            for item in items {
                assert!(["a", "b"].contains(&item["menu_item_id"].as_str().expect("id")));
                assert!(item["quantity"].as_u64().is_some_and(|q| q >= 1));
            }
            assert_eq!(body["delivery"]["lat"], 57.7);
        }
    }
}
