//! What the dispatcher console draws and lists (admin role; shapes in
//! `contract::console`):
//!
//! | route                                        | what                                   |
//! |----------------------------------------------|----------------------------------------|
//! | `GET /v1/admin/console/roads`                | the matcher's road graph, compact      |
//! | `GET /v1/admin/console/hexes?resolution=`    | supply and demand per H3 cell          |
//! | `GET /v1/admin/console/board`                | open orders, alerts, counters          |
//!
//! Everything here is read from memory (the engine, the matcher and its
//! road graph); nothing touches the database, so a console polling every
//! few seconds costs the store nothing. Positions of couriers come over
//! the tracking socket's `area` channel, not from here.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use contract::Position;
use contract::console::{
    Alert, AlertKind, Board, BoardDispatch, BoardOrder, Counters, HexCell, HexMap,
    ROAD_COORD_SCALE, RoadMap,
};
use engine::census::CENSUS_RESOLUTIONS;
use engine::{DriverStatus, OrderStatus, OrderTrack};
use routing::RoadClass;
use serde::Deserialize;
use utoipa::IntoParams;

use super::require_role;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// The operations this module serves ([`super::ROUTES`]).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/admin/console/roads" => get_road_map),
    route!(Get "/v1/admin/console/hexes" => get_hex_map),
    route!(Get "/v1/admin/console/board" => get_board),
];

/// The census resolution when none is asked for: cells of about 5 km²
/// (edge ≈ 1.2 km), a district at city zoom.
const DEFAULT_RESOLUTION: u8 = 7;
/// Finest and coarsest resolutions asked for ([`CENSUS_RESOLUTIONS`]).
pub(crate) const MIN_RESOLUTION: u8 = 5;
pub(crate) const MAX_RESOLUTION: u8 = 9;
/// Orders listed on one board at most (the longest in their status
/// first): each costs an engine read and an ETA; `counters.open_orders`
/// says how many there are in all.
pub(crate) const MAX_BOARD_ORDERS: usize = 500;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HexQuery {
    /// H3 resolution of the cells, 5 (≈ 252 km²) to 9 (≈ 0.1 km², the
    /// driver cell); default 7.
    #[param(minimum = 5, maximum = 9)]
    pub resolution: Option<u8>,
}

