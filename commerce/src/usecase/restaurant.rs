//! Restaurants: creating one, reading one, and changing its profile (its
//! owner or an admin). Every change is one store write that appends
//! `restaurant.updated` with the acting user in its transaction; then the
//! search catalog hears of it ([`CatalogSide`]).
//!
//! Values come in parsed (names trimmed and bounded, the location and the
//! opening hours valid, radius and preparation time in range); this module
//! applies the defaults, the ownership rule and the ids and times.

use auth::{Principal, Role};
use catalog::WeeklyHours;
use clock::Ids;
use engine::{LatLng, RestaurantId, UserId};

use crate::ports::CatalogSide;
use crate::store::{Restaurant, RestaurantStore, StoreError};
use crate::{Error, Result};

/// Delivery radius of a restaurant that does not say, metres.
pub const DEFAULT_DELIVERY_RADIUS_M: u32 = 5_000;
/// Average preparation time of a restaurant that does not say, seconds.
pub const DEFAULT_PREP_TIME_S: u32 = 900;

/// A restaurant to create, its values parsed; `None`: the default.
#[derive(Clone, Debug)]
pub struct NewRestaurant {
    /// Its name (trimmed).
    pub name: String,
    /// Where orders are picked up.
    pub location: LatLng,
    /// Its street address (trimmed).
    pub address: String,
    /// Lower-case cuisines without repeats.
    pub cuisines: Vec<String>,
    /// Weekly opening hours; `None`: always open.
    pub hours: Option<WeeklyHours>,
    /// Default [`DEFAULT_DELIVERY_RADIUS_M`].
    pub delivery_radius_m: Option<u32>,
    /// Default [`DEFAULT_PREP_TIME_S`].
    pub prep_time_s: Option<u32>,
    /// Default: taking orders.
    pub accepting_orders: Option<bool>,
}

/// Changes to a restaurant's profile, parsed; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct RestaurantPatch {
    /// A new name (trimmed).
    pub name: Option<String>,
    /// A new pick-up point.
    pub location: Option<LatLng>,
    /// A new street address (trimmed).
    pub address: Option<String>,
    /// New cuisines (lower-case, without repeats).
    pub cuisines: Option<Vec<String>>,
    /// New opening hours; `Some(None)`: always open from now on.
    pub hours: Option<Option<WeeklyHours>>,
    /// A new delivery radius, metres.
    pub delivery_radius_m: Option<u32>,
    /// A new average preparation time, seconds.
    pub prep_time_s: Option<u32>,
    /// The owner's switch.
    pub accepting_orders: Option<bool>,
}

/// Creates a restaurant owned by `owner` (the acting user, a restaurant
/// account or an admin), with a new id from `ids`; the restaurant as
/// stored.
pub async fn create(
    store: &(impl RestaurantStore + ?Sized),
    catalog: &dyn CatalogSide,
    ids: &Ids,
    owner: UserId,
    new: NewRestaurant,
    now_ms: i64,
) -> Result<Restaurant> {
    let restaurant = Restaurant {
        id: ids.next(),
        owner_id: owner,
        name: new.name,
        location: new.location,
        address: new.address,
        cuisines: new.cuisines,
        hours_json: new.hours.as_ref().map(hours_json).transpose()?,
        delivery_radius_m: new.delivery_radius_m.unwrap_or(DEFAULT_DELIVERY_RADIUS_M),
        prep_time_s: new.prep_time_s.unwrap_or(DEFAULT_PREP_TIME_S),
        accepting_orders: new.accepting_orders.unwrap_or(true),
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    };
    store.insert_restaurant(&restaurant, owner).await?;
    catalog.restaurant_changed(&restaurant);
    Ok(restaurant)
}

/// The restaurant (anyone may read it).
pub async fn restaurant(
    store: &(impl RestaurantStore + ?Sized),
    restaurant_id: RestaurantId,
) -> Result<Restaurant> {
    store
        .restaurant(restaurant_id)
        .await?
        .ok_or(Error::NotFound("restaurant"))
}

/// The restaurant, if `principal` may change it (its owner, or an admin).
pub async fn owned(
    store: &(impl RestaurantStore + ?Sized),
    principal: &Principal,
    restaurant_id: RestaurantId,
) -> Result<Restaurant> {
    let restaurant = restaurant(store, restaurant_id).await?;
    if may_change(principal, &restaurant) {
        Ok(restaurant)
    } else {
        Err(Error::forbidden(
            "only the restaurant's owner or an admin may change it",
        ))
    }
}

