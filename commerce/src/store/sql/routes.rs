//! Delivered orders' routes (migration 0013): one row per order, its
//! points one JSON document of `[lng, lat, at_ms]` triples (GeoJSON's
//! order), written once and read whole.

use async_trait::async_trait;
use engine::{LatLng, OrderId};
use sqlx::Row;

use super::SqlStore;
use super::rows::{corrupt, parse_col, parse_opt_col};
use crate::store::{OrderRoute, Result, RoutePoint, RouteStore};

/// `points` as stored: `[[lng, lat, at_ms], …]`.
fn encode(points: &[RoutePoint]) -> String {
    let triples: Vec<(f64, f64, i64)> = points
        .iter()
        .map(|p| (p.position.lng, p.position.lat, p.at_ms))
        .collect();
    // Finite numbers (a `LatLng` is validated) and integers: serialising
    // a vector of them cannot fail.
    serde_json::to_string(&triples).unwrap_or_else(|_| "[]".to_owned())
}

/// The stored document back into points; a value that is not one we
/// wrote is corrupt.
fn decode(json: &str) -> Result<Vec<RoutePoint>> {
    let triples: Vec<(f64, f64, i64)> =
        serde_json::from_str(json).map_err(|_| corrupt("points_json", json))?;
    triples
        .into_iter()
        .map(|(lng, lat, at_ms)| {
            let position = LatLng::new(lat, lng).map_err(|_| corrupt("points_json", json))?;
            Ok(RoutePoint { position, at_ms })
        })
        .collect()
}

#[async_trait]
impl RouteStore for SqlStore {
    async fn insert_order_route(&self, route: &OrderRoute) -> Result<bool> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO order_routes \
             (order_id, driver_id, picked_up_at_ms, delivered_at_ms, breadcrumbs, points_json, \
              created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(route.order_id.to_string())
        .bind(route.driver_id.map(|d| d.to_string()))
        .bind(route.picked_up_at_ms)
        .bind(route.delivered_at_ms)
        .bind(i64::from(route.breadcrumbs))
        .bind(encode(&route.points))
        .bind(route.created_at_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    async fn order_route(&self, order_id: OrderId) -> Result<Option<OrderRoute>> {
        let row = sqlx::query(
            "SELECT order_id, driver_id, picked_up_at_ms, delivered_at_ms, breadcrumbs, \
             points_json, created_at_ms FROM order_routes WHERE order_id = $1",
        )
        .bind(order_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let breadcrumbs: i64 = row.try_get("breadcrumbs")?;
        let points_json: String = row.try_get("points_json")?;
        Ok(Some(OrderRoute {
            order_id: parse_col(&row, "order_id")?,
            driver_id: parse_opt_col(&row, "driver_id")?,
            picked_up_at_ms: row.try_get("picked_up_at_ms")?,
            delivered_at_ms: row.try_get("delivered_at_ms")?,
            breadcrumbs: u32::try_from(breadcrumbs)
                .map_err(|_| corrupt("breadcrumbs", &breadcrumbs.to_string()))?,
            points: decode(&points_json)?,
            created_at_ms: row.try_get("created_at_ms")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_go_out_in_geojson_order_and_come_back() {
        let points = vec![
            RoutePoint {
                position: LatLng::new(57.7089, 11.9746).unwrap(),
                at_ms: 1_000,
            },
            RoutePoint {
                position: LatLng::new(-33.5, -70.25).unwrap(),
                at_ms: 2_000,
            },
        ];
        let json = encode(&points);
        assert_eq!(json, "[[11.9746,57.7089,1000],[-70.25,-33.5,2000]]");
        assert_eq!(decode(&json).unwrap(), points);
        assert!(decode("[[200.0,1.0,5]]").is_err(), "out of range");
        assert!(decode("{}").is_err(), "not ours");
    }
}
