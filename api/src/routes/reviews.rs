//! Ratings and reviews:
//!
//! | route                                                | who                          |
//! |------------------------------------------------------|------------------------------|
//! | `POST /v1/orders/{order_id}/review`                  | the order's customer, once delivered |
//! | `PUT /v1/orders/{order_id}/review`                   | the same, within the edit window |
//! | `GET /v1/orders/{order_id}/review`                   | the order's parties, admin   |
//! | `GET /v1/restaurants/{restaurant_id}/reviews`        | anyone (no token needed; visible reviews only) |
//! | `GET /v1/drivers/{driver_id}/reviews`                | that driver, admin           |
//! | `POST /v1/admin/reviews/{review_id}/hide`, `/unhide` | admin                        |
//!
//! Listings carry the rating the visible reviews add up to: `average`
//! (two decimals), `count` and `stars_total` (so clients can compute it
//! exactly). Hidden reviews do not count; a driver's listing shows them to
//! admins (marked), the public restaurant listing never.
//! The rules are `commerce::usecase::review`'s.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use commerce::usecase::review::{self as usecase, Rating, ReviewAsk};
use engine::{DriverId, OrderId, RestaurantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::payments::MAX_REASON_CHARS;
use super::{require_role, required_text};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::{PageAfter, RatingTotals, Review, ReviewsOf};

/// The fewest and most stars a rating gives (the schema's and the search
/// filter's bounds).
pub(crate) const MIN_STARS: i64 = 1;
pub(crate) const MAX_STARS: i64 = 5;
/// Longest review text, in characters.
pub(crate) const MAX_REVIEW_TEXT_CHARS: usize = 1_000;
/// Page size when none is asked for, and the largest.
const DEFAULT_PAGE: u32 = 20;
pub(crate) const MAX_PAGE: u32 = 100;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Post "/v1/orders/{order_id}/review" => create_review),
    route!(Put "/v1/orders/{order_id}/review" => edit_review),
    route!(Get "/v1/orders/{order_id}/review" => get_review),
    route!(Get "/v1/restaurants/{restaurant_id}/reviews" => list_restaurant_reviews),
    route!(Get "/v1/drivers/{driver_id}/reviews" => list_driver_reviews),
    route!(Post "/v1/admin/reviews/{review_id}/hide" => hide_review),
    route!(Post "/v1/admin/reviews/{review_id}/unhide" => unhide_review),
];

// ---- wire types ----

/// One rating.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub stars: i64,
    /// Optional; trimmed (blank: none).
    #[schema(max_length = 1000)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// The restaurant's rating.
    pub restaurant: RatingRequest,
    /// The driver's rating; absent or null: the driver is not rated.
    pub driver: Option<RatingRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HideRequest {
    /// Why (trimmed; shown to admins).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewResponse {
    #[schema(value_type = String, format = Uuid)]
    pub review_id: uuid::Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    #[schema(value_type = String, format = Uuid)]
    pub restaurant_id: RestaurantId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub driver_id: Option<DriverId>,
    pub restaurant_stars: i64,
    pub restaurant_text: Option<String>,
    /// Null: the driver was not rated.
    pub driver_stars: Option<i64>,
    pub driver_text: Option<String>,
    /// Hidden by an admin (it does not count).
    pub hidden: bool,
    /// Why it was hidden (admins only; null otherwise).
    pub hidden_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Until when its customer may edit it, Unix ms.
    pub editable_until: i64,
}

