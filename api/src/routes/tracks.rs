//! Paths on the map, as GeoJSON Features (`contract::geojson`):
//!
//! | route                                        | who                   |
//! |----------------------------------------------|-----------------------|
//! | `GET /v1/drivers/{driver_id}/track?since=`   | that driver, admin    |
//! | `GET /v1/orders/{order_id}/route`            | its customer, restaurant owner, driver; admin |
//!
//! A driver's track is its recent path from memory ([`crate::breadcrumbs`]):
//! where it went, whatever it carried, and off duty too, so only the driver
//! itself and admins (dispatchers) read it, as with `GET
//! /v1/drivers/{driver_id}`; a customer follows its courier live on the
//! tracking socket instead. A delivered order's route covers that order
//! only (pickup to dropoff), so every party to the order reads it; an
//! order the caller is not a party to answers 404, as every order route.

use ::auth::Authenticated;
use axum::Json;
use axum::extract::State;
use commerce::store::OrderRoute;
use commerce::usecase;
use contract::geojson::{
    DriverTrack, DriverTrackProperties, FeatureType, LineString, LineStringType,
    OrderRoute as RouteFeature, OrderRouteProperties,
};
use engine::{DriverId, OrderId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::events::at_least;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// The operations this module serves ([`super::ROUTES`]).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/drivers/{driver_id}/track" => get_driver_track),
    route!(Get "/v1/orders/{order_id}/route" => get_order_route),
];

/// `GET /v1/drivers/{driver_id}/track`'s start.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrackQuery {
    /// Only positions recorded at or after this time, Unix ms (device
    /// time); default: the kept window's start (now minus the window).
    #[param(minimum = 0)]
    pub since: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/v1/drivers/{driver_id}/track",
    tag = "drivers",
    summary = "Get a driver's recent path",
    description = "The driver's recent positions as a GeoJSON Feature with a LineString geometry (`[lng, lat]` positions, oldest first) and each position's device time in `properties.timestamps_ms`. Kept in memory and downsampled: at most one position per `breadcrumbs.min_spacing_ms` (5 s by default), none older than `breadcrumbs.window_s` (an hour) before the newest, forgotten after the driver has not been heard from for `breadcrumbs.forget_after_s`; nothing survives a restart. `geometry` is `null` with fewer than two positions.",
    params(
        ("driver_id" = uuid::Uuid, Path, description = "The driver (its user id)."),
        TrackQuery,
    ),
    responses(
        (status = 200, description = "The driver's path since `since`.", body = DriverTrack),
        (status = 400, description = "`invalid_path` (an id is not a UUID), `invalid_query` (`since` negative or not an integer).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: only the driver itself or an admin.", body = ErrorBody),
        (status = 404, description = "`not_found`: (admin) no driver account with this id.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_driver_track(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(driver_id): ApiPath<DriverId>,
    ApiQuery(query): ApiQuery<TrackQuery>,
) -> ApiResult<Json<DriverTrack>> {
    let since = at_least(query.since, 0, "since")?;
    usecase::account::may_act_for_driver(state.store.as_ref(), &principal, driver_id).await?;
    let config = state.breadcrumbs.config();
    let window_ms = i64::try_from(config.window_s.saturating_mul(1_000)).unwrap_or(i64::MAX);
    let since_ms = since.unwrap_or_else(|| state.clock.now_ms().saturating_sub(window_ms));
    let crumbs = state.breadcrumbs.between(driver_id, since_ms, i64::MAX);
    let geometry = LineString::through(crumbs.iter().map(|c| [c.lng(), c.lat()]).collect());
    let timestamps_ms = match geometry {
        Some(_) => crumbs.iter().map(|c| c.at_ms).collect(),
        None => Vec::new(),
    };
    Ok(Json(DriverTrack {
        kind: FeatureType::Feature,
        geometry,
        properties: DriverTrackProperties {
            driver_id: driver_id.as_uuid(),
            since_ms,
            timestamps_ms,
            min_spacing_ms: config.min_spacing_ms,
            window_s: config.window_s,
        },
    }))
}

#[utoipa::path(
    get,
    path = "/v1/orders/{order_id}/route",
    tag = "orders",
    summary = "Get a delivered order's route",
    description = "The path the order took, kept with it when it was delivered: a GeoJSON Feature whose LineString runs from the pickup through the courier's breadcrumbs recorded between the `picked_up` and `delivered` steps (downsampled to at most `breadcrumbs.route_max_points` points in all) to the dropoff, `[lng, lat]` positions with their times in `properties.timestamps_ms`. `properties.breadcrumbs` is 0 when no fix of the courier was kept (the line is straight).",
    params(("order_id" = uuid::Uuid, Path, description = "The order.")),
    responses(
        (status = 200, description = "The order's route.", body = RouteFeature),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or the caller is not a party to it (ids do not reveal which orders exist); or, just after delivery, its route is still being recorded.", body = ErrorBody),
        (status = 409, description = "`not_delivered`: a route is kept once the order is delivered (`current_status` says where it is).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_order_route(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(order_id): ApiPath<OrderId>,
) -> ApiResult<Json<RouteFeature>> {
    let route = usecase::route::visible_route(state.store.as_ref(), &principal, order_id).await?;
    Ok(Json(feature(&route)))
}

/// A stored route as the wire has it.
fn feature(route: &OrderRoute) -> RouteFeature {
    let coordinates: Vec<[f64; 2]> = route
        .points
        .iter()
        .map(|p| [p.position.lng, p.position.lat])
        .collect();
    RouteFeature {
        kind: FeatureType::Feature,
        // A stored route has its pickup and dropoff at least: a line.
        geometry: LineString {
            kind: LineStringType::LineString,
            coordinates,
        },
        properties: OrderRouteProperties {
            order_id: route.order_id.as_uuid(),
            driver_id: route.driver_id.map(|d| d.as_uuid()),
            picked_up_at_ms: route.picked_up_at_ms,
            delivered_at_ms: route.delivered_at_ms,
            breadcrumbs: route.breadcrumbs,
            timestamps_ms: route.points.iter().map(|p| p.at_ms).collect(),
        },
    }
}
