//! Restaurants: profile, opening hours, the accepting switch, and search.
//!
//! | route                                        | who                           |
//! |----------------------------------------------|-------------------------------|
//! | `POST /v1/restaurants`                       | restaurant (becomes owner), admin |
//! | `GET /v1/restaurants?lat=&lng=&q=&cuisine=&open_now=&limit=&offset=` | anyone, no token needed |
//! | `GET /v1/restaurants/{restaurant_id}`        | anyone, no token needed       |
//! | `PATCH /v1/restaurants/{restaurant_id}`      | its owner, admin              |
//!
//! Search answers from the in-memory catalog ([`crate::search`]): only
//! restaurants whose delivery radius covers the point, matched on names,
//! cuisines and dish names, ranked by relevance then distance. Each result
//! carries its quote for the point (`commerce::usecase::quote`: `eta_s`
//! and the delivery fee placing an order there would charge now).

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalog::{HoursSpec, WeeklyHours};
use commerce::usecase::restaurant::{self as usecase, NewRestaurant, RestaurantPatch};
use engine::{LatLng, MenuItemId, RestaurantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::reviews::{MAX_STARS, MIN_STARS, RatingSummary, summary};
use super::{MAX_ADDRESS_CHARS, MAX_NAME_CHARS, Point, require_role, required_text};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::{RatingTotals, Restaurant};
use crate::{AppState, search};

/// Widest delivery radius a restaurant may set, metres. Bounds how far the
/// search catalog looks around a point.
pub const MAX_DELIVERY_RADIUS_M: u32 = 50_000;
/// Narrowest delivery radius, metres: less is not a delivery.
pub(crate) const MIN_DELIVERY_RADIUS_M: u32 = 100;
/// Longest average preparation time, seconds (two hours).
pub(crate) const MAX_PREP_TIME_S: u32 = 7_200;
pub(crate) const MAX_CUISINES: usize = 10;
pub(crate) const MAX_CUISINE_CHARS: usize = 40;
/// Search page size when none is asked for.
const DEFAULT_SEARCH_LIMIT: usize = 20;
/// Deepest search offset: nobody pages past ten thousand results, and the
/// bound keeps the number a plain integer on every client.
pub(crate) const MAX_SEARCH_OFFSET: usize = 10_000;
/// Longest search text, in characters.
pub(crate) const MAX_QUERY_CHARS: usize = 200;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Post "/v1/restaurants" => create_restaurant),
    route!(Get "/v1/restaurants" => search_restaurants),
    route!(Get "/v1/restaurants/{restaurant_id}" => get_restaurant),
    route!(Patch "/v1/restaurants/{restaurant_id}" => update_restaurant),
];

// ---- wire types ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRestaurantRequest {
    /// Trimmed.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: String,
    pub location: Point,
    /// Trimmed.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub address: String,
    /// Stored lower-cased, without repeats.
    #[serde(default)]
    #[schema(max_items = 10, inline, value_type = Vec<crate::openapi::Cuisine>)]
    pub cuisines: Vec<String>,
    /// Weekly opening hours in a time zone; absent: always open.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::OpeningHours>)]
    pub opening_hours: Option<HoursSpec>,
    /// Metres; default 5000.
    #[schema(minimum = 100, maximum = 50000)]
    pub delivery_radius_m: Option<u32>,
    /// Seconds; default 900.
    #[schema(minimum = 0, maximum = 7200)]
    pub avg_prep_time_s: Option<u32>,
    /// Default true.
    pub accepting_orders: Option<bool>,
}

