//! The OpenAPI 3.1 document of the whole public HTTP surface, served as
//! `GET /openapi.json` with a Swagger UI at `/docs` ([`router`]).
//!
//! - [`document`]: built at run time from `#[utoipa::path]` on every handler
//!   in [`crate::routes`] and `ToSchema` on their wire types.
//! - The routes other crates serve in the same binary (`/healthz`,
//!   `/readyz`, `/metrics`, `GET /v1/ws`, `GET /v1/drivers/stream`,
//!   `POST /v1/drivers/{driver_id}/locations`) are described here, on
//!   private functions that are never routed, so those crates need no
//!   utoipa.
//! - The shapes that cross a process boundary (the ping and the batch
//!   result, offers, the WebSocket messages, the error body, the status and
//!   role enums) are the `contract` crate's own types, whose `ToSchema` its
//!   `openapi` feature derives: the document is generated from the types
//!   the servers encode and decode, not from copies. [`crate::ApiError`]
//!   builds the error body from a map; its fields are
//!   [`contract::ErrorDetail`]'s.
//! - Schema-only mirrors remain for what is not on the contract: the
//!   nearby filter ([`StatusFilter`]), the catalog's [`OpeningHours`], and
//!   enums whose values come from `api` constants ([`SignupRole`],
//!   [`SettableStatus`], [`PaymentMethod`]).
//!
//! Tests: every operation of [`crate::routes::ROUTES`] (the registry the
//! router is built from) and of the other crates' routes is in the
//! document and nothing else is; every bound the document states is the
//! constant the server checks.
//!
//! **Architecture Invariant:** only `api` (and `contract` behind its
//! feature) depends on utoipa; ids of other crates are `{"type": "string",
//! "format": "uuid"}` through `#[schema(value_type = String, format = Uuid)]`
//! on the fields.

use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use contract::{BatchResult, ClientMessage, DriverMessage, OfferMessage, Ping, ServerMessage};

use crate::routes;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where the Swagger UI is served (`/docs` redirects to `/docs/`).
pub const UI_PATH: &str = "/docs";

