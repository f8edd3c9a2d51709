//! Drivers, as the engine sees them live:
//!
//! | route                                        | who                  |
//! |----------------------------------------------|----------------------|
//! | `PUT /v1/drivers/{driver_id}/availability`   | that driver, admin   |
//! | `GET /v1/drivers/nearby?lat=&lng=&radius_m=&limit=&status=` | admin |
//! | `GET /v1/drivers/{driver_id}`                | that driver, admin   |
//!
//! Positions arrive through `ingest`, not here. Times (`updated_at`) are the
//! device's Unix milliseconds of the last applied fix.

use ::auth::{Authenticated, Principal, Role};
use axum::Json;
use axum::extract::State;
use engine::{Availability, DriverId, DriverStatus, OrderId, StatusFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Point, require_role};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// Search radius when none is given, metres.
const DEFAULT_RADIUS_M: f64 = 3_000.0;
/// Largest search radius, metres: bounds the cells one query may scan.
pub(crate) const MAX_RADIUS_M: f64 = 50_000.0;
const DEFAULT_LIMIT: usize = 10;
pub(crate) const MAX_LIMIT: usize = 100;
/// Why a driver declared `available` is still `offline`: it never pinged
/// since the server started, or not within the presence timeout.
const NO_POSITION_YET: &str = "no position yet: the driver becomes available with its first ping \
(MQTT drivers/{driver_id}/location, the WebSocket stream or POST /v1/drivers/{driver_id}/locations)";
const NO_RECENT_PING: &str = "no recent ping: the driver went offline after the presence timeout \
and becomes available with its next ping";
/// Why a driver declared `offline` is still `busy`.
const HOLDS_AN_ORDER: &str =
    "holds an order: the driver is busy until it is delivered or cancelled, then offline";

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/drivers/nearby" => list_nearby_drivers),
    route!(Get "/v1/drivers/{driver_id}" => get_driver),
    route!(Put "/v1/drivers/{driver_id}/availability" => set_availability),
];

// ---- wire types ----

