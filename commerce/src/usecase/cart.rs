//! The customer's cart: lines of one restaurant, changed one edit at a
//! time and checked out into an order (checkout is [`super::place`], which
//! reads the lines with [`super::place::cart_items`]).
//!
//! An edit of an item resolves the item's restaurant first (an unknown item
//! is not found); the store applies the edit in one transaction, so a cart
//! never mixes restaurants and a line never passes the most of one item an
//! order may have ([`MAX_QUANTITY`]).

use engine::{MenuItemId, RestaurantId, UserId};

use crate::store::{Cart, CartChange, CartOutcome, CartStore, RestaurantStore};
use crate::{Error, Result};

pub use super::place::MAX_QUANTITY;

/// One edit of a cart, its quantity already checked against the request's
/// bounds (1 to [`MAX_QUANTITY`] to add, 0 to [`MAX_QUANTITY`] to set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Adds `quantity` to the item's line (creating it).
    Add {
        /// The menu item.
        item: MenuItemId,
        /// How many to add.
        quantity: i64,
    },
    /// Sets the item's line to `quantity`; 0 removes it.
    Set {
        /// The menu item.
        item: MenuItemId,
        /// The line's new quantity.
        quantity: i64,
    },
    /// Removes the item's line (nothing if there is none).
    Remove(MenuItemId),
    /// Empties the cart.
    Clear,
}

/// The customer's cart (empty if they have none).
pub async fn cart(store: &(impl CartStore + ?Sized), customer_id: UserId) -> Result<Cart> {
    Ok(store.cart(customer_id).await?)
}

/// Applies `edit` to the customer's cart; the cart after it. Refusals: the
/// item is not found; `cart_has_other_restaurant` (a conflict, with
/// `restaurant_id`: clear the cart first); `invalid_quantity` (with what
/// the cart holds, the line would pass [`MAX_QUANTITY`]).
pub async fn edit(
    store: &(impl CartStore + RestaurantStore + ?Sized),
    customer_id: UserId,
    edit: Edit,
    now_ms: i64,
) -> Result<Cart> {
    let change = match edit {
        Edit::Add { item, quantity } => CartChange::Add {
            item,
            restaurant_id: item_restaurant(store, item).await?,
            quantity,
        },
        Edit::Set { item, quantity } => CartChange::Set {
            item,
            restaurant_id: item_restaurant(store, item).await?,
            quantity,
        },
        Edit::Remove(item) => CartChange::Remove(item),
        Edit::Clear => CartChange::Clear,
    };
    match store
        .change_cart(customer_id, change, MAX_QUANTITY, now_ms)
        .await?
    {
        CartOutcome::Changed(cart) => Ok(cart),
        CartOutcome::OtherRestaurant(other) => Err(Error::Conflict {
            code: "cart_has_other_restaurant",
            reason: "the cart holds items of another restaurant; clear it first".to_owned(),
            detail: Some(("restaurant_id", other.to_string())),
        }),
        CartOutcome::TooMany => Err(Error::invalid(
            "invalid_quantity",
            format!("at most {MAX_QUANTITY} of one item in the cart"),
        )),
    }
}

/// The restaurant whose menu has `item`.
async fn item_restaurant(
    store: &(impl RestaurantStore + ?Sized),
    item: MenuItemId,
) -> Result<RestaurantId> {
    Ok(store
        .menu_item(item)
        .await?
        .ok_or(Error::NotFound("menu item"))?
        .restaurant_id)
}