/// The document, built anew on each call (the router builds it once).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /openapi.json` and the Swagger UI under `/docs`. Generic over the
/// state so [`crate::router`] can merge it before applying its own.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().merge(SwaggerUi::new(UI_PATH).url(DOCUMENT_PATH, document()))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hexdash",
        version = env!("CARGO_PKG_VERSION"),
        description = "Real-time food delivery: accounts, restaurants, menus, search, carts, \
orders, payments, driver locations, offers and live tracking.\n\n\
The README's \"Interfaces\" section summarises the contract. This document \
describes exactly what the server accepts: a request that fits its schemas is \
never refused with 400 (422 says that values that fit make no sense together, such \
as overlapping opening hours), and one that does not fit is refused. Integer \
fields accept integral numbers written as floats (`2.0`). MQTT (`drivers/{driver_id}/location`, \
`drivers/{driver_id}/offers`) is outside this document.\n\n\
Errors: every 4xx and 5xx answer has the body `ErrorBody`, \
`{\"error\": {\"code\", \"message\"}}`, sometimes with one more field inside `error`. \
Any operation may also answer 405 `method_not_allowed` (a known path with another \
method) and 500 `internal` (our failure; nothing about it is revealed). Unknown \
paths answer 404 `not_found`.\n\n\
Authentication: `Authorization: Bearer <access_token>` from `POST /v1/auth/login`; \
the `token` query parameter is accepted instead (for WebSocket clients, which \
cannot set headers). Times are Unix milliseconds, money integer cents."
    ),
    paths(
        routes::auth::create_account,
        routes::auth::create_session,
        routes::auth::refresh_session,
        routes::auth::end_session,
        routes::profile::get_profile,
        routes::profile::update_profile,
        routes::profile::list_addresses,
        routes::profile::add_address,
        routes::profile::delete_address,
        routes::admin::ban,
        routes::admin::unban,
        routes::admin_lists::list_users,
        routes::admin_lists::list_restaurants,
        routes::admin_lists::list_drivers,
        routes::admin_lists::search_orders,
        routes::dispatcher::force_cancel_order,
        routes::dispatcher::reassign_order,
        routes::dispatcher::set_driver_offline,
        routes::console::get_road_map,
        routes::console::get_hex_map,
        routes::console::get_board,
        routes::events::list_events,
        routes::events::list_dead_letters,
        routes::events::replay_dead_letter,
        routes::webhooks::create_webhook,
        routes::webhooks::list_webhooks,
        routes::webhooks::get_webhook,
        routes::webhooks::update_webhook,
        routes::webhooks::delete_webhook,
        routes::webhooks::list_deliveries,
        routes::restaurants::create_restaurant,
        routes::restaurants::search_restaurants,
        routes::restaurants::get_restaurant,
        routes::restaurants::update_restaurant,
        routes::menu::add_items,
        routes::menu::get_menu,
        routes::menu::update_item,
        routes::cart::get_cart,
        routes::cart::clear_cart,
        routes::cart::add_item,
        routes::cart::set_quantity,
        routes::cart::remove_item,
        routes::cart::checkout,
        routes::orders::create_order,
        routes::orders::list_orders,
        routes::orders::get_order,
        routes::orders::order_history,
        routes::orders::update_order_status,
        routes::orders::cancel_order,
        routes::orders::list_restaurant_orders,
        routes::payments::list_payments,
        routes::payments::refund,
        routes::drivers::list_nearby_drivers,
        routes::drivers::get_driver,
        routes::drivers::set_availability,
        routes::offers::accept_offer,
        routes::offers::decline_offer,
        routes::reviews::create_review,
        routes::reviews::edit_review,
        routes::reviews::get_review,
        routes::reviews::list_restaurant_reviews,
        routes::reviews::list_driver_reviews,
        routes::reviews::hide_review,
        routes::reviews::unhide_review,
        routes::notifications::list_notifications,
        routes::notifications::unread_count,
        routes::notifications::mark_read,
        routes::notifications::mark_all_read,
        routes::channels::get_notification_preferences,
        routes::channels::set_notification_preferences,
        routes::channels::list_my_sent,
        routes::channels::list_sent,
        routes::channels::get_simulator,
        routes::channels::set_simulator,
        routes::tracks::get_driver_track,
        routes::tracks::get_order_route,
        routes::reports::orders_report,
        routes::reports::restaurants_report,
        routes::reports::drivers_report,
        routes::reports::rebuild_reports,
        post_locations,
        stream_driver,
        track,
        get_index,
        get_health,
        get_readiness,
        get_metrics,
        get_document,
        get_docs,
    ),
    components(schemas(ErrorBody, Ping, DriverMessage, OfferMessage, ClientMessage, ServerMessage)),
    modifiers(&SecuritySchemes, &OneOfBodies, &EdgeRefusals),
    tags(
        (name = "auth", description = "Accounts and sessions: signup, login, refresh, logout."),
        (name = "profile", description = "The caller's profile and saved delivery addresses."),
        (name = "admin", description = "Bans, the event log and dead letters (admin role)."),
        (name = "webhooks", description = "Webhook endpoints for integrators and their delivery logs (admin role). The README's \"Webhooks\" section has the body, headers and signature scheme."),
        (name = "restaurants", description = "Restaurants and search (search and reads need no token)."),
        (name = "menu", description = "Menus, items, prices and stock."),
        (name = "cart", description = "One server-side cart per customer, checked out into an order."),
        (name = "orders", description = "Placing, reading, listing and stepping orders through their lifecycle."),
        (name = "payments", description = "An order's charges and refunds."),
        (name = "drivers", description = "Driver availability, positions, and locations in (HTTP batch and WebSocket)."),
        (name = "offers", description = "A driver's answer to an offer (offers arrive on MQTT `drivers/{driver_id}/offers` and the driver's WebSocket stream as a `DriverMessage`: `OfferMessage` with type `offer`, `OfferEndedMessage` with type `offer_ended`)."),
        (name = "notifications", description = "The caller's notification feed: what happened that concerns them (their orders' steps, new orders for restaurants, changes to a courier's order, failed payments and refunds for admins). Pushed live on the `me` channel of `/v1/ws` (and for drivers on their stream and MQTT inbox) with the same ids."),
        (name = "reports", description = "Reports from the event stream for a period and time zone: orders per status per hour or day, revenue and refunds, cancellation and rejection rates, funnel times, per restaurant and per driver; JSON, or CSV with `Accept: text/csv` (admins; a restaurant owner reads its own restaurants' report)."),
        (name = "console", description = "What the dispatcher console at `/console` draws and lists (admin role): the road map from the server's road graph, supply and demand per H3 cell, and the live board of open orders with alerts and counters. Couriers' positions come over `GET /v1/ws`'s `area` channel."),
        (name = "tracking", description = "Live tracking out over WebSocket."),
        (name = "ops", description = "Health, readiness, metrics and this document."),
    )
)]
struct ApiDoc;

/// The 401 of every operation that needs a token: the codes
/// `auth::AuthError` answers with (a test keeps the two in step).
pub(crate) const AUTH_401: &str = "No valid token: `missing_token`, `invalid_token`, `token_expired`, `token_revoked` (after a logout), `banned`.";

/// Names of the security schemes operations refer to.
pub const BEARER: &str = "bearer";
pub const QUERY_TOKEN: &str = "query_token";

/// Adds the bearer JWT scheme (and the `?token=` alternative), which the
/// derive cannot declare.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The `access_token` of `POST /v1/auth/login` or `/v1/auth/refresh`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            QUERY_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The access token as a query parameter, for WebSocket clients that cannot \
                 set headers. Accepted wherever a bearer token is.",
            ))),
        );
    }
}

/// What the derive cannot say about request bodies: a logout names a
/// `refresh_token` or says `all: true` (the server refuses neither).
struct OneOfBodies;

impl Modify for OneOfBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let Some(logout) = components.schemas.remove("LogoutRequest") else {
            return;
        };
        let token = ObjectBuilder::new()
            .property(
                "refresh_token",
                ObjectBuilder::new().schema_type(Type::String),
            )
            .required("refresh_token");
        let all = ObjectBuilder::new()
            .property(
                "all",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([true])),
            )
            .required("all");
        let either = AnyOfBuilder::new().item(token).item(all);
        components.schemas.insert(
            "LogoutRequest".to_owned(),
            AllOfBuilder::new()
                .item(logout)
                .item(either)
                .description(Some(
                    "Give the `refresh_token` to revoke, or `all: true` for every session.",
                ))
                .into(),
        );
    }
}