/// Fields to change; absent fields stay. `opening_hours: null` means
/// always open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRestaurantRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: Option<String>,
    pub location: Option<Point>,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub address: Option<String>,
    #[schema(max_items = 10, inline, value_type = Option<Vec<crate::openapi::Cuisine>>)]
    pub cuisines: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::explicit_null")]
    #[schema(value_type = Option<crate::openapi::OpeningHours>)]
    pub opening_hours: Option<Option<HoursSpec>>,
    #[schema(minimum = 100, maximum = 50000)]
    pub delivery_radius_m: Option<u32>,
    #[schema(minimum = 0, maximum = 7200)]
    pub avg_prep_time_s: Option<u32>,
    pub accepting_orders: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RestaurantResponse {
    #[schema(value_type = String, format = Uuid)]
    pub restaurant_id: RestaurantId,
    #[schema(value_type = String, format = Uuid)]
    pub owner_id: UserId,
    pub name: String,
    pub location: Point,
    pub address: String,
    pub cuisines: Vec<String>,
    /// `null`: always open.
    #[schema(value_type = Option<crate::openapi::OpeningHours>)]
    pub opening_hours: Option<serde_json::Value>,
    pub delivery_radius_m: u32,
    pub avg_prep_time_s: u32,
    pub accepting_orders: bool,
    /// Whether the opening hours say open now.
    pub open_now: bool,
    /// Unix ms.
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) fn restaurant_response(r: Restaurant, now_ms: i64) -> RestaurantResponse {
    let open_now = search::hours_of(&r).is_none_or(|h| h.is_open(now_ms));
    RestaurantResponse {
        restaurant_id: r.id,
        owner_id: r.owner_id,
        name: r.name,
        location: r.location.into(),
        address: r.address,
        cuisines: r.cuisines,
        opening_hours: r
            .hours_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok()),
        delivery_radius_m: r.delivery_radius_m,
        avg_prep_time_s: r.prep_time_s,
        accepting_orders: r.accepting_orders,
        open_now,
        created_at: r.created_at_ms,
        updated_at: r.updated_at_ms,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Degrees north of the delivery point.
    #[param(required = true, minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Degrees east of the delivery point.
    #[param(required = true, minimum = -180, maximum = 180)]
    pub lng: Option<f64>,
    /// Free text over restaurant names, cuisines and dish names.
    #[param(max_length = 200)]
    pub q: Option<String>,
    pub cuisine: Option<String>,
    #[serde(default)]
    pub open_now: bool,
    /// Only restaurants rated at least this on average (1 to 5); those not
    /// yet rated are left out.
    #[param(minimum = 1, maximum = 5)]
    pub min_rating: Option<f64>,
    /// `relevance` (default: relevance to `q`, then distance), `distance`
    /// (nearest first) or `rating` (best average first, then more reviews,
    /// then distance; restaurants not rated last).
    #[serde(default)]
    #[param(inline)]
    pub sort: SearchSort,
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// Results to skip, default 0.
    #[param(minimum = 0, maximum = 10000)]
    pub offset: Option<usize>,
}

/// The order of search results.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchSort {
    /// Relevance to `q`, then distance.
    #[default]
    Relevance,
    /// Nearest first.
    Distance,
    /// Best rated first.
    Rating,
}

