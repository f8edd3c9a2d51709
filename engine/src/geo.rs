//! Coordinates, distances and boxes on the sphere.
//!
//! All distances are great-circle (haversine) metres on a sphere of the
//! mean Earth radius; the same function serves the index, the matcher and
//! the brute-force checks in the tests, so "exact" means "equal to this".

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A validated position: finite, latitude in [-90, 90], longitude in [-180, 180].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

/// The wire's `{lat, lng}` (offers' pickup and dropoff).
impl From<LatLng> for contract::Position {
    fn from(p: LatLng) -> Self {
        Self {
            lat: p.lat,
            lng: p.lng,
        }
    }
}

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum CoordError {
    #[error("coordinates must be finite numbers")]
    NonFinite,
    #[error("latitude must be within [-90, 90] and longitude within [-180, 180]")]
    OutOfRange,
}

impl LatLng {
    pub fn new(lat: f64, lng: f64) -> Result<Self, CoordError> {
        if !lat.is_finite() || !lng.is_finite() {
            return Err(CoordError::NonFinite);
        }
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
            return Err(CoordError::OutOfRange);
        }
        Ok(Self { lat, lng })
    }
}

/// Great-circle distance in metres.
#[inline]
pub fn haversine_m(a: LatLng, b: LatLng) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlng = (b.lng - a.lng).to_radians();
    let s_lat = (dlat * 0.5).sin();
    let s_lng = (dlng * 0.5).sin();
    let h = s_lat * s_lat + lat1.cos() * lat2.cos() * s_lng * s_lng;
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A lng/lat rectangle, as GeoJSON orders a bbox: `[min_lng, min_lat, max_lng, max_lat]`.
/// Boxes that cross the antimeridian are not supported (min_lng must be ≤ max_lng).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    pub min: LatLng,
    pub max: LatLng,
}

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum BBoxError {
    #[error(transparent)]
    Coord(#[from] CoordError),
    #[error(
        "bbox minimum must not exceed its maximum (antimeridian-crossing boxes are not supported)"
    )]
    Inverted,
}

impl BBox {
    pub fn new(min_lng: f64, min_lat: f64, max_lng: f64, max_lat: f64) -> Result<Self, BBoxError> {
        let min = LatLng::new(min_lat, min_lng)?;
        let max = LatLng::new(max_lat, max_lng)?;
        if min.lat > max.lat || min.lng > max.lng {
            return Err(BBoxError::Inverted);
        }
        Ok(Self { min, max })
    }

    #[inline]
    pub fn contains(&self, p: LatLng) -> bool {
        p.lat >= self.min.lat
            && p.lat <= self.max.lat
            && p.lng >= self.min.lng
            && p.lng <= self.max.lng
    }
}

/// Lower bound, in metres, on the distance from `p` to any point with
/// latitude beyond the parallel `lat_deg` (on the far side from `p`).
/// Along a meridian the distance is exactly the latitude difference, and no
/// path can change latitude faster.
#[inline]
pub(crate) fn distance_to_parallel_m(p: LatLng, lat_deg: f64) -> f64 {
    (p.lat - lat_deg).abs().to_radians() * EARTH_RADIUS_M
}

/// Lower bound, in metres, on the distance from `p` to any point on the far
/// side of the meridian `lng_deg`: the distance to the great circle that the
/// meridian lies on, `asin(cos φ · |sin Δλ|)`.
#[inline]
pub(crate) fn distance_to_meridian_m(p: LatLng, lng_deg: f64) -> f64 {
    let dlng = (p.lng - lng_deg).abs().min(90.0).to_radians();
    (p.lat.to_radians().cos() * dlng.sin())
        .clamp(0.0, 1.0)
        .asin()
        * EARTH_RADIUS_M
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(lat: f64, lng: f64) -> LatLng {
        LatLng::new(lat, lng).unwrap()
    }

    #[test]
    fn latlng_validation() {
        let check = |lat: f64, lng: f64, ok: Option<CoordError>| {
            assert_eq!(LatLng::new(lat, lng).err(), ok, "lat={lat} lng={lng}");
        };
        check(57.7, 11.97, None);
        check(90.0, 180.0, None);
        check(-90.0, -180.0, None);
        check(f64::NAN, 0.0, Some(CoordError::NonFinite));
        check(0.0, f64::INFINITY, Some(CoordError::NonFinite));
        check(90.1, 0.0, Some(CoordError::OutOfRange));
        check(0.0, -180.5, Some(CoordError::OutOfRange));
    }

    #[test]
    fn haversine_known_distances() {
        // One degree of latitude is ~111.2 km on the mean sphere.
        let d = haversine_m(ll(0.0, 0.0), ll(1.0, 0.0));
        assert!((d - 111_195.0).abs() < 1.0, "{d}");
        // Gothenburg central station to Liseberg, about 1.6 km.
        let d = haversine_m(ll(57.7089, 11.9746), ll(57.6953, 11.9925));
        assert!((1_600.0..1_900.0).contains(&d), "{d}");
        assert_eq!(haversine_m(ll(10.0, 10.0), ll(10.0, 10.0)), 0.0);
    }

    #[test]
    fn edge_bounds_never_exceed_true_distance() {
        let p = ll(57.7, 11.97);
        for i in 0..200 {
            let other = ll(57.7 + (i as f64) * 0.001, 11.97 + (i as f64) * 0.0017);
            let d = haversine_m(p, other);
            assert!(distance_to_parallel_m(p, other.lat) <= d + 1e-6);
            assert!(distance_to_meridian_m(p, other.lng) <= d + 1e-6);
        }
    }

    #[test]
    fn bbox_rejects_inverted() {
        assert_eq!(BBox::new(12.0, 57.0, 11.0, 58.0), Err(BBoxError::Inverted));
        assert!(
            BBox::new(11.0, 57.0, 12.0, 58.0)
                .unwrap()
                .contains(ll(57.5, 11.5))
        );
    }
}