/// What every REST route of [`routes::ROUTES`] may answer whatever it
/// does: `429 rate_limited` ([`crate::throttle`]) and `503
/// database_unavailable` (the database away for now). Added to each
/// operation that does not describe that status itself (login and signup
/// their own 429s, placing an order its own 503).
struct EdgeRefusals;

impl EdgeRefusals {
    /// An error answer with `Retry-After`.
    fn retry_later(description: &str) -> RefOr<Response> {
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some("Seconds to wait."))
            .build();
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .header("Retry-After", retry_after)
            .build()
            .into()
    }
}

impl Modify for EdgeRefusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let limited = Self::retry_later(
            "`rate_limited`: too many requests from this client address or this account; \
             `retry_after_s` in the body.",
        );
        let unavailable = Self::retry_later(
            "`database_unavailable`: the database cannot be reached right now and the request \
             may not have been done; retry it (with the same `Idempotency-Key` where the \
             operation takes one). `retry_after_s` in the body.",
        );
        for route in routes::ROUTES.iter().flat_map(|module| module.iter()) {
            let Some(item) = openapi.paths.paths.get_mut(route.path) else {
                continue;
            };
            let operation = match route.method {
                routes::Method::Get => item.get.as_mut(),
                routes::Method::Post => item.post.as_mut(),
                routes::Method::Put => item.put.as_mut(),
                routes::Method::Patch => item.patch.as_mut(),
                routes::Method::Delete => item.delete.as_mut(),
            };
            if let Some(operation) = operation {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("429".to_owned())
                    .or_insert_with(|| limited.clone());
                responses
                    .entry("503".to_owned())
                    .or_insert_with(|| unavailable.clone());
            }
        }
    }
}

// ---- shared schemas ----

// The contract's types, under the names the route modules use in their
// `#[schema(value_type = crate::openapi::…)]` and `body = ErrorBody`.
pub use contract::{Availability, DriverStatus, ErrorBody, OrderStatus, Role};

/// The roles one may sign up for (`routes::auth::SIGNUP_ROLES`).
pub struct SignupRole;

impl PartialSchema for SignupRole {
    fn schema() -> RefOr<Schema> {
        string_enum(routes::auth::SIGNUP_ROLES.iter().map(|r| r.as_str()))
    }
}

impl ToSchema for SignupRole {}

/// The statuses `POST /v1/orders/{order_id}/status` sets
/// (`lifecycle::SETTABLE`); cancelling has its own operation.
pub struct SettableStatus;

impl PartialSchema for SettableStatus {
    fn schema() -> RefOr<Schema> {
        string_enum(crate::lifecycle::SETTABLE.iter().map(|s| s.as_str()))
    }
}

impl ToSchema for SettableStatus {}

/// The payment methods the gateway takes (`routes::orders::METHODS`).
pub struct PaymentMethod;

impl PartialSchema for PaymentMethod {
    fn schema() -> RefOr<Schema> {
        string_enum(routes::orders::METHODS.iter().copied())
    }
}

impl ToSchema for PaymentMethod {}

/// The `status` filter of `GET /v1/drivers/nearby`.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    Available,
    Busy,
    Offline,
    Any,
}

/// A cuisine, stored lower-cased and trimmed.
pub struct Cuisine;

impl PartialSchema for Cuisine {
    fn schema() -> RefOr<Schema> {
        text(routes::restaurants::MAX_CUISINE_CHARS)
    }
}

impl ToSchema for Cuisine {}

/// A string schema with one of `values`.
fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .into()
}

/// The schema of text [`routes::required_text`] checks.
fn text(max_chars: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max_chars))
        .pattern(Some(routes::NOT_BLANK_PATTERN))
        .into()
}

/// Weekly opening hours in the restaurant's time zone
/// (`catalog::WeeklyHours`). Each interval is `[open, close]` as `"HH:MM"`;
/// a close at or before the open crosses midnight; `"24:00"` only as a
/// close; a missing day or empty list is closed all day; intervals must not
/// overlap; at most 8 per day.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"time_zone": "Europe/Stockholm",
    "weekly": {"mon": [["11:00", "22:00"]], "fri": [["11:00", "02:00"]]}}))]
pub struct OpeningHours {
    /// An IANA time zone name.
    #[schema(example = "Europe/Stockholm")]
    pub time_zone: String,
    #[serde(default)]
    pub weekly: WeeklyIntervals,
}

/// Intervals per day (`mon` … `sun`), at most 8 a day.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyIntervals {
    #[serde(default)]
    #[schema(max_items = 8)]
    pub mon: Vec<Interval>,
    #[serde(default)]
    #[schema(max_items = 8)]
    pub tue: Vec<Interval>,
    #[serde(default)]
    #[schema(max_items = 8)]
    pub wed: Vec<Interval>,
    #[serde(default)]
    #[schema(max_items = 8)]
    pub thu: Vec<Interval>,
    #[serde(default)]
    #[schema(max_items = 8)]
    pub fri: Vec<Interval>,
    #[serde(default)]
    #[schema(max_items = 8)]
    pub sat: Vec<Interval>,
    #[serde(default)]
    #[schema(max_items = 8)]
    pub sun: Vec<Interval>,
}