#[derive(Debug, Deserialize, ToSchema)]
pub struct AvailabilityRequest {
    #[schema(value_type = crate::openapi::Availability)]
    pub status: Availability,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AvailabilityResponse {
    #[schema(value_type = String, format = Uuid)]
    pub driver_id: DriverId,
    /// What the driver declared (it stays declared until changed).
    #[schema(value_type = crate::openapi::Availability)]
    pub declared: Availability,
    /// The driver's live status now, which is what dispatch uses (see
    /// `DriverStatus`). It differs from `declared` while the driver has
    /// not pinged recently (`offline`) or holds an order (`busy`).
    #[schema(value_type = crate::openapi::DriverStatus)]
    pub status: DriverStatus,
    /// Why `status` is not what was declared, and what changes it; absent
    /// when they agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        nullable = false,
        example = "no position yet: the driver becomes available with its first ping (MQTT drivers/{driver_id}/location, the WebSocket stream or POST /v1/drivers/{driver_id}/locations)"
    )]
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearbyQuery {
    /// Degrees north.
    #[param(required = true, minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Degrees east.
    #[param(required = true, minimum = -180, maximum = 180)]
    pub lng: Option<f64>,
    /// Metres, default 3000.
    #[param(exclusive_minimum = 0, maximum = 50000)]
    pub radius_m: Option<f64>,
    /// Most drivers answered, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// Only drivers with this status; default `any`.
    #[param(inline, value_type = Option<crate::openapi::StatusFilter>)]
    pub status: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NearbyResponse {
    pub drivers: Vec<NearbyDriverResponse>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NearbyDriverResponse {
    #[schema(value_type = String, format = Uuid)]
    pub driver_id: DriverId,
    pub lat: f64,
    pub lng: f64,
    pub distance_m: f64,
    #[schema(value_type = crate::openapi::DriverStatus)]
    pub status: DriverStatus,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriverResponse {
    #[schema(value_type = String, format = Uuid)]
    pub driver_id: DriverId,
    #[schema(value_type = crate::openapi::DriverStatus)]
    pub status: DriverStatus,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    /// Degrees clockwise from north.
    pub heading: Option<f32>,
    /// Metres per second.
    pub speed: Option<f32>,
    pub updated_at: Option<i64>,
    /// The first open order the driver carries (the one taken first).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub current_order: Option<OrderId>,
    /// Every open order the driver carries, first taken first: none, one
    /// (the same as `current_order`), or with `matcher.stacking` two (the
    /// second from the same restaurant or one on the way, taken before the
    /// first's pickup; the first's customer is delivered first).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub orders: Vec<OrderId>,
}

// ---- handlers ----

#[utoipa::path(
    put,
    path = "/v1/drivers/{driver_id}/availability",
    tag = "drivers",
    summary = "Declare a driver available or offline",
    params(("driver_id" = uuid::Uuid, Path, description = "The driver (its user id).")),
    request_body = AvailabilityRequest,
    responses(
        (status = 200, description = "What was declared, the driver's live status, and why they differ when they do (a driver is `available` only while it pings).", body = AvailabilityResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields) (status must be `available` or `offline`).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: only the driver itself or an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: (admin) no driver account with this id.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn set_availability(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(driver_id): ApiPath<DriverId>,
    ApiJson(req): ApiJson<AvailabilityRequest>,
) -> ApiResult<Json<AvailabilityResponse>> {
    authorize_driver_access(&state, &principal, driver_id).await?;
    let status = state
        .engine
        .set_availability(driver_id, req.status, state.clock.now_ms());
    let reason = match (req.status, status) {
        (Availability::Available, DriverStatus::Offline) => {
            let has_position = state
                .engine
                .driver(driver_id)
                .is_some_and(|v| v.fix.is_some());
            Some(if has_position {
                NO_RECENT_PING
            } else {
                NO_POSITION_YET
            })
        }
        (Availability::Offline, DriverStatus::Busy) => Some(HOLDS_AN_ORDER),
        _ => None,
    };
    Ok(Json(AvailabilityResponse {
        driver_id,
        declared: req.status,
        status,
        reason: reason.map(str::to_owned),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/drivers/{driver_id}",
    tag = "drivers",
    summary = "Get a driver",
    params(("driver_id" = uuid::Uuid, Path, description = "The driver (its user id).")),
    responses(
        (status = 200, description = "Last known position, status and current order (`offline` with no position if the engine has not heard from the driver).", body = DriverResponse),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: only the driver itself or an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: (admin) no driver account with this id.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_driver(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(driver_id): ApiPath<DriverId>,
) -> ApiResult<Json<DriverResponse>> {
    authorize_driver_access(&state, &principal, driver_id).await?;
    let response = match state.engine.driver(driver_id) {
        Some(view) => DriverResponse {
            driver_id,
            status: view.status,
            lat: view.fix.map(|f| f.position.lat),
            lng: view.fix.map(|f| f.position.lng),
            heading: view.fix.and_then(|f| f.heading_deg),
            speed: view.fix.and_then(|f| f.speed_mps),
            updated_at: view.fix.map(|f| f.recorded_at_ms),
            current_order: view.current_order,
            orders: view.orders().collect(),
        },
        // A driver account the engine has not heard from since it started.
        None => DriverResponse {
            driver_id,
            status: DriverStatus::Offline,
            lat: None,
            lng: None,
            heading: None,
            speed: None,
            updated_at: None,
            current_order: None,
            orders: Vec::new(),
        },
    };
    Ok(Json(response))
}

#[utoipa::path(
    get,
    path = "/v1/drivers/nearby",
    tag = "drivers",
    summary = "Find drivers near a point",
    params(NearbyQuery),
    responses(
        (status = 200, description = "Drivers within the radius, nearest first, exact distances.", body = NearbyResponse),
        (status = 400, description = "`missing_coordinates`, `invalid_location` (out of range), `invalid_radius` (above 0, at most 50000), `invalid_limit` (1 to 100), `invalid_status`, `invalid_query` (a parameter of the wrong type).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins (dispatchers) only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_nearby_drivers(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<NearbyQuery>,
) -> ApiResult<Json<NearbyResponse>> {
    require_role(&principal, &[Role::Admin])?;
    let (Some(lat), Some(lng)) = (query.lat, query.lng) else {
        return Err(ApiError::bad_request(
            "missing_coordinates",
            "lat and lng are required",
        ));
    };
    let center = Point { lat, lng }.to_lat_lng("lat/lng")?;
    let radius_m = query.radius_m.unwrap_or(DEFAULT_RADIUS_M);
    if !(radius_m.is_finite() && radius_m > 0.0 && radius_m <= MAX_RADIUS_M) {
        return Err(ApiError::bad_request(
            "invalid_radius",
            format!("radius_m must be a number above 0 and at most {MAX_RADIUS_M}"),
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let filter = match query.status.as_deref().unwrap_or("any") {
        "any" => StatusFilter::Any,
        "available" => StatusFilter::Only(DriverStatus::Available),
        "busy" => StatusFilter::Only(DriverStatus::Busy),
        "offline" => StatusFilter::Only(DriverStatus::Offline),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status must be one of available, busy, offline, any",
            ));
        }
    };
    if let Some(regions) = &state.regions
        && !regions.hold_around(center, radius_m).await
    {
        metrics::counter!(crate::regions::NEARBY_PARTIAL_TOTAL).increment(1);
    }
    let drivers = state
        .engine
        .nearest(center, radius_m, limit, filter)
        .into_iter()
        .map(|d| NearbyDriverResponse {
            driver_id: d.driver_id,
            lat: d.position.lat,
            lng: d.position.lng,
            distance_m: d.distance_m,
            status: d.status,
            updated_at: d.recorded_at_ms,
        })
        .collect();
    Ok(Json(NearbyResponse { drivers }))
}

// ---- helpers ----

/// The driver itself may; an admin may for any driver account (404 if
/// `driver_id` is not one); anyone else is forbidden
/// (`commerce::usecase::account::may_act_for_driver`).
async fn authorize_driver_access(
    state: &AppState,
    principal: &Principal,
    driver_id: DriverId,
) -> ApiResult<()> {
    let store = state.store.as_ref();
    Ok(commerce::usecase::account::may_act_for_driver(store, principal, driver_id).await?)
}
