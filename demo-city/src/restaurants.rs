//! The demo's restaurants: one owner account each, the restaurant on a
//! road node near the centre, a menu from `cityseed`'s word lists. Made
//! through the REST API once; a later start on the same database finds
//! them (by owner, through the admin's restaurant list) and reuses them.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, ApiError, Session};
use crate::config::Config;
use crate::map::{Map, MapError, Place};

/// Dishes on each demo menu.
const DISHES: usize = 8;

/// A restaurant the demo runs.
pub struct Restaurant {
    /// Its id.
    pub id: String,
    /// Its name, for logs.
    pub name: String,
    /// Where it stands (a road node).
    pub place: Place,
    /// Its owner's session, which takes the kitchen's steps.
    pub owner: Session,
    /// Ids of the menu items customers order from.
    pub dishes: Vec<String>,
}

/// Why the restaurants could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A REST call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No road near where a restaurant was to stand.
    #[error(transparent)]
    Map(#[from] MapError),
    /// The server answered something the demo cannot use.
    #[error("{0}")]
    Unexpected(String),
}

/// The email of demo owner `i`.
fn owner_email(i: u32) -> String {
    format!("owner-{i:03}@{}", crate::DEMO_EMAIL_DOMAIN)
}

/// Makes (or finds) `config.restaurants` restaurants with menus.
pub async fn set_up(
    api: &Arc<Api>,
    admin: &Session,
    map: &Map,
    config: &Config,
) -> Result<Vec<Restaurant>, SetupError> {
    let centre = map.centre();
    let city = cityseed::City {
        centre: cityseed::Point {
            lat: centre.lat,
            lng: centre.lng,
        },
        size_m: config.restaurant_radius_m * 2.0,
    };
    let generated =
        cityseed::menus::restaurants(config.seed, config.restaurants as usize, DISHES, city);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut restaurants = Vec::with_capacity(generated.len());
    for (i, seeded) in (0u32..).zip(generated) {
        let owner = Session::open(
            api.clone(),
            &owner_email(i),
            &format!("{} (demo owner)", seeded.name),
            "restaurant",
        )
        .await?;
        let existing = admin
            .send(
                Method::GET,
                &format!("/v1/admin/restaurants?owner_id={}&limit=1", owner.user_id()),
                None,
            )
            .await?;
        let restaurant = match existing["restaurants"].get(0) {
            Some(r) => r.clone(),
            None => {
                // The seeded spot, moved onto the nearest road (a courier
                // must be able to drive to the door).
                let wanted = routing::LatLng {
                    lat: seeded.location.lat,
                    lng: seeded.location.lng,
                };
                let place = match map.snap(wanted) {
                    Some(place) => place,
                    None => map.place_in_ring(&mut rng, centre, 0.0, config.restaurant_radius_m)?,
                };
                let body = json!({
                    "name": seeded.name,
                    "location": {"lat": place.position.lat, "lng": place.position.lng},
                    "address": format!("Demo street {}", i + 1),
                    "cuisines": seeded.cuisines,
                    // Always open, always taking orders, delivering as far
                    // as customers live.
                    "delivery_radius_m": (config.trip_max_m + 500.0) as u32,
                    "accepting_orders": true,
                    "avg_prep_time_s": (config.prep_min_s + config.prep_max_s) / 2,
                });
                owner
                    .send(Method::POST, "/v1/restaurants", Some(&body))
                    .await?
            }
        };
        let id = text(&restaurant, "restaurant_id")?;
        let location = &restaurant["location"];
        let position = routing::LatLng {
            lat: location["lat"].as_f64().unwrap_or(centre.lat),
            lng: location["lng"].as_f64().unwrap_or(centre.lng),
        };
        let place = map.snap(position).ok_or_else(|| {
            SetupError::Unexpected(format!("restaurant {id} stands off the demo map"))
        })?;
        let dishes = menu(&owner, &id, &seeded.dishes).await?;
        restaurants.push(Restaurant {
            id,
            name: seeded.name,
            place,
            owner,
            dishes,
        });
    }
    Ok(restaurants)
}

/// The ids of the restaurant's available items; the seeded menu is added
/// first when it has none.
async fn menu(
    owner: &Session,
    restaurant_id: &str,
    dishes: &[cityseed::menus::GenDish],
) -> Result<Vec<String>, SetupError> {
    let path = format!("/v1/restaurants/{restaurant_id}/menu");
    let mut ids = item_ids(&owner.send(Method::GET, &path, None).await?);
    if ids.is_empty() {
        let items: Vec<Value> = dishes
            .iter()
            .map(|d| {
                // No stock: a demo kitchen never runs out.
                json!({"name": d.name, "price_cents": d.price_cents, "category": d.category})
            })
            .collect();
        let added = owner
            .send(Method::POST, &path, Some(&json!({"items": items})))
            .await?;
        ids = item_ids(&added);
    }
    if ids.is_empty() {
        return Err(SetupError::Unexpected(format!(
            "restaurant {restaurant_id} has no available menu items"
        )));
    }
    Ok(ids)
}

/// Available item ids from a menu (`categories[].items[]`) or an add
/// answer (`items[]`).
fn item_ids(menu: &Value) -> Vec<String> {
    let from_list = |items: &Value| -> Vec<String> {
        items
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["available"].as_bool().unwrap_or(true))
            .filter_map(|i| i["menu_item_id"].as_str().map(str::to_owned))
            .collect()
    };
    let mut ids = from_list(&menu["items"]);
    for category in menu["categories"].as_array().into_iter().flatten() {
        ids.extend(from_list(&category["items"]));
    }
    ids.sort();
    ids.dedup();
    ids
}

fn text(v: &Value, field: &str) -> Result<String, SetupError> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| SetupError::Unexpected(format!("no {field} in {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_read_menus_and_add_answers() {
        let menu = json!({"categories": [
            {"name": "A", "items": [{"menu_item_id": "1", "available": true},
                                    {"menu_item_id": "2", "available": false}]},
            {"name": "B", "items": [{"menu_item_id": "3"}]}
        ]});
        assert_eq!(item_ids(&menu), ["1", "3"]);
        let added = json!({"items": [{"menu_item_id": "9"}, {"menu_item_id": "9"}]});
        assert_eq!(item_ids(&added), ["9"]);
        assert!(item_ids(&json!({})).is_empty());
    }

    #[test]
    fn owner_emails_are_stable() {
        assert_eq!(owner_email(7), "owner-007@demo.hexdash.example");
    }
}
