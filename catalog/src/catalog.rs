//! The restaurant table and the write path.
//!
//! Restaurants live in slots (a `Vec` with a free list) indexed by id; each
//! slot keeps the entry as given, its tokens, its dishes and its [`Terms`].
//! The catalog-wide indexes refer to slots: the [`Grid`] (location, radius,
//! schedule), the [`TextIndex`] (token → slots), the [`CuisineIndex`] and
//! the interned [`Schedules`]. Every write keeps them in step,
//! incrementally: a dish change touches one restaurant's tokens, a
//! restaurant change re-indexes that restaurant only.

use engine::{LatLng, RestaurantId};
use rustc_hash::FxHashMap;
use uuid::Uuid;

use crate::grid::Grid;
use crate::hours::WeeklyHours;
use crate::index::{CuisineIndex, Schedules, TextIndex};
use crate::terms::{DishWords, Field, Terms};
use crate::text;

/// A restaurant as the catalog needs it. Validated by the api (radius capped,
/// location a real [`LatLng`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RestaurantEntry {
    pub id: RestaurantId,
    pub name: String,
    pub location: LatLng,
    pub cuisines: Vec<String>,
    /// `None`: always open.
    pub hours: Option<WeeklyHours>,
    /// The restaurant delivers to points within this haversine distance.
    pub delivery_radius_m: u32,
    /// Returned by searches either way; the api flags it.
    pub accepting_orders: bool,
}

/// A menu item as the catalog needs it. Unavailable dishes are kept (so
/// flipping `available` is an upsert) but neither match nor are returned.
#[derive(Clone, Debug, PartialEq)]
pub struct DishEntry {
    /// The menu item id.
    pub id: Uuid,
    pub restaurant_id: RestaurantId,
    pub name: String,
    pub category: String,
    pub price_cents: i64,
    pub available: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Dish {
    pub entry: DishEntry,
    name_tokens: Vec<String>,
    category_tokens: Vec<String>,
}

impl Dish {
    fn new(entry: DishEntry) -> Self {
        Self {
            name_tokens: text::tokens(&entry.name),
            category_tokens: text::tokens(&entry.category),
            entry,
        }
    }

    /// The tokens this dish contributes: none while unavailable.
    fn indexed_tokens(&self) -> impl Iterator<Item = &str> {
        self.name_tokens
            .iter()
            .chain(&self.category_tokens)
            .filter(|_| self.entry.available)
            .map(String::as_str)
    }
}

/// A restaurant's rating: the stars of its visible reviews added up, and
/// how many there are (the store's totals). Kept as totals so averages
/// compare exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rating {
    /// Stars added up.
    pub stars: u64,
    /// Reviews counted; 0: not rated.
    pub count: u64,
}

impl Rating {
    /// The mean stars; `None` when not rated.
    pub fn average(self) -> Option<f64> {
        // Precision: review counts stay far below 2^53.
        (self.count > 0).then(|| self.stars as f64 / self.count as f64)
    }

    /// Better first: the higher average (compared exactly, by
    /// cross-multiplying), then more reviews; rated before not rated.
    pub fn better_first(self, other: Rating) -> std::cmp::Ordering {
        match (self.count, other.count) {
            (0, 0) => std::cmp::Ordering::Equal,
            (0, _) => std::cmp::Ordering::Greater,
            (_, 0) => std::cmp::Ordering::Less,
            _ => {
                let mine = u128::from(self.stars) * u128::from(other.count);
                let theirs = u128::from(other.stars) * u128::from(self.count);
                theirs.cmp(&mine).then(other.count.cmp(&self.count))
            }
        }
    }

