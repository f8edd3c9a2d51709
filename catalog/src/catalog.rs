//! The restaurant table and the write path.
//!
//! Restaurants live in slots (a `Vec` with a free list) indexed by id; each
//! slot keeps the entry as given, its tokens, its dishes and its [`Terms`],
//! and the [`Grid`] holds the slot under its location and radius. Every
//! write keeps the three in step, incrementally: a dish change touches one
//! restaurant's terms, a move touches two grid cells.

use engine::{LatLng, RestaurantId};
use rustc_hash::FxHashMap;
use uuid::Uuid;

use crate::grid::Grid;
use crate::hours::WeeklyHours;
use crate::terms::{Field, Terms};
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
    pub name_tokens: Vec<String>,
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

    fn index(&self, terms: &mut Terms) {
        if self.entry.available {
            terms.add(self.tokens(), Field::Dish);
        }
    }

    fn unindex(&self, terms: &mut Terms) {
        if self.entry.available {
            terms.remove(self.tokens(), Field::Dish);
        }
    }

    fn tokens(&self) -> impl Iterator<Item = &str> {
        self.name_tokens
            .iter()
            .chain(&self.category_tokens)
            .map(String::as_str)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Listing {
    pub entry: RestaurantEntry,
    name_tokens: Vec<String>,
    cuisine_tokens: Vec<String>,
    /// Each cuisine as [`text::phrase`], for the exact cuisine filter.
    pub cuisine_phrases: Vec<String>,
    pub dishes: Vec<Dish>,
    pub terms: Terms,
}

impl Listing {
    fn new(entry: RestaurantEntry) -> Self {
        let mut listing = Self {
            entry,
            name_tokens: Vec::new(),
            cuisine_tokens: Vec::new(),
            cuisine_phrases: Vec::new(),
            dishes: Vec::new(),
            terms: Terms::default(),
        };
        listing.index_entry();
        listing
    }

    /// Indexes the name and cuisines of `self.entry`.
    fn index_entry(&mut self) {
        let e = &self.entry;
        self.name_tokens = text::tokens(&e.name);
        self.cuisine_tokens = e.cuisines.iter().flat_map(|c| text::tokens(c)).collect();
        self.cuisine_phrases = e.cuisines.iter().map(|c| text::phrase(c)).collect();
        self.terms
            .add(self.name_tokens.iter().map(String::as_str), Field::Name);
        self.terms.add(
            self.cuisine_tokens.iter().map(String::as_str),
            Field::Cuisine,
        );
    }

    fn unindex_entry(&mut self) {
        self.terms
            .remove(self.name_tokens.iter().map(String::as_str), Field::Name);
        self.terms.remove(
            self.cuisine_tokens.iter().map(String::as_str),
            Field::Cuisine,
        );
    }

    fn dish_index(&self, id: Uuid) -> Option<usize> {
        self.dishes.iter().position(|d| d.entry.id == id)
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
    pub(crate) grid: Grid,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a restaurant or replaces one with the same id, keeping its
    /// dishes.
    pub fn upsert_restaurant(&mut self, r: RestaurantEntry) {
        if let Some(&slot) = self.by_id.get(&r.id) {
            let Some(listing) = self.slots[slot as usize].as_mut() else {
                unreachable!("by_id only names occupied slots");
            };
            let old = &listing.entry;
            if old.location != r.location || old.delivery_radius_m != r.delivery_radius_m {
                self.grid.remove(slot, old.location, old.delivery_radius_m);
                self.grid.insert(slot, r.location, r.delivery_radius_m);
            }
            listing.unindex_entry();
            listing.entry = r;
            listing.index_entry();
            return;
        }
        let listing = Listing::new(r);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                // Slot numbers fit u32: four billion restaurants would not
                // fit in memory first.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_id.insert(listing.entry.id, slot);
        self.grid.insert(
            slot,
            listing.entry.location,
            listing.entry.delivery_radius_m,
        );
        self.slots[slot as usize] = Some(listing);
    }

    /// Removes a restaurant and its dishes. Returns whether it was there.
    pub fn remove_restaurant(&mut self, id: RestaurantId) -> bool {
        let Some(slot) = self.by_id.remove(&id) else {
            return false;
        };
        if let Some(listing) = self.slots[slot as usize].take() {
            self.grid.remove(
                slot,
                listing.entry.location,
                listing.entry.delivery_radius_m,
            );
            for dish in &listing.dishes {
                self.dish_home.remove(&dish.entry.id);
            }
        }
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
            dish.index(&mut listing.terms);
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
            dish.unindex(&mut listing.terms);
        }
        true
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
