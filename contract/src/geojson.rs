//! Paths on the map as GeoJSON (RFC 7946), so any map library draws them
//! as they come: a driver's recent track (`GET
//! /v1/drivers/{driver_id}/track`, [`DriverTrack`]) and a delivered
//! order's route (`GET /v1/orders/{order_id}/route`, [`OrderRoute`]). Each
//! is a `Feature` whose geometry is a `LineString` of `[lng, lat]`
//! positions (GeoJSON's order, not the `{lat, lng}` of the rest of the
//! API), with the time of each position, Unix ms, at the same index of
//! `properties.timestamps_ms`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `type` of a GeoJSON Feature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FeatureType {
    /// `"Feature"`, the only value.
    #[default]
    Feature,
}

/// The `type` of a GeoJSON LineString.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LineStringType {
    /// `"LineString"`, the only value.
    #[default]
    LineString,
}

/// A GeoJSON LineString: two or more positions, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineString {
    /// Always `LineString`.
    #[serde(rename = "type")]
    pub kind: LineStringType,
    /// `[lng, lat]` in degrees (east, north), oldest first; at least two
    /// (RFC 7946 §3.1.4).
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<Vec<f64>>, min_items = 2, example = json!([[11.9746, 57.7089], [11.9751, 57.7093]]))
    )]
    pub coordinates: Vec<[f64; 2]>,
}

impl LineString {
    /// The line through `positions` (`[lng, lat]`); `None` for fewer than
    /// two, which make no line (a Feature then has a `null` geometry).
    pub fn through(positions: Vec<[f64; 2]>) -> Option<LineString> {
        (positions.len() >= 2).then_some(LineString {
            kind: LineStringType::LineString,
            coordinates: positions,
        })
    }
}

/// `GET /v1/drivers/{driver_id}/track`: the driver's recent path as kept
/// in memory (downsampled: at most one position per `min_spacing_ms`,
/// none older than `window_s` before the newest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverTrack {
    /// Always `Feature`.
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// The path; `null` with fewer than two positions kept since
    /// `since_ms` (one position is no path: `GET /v1/drivers/{driver_id}`
    /// says where the driver is).
    pub geometry: Option<LineString>,
    /// Who, since when, the kept positions and their times.
    pub properties: DriverTrackProperties,
}

/// What a [`DriverTrack`] is of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriverTrackProperties {
    /// The driver (its user id).
    pub driver_id: Uuid,
    /// The earliest time asked for, Unix ms (`since`, or the window's
    /// start when none was given).
    pub since_ms: i64,
    /// Each position's device time, Unix ms, oldest first: one per
    /// coordinate of the geometry (empty when it is `null`).
    pub timestamps_ms: Vec<i64>,
    /// The least time between two kept positions, ms (the server's
    /// setting).
    pub min_spacing_ms: u64,
    /// How far back positions are kept, seconds (the server's setting).
    pub window_s: u64,
}

/// `GET /v1/orders/{order_id}/route`: the path a delivered order took,
/// pickup to dropoff, kept with the order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderRoute {
    /// Always `Feature`.
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// Pickup, the courier's breadcrumbs between pickup and delivery,
    /// dropoff.
    pub geometry: LineString,
    /// The order, its courier and the times.
    pub properties: OrderRouteProperties,
}

/// What an [`OrderRoute`] is of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderRouteProperties {
    /// The order.
    pub order_id: Uuid,
    /// The courier who delivered it.
    #[cfg_attr(feature = "openapi", schema(nullable = true))]
    pub driver_id: Option<Uuid>,
    /// When it was picked up, Unix ms (the first position's time).
    pub picked_up_at_ms: i64,
    /// When it was delivered, Unix ms (the last position's time).
    pub delivered_at_ms: i64,
    /// How many positions between the first (pickup) and the last
    /// (dropoff) are the courier's recorded fixes; 0: none was kept (the
    /// line is straight).
    pub breadcrumbs: u32,
    /// Each position's time, Unix ms, one per coordinate: the pickup
    /// step's, each fix's device time, the delivery step's.
    pub timestamps_ms: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_is_a_geojson_feature_with_lng_lat_positions() {
        let track = DriverTrack {
            kind: FeatureType::Feature,
            geometry: LineString::through(vec![[11.97, 57.70], [11.98, 57.71]]),
            properties: DriverTrackProperties {
                driver_id: Uuid::nil(),
                since_ms: 5,
                timestamps_ms: vec![10, 20],
                min_spacing_ms: 5_000,
                window_s: 3_600,
            },
        };
        let v = serde_json::to_value(&track).unwrap();
        assert_eq!(v["type"], "Feature");
        assert_eq!(v["geometry"]["type"], "LineString");
        assert_eq!(
            v["geometry"]["coordinates"],
            serde_json::json!([[11.97, 57.70], [11.98, 57.71]])
        );
        assert_eq!(
            v["properties"]["timestamps_ms"],
            serde_json::json!([10, 20])
        );
        let back: DriverTrack = serde_json::from_value(v).unwrap();
        assert_eq!(back, track);
    }

    #[test]
    fn fewer_than_two_positions_make_no_line() {
        assert_eq!(LineString::through(vec![]), None);
        assert_eq!(LineString::through(vec![[1.0, 2.0]]), None);
        let v = serde_json::to_value(DriverTrack {
            kind: FeatureType::Feature,
            geometry: None,
            properties: DriverTrackProperties {
                driver_id: Uuid::nil(),
                since_ms: 0,
                timestamps_ms: vec![],
                min_spacing_ms: 1,
                window_s: 1,
            },
        })
        .unwrap();
        // GeoJSON wants the member, null.
        assert!(v.as_object().unwrap().contains_key("geometry"));
        assert!(v["geometry"].is_null());
    }
}