    /// Whether the average is at least `min` (never, when not rated).
    pub fn at_least(self, min: f64) -> bool {
        self.average().is_some_and(|a| a >= min)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Listing {
    pub entry: RestaurantEntry,
    name_tokens: Vec<String>,
    cuisine_tokens: Vec<String>,
    /// Each cuisine as [`text::phrase`], for the exact cuisine filter.
    cuisine_phrases: Vec<String>,
    /// The interned id of `entry.hours` ([`Schedules`]).
    pub schedule: u32,
    pub dishes: Vec<Dish>,
    terms: Terms,
    /// Name tokens of the available dishes, for a hit's matched dishes.
    pub dish_words: DishWords,
}

impl Listing {
    fn dish_index(&self, id: Uuid) -> Option<usize> {
        self.dishes.iter().position(|d| d.entry.id == id)
    }
}

/// Counts `tokens` in `terms` and tells `index` where a token's best field
/// for restaurant `slot` changed.
fn add_tokens<'a>(
    terms: &mut Terms,
    index: &mut TextIndex,
    slot: u32,
    tokens: impl IntoIterator<Item = &'a str>,
    field: Field,
) {
    for token in tokens {
        let before = terms.best(token);
        terms.add(token, field);
        let after = terms.best(token);
        if before != after {
            index.set(token, slot, after);
        }
    }
}

/// Undoes [`add_tokens`].
fn remove_tokens<'a>(
    terms: &mut Terms,
    index: &mut TextIndex,
    slot: u32,
    tokens: impl IntoIterator<Item = &'a str>,
    field: Field,
) {
    for token in tokens {
        let before = terms.best(token);
        terms.remove(token, field);
        let after = terms.best(token);
        if before != after {
            index.set(token, slot, after);
        }
    }
}

/// The in-memory index. `Send + Sync`; the api shares it as
/// `Arc<parking_lot::RwLock<Catalog>>`, searching under the read lock and
/// applying writes under the write lock after they commit.
#[derive(Default)]
pub struct Catalog {
    slots: Vec<Option<Listing>>,
    free: Vec<u32>,
    by_id: FxHashMap<RestaurantId, u32>,
    /// Dish id → slot of the restaurant that holds it.
    dish_home: FxHashMap<Uuid, u32>,
    /// Per slot, its restaurant's rating ([`Catalog::set_rating`]): apart
    /// from the listings so a search's filter and order read 16 bytes per
    /// restaurant, not its listing.
    pub(crate) ratings: Vec<Rating>,
    pub(crate) grid: Grid,
    pub(crate) text: TextIndex,
    pub(crate) cuisines: CuisineIndex,
    pub(crate) schedules: Schedules,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a restaurant or replaces one with the same id, keeping its
    /// dishes.
    pub fn upsert_restaurant(&mut self, r: RestaurantEntry) {
        let slot = match self.by_id.get(&r.id) {
            Some(&slot) => {
                self.unindex_entry(slot);
                slot
            }
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => slot,
                    None => {
                        self.slots.push(None);
                        self.ratings.push(Rating::default());
                        // Slot numbers fit u32: four billion restaurants
                        // would not fit in memory first.
                        u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                self.by_id.insert(r.id, slot);
                slot
            }
        };
        let old = self.slots[slot as usize].take();
        let mut listing = Listing {
            name_tokens: text::tokens(&r.name),
            cuisine_tokens: r.cuisines.iter().flat_map(|c| text::tokens(c)).collect(),
            cuisine_phrases: r.cuisines.iter().map(|c| text::phrase(c)).collect(),
            schedule: self.schedules.acquire(r.hours.as_ref()),
            dishes: Vec::new(),
            terms: Terms::default(),
            dish_words: DishWords::default(),
            entry: r,
        };
        if let Some(old) = old {
            listing.dishes = old.dishes;
            listing.terms = old.terms;
            listing.dish_words = old.dish_words;
        }
        let tokens = listing.name_tokens.iter().map(String::as_str);
        add_tokens(
            &mut listing.terms,
            &mut self.text,
            slot,
            tokens,
            Field::Name,
        );
        let tokens = listing.cuisine_tokens.iter().map(String::as_str);
        add_tokens(
            &mut listing.terms,
            &mut self.text,
            slot,
            tokens,
            Field::Cuisine,
        );
        for phrase in &listing.cuisine_phrases {
            self.cuisines.add(phrase, slot);
        }
        let e = &listing.entry;
        self.grid.insert(
            slot,
            e.id,
            listing.schedule,
            e.location,
            e.delivery_radius_m,
        );
        self.slots[slot as usize] = Some(listing);
    }

