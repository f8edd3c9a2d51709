//! Restaurant search over REST (`GET /v1/restaurants?lat=&lng=&q=`): the
//! seeded city of restaurants and menus from `cityseed::menus` is created
//! through the public API, then queries run closed or open loop through the
//! nearest-driver machinery in [`crate::nearby`] (same scheduling, same
//! statistics), each asking for one of the popular search terms, or for
//! everything near the point (one query in four).

use std::sync::Arc;

use anyhow::Context;
use cityseed::menus::{self, GenRestaurant};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::accounts::{self, AuthApi};
use crate::cli::Cli;
use crate::scenarios::orders::post_json;

/// Seed tweak for the generated restaurants.
const SEARCH_SEED: u64 = 0x7365_6172_6368;

#[derive(Deserialize)]
struct Created {
    restaurant_id: String,
}

/// The search terms queries use: the popular ones, and "" (no text).
pub fn terms() -> Arc<Vec<String>> {
    let mut terms: Vec<String> = menus::POPULAR_QUERIES
        .iter()
        .map(|&q| q.to_owned())
        .collect();
    // One in four: nearby only.
    let blanks = terms.len() / 3;
    terms.extend(std::iter::repeat_n(String::new(), blanks.max(1)));
    Arc::new(terms)
}

/// The JSON body that creates `r` (every day the same hours, in the city's
/// zone, or always open).
fn restaurant_body(r: &GenRestaurant) -> Value {
    let opening_hours = r.hours.map(|h| {
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let weekly: serde_json::Map<String, Value> = days
            .iter()
            .map(|d| ((*d).to_owned(), json!([[h.open, h.close]])))
            .collect();
        json!({"time_zone": menus::TIME_ZONE, "weekly": weekly})
    });
    json!({
        "name": r.name,
        "location": {"lat": r.location.lat, "lng": r.location.lng},
        "address": "Loadtest gatan 1, Göteborg",
        "cuisines": r.cuisines,
        "opening_hours": opening_hours,
        "delivery_radius_m": r.delivery_radius_m,
        "accepting_orders": r.accepting_orders,
    })
}

fn menu_body(r: &GenRestaurant) -> Value {
    let items: Vec<Value> = r
        .dishes
        .iter()
        .map(|d| {
            json!({"name": d.name, "category": d.category, "price_cents": d.price_cents,
                   "available": d.available})
        })
        .collect();
    json!({ "items": items })
}

/// Creates `cli.restaurants` generated restaurants with
/// `cli.dishes_per_restaurant` dishes each, owned by one restaurant account.
pub async fn seed(cli: &Cli, http: &reqwest::Client, auth: &AuthApi) -> anyhow::Result<usize> {
    let owner = accounts::ensure(
        auth,
        &cli.accounts_file,
        "restaurant",
        1,
        cli.signup_concurrency,
        cli.quiet,
    )
    .await?
    .into_iter()
    .next()
    .context("no restaurant account")?;
    let generated = menus::restaurants(
        cli.seed ^ SEARCH_SEED,
        cli.restaurants,
        cli.dishes_per_restaurant,
        cityseed::City::gothenburg_30km(),
    );
    let base = cli.http_base().to_owned();
    let slots = Arc::new(Semaphore::new(cli.signup_concurrency.max(1) * 2));
    let mut tasks = Vec::with_capacity(generated.len());
    for r in generated {
        let (http, base, token, slots) = (
            http.clone(),
            base.clone(),
            owner.access_token.clone(),
            slots.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await?;
            let url = format!("{base}/v1/restaurants");
            let created: Created = post_json(&http, &url, &token, &restaurant_body(&r)).await?;
            if !r.dishes.is_empty() {
                let url = format!("{base}/v1/restaurants/{}/menu", created.restaurant_id);
                post_json::<serde::de::IgnoredAny>(&http, &url, &token, &menu_body(&r)).await?;
            }
            anyhow::Ok(())
        }));
    }
    let n = tasks.len();
    for task in tasks {
        task.await.context("seeding task")??;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_contract() {
        let rs = menus::restaurants(1, 20, 5, cityseed::City::gothenburg_30km());
        for r in &rs {
            let body = restaurant_body(r);
            assert!(body["delivery_radius_m"].is_u64());
            if let Some(h) = body["opening_hours"].as_object() {
                assert_eq!(h["time_zone"], menus::TIME_ZONE);
                assert_eq!(h["weekly"].as_object().map(|w| w.len()), Some(7));
            }
            assert_eq!(menu_body(r)["items"].as_array().map(Vec::len), Some(5));
        }
        let t = terms();
        assert!(t.iter().any(String::is_empty) && t.iter().any(|s| !s.is_empty()));
    }
}