/// `[open, close]`: exactly two times, each `"HH:MM"` from `00:00` to
/// `23:59`, or `24:00` (as a close only).
pub struct Interval;

/// The document's pattern for a time of day in opening hours.
pub const TIME_OF_DAY_PATTERN: &str = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";

impl PartialSchema for Interval {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(TIME_OF_DAY_PATTERN)),
            )
            .min_items(Some(2))
            .max_items(Some(2))
            .examples([serde_json::json!(["11:00", "22:00"])])
            .into()
    }
}

impl ToSchema for Interval {}

// ---- the routes other crates serve ----

/// The root's answer (served by the binary's `ops` module).
#[derive(ToSchema)]
pub struct Index {
    /// `"hexdash"`.
    #[schema(example = "hexdash")]
    pub name: String,
    /// The server's version.
    pub version: String,
    /// Paths on this server: `docs`, `openapi`, `health`, `readiness`,
    /// `metrics`.
    pub links: std::collections::BTreeMap<String, String>,
}

#[derive(ToSchema)]
pub struct Health {
    /// `"ok"`.
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    #[schema(example = "ready")]
    pub status: String,
    pub checks: ReadinessChecks,
    pub node: ReadinessNode,
}

/// One entry per dependency this node uses; ready when all are `true`.
#[derive(ToSchema)]
pub struct ReadinessChecks {
    /// The database answers.
    pub database: bool,
    /// The embedded MQTT broker is up (nodes with the `ingest` role only).
    pub mqtt_broker: Option<bool>,
    /// Redis answers a PING within a second (with `redis_url` only).
    pub redis: Option<bool>,
}

/// Which node answered, and what it runs.
#[derive(ToSchema)]
pub struct ReadinessNode {
    /// The node's id (`cluster.node_id`, or random per start).
    #[schema(example = "3f2a9c41b7d0")]
    pub id: String,
    /// Its roles: `api`, `ingest`, `gateway`, `matcher`, `relay`.
    #[schema(example = json!(["api", "ingest", "gateway", "matcher", "relay"]))]
    pub roles: Vec<String>,
}

// The functions below are never called or routed: each carries the
// `#[utoipa::path]` of a route another crate serves.

/// Upload buffered pings
///
/// A JSON array of pings, typically buffered by the app during a
/// connectivity gap. Each is validated on its own and the valid ones are
/// applied in `ts` order; the answer counts the outcomes and lists the
/// rejected pings with their reasons. The caller must be that driver or an
/// admin. Served by `ingest`.
#[utoipa::path(
    post,
    path = "/v1/drivers/{driver_id}/locations",
    tag = "drivers",
    params(("driver_id" = uuid::Uuid, Path, description = "The driver (its user id).")),
    request_body(content = Vec<serde_json::Value>, description = "A JSON array of `Ping`s, oldest or newest first (they are sorted). Each item is judged on its own: one that is not a valid `Ping` (of any JSON type) is listed in `rejected` and the batch is still answered 200."),
    responses(
        (status = 200, description = "Outcome per ping.", body = BatchResult),
        (status = 400, description = "`invalid_driver_id` (not a UUID), `invalid_json` (not a JSON array), `body_read_error`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not that driver, nor an admin.", body = ErrorBody),
        (status = 413, description = "`payload_too_large` (bytes) or `too_many_pings` (pings per batch).", body = ErrorBody),
    ),
    security(("bearer" = []), ("query_token" = []))
)]
#[allow(dead_code)]
fn post_locations() {}

/// Stream pings (WebSocket)
///
/// Upgrades to a WebSocket. The driver sends one JSON `Ping` per text
/// message; good pings get no answer, a bad one gets a `DriverMessage`
/// `{"type": "error", "code", "message"}` and the stream goes on. The same
/// socket carries the driver's offers (`DriverMessage`: `offer` and
/// `offer_ended`). Drivers only. Served by `ingest`.
#[utoipa::path(
    get,
    path = "/v1/drivers/stream",
    tag = "drivers",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        (status = 400, description = "`websocket_upgrade_required`: not a valid WebSocket upgrade request.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: only drivers stream pings.", body = ErrorBody),
        (status = 426, description = "`websocket_upgrade_required`: the connection cannot be upgraded.", body = ErrorBody),
    ),
    security(("bearer" = []), ("query_token" = []))
)]
#[allow(dead_code)]
fn stream_driver() {}