impl From<SearchSort> for catalog::Sort {
    fn from(s: SearchSort) -> Self {
        match s {
            SearchSort::Relevance => catalog::Sort::Relevance,
            SearchSort::Distance => catalog::Sort::Distance,
            SearchSort::Rating => catalog::Sort::Rating,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub results: Vec<SearchHit>,
    /// Matches in all pages.
    pub total: usize,
    /// Pass as `offset` for the next page; absent on the last page.
    pub next_offset: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    #[schema(value_type = String, format = Uuid)]
    pub restaurant_id: RestaurantId,
    pub name: String,
    pub location: Point,
    pub cuisines: Vec<String>,
    pub distance_m: f64,
    pub open_now: bool,
    pub accepting_orders: bool,
    pub delivery_radius_m: u32,
    /// Relevance to `q` (higher is better; 0 without `q`).
    pub score: f64,
    /// The restaurant's rating over its visible reviews.
    pub rating: RatingSummary,
    /// Dishes whose name matched `q`, best first.
    pub matched_dishes: Vec<MatchedDish>,
    /// The delivery fee and ETA for the searched point, if ordered now.
    pub quote: contract::Quote,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MatchedDish {
    #[schema(value_type = String, format = Uuid)]
    pub menu_item_id: MenuItemId,
    pub name: String,
    pub price_cents: i64,
}

// ---- handlers ----

#[utoipa::path(
    post,
    path = "/v1/restaurants",
    tag = "restaurants",
    summary = "Create a restaurant",
    request_body = CreateRestaurantRequest,
    responses(
        (status = 201, description = "Created; the caller owns it.", body = RestaurantResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_name`, `invalid_location`, `invalid_address`, `invalid_cuisines` (at most 10, each at most 40 characters), `invalid_radius` (100 to 50000 m), `invalid_prep_time` (at most 7200 s).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: only the restaurant and admin roles create restaurants.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_opening_hours`: opening hours that fit the schema but make no sense (an unknown time zone, overlapping or empty intervals, `24:00` as an opening time).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_restaurant(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<CreateRestaurantRequest>,
) -> ApiResult<(StatusCode, Json<RestaurantResponse>)> {
    require_role(&principal, &[Role::Restaurant, Role::Admin])?;
    let new = NewRestaurant {
        name: required_text("invalid_name", "name", &req.name, MAX_NAME_CHARS)?,
        location: req.location.to_lat_lng("location")?,
        address: required_text(
            "invalid_address",
            "address",
            &req.address,
            MAX_ADDRESS_CHARS,
        )?,
        cuisines: check_cuisines(req.cuisines)?,
        hours: req.opening_hours.map(check_hours).transpose()?,
        delivery_radius_m: req.delivery_radius_m.map(check_radius).transpose()?,
        prep_time_s: req.avg_prep_time_s.map(check_prep_time).transpose()?,
        accepting_orders: req.accepting_orders,
    };
    let now = state.clock.now_ms();
    let restaurant = usecase::create(
        state.store.as_ref(),
        &state.restaurant_side(),
        &state.ids,
        principal.user_id,
        new,
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(restaurant_response(restaurant, now)),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/restaurants/{restaurant_id}",
    tag = "restaurants",
    summary = "Get a restaurant",
    params(("restaurant_id" = uuid::Uuid, Path, description = "The restaurant.")),
    responses(
        (status = 200, description = "The restaurant. No token needed.", body = RestaurantResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such restaurant.", body = ErrorBody),
    )
)]
async fn get_restaurant(
    State(state): State<AppState>,
    ApiPath(restaurant_id): ApiPath<RestaurantId>,
) -> ApiResult<Json<RestaurantResponse>> {
    let restaurant = usecase::restaurant(state.store.as_ref(), restaurant_id).await?;
    Ok(Json(restaurant_response(restaurant, state.clock.now_ms())))
}

#[utoipa::path(
    patch,
    path = "/v1/restaurants/{restaurant_id}",
    tag = "restaurants",
    summary = "Update a restaurant",
    params(("restaurant_id" = uuid::Uuid, Path, description = "The restaurant.")),
    request_body = UpdateRestaurantRequest,
    responses(
        (status = 200, description = "The updated restaurant.", body = RestaurantResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_name`, `invalid_location`, `invalid_address`, `invalid_cuisines` (at most 10, each at most 40 characters), `invalid_radius` (100 to 50000 m), `invalid_prep_time` (at most 7200 s).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not the restaurant's owner nor an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such restaurant.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_opening_hours`: opening hours that fit the schema but make no sense (an unknown time zone, overlapping or empty intervals, `24:00` as an opening time).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn update_restaurant(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(restaurant_id): ApiPath<RestaurantId>,
    ApiJson(req): ApiJson<UpdateRestaurantRequest>,
) -> ApiResult<Json<RestaurantResponse>> {
    let restaurant = usecase::owned(state.store.as_ref(), &principal, restaurant_id).await?;
    let patch = RestaurantPatch {
        name: req
            .name
            .map(|name| required_text("invalid_name", "name", &name, MAX_NAME_CHARS))
            .transpose()?,
        location: req
            .location
            .map(|location| location.to_lat_lng("location"))
            .transpose()?,
        address: req
            .address
            .map(|address| required_text("invalid_address", "address", &address, MAX_ADDRESS_CHARS))
            .transpose()?,
        cuisines: req.cuisines.map(check_cuisines).transpose()?,
        hours: req
            .opening_hours
            .map(|hours| hours.map(check_hours).transpose())
            .transpose()?,
        delivery_radius_m: req.delivery_radius_m.map(check_radius).transpose()?,
        prep_time_s: req.avg_prep_time_s.map(check_prep_time).transpose()?,
        accepting_orders: req.accepting_orders,
    };
    let now = state.clock.now_ms();
    let restaurant = usecase::update(
        state.store.as_ref(),
        &state.restaurant_side(),
        &principal,
        restaurant,
        patch,
        now,
    )
    .await?;
    Ok(Json(restaurant_response(restaurant, now)))
}

#[utoipa::path(
    get,
    path = "/v1/restaurants",
    tag = "restaurants",
    summary = "Search restaurants near a point",
    params(SearchQuery),
    responses(
        (status = 200, description = "Restaurants whose delivery radius covers the point, matched on names, cuisines and dish names (and `min_rating`), ranked by `sort` (relevance then distance by default). No token needed.", body = SearchResponse),
        (status = 400, description = "`invalid_location` (`lat`/`lng` missing or out of range), `invalid_limit` (1 to 100), `invalid_offset` (at most 10000), `invalid_rating` (`min_rating` not between 1 and 5), `invalid_query` (a parameter of the wrong type, an unknown `sort`, or `q` over 200 characters).", body = ErrorBody),
    )
)]
async fn search_restaurants(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResponse>> {
    let (Some(lat), Some(lng)) = (query.lat, query.lng) else {
        return Err(ApiError::bad_request(
            "invalid_location",
            "lat and lng are required: search finds restaurants that deliver to a point",
        ));
    };
    let near = LatLng::new(lat, lng)
        .map_err(|e| ApiError::bad_request("invalid_location", e.to_string()))?;
    let limit = query.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if !(1..=catalog::MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {}", catalog::MAX_PAGE_LIMIT),
        ));
    }
    if query
        .q
        .as_deref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let offset = query.offset.unwrap_or(0);
    if offset > MAX_SEARCH_OFFSET {
        return Err(ApiError::bad_request(
            "invalid_offset",
            format!("offset must be at most {MAX_SEARCH_OFFSET}"),
        ));
    }
    let (lowest, highest) = (MIN_STARS as f64, MAX_STARS as f64);
    if let Some(min) = query.min_rating
        && !(lowest..=highest).contains(&min)
    {
        return Err(ApiError::bad_request(
            "invalid_rating",
            format!("min_rating must be between {MIN_STARS} and {MAX_STARS}"),
        ));
    }
    let q = catalog::Query {
        near,
        text: query.q.filter(|q| !q.trim().is_empty()),
        cuisine: query.cuisine.filter(|c| !c.trim().is_empty()),
        open_now: query.open_now,
        min_rating: query.min_rating,
        sort: query.sort.into(),
        offset,
        limit,
    };
    // The page, then its quotes outside the catalog's lock (road queries
    // and the engine's index take a while), then the hits.
    let (page, from) = {
        let catalog = state.catalog.read();
        let page = catalog.search(&q, state.clock.now_ms());
        let from: Vec<(RestaurantId, LatLng)> = page
            .hits
            .iter()
            .filter_map(|hit| catalog.restaurant(hit.restaurant_id))
            .map(|r| (r.id, r.location))
            .collect();
        (page, from)
    };
    let quotes: std::collections::HashMap<RestaurantId, contract::Quote> = from
        .iter()
        .map(|r| r.0)
        .zip(commerce::usecase::quote::quotes(
            &state.live(),
            state.config.delivery_fee(),
            &from,
            near,
        ))
        .map(|(id, q)| (id, super::cart::quote_body(q)))
        .collect();
    let catalog = state.catalog.read();
    let results: Vec<SearchHit> = page
        .hits
        .iter()
        .filter_map(|hit| {
            let r = catalog.restaurant(hit.restaurant_id)?;
            Some(SearchHit {
                restaurant_id: r.id,
                name: r.name.clone(),
                location: r.location.into(),
                cuisines: r.cuisines.clone(),
                distance_m: (hit.distance_m * 10.0).round() / 10.0,
                open_now: hit.open_now,
                accepting_orders: r.accepting_orders,
                delivery_radius_m: r.delivery_radius_m,
                score: hit.score,
                rating: summary(RatingTotals {
                    stars: i64::try_from(hit.rating.stars).unwrap_or(i64::MAX),
                    count: i64::try_from(hit.rating.count).unwrap_or(i64::MAX),
                }),
                matched_dishes: hit
                    .matched_dishes
                    .iter()
                    .filter_map(|&id| catalog.dish(id))
                    .map(|d| MatchedDish {
                        menu_item_id: d.id.into(),
                        name: d.name.clone(),
                        price_cents: d.price_cents,
                    })
                    .collect(),
                // Quoted at the first read; a hit whose restaurant was
                // not in the catalog then is left out.
                quote: *quotes.get(&r.id)?,
            })
        })
        .collect();
    let next_offset = (offset + results.len() < page.total).then_some(offset + results.len());
    Ok(Json(SearchResponse {
        results,
        total: page.total,
        next_offset,
    }))
}

// ---- helpers ----

/// Parses opening hours: a schedule the document's schema admits may
/// still not make sense (an unknown time zone, overlapping intervals; 422).
fn check_hours(spec: HoursSpec) -> ApiResult<WeeklyHours> {
    WeeklyHours::parse(spec)
        .map_err(|e| ApiError::unprocessable("invalid_opening_hours", e.to_string()))
}

fn check_cuisines(raw: Vec<String>) -> ApiResult<Vec<String>> {
    if raw.len() > MAX_CUISINES {
        return Err(ApiError::bad_request(
            "invalid_cuisines",
            format!("at most {MAX_CUISINES} cuisines"),
        ));
    }
    let mut cuisines: Vec<String> = Vec::with_capacity(raw.len());
    for c in raw {
        let c = required_text("invalid_cuisines", "cuisine", &c, MAX_CUISINE_CHARS)?.to_lowercase();
        if !cuisines.contains(&c) {
            cuisines.push(c);
        }
    }
    Ok(cuisines)
}

fn check_radius(radius_m: u32) -> ApiResult<u32> {
    if (MIN_DELIVERY_RADIUS_M..=MAX_DELIVERY_RADIUS_M).contains(&radius_m) {
        Ok(radius_m)
    } else {
        Err(ApiError::bad_request(
            "invalid_radius",
            format!(
                "delivery_radius_m must be between {MIN_DELIVERY_RADIUS_M} and {MAX_DELIVERY_RADIUS_M}"
            ),
        ))
    }
}

fn check_prep_time(s: u32) -> ApiResult<u32> {
    if s <= MAX_PREP_TIME_S {
        Ok(s)
    } else {
        Err(ApiError::bad_request(
            "invalid_prep_time",
            format!("avg_prep_time_s must be at most {MAX_PREP_TIME_S}"),
        ))
    }
}