    /// Takes the restaurant part of `slot` (not its dishes) out of every
    /// index: the grid, name and cuisine tokens, cuisines, its schedule.
    fn unindex_entry(&mut self, slot: u32) {
        let Some(listing) = self.slots[slot as usize].as_mut() else {
            return;
        };
        let e = &listing.entry;
        self.grid.remove(slot, e.location, e.delivery_radius_m);
        let tokens = listing.name_tokens.iter().map(String::as_str);
        remove_tokens(
            &mut listing.terms,
            &mut self.text,
            slot,
            tokens,
            Field::Name,
        );
        let tokens = listing.cuisine_tokens.iter().map(String::as_str);
        remove_tokens(
            &mut listing.terms,
            &mut self.text,
            slot,
            tokens,
            Field::Cuisine,
        );
        for phrase in &listing.cuisine_phrases {
            self.cuisines.remove(phrase, slot);
        }
        self.schedules.release(listing.schedule);
    }

    /// Removes a restaurant and its dishes. Returns whether it was there.
    pub fn remove_restaurant(&mut self, id: RestaurantId) -> bool {
        let Some(&slot) = self.by_id.get(&id) else {
            return false;
        };
        let dish_ids: Vec<Uuid> = self
            .listing(slot)
            .map(|l| l.dishes.iter().map(|d| d.entry.id).collect())
            .unwrap_or_default();
        for dish in dish_ids {
            self.remove_dish(dish);
        }
        self.unindex_entry(slot);
        self.slots[slot as usize] = None;
        self.ratings[slot as usize] = Rating::default();
        self.by_id.remove(&id);
        self.free.push(slot);
        true
    }

    /// Adds a dish or replaces one with the same id (also when it moves to
    /// another restaurant). Returns `false`, changing nothing, when its
    /// restaurant is not in the catalog: upsert the restaurant first.
    pub fn upsert_dish(&mut self, d: DishEntry) -> bool {
        let Some(&slot) = self.by_id.get(&d.restaurant_id) else {
            return false;
        };
        self.remove_dish(d.id);
        let dish = Dish::new(d);
        if let Some(listing) = self.slots[slot as usize].as_mut() {
            let tokens = dish.indexed_tokens();
            add_tokens(
                &mut listing.terms,
                &mut self.text,
                slot,
                tokens,
                Field::Dish,
            );
            if dish.entry.available {
                let tokens = dish.name_tokens.iter().map(String::as_str);
                listing
                    .dish_words
                    .add(dish.entry.id, dish.entry.name.len(), tokens);
            }
            self.dish_home.insert(dish.entry.id, slot);
            listing.dishes.push(dish);
        }
        true
    }

    /// Removes a dish. Returns whether it was there.
    pub fn remove_dish(&mut self, id: Uuid) -> bool {
        let Some(slot) = self.dish_home.remove(&id) else {
            return false;
        };
        if let Some(listing) = self.slots[slot as usize].as_mut()
            && let Some(i) = listing.dish_index(id)
        {
            let dish = listing.dishes.swap_remove(i);
            let tokens = dish.indexed_tokens();
            remove_tokens(
                &mut listing.terms,
                &mut self.text,
                slot,
                tokens,
                Field::Dish,
            );
            if dish.entry.available {
                listing.dish_words.remove(id);
            }
        }
        true
    }

    /// Sets a restaurant's rating (its visible reviews' totals, as
    /// reloaded after a review changed); whether the restaurant is listed.
    pub fn set_rating(&mut self, id: RestaurantId, rating: Rating) -> bool {
        let Some(&slot) = self.by_id.get(&id) else {
            return false;
        };
        self.ratings[slot as usize] = rating;
        true
    }

    /// A restaurant's rating; not rated if unknown.
    pub fn rating(&self, id: RestaurantId) -> Rating {
        self.by_id
            .get(&id)
            .map(|&slot| self.rating_at(slot))
            .unwrap_or_default()
    }

    /// The rating of the restaurant in `slot`.
    pub(crate) fn rating_at(&self, slot: u32) -> Rating {
        self.ratings.get(slot as usize).copied().unwrap_or_default()
    }