/// Live tracking (WebSocket)
///
/// Upgrades to a WebSocket carrying JSON text messages. Client messages
/// (`ClientMessage`): `{"op": "subscribe", "channel": "order:{order_id}"}`,
/// `{"op": "subscribe", "channel": "area", "bbox": [min_lng, min_lat,
/// max_lng, max_lat]}` (dispatchers and admins),
/// `{"op": "unsubscribe", "channel": ...}`. Server messages
/// (`ServerMessage`) have a `type`:
/// `subscribed`, `unsubscribed`, `location` (`{order_id?, driver_id, lat,
/// lng, ts, heading?, eta_s?}`), `status` (`{order_id, status,
/// driver_id?, at, arrival?}`; with `arrival` (`arrived_at_restaurant`,
/// `arrived_at_customer`) it tells, once per order and stop, that the
/// courier came within `matcher.arrival_radius_m` of the restaurant before
/// pickup or of the door after it),
/// `drivers` (an area frame: `{drivers: [{driver_id, lat, lng, status}]}`),
/// `unassigned` (area watchers: an order no driver took, at its pickup:
/// `{order_id, lat, lng, attempts, since, at, resolved}`)
/// and `error` (`{code, message}`). A customer may follow only its own
/// orders, a restaurant its orders. Served by `ws-gateway`.
#[utoipa::path(
    get,
    path = "/v1/ws",
    tag = "tracking",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        (status = 400, description = "`websocket_required`: not a valid WebSocket upgrade request.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 426, description = "`websocket_required`: the connection cannot be upgraded.", body = ErrorBody),
        (status = 503, description = "`too_many_connections` (retry later) or `shutting_down`.", body = ErrorBody),
    ),
    security(("bearer" = []), ("query_token" = []))
)]
#[allow(dead_code)]
fn track() {}

/// Where to go
///
/// The server's name and version, and links to this document, its UI, the
/// health, readiness and metrics endpoints (for a newcomer who opens the
/// root in a browser).
#[utoipa::path(
    get,
    path = "/",
    tag = "ops",
    responses((status = 200, description = "Name, version and links.", body = Index))
)]
#[allow(dead_code)]
fn get_index() {}

/// Liveness
///
/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses((status = 200, description = "Alive.", body = Health))
)]
#[allow(dead_code)]
fn get_health() {}

/// Readiness
///
/// Ready to serve: every dependency this node uses answers (the database;
/// the embedded MQTT broker on a node with the `ingest` role; Redis when
/// `redis_url` is set), with the node's id and roles.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready; `checks` says what is down.", body = Readiness),
    )
)]
#[allow(dead_code)]
fn get_readiness() {}

/// Metrics
///
/// Prometheus text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "Every `hexdash_*` metric.", body = String, content_type = "text/plain; version=0.0.4"))
)]
#[allow(dead_code)]
fn get_metrics() {}

/// This document
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json"))
)]
#[allow(dead_code)]
fn get_document() {}

