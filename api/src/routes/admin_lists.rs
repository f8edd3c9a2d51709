//! An admin's (dispatcher's) listings, with filters and keyset paging:
//!
//! | route                                                              |
//! |--------------------------------------------------------------------|
//! | `GET /v1/admin/users?role=&banned=&q=&limit=&cursor=`              |
//! | `GET /v1/admin/restaurants?q=&owner_id=&accepting=&limit=&cursor=` |
//! | `GET /v1/admin/drivers?status=&banned=&q=&limit=&cursor=`          |
//! | `GET /v1/admin/orders?status=&restaurant_id=&driver_id=&customer_id=&from_ms=&until_ms=&limit=&cursor=` |
//!
//! Newest first (creation time, then id). `next_cursor` is opaque: pass it
//! back as `cursor` for the next page; it is absent on the last page. A
//! page boundary never skips or repeats a row while rows are added.
//! Filters narrow; `q` is a case-insensitive "contains" on names and
//! emails (restaurants: name and address). The rules are
//! `commerce::usecase::listing`'s.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use commerce::usecase::listing::{self, DriverFilter, Page};
use engine::{DriverId, DriverStatus, OrderId, OrderStatus, RestaurantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::orders::{OrderList, order_response};
use super::require_role;
use super::restaurants::{RestaurantResponse, restaurant_response};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::{OrderFilter, PageAfter, RestaurantFilter, UserFilter};

/// Page size when none is asked for, and the largest.
const DEFAULT_PAGE: u32 = 20;
pub(crate) const MAX_PAGE: u32 = 100;
/// Longest search text `q`, in characters.
pub(crate) const MAX_QUERY_CHARS: usize = 100;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/admin/users" => list_users),
    route!(Get "/v1/admin/restaurants" => list_restaurants),
    route!(Get "/v1/admin/drivers" => list_drivers),
    route!(Get "/v1/admin/orders" => search_orders),
];

