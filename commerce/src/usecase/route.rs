//! A delivered order's route: recorded once when it is delivered
//! ([`record`], called by `api`'s consumer of `order.delivered`) and read
//! by the order's parties ([`visible_route`]).
//!
//! The route is the pickup, the courier's breadcrumbs recorded between
//! the `picked_up` and `delivered` steps ([`Trails`], kept in memory by
//! `api`), downsampled to at most the configured number of points
//! ([`downsample`]), and the dropoff. What is in memory is what there is:
//! a courier whose fixes were not kept (breadcrumbs off, a restart
//! between pickup and delivery, an order delivered before routes were
//! kept) gets pickup and dropoff only, with `breadcrumbs = 0`.

use auth::Principal;
use engine::{OrderId, OrderStatus};

use crate::ports::Trails;
use crate::store::{EventKind, Order, OrderRoute, OrderStore, RoutePoint, RouteStore, Store};
use crate::{Error, Result};

/// The fewest points a route limit may allow: the pickup and the dropoff.
pub const MIN_ROUTE_POINTS: usize = 2;

/// Records `order_id`'s route, delivered at `delivered_at_ms`, with at
/// most `max_points` points (at least [`MIN_ROUTE_POINTS`]); the route if
/// it was stored now, `None` when the order is unknown or not delivered
/// or its route is kept already (a redelivered event: nothing changes).
pub async fn record(
    store: &(impl OrderStore + RouteStore + ?Sized),
    trails: &dyn Trails,
    order_id: OrderId,
    delivered_at_ms: i64,
    max_points: usize,
    now_ms: i64,
) -> Result<Option<OrderRoute>> {
    if store.order_route(order_id).await?.is_some() {
        return Ok(None);
    }
    let Some(order) = store.order(order_id).await? else {
        return Ok(None);
    };
    if order.status != OrderStatus::Delivered {
        return Ok(None);
    }
    // The last pickup step in the order's history (one in practice).
    let picked_up_at_ms = store
        .order_events(order_id)
        .await?
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Status && e.status == OrderStatus::PickedUp)
        .map_or(delivered_at_ms, |e| e.at_ms);
    let crumbs = order.driver_id.map_or_else(Vec::new, |driver| {
        trails.between(driver, picked_up_at_ms, delivered_at_ms)
    });
    let route = build(
        &order,
        picked_up_at_ms,
        delivered_at_ms,
        crumbs,
        max_points,
        now_ms,
    );
    Ok(store.insert_order_route(&route).await?.then_some(route))
}

/// The route of `order`: pickup at `picked_up_at_ms`, `crumbs` (oldest
/// first) downsampled to leave room for the two ends, dropoff at
/// `delivered_at_ms`.
pub fn build(
    order: &Order,
    picked_up_at_ms: i64,
    delivered_at_ms: i64,
    crumbs: Vec<RoutePoint>,
    max_points: usize,
    now_ms: i64,
) -> OrderRoute {
    let room = max_points.max(MIN_ROUTE_POINTS) - MIN_ROUTE_POINTS;
    let crumbs = downsample(crumbs, room);
    let mut points = Vec::with_capacity(crumbs.len() + MIN_ROUTE_POINTS);
    points.push(RoutePoint {
        position: order.pickup,
        at_ms: picked_up_at_ms,
    });
    points.extend_from_slice(&crumbs);
    points.push(RoutePoint {
        position: order.dropoff,
        at_ms: delivered_at_ms,
    });
    OrderRoute {
        order_id: order.id,
        driver_id: order.driver_id,
        picked_up_at_ms,
        delivered_at_ms,
        // At most `max_points`, which a `usize` config bounds far below
        // `u32::MAX` in practice; saturate rather than wrap.
        breadcrumbs: u32::try_from(crumbs.len()).unwrap_or(u32::MAX),
        points,
        created_at_ms: now_ms,
    }
}

/// At most `max` of `points`, spread evenly over them by position, the
/// first and the last kept (a path's ends matter most); all of them when
/// they fit.
pub fn downsample(points: Vec<RoutePoint>, max: usize) -> Vec<RoutePoint> {
    let n = points.len();
    if n <= max {
        return points;
    }
    match max {
        0 => Vec::new(),
        1 => vec![points[n - 1]],
        _ => (0..max)
            // Index i of max spread over 0..=n-1, rounded: strictly rising
            // since n > max, so no point is taken twice.
            .map(|i| points[(i * (n - 1) + (max - 1) / 2) / (max - 1)])
            .collect(),
    }
}

/// The route of `order_id` for `principal`, a party to it (not found
/// otherwise, as `visible_order`): a conflict (`not_delivered`, with
/// `current_status`) before delivery, not found while it is being
/// recorded.
pub async fn visible_route(
    store: &dyn Store,
    principal: &Principal,
    order_id: OrderId,
) -> Result<OrderRoute> {
    let (order, _) = super::visible_order(store, principal, order_id).await?;
    if order.status != OrderStatus::Delivered {
        return Err(Error::Conflict {
            code: "not_delivered",
            reason: "an order's route is kept once it is delivered".to_owned(),
            detail: Some(("current_status", order.status.as_str().to_owned())),
        });
    }
    store
        .order_route(order_id)
        .await?
        .ok_or(Error::NotFound("route"))
}

#[cfg(test)]
mod tests {
    use engine::LatLng;

    use super::*;

    fn crumbs(n: i64) -> Vec<RoutePoint> {
        (0..n)
            .map(|i| RoutePoint {
                position: LatLng::new(57.0 + i as f64 * 1e-4, 11.9).unwrap(),
                at_ms: i * 1_000,
            })
            .collect()
    }

    fn times(points: &[RoutePoint]) -> Vec<i64> {
        points.iter().map(|p| p.at_ms / 1_000).collect()
    }

    #[test]
    fn downsampling_keeps_the_ends_and_spreads_the_rest() {
        let check = |n: i64, max: usize, expected: &[i64]| {
            assert_eq!(times(&downsample(crumbs(n), max)), expected, "{n} to {max}");
        };
        check(3, 5, &[0, 1, 2]);
        check(5, 5, &[0, 1, 2, 3, 4]);
        check(10, 2, &[0, 9]);
        check(10, 3, &[0, 5, 9]);
        check(11, 3, &[0, 5, 10]);
        check(10, 4, &[0, 3, 6, 9]);
        check(100, 5, &[0, 25, 50, 74, 99]);
        check(10, 1, &[9]);
        check(10, 0, &[]);
        check(0, 0, &[]);
        // Never a point twice, always in time order, always the bound.
        for n in 0..60 {
            for max in 0..40 {
                let got = times(&downsample(crumbs(n), max));
                assert!(got.len() <= max, "{n} to {max}: {got:?}");
                assert!(got.windows(2).all(|w| w[0] < w[1]), "{n} to {max}: {got:?}");
            }
        }
    }
}