/// What the visible reviews add up to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RatingSummary {
    /// Mean stars, rounded to two decimals; null without reviews.
    pub average: Option<f64>,
    /// Reviews counted.
    pub count: i64,
    /// Stars added up (`stars_total / count` is the exact average).
    pub stars_total: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewList {
    pub rating: RatingSummary,
    pub reviews: Vec<ReviewResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewsQuery {
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

// ---- handlers ----

#[utoipa::path(
    post,
    path = "/v1/orders/{order_id}/review",
    tag = "reviews",
    summary = "Review a delivered order",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    request_body = ReviewRequest,
    responses(
        (status = 201, description = "The review: it counts in the restaurant's (and the driver's) rating at once.", body = ReviewResponse),
        (status = 400, description = "`invalid_path`, `invalid_json`, `invalid_body` (wrong shape, types or unknown fields), `invalid_rating` (stars 1 to 5), `invalid_text` (at most 1000 characters).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: a party to the order but not its customer.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or the caller is not a party to it.", body = ErrorBody),
        (status = 409, description = "`not_delivered` (with `current_status`), `already_reviewed` (once per order: edit it with PUT).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`no_driver`: the order had no driver to rate.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_review(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> ApiResult<(StatusCode, Json<ReviewResponse>)> {
    let ask = review_ask(req)?;
    let review = usecase::create(
        state.store.as_ref(),
        &state.ids,
        &principal,
        order_id,
        ask,
        state.clock.now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(review_response(&state, review, false)),
    ))
}

#[utoipa::path(
    put,
    path = "/v1/orders/{order_id}/review",
    tag = "reviews",
    summary = "Edit my review of an order",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    request_body = ReviewRequest,
    responses(
        (status = 200, description = "The review as edited (every field replaced; a driver rating left out is removed).", body = ReviewResponse),
        (status = 400, description = "`invalid_path`, `invalid_json`, `invalid_body` (wrong shape, types or unknown fields), `invalid_rating` (stars 1 to 5), `invalid_text` (at most 1000 characters).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: a party to the order but not its customer.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order (or not a party to it), or no review yet (POST one).", body = ErrorBody),
        (status = 409, description = "`not_delivered`, `edit_window_closed` (with `editable_until`; `api.review_edit_window_s` after writing).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`no_driver`: the order had no driver to rate.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn edit_review(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> ApiResult<Json<ReviewResponse>> {
    let ask = review_ask(req)?;
    let review = usecase::edit(
        state.store.as_ref(),
        &principal,
        order_id,
        ask,
        edit_window_ms(&state),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(review_response(&state, review, false)))
}

#[utoipa::path(
    get,
    path = "/v1/orders/{order_id}/review",
    tag = "reviews",
    summary = "Get an order's review",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "The order's review.", body = ReviewResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: no such order (or not a party to it), or no review.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_review(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
) -> ApiResult<Json<ReviewResponse>> {
    let review = usecase::of_order(state.store.as_ref(), &principal, order_id).await?;
    let admin = principal.role == Role::Admin;
    Ok(Json(review_response(&state, review, admin)))
}

#[utoipa::path(
    get,
    path = "/v1/restaurants/{restaurant_id}/reviews",
    tag = "reviews",
    summary = "A restaurant's reviews and rating",
    params(("restaurant_id" = uuid::Uuid, Path, description = "The restaurant."), ReviewsQuery),
    responses(
        (status = 200, description = "The rating (visible reviews) and a page of visible reviews, newest first.", body = ReviewList),
        (status = 400, description = "`invalid_path`, `invalid_limit` (1 to 100), `invalid_cursor`, `invalid_query`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such restaurant.", body = ErrorBody),
    ),
)]
async fn list_restaurant_reviews(
    State(state): State<AppState>,
    ApiPath(restaurant_id): ApiPath<RestaurantId>,
    ApiQuery(query): ApiQuery<ReviewsQuery>,
) -> ApiResult<Json<ReviewList>> {
    state
        .store
        .restaurant(restaurant_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::from(commerce::Error::NotFound("restaurant")))?;
    // Public: hidden reviews are never listed here (admins find them
    // through the driver's listing or the order).
    list(&state, ReviewsOf::Restaurant(restaurant_id), false, query).await
}

#[utoipa::path(
    get,
    path = "/v1/drivers/{driver_id}/reviews",
    tag = "reviews",
    summary = "A driver's reviews and rating",
    params(("driver_id" = uuid::Uuid, Path, description = "The driver (its user id)."), ReviewsQuery),
    responses(
        (status = 200, description = "The rating (visible reviews that rate the driver) and a page of them, newest first; admins also see hidden ones (marked).", body = ReviewList),
        (status = 400, description = "`invalid_path`, `invalid_limit` (1 to 100), `invalid_cursor`, `invalid_query`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: only the driver itself or an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: (admin) no driver account with this id.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_driver_reviews(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(driver_id): ApiPath<DriverId>,
    ApiQuery(query): ApiQuery<ReviewsQuery>,
) -> ApiResult<Json<ReviewList>> {
    commerce::usecase::account::may_act_for_driver(state.store.as_ref(), &principal, driver_id)
        .await?;
    let admin = principal.role == Role::Admin;
    list(&state, ReviewsOf::Driver(driver_id), admin, query).await
}

#[utoipa::path(
    post,
    path = "/v1/admin/reviews/{review_id}/hide",
    tag = "admin",
    summary = "Hide a review",
    params(("review_id" = uuid::Uuid, Path, description = "The review.")),
    request_body = HideRequest,
    responses(
        (status = 200, description = "Hidden: it no longer counts in averages and is listed to admins only. Hiding it again keeps the first reason.", body = ReviewResponse),
        (status = 400, description = "`invalid_path`, `invalid_json`, `invalid_body`, `invalid_reason` (1 to 500 characters).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such review.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn hide_review(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(review_id): ApiPath<uuid::Uuid>,
    ApiJson(req): ApiJson<HideRequest>,
) -> ApiResult<Json<ReviewResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let reason = required_text("invalid_reason", "reason", &req.reason, MAX_REASON_CHARS)?;
    let review = usecase::set_hidden(
        state.store.as_ref(),
        principal.user_id,
        review_id,
        Some(&reason),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(review_response(&state, review, true)))
}

#[utoipa::path(
    post,
    path = "/v1/admin/reviews/{review_id}/unhide",
    tag = "admin",
    summary = "Show a hidden review again",
    params(("review_id" = uuid::Uuid, Path, description = "The review.")),
    responses(
        (status = 200, description = "Shown: it counts again.", body = ReviewResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such review.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn unhide_review(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(review_id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<ReviewResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let review = usecase::set_hidden(
        state.store.as_ref(),
        principal.user_id,
        review_id,
        None,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(review_response(&state, review, true)))
}

// ---- helpers ----

fn rating(what: &str, r: RatingRequest) -> ApiResult<Rating> {
    if !(MIN_STARS..=MAX_STARS).contains(&r.stars) {
        return Err(ApiError::bad_request(
            "invalid_rating",
            format!("{what}.stars must be {MIN_STARS} to {MAX_STARS}"),
        ));
    }
    let text = match r.text {
        Some(t) if t.chars().count() > MAX_REVIEW_TEXT_CHARS => {
            return Err(ApiError::bad_request(
                "invalid_text",
                format!("{what}.text must be at most {MAX_REVIEW_TEXT_CHARS} characters"),
            ));
        }
        Some(t) => Some(t.trim().to_owned()).filter(|t| !t.is_empty()),
        None => None,
    };
    Ok(Rating {
        stars: r.stars,
        text,
    })
}

fn review_ask(req: ReviewRequest) -> ApiResult<ReviewAsk> {
    Ok(ReviewAsk {
        restaurant: rating("restaurant", req.restaurant)?,
        driver: req.driver.map(|d| rating("driver", d)).transpose()?,
    })
}

fn edit_window_ms(state: &AppState) -> i64 {
    i64::try_from(state.config.review_edit_window_s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn review_response(state: &AppState, r: Review, admin: bool) -> ReviewResponse {
    ReviewResponse {
        review_id: r.id,
        order_id: r.order_id,
        restaurant_id: r.restaurant_id,
        driver_id: r.driver_id,
        restaurant_stars: r.restaurant_stars,
        restaurant_text: r.restaurant_text,
        driver_stars: r.driver_stars,
        driver_text: r.driver_text,
        hidden: r.hidden_at_ms.is_some(),
        hidden_reason: if admin { r.hidden_reason } else { None },
        editable_until: r.created_at_ms.saturating_add(edit_window_ms(state)),
        created_at: r.created_at_ms,
        updated_at: r.updated_at_ms,
    }
}

/// The rating as the wire shows it: the mean to two decimals, and the
/// integers it comes from.
pub(crate) fn summary(t: RatingTotals) -> RatingSummary {
    RatingSummary {
        average: (t.count > 0).then(|| {
            // Stars are small integers: the quotient is exact to well
            // beyond two decimals before rounding.
            (t.stars as f64 / t.count as f64 * 100.0).round() / 100.0
        }),
        count: t.count,
        stars_total: t.stars,
    }
}

async fn list(
    state: &AppState,
    of: ReviewsOf,
    admin: bool,
    query: ReviewsQuery,
) -> ApiResult<Json<ReviewList>> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let reviews = usecase::list(state.store.as_ref(), of, admin, after.as_ref(), limit).await?;
    Ok(Json(ReviewList {
        rating: summary(reviews.totals),
        next_cursor: reviews
            .page
            .next
            .as_ref()
            .map(|k| format!("{}_{}", k.created_at_ms, k.id)),
        reviews: reviews
            .page
            .items
            .into_iter()
            .map(|r| review_response(state, r, admin))
            .collect(),
    }))
}

fn decode_cursor(s: &str) -> ApiResult<PageAfter> {
    super::admin_lists::decode_cursor(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_round_to_two_decimals_from_exact_totals() {
        let s = summary(RatingTotals {
            stars: 14,
            count: 3,
        });
        assert_eq!((s.average, s.count, s.stars_total), (Some(4.67), 3, 14));
        assert_eq!(summary(RatingTotals::default()).average, None);
        assert_eq!(
            summary(RatingTotals { stars: 5, count: 1 }).average,
            Some(5.0)
        );
    }
}
