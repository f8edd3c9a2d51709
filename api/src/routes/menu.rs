//! Menus: items in named categories, with prices, an available flag and an
//! optional stock count.
//!
//! | route                                                      | who              |
//! |------------------------------------------------------------|------------------|
//! | `POST /v1/restaurants/{restaurant_id}/menu`                | its owner, admin |
//! | `GET /v1/restaurants/{restaurant_id}/menu`                 | anyone, no token needed |
//! | `PATCH /v1/restaurants/{restaurant_id}/menu/{menu_item_id}` | its owner, admin |
//!
//! Stock is taken when an order is placed and given back when it is
//! cancelled, rejected or its payment fails (see the store); `PATCH` with
//! `stock` sets the count outright (a restock), `stock: null` stops
//! counting.

use ::auth::Authenticated;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use commerce::usecase::menu::{self as usecase, ItemPatch};
use commerce::usecase::restaurant;
use engine::{MenuItemId, RestaurantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{MAX_NAME_CHARS, required_text};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::MenuItem;

/// Most items one request adds (a menu holds at most
/// `commerce::usecase::menu::MAX_ITEMS_PER_MENU`).
pub(crate) const MAX_ITEMS_PER_REQUEST: usize = 200;
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 1_000;
pub(crate) const MAX_CATEGORY_CHARS: usize = 100;
/// Highest price, cents (100,000.00 in the currency's major unit).
pub(crate) const MAX_PRICE_CENTS: i64 = 10_000_000;
/// Highest stock count.
pub(crate) const MAX_STOCK: i64 = 1_000_000;
/// Highest position an owner may give an item: room to reorder a full
/// menu many times over, and a bound a client can store in any integer.
pub(crate) const MAX_POSITION: i64 = 1_000_000_000;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/restaurants/{restaurant_id}/menu" => get_menu),
    route!(Post "/v1/restaurants/{restaurant_id}/menu" => add_items),
    route!(Patch "/v1/restaurants/{restaurant_id}/menu/{menu_item_id}" => update_item),
];

// ---- wire types ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItemsRequest {
    #[schema(min_items = 1, max_items = 200)]
    pub items: Vec<NewItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// Trimmed.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: String,
    /// Trimmed; default empty.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    #[schema(minimum = 0, maximum = 10000000)]
    pub price_cents: i64,
    /// Category name; items of one category are listed together. Default
    /// "Menu".
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub category: Option<String>,
    #[serde(default = "yes")]
    pub available: bool,
    /// Units in stock; absent or null: not counted.
    #[schema(minimum = 0, maximum = 1000000)]
    pub stock: Option<i64>,
}

fn yes() -> bool {
    true
}

/// Fields to change; absent fields stay. `stock: null` stops counting.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateItemRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: Option<String>,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    #[schema(minimum = 0, maximum = 10000000)]
    pub price_cents: Option<i64>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub category: Option<String>,
    pub available: Option<bool>,
    #[serde(default, deserialize_with = "super::explicit_null")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub stock: Option<Option<i64>>,
    /// Position on the menu (ascending).
    #[schema(minimum = 0, maximum = 1000000000)]
    pub position: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MenuItemResponse {
    #[schema(value_type = String, format = Uuid)]
    pub menu_item_id: MenuItemId,
    #[schema(value_type = String, format = Uuid)]
    pub restaurant_id: RestaurantId,
    pub category: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub available: bool,
    /// `null`: not counted.
    pub stock: Option<i64>,
    pub position: i64,
}

impl From<MenuItem> for MenuItemResponse {
    fn from(i: MenuItem) -> Self {
        Self {
            menu_item_id: i.id,
            restaurant_id: i.restaurant_id,
            category: i.category,
            name: i.name,
            description: i.description,
            price_cents: i.price_cents,
            available: i.available,
            stock: i.stock,
            position: i.position,
        }
    }
}

/// A restaurant's menu, the answer of both `GET` and `POST …/menu`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MenuResponse {
    #[schema(value_type = String, format = Uuid)]
    pub restaurant_id: RestaurantId,
    /// Categories in the order of their first item.
    pub categories: Vec<MenuCategory>,
    /// `POST` only: the items this request added, in the order given
    /// (each is also in its category). Named `items` because that was the
    /// whole answer of `POST` before it answered the menu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub items: Option<Vec<MenuItemResponse>>,
}

