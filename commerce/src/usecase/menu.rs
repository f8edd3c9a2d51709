//! Menus: reading one, adding items to it and changing an item (the
//! restaurant's owner or an admin, see [`super::restaurant::owned`]).
//! Every change is one store write that appends `menu.updated` with the
//! acting user in its transaction; then the search catalog hears of it.
//!
//! Values come in parsed (names, prices, stock and positions in range);
//! this module applies the menu's size limit, the defaults, the positions
//! of new items and the ids and times.

use auth::Principal;
use clock::Ids;
use engine::{MenuItemId, RestaurantId, UserId};

use crate::ports::CatalogSide;
use crate::store::{MenuItem, RestaurantStore};
use crate::{Error, Result};

/// Most items on one menu.
pub const MAX_ITEMS_PER_MENU: usize = 1_000;
/// The category of an item added without one.
pub const DEFAULT_CATEGORY: &str = "Menu";

/// An item to add, its values parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewItem {
    /// Its name (trimmed).
    pub name: String,
    /// What it is (trimmed; may be empty).
    pub description: String,
    /// Its price.
    pub price_cents: i64,
    /// Its menu section; `None`: [`DEFAULT_CATEGORY`].
    pub category: Option<String>,
    /// Whether it can be ordered.
    pub available: bool,
    /// Units in stock; `None`: not counted.
    pub stock: Option<i64>,
}

/// Changes to an item, parsed; `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemPatch {
    /// A new name (trimmed).
    pub name: Option<String>,
    /// A new description (trimmed).
    pub description: Option<String>,
    /// A new price.
    pub price_cents: Option<i64>,
    /// A new menu section.
    pub category: Option<String>,
    /// The owner's switch.
    pub available: Option<bool>,
    /// A new stock count (a restock); `Some(None)`: stop counting.
    pub stock: Option<Option<i64>>,
    /// A new place on the menu.
    pub position: Option<i64>,
}

/// What adding items made.
#[derive(Clone, Debug, PartialEq)]
pub struct Added {
    /// The items added, in the order given.
    pub items: Vec<MenuItem>,
    /// The whole menu after the change, by position.
    pub menu: Vec<MenuItem>,
}

/// The restaurant's menu, by position (anyone may read it).
pub async fn menu(
    store: &(impl RestaurantStore + ?Sized),
    restaurant_id: RestaurantId,
) -> Result<Vec<MenuItem>> {
    if store.restaurant(restaurant_id).await?.is_none() {
        return Err(Error::NotFound("restaurant"));
    }
    Ok(store.menu(restaurant_id).await?)
}

/// Adds `items` after the last item of the menu of `restaurant_id` (which
/// `actor` may change: [`super::restaurant::owned`]), with new ids from
/// `ids`, in one write. Refused with `menu_full` (a conflict) if the menu
/// would pass [`MAX_ITEMS_PER_MENU`].
pub async fn add_items(
    store: &(impl RestaurantStore + ?Sized),
    catalog: &dyn CatalogSide,
    ids: &Ids,
    actor: UserId,
    restaurant_id: RestaurantId,
    items: Vec<NewItem>,
    now_ms: i64,
) -> Result<Added> {
    let existing = store.menu(restaurant_id).await?;
    if existing.len() + items.len() > MAX_ITEMS_PER_MENU {
        return Err(Error::conflict(
            "menu_full",
            format!("a menu holds at most {MAX_ITEMS_PER_MENU} items"),
        ));
    }
    let first_position = next_position(&existing);
    let items: Vec<MenuItem> = (first_position..)
        .zip(items)
        .map(|(position, new)| MenuItem {
            id: ids.next(),
            restaurant_id,
            category: new.category.unwrap_or_else(|| DEFAULT_CATEGORY.to_owned()),
            name: new.name,
            description: new.description,
            price_cents: new.price_cents,
            available: new.available,
            stock: new.stock,
            position,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        })
        .collect();
    store.insert_menu_items(&items, actor).await?;
    for item in &items {
        catalog.item_changed(item);
    }
    let menu = store.menu(restaurant_id).await?;
    Ok(Added { items, menu })
}

/// The item, if it is on the menu of `restaurant_id` and `principal` may
/// change that restaurant.
pub async fn owned_item(
    store: &(impl RestaurantStore + ?Sized),
    principal: &Principal,
    restaurant_id: RestaurantId,
    item_id: MenuItemId,
) -> Result<MenuItem> {
    super::restaurant::owned(store, principal, restaurant_id).await?;
    store
        .menu_item(item_id)
        .await?
        .filter(|i| i.restaurant_id == restaurant_id)
        .ok_or(Error::NotFound("menu item"))
}

/// Applies `patch` to `item` (as [`owned_item`] read it for `actor`); the
/// item as stored now.
pub async fn update_item(
    store: &(impl RestaurantStore + ?Sized),
    catalog: &dyn CatalogSide,
    actor: UserId,
    mut item: MenuItem,
    patch: ItemPatch,
    now_ms: i64,
) -> Result<MenuItem> {
    if let Some(name) = patch.name {
        item.name = name;
    }
    if let Some(description) = patch.description {
        item.description = description;
    }
    if let Some(price) = patch.price_cents {
        item.price_cents = price;
    }
    if let Some(category) = patch.category {
        item.category = category;
    }
    if let Some(available) = patch.available {
        item.available = available;
    }
    if let Some(stock) = patch.stock {
        item.stock = stock;
    }
    if let Some(position) = patch.position {
        item.position = position;
    }
    item.updated_at_ms = now_ms;
    if !store.update_menu_item(&item, actor).await? {
        return Err(Error::NotFound("menu item"));
    }
    catalog.item_changed(&item);
    Ok(item)
}

/// The position after the last item of `menu` (1 on an empty menu).
fn next_position(menu: &[MenuItem]) -> i64 {
    menu.iter().map(|i| i.position).max().unwrap_or(0) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(position: i64) -> MenuItem {
        MenuItem {
            id: MenuItemId::from(uuid::Uuid::from_u128(position as u128 + 10)),
            restaurant_id: RestaurantId::from(uuid::Uuid::from_u128(1)),
            category: DEFAULT_CATEGORY.to_owned(),
            name: "Dish".to_owned(),
            description: String::new(),
            price_cents: 100,
            available: true,
            stock: None,
            position,
            created_at_ms: 1,
            updated_at_ms: 1,
        }
    }

    #[test]
    fn new_items_go_after_the_last() {
        assert_eq!(next_position(&[]), 1);
        assert_eq!(next_position(&[at(3), at(0), at(7)]), 8);
    }
}
