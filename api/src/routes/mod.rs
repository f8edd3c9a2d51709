//! One module per resource, each with its `ROUTES` table; wire types live
//! in the module that speaks them. Shared here: the route registry
//! ([`ROUTES`], [`router`]), the `{lat, lng}` wire point and the small
//! checks every module uses.
//!
//! The registry is the one list of what `api` serves: [`router`] is built
//! from it and nothing else, and the OpenAPI tests compare it with the
//! document's operations, so a route cannot be served undocumented or
//! documented unserved.
//!
//! Path parameter names are fixed per resource (`{driver_id}`, `{order_id}`,
//! `{offer_id}`, `{restaurant_id}`): routers merged into the same tree must
//! name a segment alike.

use ::auth::{Principal, Role};
use axum::Router;
use axum::routing::{MethodFilter, MethodRouter};
use engine::LatLng;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// `route!(Post "/v1/orders" => create_order)`: one [`Route`] of a module's
/// `ROUTES` table. Defined before the modules so they can use it.
macro_rules! route {
    ($method:ident $path:literal => $handler:path) => {
        $crate::routes::Route {
            method: $crate::routes::Method::$method,
            path: $path,
            handler: |filter| ::axum::routing::on(filter, $handler),
        }
    };
}

pub mod admin;
pub mod admin_lists;
pub mod auth;
pub mod cart;
pub mod channels;
pub mod console;
pub mod dispatcher;
pub mod drivers;
pub mod events;
pub mod menu;
pub mod notifications;
pub mod offers;
pub mod orders;
pub mod payments;
pub mod profile;
pub mod reports;
pub mod restaurants;
pub mod reviews;
pub mod tracks;
pub mod webhooks;

/// Every operation `api` serves, by module (see the module docs).
pub(crate) const ROUTES: &[&[Route]] = &[
    auth::ROUTES,
    profile::ROUTES,
    admin::ROUTES,
    admin_lists::ROUTES,
    dispatcher::ROUTES,
    console::ROUTES,
    events::ROUTES,
    restaurants::ROUTES,
    menu::ROUTES,
    cart::ROUTES,
    orders::ROUTES,
    payments::ROUTES,
    drivers::ROUTES,
    offers::ROUTES,
    reviews::ROUTES,
    webhooks::ROUTES,
    notifications::ROUTES,
    channels::ROUTES,
    tracks::ROUTES,
    reports::ROUTES,
];

/// Every route of [`ROUTES`] (axum merges the methods of one path and
/// panics at start-up on the same method twice).
pub fn router() -> Router<AppState> {
    ROUTES
        .iter()
        .flat_map(|module| module.iter())
        .fold(Router::new(), |router, r| {
            router.route(r.path, (r.handler)(r.method.filter()))
        })
}

/// The answers to offers only ([`offers::ROUTES`]): what a matcher node
/// without the `api` role serves, so answers forwarded from api nodes
/// reach the offers its matcher holds.
pub fn offers_router() -> Router<AppState> {
    offers::ROUTES.iter().fold(Router::new(), |router, r| {
        router.route(r.path, (r.handler)(r.method.filter()))
    })
}

/// One served operation.
pub(crate) struct Route {
    /// The method.
    pub method: Method,
    /// The path as axum and the OpenAPI document write it (`{order_id}`).
    pub path: &'static str,
    /// The handler, for the method's filter.
    pub handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

/// The methods `api` serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// Lower-case, as the OpenAPI document's operations are keyed (only
    /// the tests compare the two).
    #[cfg(test)]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Put => "put",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Put => MethodFilter::PUT,
            Self::Patch => MethodFilter::PATCH,
            Self::Delete => MethodFilter::DELETE,
        }
    }
}

/// Longest name (restaurant, person) we store, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 200;
/// Longest street address we store, in characters.
pub(crate) const MAX_ADDRESS_CHARS: usize = 500;

/// The document's pattern for text that must not be blank: at least one
/// character that is not whitespace, whitespace being exactly what
/// [`char::is_whitespace`] (and so [`str::trim`]) takes for it, spelled out
/// because regex dialects disagree on `\s`. [`required_text`] enforces it.
pub(crate) const NOT_BLANK_PATTERN: &str = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// A position on the wire: `{"lat": 57.7, "lng": 11.97}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Point {
    /// Degrees north, -90 to 90.
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    /// Degrees east, -180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
}

impl Point {
    /// Validates the point; `what` names it in the error message.
    pub fn to_lat_lng(self, what: &str) -> ApiResult<LatLng> {
        LatLng::new(self.lat, self.lng)
            .map_err(|e| ApiError::bad_request("invalid_location", format!("{what}: {e}")))
    }
}

impl From<LatLng> for Point {
    fn from(p: LatLng) -> Self {
        Self {
            lat: p.lat,
            lng: p.lng,
        }
    }
}

/// `value` trimmed, if it is at most `max_chars` long as sent and not
/// blank (documented as `minLength: 1`, `maxLength: max_chars`,
/// `pattern:` [`NOT_BLANK_PATTERN`]).
pub(crate) fn required_text(
    code: &'static str,
    field: &str,
    value: &str,
    max_chars: usize,
) -> ApiResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::bad_request(
            code,
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max_chars {
        return Err(ApiError::bad_request(
            code,
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Forbidden unless the caller has one of `roles`.
pub(crate) fn require_role(principal: &Principal, roles: &[Role]) -> ApiResult<()> {
    if roles.contains(&principal.role) {
        Ok(())
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "this requires the {} role",
            names.join(" or ")
        )))
    }
}

/// For `Option<Option<T>>` fields of PATCH bodies with `#[serde(default)]`:
/// absent stays `None` (keep), `null` becomes `Some(None)` (clear), a value
/// `Some(Some(v))` (set).
pub(crate) fn explicit_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