impl MenuResponse {
    /// The menu of `items` (in menu order), by category.
    fn of(restaurant_id: RestaurantId, items: Vec<MenuItem>) -> Self {
        let mut categories: Vec<MenuCategory> = Vec::new();
        for item in items {
            match categories.iter_mut().find(|c| c.name == item.category) {
                Some(category) => category.items.push(item.into()),
                None => categories.push(MenuCategory {
                    name: item.category.clone(),
                    items: vec![item.into()],
                }),
            }
        }
        Self {
            restaurant_id,
            categories,
            items: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MenuCategory {
    pub name: String,
    pub items: Vec<MenuItemResponse>,
}

// ---- handlers ----

#[utoipa::path(
    post,
    path = "/v1/restaurants/{restaurant_id}/menu",
    tag = "menu",
    summary = "Add menu items",
    params(("restaurant_id" = uuid::Uuid, Path, description = "The restaurant.")),
    request_body = AddItemsRequest,
    responses(
        (status = 201, description = "The whole menu after the change, as `GET` answers it, with the items this request added in `items`.", body = MenuResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_items` (1 to 200 per request), `invalid_name`, `invalid_price` (0 to 10000000 cents), `invalid_stock` (0 to 1000000, or null), `invalid_category`, `invalid_description` (at most 1000 characters).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not the restaurant's owner nor an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such restaurant.", body = ErrorBody),
        (status = 409, description = "`menu_full`: a menu holds at most 1000 items.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn add_items(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(restaurant_id): ApiPath<RestaurantId>,
    ApiJson(req): ApiJson<AddItemsRequest>,
) -> ApiResult<(StatusCode, Json<MenuResponse>)> {
    restaurant::owned(state.store.as_ref(), &principal, restaurant_id).await?;
    if req.items.is_empty() || req.items.len() > MAX_ITEMS_PER_REQUEST {
        return Err(ApiError::bad_request(
            "invalid_items",
            format!("give 1 to {MAX_ITEMS_PER_REQUEST} items"),
        ));
    }
    let items = req
        .items
        .into_iter()
        .map(|new| -> ApiResult<usecase::NewItem> {
            Ok(usecase::NewItem {
                category: new.category.as_deref().map(check_category).transpose()?,
                name: required_text("invalid_name", "name", &new.name, MAX_NAME_CHARS)?,
                description: check_description(&new.description)?,
                price_cents: check_price(new.price_cents)?,
                available: new.available,
                stock: new.stock.map(check_stock).transpose()?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let added = usecase::add_items(
        state.store.as_ref(),
        &state.catalog,
        &state.ids,
        principal.user_id,
        restaurant_id,
        items,
        state.clock.now_ms(),
    )
    .await?;
    let mut menu = MenuResponse::of(restaurant_id, added.menu);
    menu.items = Some(added.items.into_iter().map(Into::into).collect());
    Ok((StatusCode::CREATED, Json(menu)))
}

#[utoipa::path(
    get,
    path = "/v1/restaurants/{restaurant_id}/menu",
    tag = "menu",
    summary = "Get a menu",
    params(("restaurant_id" = uuid::Uuid, Path, description = "The restaurant.")),
    responses(
        (status = 200, description = "The menu by category. No token needed.", body = MenuResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such restaurant.", body = ErrorBody),
    )
)]
async fn get_menu(
    State(state): State<AppState>,
    ApiPath(restaurant_id): ApiPath<RestaurantId>,
) -> ApiResult<Json<MenuResponse>> {
    let items = usecase::menu(state.store.as_ref(), restaurant_id).await?;
    Ok(Json(MenuResponse::of(restaurant_id, items)))
}

#[utoipa::path(
    patch,
    path = "/v1/restaurants/{restaurant_id}/menu/{menu_item_id}",
    tag = "menu",
    summary = "Update a menu item",
    params(("restaurant_id" = uuid::Uuid, Path, description = "The restaurant."), ("menu_item_id" = uuid::Uuid, Path, description = "The menu item.")),
    request_body = UpdateItemRequest,
    responses(
        (status = 200, description = "The updated item.", body = MenuItemResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_name`, `invalid_price` (0 to 10000000 cents), `invalid_stock` (0 to 1000000, or null), `invalid_category`, `invalid_description` (at most 1000 characters), `invalid_position` (0 to 1000000000).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not the restaurant's owner nor an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such restaurant, or no such item on its menu.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn update_item(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath((restaurant_id, menu_item_id)): ApiPath<(RestaurantId, MenuItemId)>,
    ApiJson(req): ApiJson<UpdateItemRequest>,
) -> ApiResult<Json<MenuItemResponse>> {
    let item = usecase::owned_item(
        state.store.as_ref(),
        &principal,
        restaurant_id,
        menu_item_id,
    )
    .await?;
    let patch = ItemPatch {
        name: req
            .name
            .map(|name| required_text("invalid_name", "name", &name, MAX_NAME_CHARS))
            .transpose()?,
        description: req
            .description
            .as_deref()
            .map(check_description)
            .transpose()?,
        price_cents: req.price_cents.map(check_price).transpose()?,
        category: req.category.as_deref().map(check_category).transpose()?,
        available: req.available,
        stock: req
            .stock
            .map(|stock| stock.map(check_stock).transpose())
            .transpose()?,
        position: req.position.map(check_position).transpose()?,
    };
    let item = usecase::update_item(
        state.store.as_ref(),
        &state.catalog,
        principal.user_id,
        item,
        patch,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(item.into()))
}

// ---- checks ----

fn check_price(cents: i64) -> ApiResult<i64> {
    if (0..=MAX_PRICE_CENTS).contains(&cents) {
        Ok(cents)
    } else {
        Err(ApiError::bad_request(
            "invalid_price",
            format!("price_cents must be between 0 and {MAX_PRICE_CENTS}"),
        ))
    }
}

fn check_stock(stock: i64) -> ApiResult<i64> {
    if (0..=MAX_STOCK).contains(&stock) {
        Ok(stock)
    } else {
        Err(ApiError::bad_request(
            "invalid_stock",
            format!("stock must be between 0 and {MAX_STOCK}, or null"),
        ))
    }
}

fn check_position(position: i64) -> ApiResult<i64> {
    if (0..=MAX_POSITION).contains(&position) {
        Ok(position)
    } else {
        Err(ApiError::bad_request(
            "invalid_position",
            format!("position must be between 0 and {MAX_POSITION}"),
        ))
    }
}

fn check_category(category: &str) -> ApiResult<String> {
    required_text("invalid_category", "category", category, MAX_CATEGORY_CHARS)
}

fn check_description(description: &str) -> ApiResult<String> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::bad_request(
            "invalid_description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(description.trim().to_owned())
}