/// The Swagger UI
///
/// `/docs` redirects to `/docs/`, which serves the UI for this document.
#[utoipa::path(
    get,
    path = "/docs/",
    tag = "ops",
    responses((status = 200, description = "The UI's HTML page.", body = String, content_type = "text/html"))
)]
#[allow(dead_code)]
fn get_docs() {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    /// The 401 every token-taking operation documents names every code a
    /// token can be refused with (the match breaks the build when
    /// `auth::AuthError` gains a variant).
    #[test]
    fn the_401_names_every_refusal_of_a_token() {
        use auth::AuthError as E;
        for e in [E::Missing, E::Invalid, E::Expired, E::Revoked, E::Banned] {
            match e {
                E::Missing | E::Invalid | E::Expired | E::Revoked | E::Banned => {}
            }
            assert!(
                AUTH_401.contains(&format!("`{}`", e.code())),
                "{}",
                e.code()
            );
        }
    }

    /// Every (method, path) `crate::router` serves: the registry it is
    /// built from.
    fn api_routes() -> Vec<(&'static str, &'static str)> {
        routes::ROUTES
            .iter()
            .flat_map(|module| module.iter())
            .map(|r| (r.method.as_str(), r.path))
            .collect()
    }

    /// The routes the other crates add in the binary (ingest, ws-gateway,
    /// the operator endpoints) and this module's own.
    const OTHER_ROUTES: &[(&str, &str)] = &[
        ("post", "/v1/drivers/{driver_id}/locations"),
        ("get", "/v1/drivers/stream"),
        ("get", "/v1/ws"),
        ("get", "/"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/docs/"),
    ];

    /// Operations that need no token.
    const PUBLIC: &[(&str, &str)] = &[
        ("post", "/v1/auth/signup"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/refresh"),
        ("get", "/v1/restaurants"),
        ("get", "/v1/restaurants/{restaurant_id}"),
        ("get", "/v1/restaurants/{restaurant_id}/menu"),
        ("get", "/v1/restaurants/{restaurant_id}/reviews"),
        ("get", "/"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/docs/"),
    ];

    /// Operations that answer no error body.
    const NO_ERRORS: &[&str] = &[
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs/",
    ];

    fn json() -> Value {
        serde_json::to_value(document()).expect("the document serialises")
    }

    /// The registry names each operation once, and the router built from
    /// it serves each (a request reaches a handler: not a 405, not axum's
    /// empty 404 for an unknown path).
    #[tokio::test]
    async fn the_router_serves_the_registry() {
        let routes = api_routes();
        let distinct: BTreeSet<_> = routes.iter().collect();
        assert_eq!(
            distinct.len(),
            routes.len(),
            "an operation registered twice"
        );
        let router = test_router().await;
        let id = "0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b";
        for (method, path) in routes {
            let uri: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { id } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert!(
                !(status == StatusCode::NOT_FOUND && body.is_empty()),
                "{method} {uri} is not routed"
            );
        }
    }

    #[test]
    fn is_openapi_3() {
        let doc = json();
        let version = doc["openapi"].as_str().unwrap();
        assert!(version.starts_with("3."), "openapi {version}");
        assert_eq!(doc["info"]["title"], "hexdash");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes[BEARER]["scheme"], "bearer");
        assert_eq!(schemes[BEARER]["bearerFormat"], "JWT");
        assert_eq!(schemes[QUERY_TOKEN]["in"], "query");
    }

    /// Every route is documented; every operation but the operator ones
    /// has a 4xx answer with the error body; operations need a token
    /// exactly when they are not public, and then document the 401.
    #[test]
    fn every_route_is_documented() {
        let doc = json();
        let paths = doc["paths"].as_object().unwrap();
        let error_ref = "#/components/schemas/ErrorBody";
        let mut documented = 0;
        let mut operation_ids = BTreeSet::new();
        for &(method, path) in api_routes().iter().chain(OTHER_ROUTES) {
            let op = &paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is not in the document"))[method];
            assert!(op.is_object(), "{method} {path} is not in the document");
            assert!(op["tags"][0].is_string(), "{method} {path} has no tag");
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let id = op["operationId"].as_str().unwrap();
            assert!(operation_ids.insert(id), "operationId {id} twice");
            let responses = op["responses"].as_object().unwrap();
            let errors: Vec<&String> = responses
                .iter()
                .filter(|(status, r)| {
                    status.starts_with('4')
                        && r["content"]["application/json"]["schema"]["$ref"] == error_ref
                })
                .map(|(status, _)| status)
                .collect();
            if !NO_ERRORS.contains(&path) {
                assert!(!errors.is_empty(), "{method} {path}: no 4xx with ErrorBody");
            }
            for (status, r) in responses {
                if status.starts_with('4') || (status.starts_with('5') && path != "/readyz") {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"], error_ref,
                        "{method} {path} {status} has another body"
                    );
                }
            }
            let public = PUBLIC.contains(&(method, path));
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get(BEARER).is_some()));
            assert_eq!(secured, !public, "{method} {path}: security");
            if secured {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
            }
            documented += 1;
        }
        let operations: usize = paths
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(
            operations, documented,
            "the document has operations no list has"
        );
    }

    /// Every `$ref` points at a schema the document defines.
    #[test]
    fn references_resolve() {
        fn walk(value: &Value, refs: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        refs.push(r.clone());
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let doc = json();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {r}"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} is not defined"
            );
        }
    }

    /// A property of a component schema.
    fn prop(doc: &Value, schema: &str, name: &str) -> Value {
        let found = doc["components"]["schemas"][schema]["properties"][name].clone();
        assert!(found.is_object(), "{schema}.{name} is not documented");
        found
    }

    /// A query or header parameter of an operation.
    fn param(doc: &Value, method: &str, path: &str, name: &str) -> Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))["schema"]
            .clone()
    }

    fn num(schema: &Value, keyword: &str) -> f64 {
        schema[keyword]
            .as_f64()
            .unwrap_or_else(|| panic!("no {keyword} in {schema}"))
    }

    /// `minimum`/`maximum` of a schema are these server limits.
    fn check_range(schema: &Value, min: f64, max: f64, what: &str) {
        assert_eq!(
            (num(schema, "minimum"), num(schema, "maximum")),
            (min, max),
            "{what}"
        );
    }

    /// Text [`routes::required_text`] checks with `max_chars`.
    fn check_text(schema: &Value, max_chars: usize, what: &str) {
        assert_eq!(num(schema, "minLength"), 1.0, "{what}");
        assert_eq!(num(schema, "maxLength"), max_chars as f64, "{what}");
        assert_eq!(schema["pattern"], routes::NOT_BLANK_PATTERN, "{what}");
    }

    fn enum_of(doc: &Value, schema: &str) -> Vec<String> {
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} is not an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// Every bound the document states is the constant the server checks
    /// (utoipa's attributes take literals only, so this is what keeps the
    /// two in step).
    #[test]
    fn document_bounds_are_the_server_limits() {
        use routes::{auth, drivers, menu, orders, payments, profile, restaurants, reviews};
        let doc = json();
        let text_fields: &[(&str, &str, usize)] = &[
            ("SignupRequest", "name", routes::MAX_NAME_CHARS),
            ("ProfileUpdate", "name", routes::MAX_NAME_CHARS),
            ("NewAddress", "label", profile::MAX_LABEL_CHARS),
            ("NewAddress", "address", routes::MAX_ADDRESS_CHARS),
            ("CreateRestaurantRequest", "name", routes::MAX_NAME_CHARS),
            (
                "CreateRestaurantRequest",
                "address",
                routes::MAX_ADDRESS_CHARS,
            ),
            ("UpdateRestaurantRequest", "name", routes::MAX_NAME_CHARS),
            (
                "UpdateRestaurantRequest",
                "address",
                routes::MAX_ADDRESS_CHARS,
            ),
            ("NewItem", "name", routes::MAX_NAME_CHARS),
            ("NewItem", "category", menu::MAX_CATEGORY_CHARS),
            ("UpdateItemRequest", "name", routes::MAX_NAME_CHARS),
            ("UpdateItemRequest", "category", menu::MAX_CATEGORY_CHARS),
            ("DeliveryRequest", "address", routes::MAX_ADDRESS_CHARS),
            ("RefundBody", "reason", payments::MAX_REASON_CHARS),
            ("ForceCancelRequest", "reason", payments::MAX_REASON_CHARS),
            ("HideRequest", "reason", payments::MAX_REASON_CHARS),
        ];
        for &(schema, name, max) in text_fields {
            check_text(&prop(&doc, schema, name), max, &format!("{schema}.{name}"));
        }
        check_text(
            &prop(&doc, "CreateRestaurantRequest", "cuisines")["items"],
            restaurants::MAX_CUISINE_CHARS,
            "cuisines",
        );

        let email = prop(&doc, "SignupRequest", "email");
        assert_eq!(num(&email, "maxLength"), auth::MAX_EMAIL_CHARS as f64);
        assert_eq!(email["pattern"], auth::EMAIL_PATTERN);
        let password = prop(&doc, "SignupRequest", "password");
        assert_eq!(
            (num(&password, "minLength"), num(&password, "maxLength")),
            (
                auth::MIN_PASSWORD_CHARS as f64,
                auth::MAX_PASSWORD_CHARS as f64
            )
        );
        let phone = prop(&doc, "ProfileUpdate", "phone");
        assert_eq!(phone["pattern"], profile::PHONE_PATTERN);
        assert!(profile::PHONE_PATTERN.contains(&format!(
            "{{{},{}}}",
            profile::MIN_PHONE_DIGITS,
            profile::MAX_PHONE_DIGITS
        )));
        assert_eq!(num(&phone, "maxLength"), profile::MAX_PHONE_CHARS as f64);

        for (schema, lat, lng) in [
            ("Point", "lat", "lng"),
            ("Position", "lat", "lng"),
            ("DeliveryRequest", "lat", "lng"),
        ] {
            check_range(&prop(&doc, schema, lat), -90.0, 90.0, schema);
            check_range(&prop(&doc, schema, lng), -180.0, 180.0, schema);
        }
        // The engine's range, at its edges.
        assert!(
            engine::LatLng::new(-90.0, -180.0).is_ok() && engine::LatLng::new(90.0, 180.0).is_ok()
        );
        assert!(engine::LatLng::new(90.000_001, 0.0).is_err());
        assert!(engine::LatLng::new(0.0, -180.000_001).is_err());

        for schema in ["CreateRestaurantRequest", "UpdateRestaurantRequest"] {
            check_range(
                &prop(&doc, schema, "delivery_radius_m"),
                f64::from(restaurants::MIN_DELIVERY_RADIUS_M),
                f64::from(restaurants::MAX_DELIVERY_RADIUS_M),
                schema,
            );
            check_range(
                &prop(&doc, schema, "avg_prep_time_s"),
                0.0,
                f64::from(restaurants::MAX_PREP_TIME_S),
                schema,
            );
            assert_eq!(
                num(&prop(&doc, schema, "cuisines"), "maxItems"),
                restaurants::MAX_CUISINES as f64
            );
        }
        for day in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
            assert_eq!(
                num(&prop(&doc, "WeeklyIntervals", day), "maxItems"),
                catalog::hours::MAX_INTERVALS_PER_DAY as f64
            );
        }

        assert_eq!(
            num(&prop(&doc, "AddItemsRequest", "items"), "maxItems"),
            menu::MAX_ITEMS_PER_REQUEST as f64
        );
        for schema in ["NewItem", "UpdateItemRequest"] {
            let price = prop(&doc, schema, "price_cents");
            check_range(&price, 0.0, menu::MAX_PRICE_CENTS as f64, schema);
            check_range(
                &prop(&doc, schema, "stock"),
                0.0,
                menu::MAX_STOCK as f64,
                schema,
            );
            assert_eq!(
                num(&prop(&doc, schema, "description"), "maxLength"),
                menu::MAX_DESCRIPTION_CHARS as f64
            );
        }
        check_range(
            &prop(&doc, "UpdateItemRequest", "position"),
            0.0,
            menu::MAX_POSITION as f64,
            "position",
        );

        let most = orders::MAX_QUANTITY as f64;
        check_range(&prop(&doc, "AddItemRequest", "quantity"), 1.0, most, "add");
        check_range(
            &prop(&doc, "SetQuantityRequest", "quantity"),
            0.0,
            most,
            "set",
        );
        check_range(
            &prop(&doc, "OrderItemRequest", "quantity"),
            1.0,
            most,
            "order",
        );
        let lines = prop(&doc, "CreateOrderRequest", "items");
        assert_eq!(
            (num(&lines, "minItems"), num(&lines, "maxItems")),
            (1.0, orders::MAX_ITEMS as f64)
        );
        assert_eq!(
            num(&prop(&doc, "PaymentRequest", "token"), "maxLength"),
            orders::MAX_TOKEN_CHARS as f64
        );
        check_range(
            &prop(&doc, "RefundBody", "amount_cents"),
            1.0,
            payments::MAX_REFUND_CENTS as f64,
            "refund",
        );

        // Enums.
        let names = |items: Vec<&str>| items.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            enum_of(&doc, "SignupRole"),
            names(auth::SIGNUP_ROLES.iter().map(|r| r.as_str()).collect())
        );
        assert_eq!(
            enum_of(&doc, "SettableStatus"),
            names(
                crate::lifecycle::SETTABLE
                    .iter()
                    .map(|s| s.as_str())
                    .collect()
            )
        );
        assert!(!enum_of(&doc, "SettableStatus").contains(&"cancelled".to_owned()));
        assert_eq!(
            enum_of(&doc, "PaymentMethod"),
            names(orders::METHODS.to_vec())
        );

        // Query and header parameters.
        check_range(
            &param(&doc, "get", "/v1/orders", "limit"),
            1.0,
            f64::from(orders::MAX_PAGE),
            "orders limit",
        );
        assert_eq!(
            param(&doc, "get", "/v1/orders", "cursor")["pattern"],
            orders::CURSOR_PATTERN
        );
        check_range(
            &param(&doc, "get", "/v1/restaurants", "limit"),
            1.0,
            catalog::MAX_PAGE_LIMIT as f64,
            "search limit",
        );
        check_range(
            &param(&doc, "get", "/v1/restaurants", "offset"),
            0.0,
            restaurants::MAX_SEARCH_OFFSET as f64,
            "search offset",
        );
        check_range(
            &param(&doc, "get", "/v1/restaurants", "min_rating"),
            reviews::MIN_STARS as f64,
            reviews::MAX_STARS as f64,
            "search min_rating",
        );
        assert_eq!(
            num(&param(&doc, "get", "/v1/restaurants", "q"), "maxLength"),
            restaurants::MAX_QUERY_CHARS as f64
        );
        let radius = param(&doc, "get", "/v1/drivers/nearby", "radius_m");
        assert_eq!(
            (num(&radius, "exclusiveMinimum"), num(&radius, "maximum")),
            (0.0, drivers::MAX_RADIUS_M)
        );
        check_range(
            &param(&doc, "get", "/v1/drivers/nearby", "limit"),
            1.0,
            drivers::MAX_LIMIT as f64,
            "nearby limit",
        );
        check_range(
            &param(&doc, "get", "/v1/admin/console/hexes", "resolution"),
            f64::from(routes::console::MIN_RESOLUTION),
            f64::from(routes::console::MAX_RESOLUTION),
            "console hex resolution",
        );
        for path in ["/v1/notifications/sent", "/v1/admin/notifications/sent"] {
            check_range(
                &param(&doc, "get", path, "limit"),
                1.0,
                f64::from(routes::channels::MAX_PAGE),
                "sent limit",
            );
            assert_eq!(
                param(&doc, "get", path, "cursor")["pattern"],
                routes::channels::CURSOR_PATTERN
            );
        }
        let rules = &doc["components"]["schemas"]["SimulatorRules"]["properties"];
        assert_eq!(
            num(&rules["fail_to"], "maxItems"),
            commerce::channels::simulated::MAX_FAIL_TO as f64
        );
        check_range(&rules["sms_failure_rate"], 0.0, 1.0, "failure rate");
        assert_eq!(
            enum_of(&doc, "Language"),
            names(
                commerce::notify::Language::ALL
                    .iter()
                    .map(|l| l.code())
                    .collect()
            )
        );
        assert_eq!(
            enum_of(&doc, "Channel"),
            names(
                commerce::channels::Channel::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect()
            )
        );
        for path in ["/v1/orders", "/v1/cart/checkout"] {
            let key = param(&doc, "post", path, "Idempotency-Key");
            let max = crate::extract::MAX_IDEMPOTENCY_KEY_BYTES;
            assert_eq!(num(&key, "maxLength"), max as f64);
            assert_eq!(key["pattern"], format!("^[!-~]{{1,{max}}}$"));
        }
    }

    async fn test_router() -> Router {
        let config = crate::Config {
            password_memory_kib: 1024,
            password_passes: 1,
            ..crate::Config::default()
        };
        let store = crate::connect("sqlite::memory:").await.unwrap();
        let engine = engine::Handle::new(engine::Config::default());
        let matcher = matcher::Matcher::new(engine.clone(), matcher::Config::default());
        let tokens = auth::Tokens::new(b"test-secret-test-secret-test-secret", 900);
        let hasher = config.hasher().unwrap();
        crate::router(crate::AppState::new(
            store,
            engine,
            matcher,
            tokens,
            hasher,
            config,
            std::sync::Arc::new(clock::SystemClock),
        ))
    }

    async fn get(router: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        (status, headers, body.to_vec())
    }

    #[tokio::test]
    async fn serves_the_document() {
        let router = test_router().await;
        let (status, headers, body) = get(&router, DOCUMENT_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let served: Value = serde_json::from_slice(&body).unwrap();
        assert!(served["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(served, json());
    }

    #[tokio::test]
    async fn serves_the_ui() {
        let router = test_router().await;
        let (status, headers, _) = get(&router, UI_PATH).await;
        assert!(status.is_redirection(), "{UI_PATH}: {status}");
        assert_eq!(headers[header::LOCATION], "/docs/");
        let (status, headers, body) = get(&router, "/docs/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("swagger"), "{html}");
        // The page's script asks for the document at its path.
        let (status, _, body) = get(&router, "/docs/swagger-initializer.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8(body).unwrap().contains(DOCUMENT_PATH));
    }
}