#[utoipa::path(
    get,
    path = "/v1/admin/console/roads",
    tag = "console",
    summary = "Get the road map",
    description = "The road graph the matcher measures travel times on (`matcher.roads`), as compact arrays for drawing: node positions as integers in `1/scale` degree and segments as `a, b, rank` triples. Without a graph the arrays are empty and `bbox` is null. The same for the life of the process, so clients may cache it.",
    responses(
        (status = 200, description = "The road map.", body = contract::console::RoadMap),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_road_map(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<impl IntoResponse> {
    require_role(&principal, &[Role::Admin])?;
    let map = match state.matcher.router() {
        Some(router) => road_map(router.graph()),
        None => RoadMap {
            scale: ROAD_COORD_SCALE,
            bbox: None,
            nodes: Vec::new(),
            segments: Vec::new(),
        },
    };
    Ok((
        [(header::CACHE_CONTROL, "private, max-age=3600")],
        Json(map),
    ))
}

/// The graph's nodes and segments as [`RoadMap`]'s arrays.
fn road_map(graph: &routing::RoadGraph) -> RoadMap {
    let scale = f64::from(ROAD_COORD_SCALE);
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut nodes = Vec::with_capacity(graph.node_count() * 2);
    for p in graph.nodes() {
        bbox = [
            bbox[0].min(p.lng),
            bbox[1].min(p.lat),
            bbox[2].max(p.lng),
            bbox[3].max(p.lat),
        ];
        // Degrees times 1e5 are within ±1.8e7: they fit an i32.
        nodes.push((p.lng * scale).round() as i32);
        nodes.push((p.lat * scale).round() as i32);
    }
    let mut segments = Vec::with_capacity(graph.segments().len() * 3);
    for s in graph.segments() {
        segments.extend([s.a, s.b, rank(s.class)]);
    }
    RoadMap {
        scale: ROAD_COORD_SCALE,
        bbox: (!nodes.is_empty()).then_some(bbox),
        nodes,
        segments,
    }
}

/// How prominently a road class is drawn (see [`RoadMap::segments`]).
fn rank(class: RoadClass) -> u32 {
    match class {
        RoadClass::Motorway | RoadClass::Trunk | RoadClass::Primary => 0,
        RoadClass::Secondary | RoadClass::Tertiary => 1,
        RoadClass::Unclassified | RoadClass::Residential | RoadClass::LivingStreet => 2,
        RoadClass::MotorwayLink
        | RoadClass::TrunkLink
        | RoadClass::PrimaryLink
        | RoadClass::SecondaryLink
        | RoadClass::TertiaryLink
        | RoadClass::Service => 3,
    }
}

#[utoipa::path(
    get,
    path = "/v1/admin/console/hexes",
    tag = "console",
    summary = "Get supply and demand per H3 cell",
    description = "Counted now from the engine: supply is couriers online and free at their last position, demand is open orders no courier carries yet (not picked up) at their restaurant. Only cells with either are listed, each with its outline.",
    params(HexQuery),
    responses(
        (status = 200, description = "The cells.", body = contract::console::HexMap),
        (status = 400, description = "`invalid_resolution` (5 to 9), `invalid_query` (a parameter of the wrong type).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_hex_map(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<HexQuery>,
) -> ApiResult<Json<HexMap>> {
    require_role(&principal, &[Role::Admin])?;
    let asked = query.resolution.unwrap_or(DEFAULT_RESOLUTION);
    let resolution = CENSUS_RESOLUTIONS
        .into_iter()
        .find(|r| u8::from(*r) == asked)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_resolution",
                format!("resolution must be {MIN_RESOLUTION} to {MAX_RESOLUTION}"),
            )
        })?;
    let census = state.engine.census(resolution);
    let cells = census
        .cells
        .iter()
        .map(|c| HexCell {
            cell: c.cell.to_string(),
            supply: c.supply,
            demand: c.demand,
            outline: engine::census::outline(c.cell)
                .into_iter()
                .map(|p| [p.lng, p.lat])
                .collect(),
        })
        .collect();
    Ok(Json(HexMap {
        resolution: asked,
        at_ms: state.clock.now_ms(),
        cells,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/console/board",
    tag = "console",
    summary = "Get the live board",
    description = "Open orders from the engine's live board (paid and not yet closed; at most 500, the longest in their status first) with each courier's live status, the customer ETA and the matcher's search; alerts: orders searching for a courier for 2 minutes or raised as unassigned (`order_waiting`), couriers holding an order who went offline (`courier_offline`); counters: pings applied and orders opened since start (take two readings for rates) and drivers by status.",
    responses(
        (status = 200, description = "The board.", body = contract::console::Board),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_board(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<Board>> {
    require_role(&principal, &[Role::Admin])?;
    let now_ms = state.clock.now_ms();
    let mut open = state.engine.open_orders();
    open.sort_by_key(|t| (t.updated_at_ms, t.order_id));
    let open_orders = open.len() as u64;
    let mut alerts = Vec::new();
    let orders: Vec<BoardOrder> = open
        .iter()
        .take(MAX_BOARD_ORDERS)
        .map(|track| board_order(&state, track, now_ms, &mut alerts))
        .collect();
    alerts.sort_by_key(|a| (a.since_ms, a.order_id));
    let stats = state.engine.stats();
    // The status counts come with the census; resolution is irrelevant
    // to them, and the coarsest cells are the cheapest to count.
    let statuses = state.engine.census(CENSUS_RESOLUTIONS[0]).statuses;
    Ok(Json(Board {
        at_ms: now_ms,
        orders,
        alerts,
        counters: Counters {
            pings_applied_total: stats.pings_applied_total,
            orders_opened_total: stats.orders_opened_total,
            drivers_available: statuses.available as u64,
            drivers_busy: statuses.busy as u64,
            drivers_offline: statuses.offline as u64,
            open_orders,
        },
    }))
}

/// One order of the board, adding its alerts to `alerts`.
fn board_order(
    state: &AppState,
    track: &OrderTrack,
    now_ms: i64,
    alerts: &mut Vec<Alert>,
) -> BoardOrder {
    let driver = track.driver_id.and_then(|id| state.engine.driver(id));
    let eta = driver
        .and_then(|d| d.fix)
        .and_then(|fix| state.etas.order_eta(track, fix.position));
    let dispatch = state
        .matcher
        .dispatch_state(track.order_id)
        .map(|d| BoardDispatch {
            offered: d.state == matcher::DispatchState::Offered,
            attempts: d.attempts,
            since_ms: d.since_ms,
            unassigned_at_ms: d.unassigned_at_ms,
        });
    let waiting_alert_ms = i64::try_from(state.config.console_waiting_alert_s.saturating_mul(1000))
        .unwrap_or(i64::MAX);
    if let Some(d) = dispatch
        && track.driver_id.is_none()
        && (d.unassigned_at_ms.is_some() || now_ms - d.since_ms >= waiting_alert_ms)
    {
        alerts.push(Alert {
            kind: AlertKind::OrderWaiting,
            order_id: track.order_id.as_uuid(),
            driver_id: None,
            since_ms: Some(d.since_ms),
            message: format!(
                "waiting {} s for a courier ({} offers declined or lapsed)",
                (now_ms - d.since_ms).max(0) / 1000,
                d.attempts
            ),
        });
    }
    if let Some(d) = driver
        && d.status == DriverStatus::Offline
        && track.status != OrderStatus::Delivered
    {
        alerts.push(Alert {
            kind: AlertKind::CourierOffline,
            order_id: track.order_id.as_uuid(),
            driver_id: Some(d.driver_id.as_uuid()),
            since_ms: d.seen_at_ms,
            message: format!(
                "courier went offline with the order {}",
                track.status.as_str()
            ),
        });
    }
    BoardOrder {
        order_id: track.order_id.as_uuid(),
        status: track.status,
        // Order ids are UUIDv7 stamped by the server's clock at placement.
        placed_at_ms: clock::stamp_ms(track.order_id.as_uuid()).unwrap_or(track.updated_at_ms),
        status_since_ms: track.updated_at_ms,
        restaurant_id: track.restaurant_id.as_uuid(),
        customer_id: track.customer_id.as_uuid(),
        driver_id: track.driver_id.map(|d| d.as_uuid()),
        driver_status: driver.map(|d| d.status),
        pickup: position(track.pickup),
        dropoff: position(track.dropoff),
        eta_s: eta.map(|e| e.next_stop_s),
        delivery_eta_s: eta.map(|e| e.door_s),
        dispatch,
    }
}

fn position(p: engine::LatLng) -> Position {
    Position {
        lat: p.lat,
        lng: p.lng,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_resolutions_are_the_census_resolutions() {
        let census: Vec<u8> = CENSUS_RESOLUTIONS.iter().map(|r| u8::from(*r)).collect();
        let documented: Vec<u8> = (MIN_RESOLUTION..=MAX_RESOLUTION).collect();
        assert_eq!(census, documented);
        assert!(census.contains(&DEFAULT_RESOLUTION));
    }

    #[test]
    fn every_road_class_has_a_rank() {
        for class in RoadClass::ALL {
            assert!(rank(class) <= 3, "{class:?}");
        }
    }

    #[test]
    fn a_road_map_lists_nodes_as_scaled_pairs_and_segments_as_triples() {
        let graph = routing::RoadGraph::from_ways([routing::Way {
            class: RoadClass::Primary,
            speed_kmh: 50,
            directions: routing::tags::Directions {
                forward: true,
                backward: true,
            },
            points: vec![
                routing::LatLng {
                    lat: 57.7,
                    lng: 11.97,
                },
                routing::LatLng {
                    lat: 57.701,
                    lng: 11.971,
                },
            ],
        }])
        .unwrap();
        let map = road_map(&graph);
        assert_eq!(map.nodes.len(), 4);
        assert_eq!(map.segments.len(), 3);
        assert_eq!(map.segments[2], 0);
        assert!(map.nodes.contains(&5_770_000) && map.nodes.contains(&1_197_000));
        assert_eq!(map.bbox, Some([11.97, 57.7, 11.971, 57.701]));
    }
}