    pub fn restaurant_count(&self) -> usize {
        self.by_id.len()
    }

    pub fn dish_count(&self) -> usize {
        self.dish_home.len()
    }

    pub fn restaurant(&self, id: RestaurantId) -> Option<&RestaurantEntry> {
        self.listing_of(id).map(|l| &l.entry)
    }

    /// The restaurant's dishes, available or not, in no particular order.
    pub fn dishes(&self, id: RestaurantId) -> impl Iterator<Item = &DishEntry> {
        self.listing_of(id)
            .into_iter()
            .flat_map(|l| l.dishes.iter().map(|d| &d.entry))
    }

    pub fn dish(&self, id: Uuid) -> Option<&DishEntry> {
        let slot = *self.dish_home.get(&id)?;
        let listing = self.listing(slot)?;
        listing.dishes.iter().map(|d| &d.entry).find(|d| d.id == id)
    }

    fn listing_of(&self, id: RestaurantId) -> Option<&Listing> {
        self.listing(*self.by_id.get(&id)?)
    }

    pub(crate) fn listing(&self, slot: u32) -> Option<&Listing> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// Slot numbers are below this.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restaurant(name: &str) -> RestaurantEntry {
        RestaurantEntry {
            id: RestaurantId::new(),
            name: name.into(),
            location: LatLng {
                lat: 57.7,
                lng: 11.97,
            },
            cuisines: vec!["Italian".into()],
            hours: None,
            delivery_radius_m: 3_000,
            accepting_orders: true,
        }
    }

    fn dish(r: &RestaurantEntry, name: &str) -> DishEntry {
        DishEntry {
            id: Uuid::new_v4(),
            restaurant_id: r.id,
            name: name.into(),
            category: "Pizza".into(),
            price_cents: 9_900,
            available: true,
        }
    }

    #[test]
    fn write_path_bookkeeping() {
        let mut c = Catalog::new();
        let a = restaurant("Napoli");
        let b = restaurant("Roma");
        c.upsert_restaurant(a.clone());
        c.upsert_restaurant(b.clone());
        assert_eq!(c.restaurant_count(), 2);

        let d = dish(&a, "Margherita");
        assert!(c.upsert_dish(d.clone()));
        assert_eq!(c.dish(d.id), Some(&d));
        // Unknown restaurant: ignored.
        let orphan = DishEntry {
            restaurant_id: RestaurantId::new(),
            ..dish(&a, "Orphan")
        };
        assert!(!c.upsert_dish(orphan.clone()));
        assert_eq!(c.dish(orphan.id), None);

        // Moving a dish to another restaurant.
        let moved = DishEntry {
            restaurant_id: b.id,
            ..d.clone()
        };
        assert!(c.upsert_dish(moved.clone()));
        assert_eq!(c.dishes(a.id).count(), 0);
        assert_eq!(c.dishes(b.id).collect::<Vec<_>>(), vec![&moved]);
        assert_eq!(c.dish_count(), 1);

        // Updating the restaurant keeps its dishes.
        let renamed = RestaurantEntry {
            name: "Roma Due".into(),
            ..b.clone()
        };
        c.upsert_restaurant(renamed.clone());
        assert_eq!(c.restaurant(b.id), Some(&renamed));
        assert_eq!(c.dishes(b.id).count(), 1);

        assert!(c.remove_dish(d.id));
        assert!(!c.remove_dish(d.id));
        assert_eq!(c.dish_count(), 0);

        c.upsert_dish(dish(&a, "Quattro Stagioni"));
        assert!(c.remove_restaurant(a.id));
        assert!(!c.remove_restaurant(a.id));
        assert_eq!(c.restaurant_count(), 1);
        assert_eq!(c.dish_count(), 0);
        assert_eq!(c.grid.len(), 1);
        assert_eq!(c.schedules.live(), 0);
        // The freed slot is reused.
        c.upsert_restaurant(restaurant("Nuovo"));
        assert_eq!(c.slots.len(), 2);
    }

    #[test]
    fn catalog_is_send_and_sync() {
        fn check<T: Send + Sync + Default>() {}
        check::<Catalog>();
    }
}
