//! Small planar geometry on the city scale: a local equirectangular
//! projection is accurate to well under a metre over 30 km, which is all a
//! load generator needs (the server does the exact haversine work).

use serde::{Deserialize, Serialize};

/// Metres per degree of latitude (mean Earth radius 6,371,008.8 m).
pub const METRES_PER_DEG_LAT: f64 = 111_195.0;

/// A WGS84 position. GeoJSON orders coordinates lng, lat; people and this
/// struct say lat, lng.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

impl LatLng {
    /// Distance in metres (equirectangular at the mean latitude).
    pub fn distance_m(self, other: LatLng) -> f64 {
        let (north, east) = self.offset_to(other);
        north.hypot(east)
    }

    /// `(north_m, east_m)` from `self` to `other`.
    pub fn offset_to(self, other: LatLng) -> (f64, f64) {
        let mean_lat = ((self.lat + other.lat) / 2.0).to_radians();
        let north = (other.lat - self.lat) * METRES_PER_DEG_LAT;
        let east = (other.lng - self.lng) * METRES_PER_DEG_LAT * mean_lat.cos();
        (north, east)
    }

    /// The point `north_m`, `east_m` away.
    pub fn offset(self, north_m: f64, east_m: f64) -> LatLng {
        LatLng {
            lat: self.lat + north_m / METRES_PER_DEG_LAT,
            lng: self.lng + east_m / (METRES_PER_DEG_LAT * self.lat.to_radians().cos()),
        }
    }

    /// Compass bearing to `other`, degrees in `[0, 360)`.
    pub fn bearing_deg(self, other: LatLng) -> f64 {
        let (north, east) = self.offset_to(other);
        east.atan2(north).to_degrees().rem_euclid(360.0)
    }

    /// The point a fraction `t` (0..=1) of the way to `other`.
    pub fn lerp(self, other: LatLng, t: f64) -> LatLng {
        LatLng {
            lat: self.lat + (other.lat - self.lat) * t,
            lng: self.lng + (other.lng - self.lng) * t,
        }
    }

    /// The `[min_lng, min_lat, max_lng, max_lat]` box of side `side_m`
    /// centred here (the WebSocket `area` channel's bbox order).
    pub fn bbox(self, side_m: f64) -> [f64; 4] {
        let h = side_m / 2.0;
        let sw = self.offset(-h, -h);
        let ne = self.offset(h, h);
        [sw.lng, sw.lat, ne.lng, ne.lat]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOT: LatLng = LatLng {
        lat: 57.7089,
        lng: 11.9746,
    };

    #[test]
    fn offset_and_distance_agree() {
        for (n, e) in [
            (0.0, 1000.0),
            (1000.0, 0.0),
            (-300.0, 400.0),
            (2500.0, -2500.0),
        ] {
            let p = GOT.offset(n, e);
            let d = GOT.distance_m(p);
            // Equirectangular: within 0.05% over a few km.
            let expected = f64::hypot(n, e);
            assert!((d - expected).abs() < expected * 5e-4, "{n},{e}: {d}");
        }
    }

    #[test]
    fn bearings() {
        let check = |n: f64, e: f64, expected: f64| {
            let b = GOT.bearing_deg(GOT.offset(n, e));
            assert!((b - expected).abs() < 0.1, "{n},{e}: {b} vs {expected}");
        };
        check(100.0, 0.0, 0.0);
        check(0.0, 100.0, 90.0);
        check(-100.0, 0.0, 180.0);
        check(0.0, -100.0, 270.0);
    }

    #[test]
    fn bbox_contains_centre_and_has_side() {
        let [min_lng, min_lat, max_lng, max_lat] = GOT.bbox(2000.0);
        assert!(min_lng < GOT.lng && GOT.lng < max_lng);
        assert!(min_lat < GOT.lat && GOT.lat < max_lat);
        let w = LatLng {
            lat: GOT.lat,
            lng: min_lng,
        }
        .distance_m(LatLng {
            lat: GOT.lat,
            lng: max_lng,
        });
        assert!((w - 2000.0).abs() < 1.0, "{w}");
    }
}