// ---- wire types ----

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Only this role.
    #[param(inline, value_type = Option<crate::openapi::Role>)]
    pub role: Option<String>,
    /// Only banned (`true`) or only not banned (`false`) users.
    pub banned: Option<bool>,
    /// Name or email contains this (case-insensitive; trimmed, blank: no
    /// filter).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RestaurantsQuery {
    /// Name or address contains this (case-insensitive; trimmed, blank:
    /// no filter).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Only this owner's restaurants.
    #[param(value_type = Option<String>, format = Uuid)]
    pub owner_id: Option<UserId>,
    /// Only restaurants taking orders (`true`) or not (`false`).
    pub accepting: Option<bool>,
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DriversQuery {
    /// Only drivers with this live status (from the engine: `offline`
    /// also for drivers it has not heard from).
    #[param(inline, value_type = Option<crate::openapi::DriverStatus>)]
    pub status: Option<String>,
    /// Only banned (`true`) or only not banned (`false`) drivers.
    pub banned: Option<bool>,
    /// Name or email contains this (case-insensitive; trimmed, blank: no
    /// filter).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Only orders in this status.
    #[param(inline, value_type = Option<crate::openapi::OrderStatus>)]
    pub status: Option<String>,
    /// Only this restaurant's orders.
    #[param(value_type = Option<String>, format = Uuid)]
    pub restaurant_id: Option<RestaurantId>,
    /// Only orders this driver has or had.
    #[param(value_type = Option<String>, format = Uuid)]
    pub driver_id: Option<DriverId>,
    /// Only this customer's orders.
    #[param(value_type = Option<String>, format = Uuid)]
    pub customer_id: Option<UserId>,
    /// Only orders placed at or after this time, Unix ms.
    #[param(minimum = 0)]
    pub from_ms: Option<i64>,
    /// Only orders placed before this time, Unix ms (after `from_ms`).
    #[param(minimum = 0)]
    pub until_ms: Option<i64>,
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

/// A user as an admin sees it (never its password hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminUser {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    #[schema(value_type = crate::openapi::Role)]
    pub role: Role,
    pub banned: bool,
    /// When the user was banned, Unix ms; null when not banned.
    pub banned_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminUserList {
    pub users: Vec<AdminUser>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminRestaurantList {
    pub restaurants: Vec<RestaurantResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A driver: its account and its live state from the engine.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminDriver {
    #[schema(value_type = String, format = Uuid)]
    pub driver_id: DriverId,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub banned: bool,
    /// When the account was created, Unix ms.
    pub created_at: i64,
    /// Live status (`offline` when the engine has not heard from it).
    #[schema(value_type = crate::openapi::DriverStatus)]
    pub status: DriverStatus,
    /// Last known position; null without one.
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    /// The device time of the last position, Unix ms.
    pub updated_at: Option<i64>,
    /// When the server last heard a ping, Unix ms.
    pub seen_at: Option<i64>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub current_order: Option<OrderId>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminDriverList {
    pub drivers: Vec<AdminDriver>,
    /// Pass as `cursor` for the next page; absent on the last page. With
    /// a `status` filter a page may hold fewer drivers than `limit` while
    /// a cursor is present (each request reads a bounded number of
    /// accounts).
    pub next_cursor: Option<String>,
}

// ---- handlers ----

#[utoipa::path(
    get,
    path = "/v1/admin/users",
    tag = "admin",
    summary = "List users",
    params(UsersQuery),
    responses(
        (status = 200, description = "Users, newest first.", body = AdminUserList),
        (status = 400, description = "`invalid_role`, `invalid_text` (`q` over 100 characters), `invalid_limit` (1 to 100), `invalid_cursor` (not one this server issued), `invalid_query` (a parameter of the wrong type).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_users(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> ApiResult<Json<AdminUserList>> {
    require_role(&principal, &[Role::Admin])?;
    let role = query.role.as_deref().map(parse_role).transpose()?;
    let filter = UserFilter {
        role,
        banned: query.banned,
        text: text(query.q.as_deref())?,
    };
    let limit = limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = listing::users(state.store.as_ref(), &filter, after.as_ref(), limit).await?;
    let next_cursor = cursor_of(&page);
    Ok(Json(AdminUserList {
        users: page
            .items
            .into_iter()
            .map(|u| AdminUser {
                user_id: u.id,
                email: u.email,
                name: u.name,
                phone: u.phone,
                role: u.role,
                banned: u.banned_at_ms.is_some(),
                banned_at: u.banned_at_ms,
                created_at: u.created_at_ms,
            })
            .collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/restaurants",
    tag = "admin",
    summary = "List restaurants",
    params(RestaurantsQuery),
    responses(
        (status = 200, description = "Restaurants, newest first.", body = AdminRestaurantList),
        (status = 400, description = "`invalid_text` (`q` over 100 characters), `invalid_limit` (1 to 100), `invalid_cursor` (not one this server issued), `invalid_query` (a parameter of the wrong type).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_restaurants(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<RestaurantsQuery>,
) -> ApiResult<Json<AdminRestaurantList>> {
    require_role(&principal, &[Role::Admin])?;
    let filter = RestaurantFilter {
        text: text(query.q.as_deref())?,
        owner_id: query.owner_id,
        accepting: query.accepting,
    };
    let limit = limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = listing::restaurants(state.store.as_ref(), &filter, after.as_ref(), limit).await?;
    let next_cursor = cursor_of(&page);
    let now_ms = state.clock.now_ms();
    Ok(Json(AdminRestaurantList {
        restaurants: page
            .items
            .into_iter()
            .map(|r| restaurant_response(r, now_ms))
            .collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/drivers",
    tag = "admin",
    summary = "List drivers with their live state",
    params(DriversQuery),
    responses(
        (status = 200, description = "Driver accounts, newest first, each with its live status, position and current order from the engine.", body = AdminDriverList),
        (status = 400, description = "`invalid_status` (`available`, `busy` or `offline`), `invalid_text` (`q` over 100 characters), `invalid_limit` (1 to 100), `invalid_cursor` (not one this server issued), `invalid_query` (a parameter of the wrong type).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_drivers(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<DriversQuery>,
) -> ApiResult<Json<AdminDriverList>> {
    require_role(&principal, &[Role::Admin])?;
    let status = match query.status.as_deref() {
        None => None,
        Some("available") => Some(DriverStatus::Available),
        Some("busy") => Some(DriverStatus::Busy),
        Some("offline") => Some(DriverStatus::Offline),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status must be one of available, busy, offline",
            ));
        }
    };
    let filter = DriverFilter {
        status,
        banned: query.banned,
        text: text(query.q.as_deref())?,
    };
    let limit = limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let live = state.live();
    let page =
        listing::drivers(state.store.as_ref(), &live, &filter, after.as_ref(), limit).await?;
    let next_cursor = cursor_of(&page);
    Ok(Json(AdminDriverList {
        drivers: page
            .items
            .into_iter()
            .map(|row| {
                let status = row.status();
                let fix = row.live.and_then(|v| v.fix);
                AdminDriver {
                    driver_id: row.user.id.into(),
                    email: row.user.email,
                    name: row.user.name,
                    phone: row.user.phone,
                    banned: row.user.banned_at_ms.is_some(),
                    created_at: row.user.created_at_ms,
                    status,
                    lat: fix.map(|f| f.position.lat),
                    lng: fix.map(|f| f.position.lng),
                    updated_at: fix.map(|f| f.recorded_at_ms),
                    seen_at: row.live.and_then(|v| v.seen_at_ms),
                    current_order: row.live.and_then(|v| v.current_order),
                }
            })
            .collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/orders",
    tag = "admin",
    summary = "List orders with filters",
    params(OrdersQuery),
    responses(
        (status = 200, description = "Orders, newest first (`items` empty and `payment` absent, as in every listing).", body = OrderList),
        (status = 400, description = "`invalid_status` (an order status), `invalid_limit` (1 to 100), `invalid_cursor` (not one this server issued), `invalid_query` (a parameter of the wrong type, a negative time).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 422, description = "`invalid_range`: `until_ms` is not after `from_ms`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn search_orders(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> ApiResult<Json<OrderList>> {
    require_role(&principal, &[Role::Admin])?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(
                "invalid_status",
                format!("status must be one of {}", names.join(", ")),
            )
        })?),
    };
    for (name, value) in [("from_ms", query.from_ms), ("until_ms", query.until_ms)] {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{name} must be a Unix time in ms, 0 or more"),
            ));
        }
    }
    if let (Some(from), Some(until)) = (query.from_ms, query.until_ms)
        && until <= from
    {
        return Err(ApiError::unprocessable(
            "invalid_range",
            "until_ms must be after from_ms",
        ));
    }
    let filter = OrderFilter {
        status,
        restaurant_id: query.restaurant_id,
        driver_id: query.driver_id,
        customer_id: query.customer_id,
        from_ms: query.from_ms,
        until_ms: query.until_ms,
    };
    let limit = limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = listing::orders(state.store.as_ref(), &filter, after.as_ref(), limit).await?;
    let next_cursor = cursor_of(&page);
    Ok(Json(OrderList {
        orders: page
            .items
            .into_iter()
            .map(|o| order_response(&state, o, None))
            .collect(),
        next_cursor,
    }))
}

// ---- helpers ----

fn parse_role(s: &str) -> ApiResult<Role> {
    Role::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_role",
            "role must be one of customer, restaurant, driver, admin",
        )
    })
}

/// The search text, trimmed; blank is no filter.
fn text(q: Option<&str>) -> ApiResult<Option<String>> {
    let Some(q) = q else { return Ok(None) };
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "invalid_text",
            format!("q must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let q = q.trim();
    Ok((!q.is_empty()).then(|| q.to_owned()))
}

fn limit(asked: Option<u32>) -> ApiResult<u32> {
    let limit = asked.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// Cursors are opaque to clients: `{created_at_ms}_{id}` of the last row
/// of the previous page (`orders::CURSOR_PATTERN`).
fn cursor_of<T>(page: &Page<T>) -> Option<String> {
    page.next
        .as_ref()
        .map(|k| format!("{}_{}", k.created_at_ms, k.id))
}

pub(crate) fn decode_cursor(s: &str) -> ApiResult<PageAfter> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this server issued");
    let (ms, id) = s.split_once('_').ok_or_else(bad)?;
    if ms.is_empty() || ms.len() > 18 || !ms.bytes().all(|b| b.is_ascii_digit()) || id.len() != 36 {
        return Err(bad());
    }
    let id: uuid::Uuid = id.parse().map_err(|_| bad())?;
    Ok(PageAfter {
        created_at_ms: ms.parse().map_err(|_| bad())?,
        // As stored: lower-case, hyphenated.
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_we_never_issue() {
        let id = uuid::Uuid::now_v7();
        let page: Page<()> = Page {
            items: vec![],
            next: Some(PageAfter {
                created_at_ms: 1_763_700_000_000,
                id: id.to_string(),
            }),
        };
        let c = cursor_of(&page).unwrap();
        assert_eq!(decode_cursor(&c).unwrap(), page.next.unwrap());
        // Upper-case ids are the same id.
        let upper = c.to_uppercase();
        assert_eq!(decode_cursor(&upper).unwrap().id, id.to_string());
        for bad in [
            "",
            "_",
            "12",
            "-1_x",
            "1_nope",
            &format!("+1_{id}"),
            &format!("1{}_{id}", "0".repeat(18)),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        assert!(text(Some(&"x".repeat(101))).is_err());
        assert_eq!(text(Some("  ")).unwrap(), None);
        assert_eq!(text(Some(" Anna ")).unwrap().as_deref(), Some("Anna"));
        assert!(limit(Some(0)).is_err() && limit(Some(101)).is_err());
        assert_eq!(limit(None).unwrap(), 20);
    }
}
