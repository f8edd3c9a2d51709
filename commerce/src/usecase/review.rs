//! Ratings and reviews. After delivery the customer who ordered rates the
//! restaurant (1 to 5 stars) and, optionally, the driver, each with an
//! optional text: once per order (the store's unique index decides a race),
//! editable for a limited time from the review's creation (the caller's
//! `edit_window_ms`, on the injected clock). Averages count the reviews
//! that are not hidden: an admin hides a review with a reason (it stops
//! counting and is no longer listed publicly) and may show it again.

use auth::{Principal, Role};
use clock::Ids;
use engine::{OrderId, OrderStatus, UserId};

use crate::lifecycle::Party;
use crate::store::{Inserted, PageAfter, RatingTotals, Review, ReviewId, ReviewsOf, Store};
use crate::usecase::listing::Page;
use crate::{Error, Result};

/// Counter: reviews written, edited, hidden and shown again, by `action`.
pub const REVIEWS_TOTAL: &str = "hexdash_reviews_total";

/// One rating: stars (1 to 5, checked by the caller) and an optional text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rating {
    /// 1 to 5.
    pub stars: i64,
    /// What the customer says (trimmed, bounded by the caller).
    pub text: Option<String>,
}

/// What a customer writes about an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewAsk {
    /// The restaurant's rating.
    pub restaurant: Rating,
    /// The driver's rating, if the customer rates the driver.
    pub driver: Option<Rating>,
}

/// The order, if `principal` is its customer and it is delivered.
async fn reviewable_order(
    store: &dyn Store,
    principal: &Principal,
    order_id: OrderId,
) -> Result<crate::store::Order> {
    let order = store
        .order(order_id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    match Party::of(principal, &order) {
        None => return Err(Error::NotFound("order")),
        Some(Party::Customer) => {}
        Some(_) => {
            return Err(Error::forbidden(
                "only the customer who placed the order may review it",
            ));
        }
    }
    if order.status != OrderStatus::Delivered {
        return Err(Error::Conflict {
            code: "not_delivered",
            reason: format!(
                "an order can be reviewed once delivered (it is {})",
                order.status.as_str()
            ),
            detail: Some(("current_status", order.status.as_str().to_owned())),
        });
    }
    Ok(order)
}

/// Writes the customer's review of a delivered order; once per order.
pub async fn create(
    store: &dyn Store,
    ids: &Ids,
    principal: &Principal,
    order_id: OrderId,
    ask: ReviewAsk,
    now_ms: i64,
) -> Result<Review> {
    let order = reviewable_order(store, principal, order_id).await?;
    let review = Review {
        id: ids.uuid(),
        order_id,
        customer_id: principal.user_id,
        restaurant_id: order.restaurant_id,
        driver_id: order.driver_id,
        restaurant_stars: ask.restaurant.stars,
        restaurant_text: ask.restaurant.text,
        driver_stars: ask.driver.as_ref().map(|d| d.stars),
        driver_text: ask.driver.and_then(|d| d.text),
        hidden_at_ms: None,
        hidden_reason: None,
        hidden_by: None,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    };
    if review.driver_stars.is_some() && review.driver_id.is_none() {
        return Err(Error::invalid(
            "no_driver",
            "the order had no driver to rate",
        ));
    }
    match store.insert_review(&review).await? {
        Inserted::Created => {
            metrics::counter!(REVIEWS_TOTAL, "action" => "created").increment(1);
            Ok(review)
        }
        Inserted::Duplicate => Err(Error::conflict(
            "already_reviewed",
            "the order has a review already: edit it with PUT while the edit window lasts",
        )),
    }
}

/// Replaces the ratings and texts of the customer's review, while
/// `edit_window_ms` from its creation has not passed.
pub async fn edit(
    store: &dyn Store,
    principal: &Principal,
    order_id: OrderId,
    ask: ReviewAsk,
    edit_window_ms: i64,
    now_ms: i64,
) -> Result<Review> {
    let order = reviewable_order(store, principal, order_id).await?;
    let review = store
        .review_of_order(order_id)
        .await?
        .ok_or(Error::NotFound("review"))?;
    let until = review.created_at_ms.saturating_add(edit_window_ms);
    if now_ms > until {
        return Err(Error::Conflict {
            code: "edit_window_closed",
            reason: "the review can no longer be edited".to_owned(),
            detail: Some(("editable_until", until.to_string())),
        });
    }
    if ask.driver.is_some() && order.driver_id.is_none() {
        return Err(Error::invalid(
            "no_driver",
            "the order had no driver to rate",
        ));
    }
    let edited = Review {
        restaurant_stars: ask.restaurant.stars,
        restaurant_text: ask.restaurant.text,
        driver_stars: ask.driver.as_ref().map(|d| d.stars),
        driver_text: ask.driver.and_then(|d| d.text),
        updated_at_ms: now_ms,
        ..review
    };
    if !store.update_review(&edited).await? {
        return Err(Error::NotFound("review"));
    }
    metrics::counter!(REVIEWS_TOTAL, "action" => "updated").increment(1);
    Ok(edited)
}

/// The order's review, for a party to the order (not found otherwise, as
/// for the order itself).
pub async fn of_order(
    store: &dyn Store,
    principal: &Principal,
    order_id: OrderId,
) -> Result<Review> {
    super::visible_order(store, principal, order_id).await?;
    store
        .review_of_order(order_id)
        .await?
        .ok_or(Error::NotFound("review"))
}

/// Hides (`reason` set) or shows again (`None`) a review, for `admin`.
pub async fn set_hidden(
    store: &dyn Store,
    admin: UserId,
    review_id: ReviewId,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<Review> {
    let review = store
        .set_review_hidden(review_id, reason, admin, now_ms)
        .await?
        .ok_or(Error::NotFound("review"))?;
    let action = if reason.is_some() { "hidden" } else { "shown" };
    metrics::counter!(REVIEWS_TOTAL, "action" => action).increment(1);
    Ok(review)
}

/// A page of reviews with the rating they add up to.
#[derive(Clone, Debug, PartialEq)]
pub struct Reviews {
    /// The page, newest first.
    pub page: Page<Review>,
    /// Stars and count over every review that counts (not hidden).
    pub totals: RatingTotals,
}

/// Reviews of a restaurant or a driver, newest first; hidden ones only for
/// an admin (`include_hidden`).
pub async fn list(
    store: &dyn Store,
    of: ReviewsOf,
    include_hidden: bool,
    after: Option<&PageAfter>,
    limit: u32,
) -> Result<Reviews> {
    let mut rows = store
        .list_reviews(of, include_hidden, after, limit.saturating_add(1))
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| PageAfter {
            created_at_ms: r.created_at_ms,
            id: r.id.to_string(),
        })
    } else {
        None
    };
    let totals = store.rating(of).await?;
    Ok(Reviews {
        page: Page { items: rows, next },
        totals,
    })
}

/// Whether `principal` may list a driver's reviews: the driver itself or
/// an admin.
pub fn may_read_driver_reviews(principal: &Principal, driver: UserId) -> bool {
    principal.role == Role::Admin || principal.user_id == driver
}