/// The kitchen screen: `restaurant_id`'s orders (only those in `status`
/// when given), newest first, strictly after `cursor`, at most `limit`,
/// for its owner or an admin (not found for an unknown restaurant,
/// forbidden for anyone else).
pub async fn kitchen_orders(
    store: &(impl RestaurantStore + crate::store::OrderStore + ?Sized),
    principal: &Principal,
    restaurant_id: RestaurantId,
    status: Option<engine::OrderStatus>,
    cursor: Option<crate::store::OrderCursor>,
    limit: u32,
) -> Result<super::OrderPage> {
    let restaurant = restaurant(store, restaurant_id).await?;
    if !may_change(principal, &restaurant) {
        return Err(Error::forbidden(
            "only the restaurant's owner or an admin may see its orders",
        ));
    }
    let scope = crate::store::OrderScope::Restaurant {
        restaurant_id,
        status,
    };
    // One more than the page, to know whether another page follows.
    let mut orders = store
        .list_orders(scope, cursor, limit.saturating_add(1))
        .await?;
    let more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    Ok(super::OrderPage { orders, more })
}

/// Whether `principal` may change `restaurant` and its menu.
pub fn may_change(principal: &Principal, restaurant: &Restaurant) -> bool {
    principal.role == Role::Admin || restaurant.owner_id == principal.user_id
}

/// Applies `patch` to `restaurant` (as [`owned`] read it for `principal`,
/// the acting user); the restaurant as stored now.
pub async fn update(
    store: &(impl RestaurantStore + ?Sized),
    catalog: &dyn CatalogSide,
    principal: &Principal,
    mut restaurant: Restaurant,
    patch: RestaurantPatch,
    now_ms: i64,
) -> Result<Restaurant> {
    let r = &mut restaurant;
    if let Some(name) = patch.name {
        r.name = name;
    }
    if let Some(location) = patch.location {
        r.location = location;
    }
    if let Some(address) = patch.address {
        r.address = address;
    }
    if let Some(cuisines) = patch.cuisines {
        r.cuisines = cuisines;
    }
    if let Some(hours) = patch.hours {
        r.hours_json = hours.as_ref().map(hours_json).transpose()?;
    }
    if let Some(radius) = patch.delivery_radius_m {
        r.delivery_radius_m = radius;
    }
    if let Some(prep) = patch.prep_time_s {
        r.prep_time_s = prep;
    }
    if let Some(accepting) = patch.accepting_orders {
        r.accepting_orders = accepting;
    }
    r.updated_at_ms = now_ms;
    if !store
        .update_restaurant(&restaurant, principal.user_id)
        .await?
    {
        return Err(Error::NotFound("restaurant"));
    }
    catalog.restaurant_changed(&restaurant);
    Ok(restaurant)
}

/// Opening hours as stored (`Restaurant::hours_json`).
fn hours_json(hours: &WeeklyHours) -> Result<String> {
    // A plain struct of strings and numbers: serialising cannot fail, but
    // if it did it is ours, not the client's.
    serde_json::to_string(hours).map_err(|e| Error::Store(StoreError::Corrupt(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restaurant_of(owner: UserId) -> Restaurant {
        Restaurant {
            id: RestaurantId::from(uuid::Uuid::from_u128(1)),
            owner_id: owner,
            name: "Pizza".to_owned(),
            location: LatLng::new(57.7, 11.97).unwrap(),
            address: "Street 1".to_owned(),
            cuisines: Vec::new(),
            hours_json: None,
            delivery_radius_m: DEFAULT_DELIVERY_RADIUS_M,
            prep_time_s: DEFAULT_PREP_TIME_S,
            accepting_orders: true,
            created_at_ms: 1,
            updated_at_ms: 1,
        }
    }

    #[test]
    fn the_owner_and_admins_may_change_a_restaurant() {
        let owner = UserId::from(uuid::Uuid::from_u128(2));
        let other = UserId::from(uuid::Uuid::from_u128(3));
        let r = restaurant_of(owner);
        let as_ = |user_id, role| Principal { user_id, role };
        assert!(may_change(&as_(owner, Role::Restaurant), &r));
        assert!(may_change(&as_(other, Role::Admin), &r));
        assert!(!may_change(&as_(other, Role::Restaurant), &r));
        assert!(!may_change(&as_(other, Role::Customer), &r));
    }
}
