//! Coordinates and the one crow-fly formula of the project: the distance
//! on the sphere, and the travel time callers fall back to when no road
//! graph covers a point.

/// Mean Earth radius, metres (the IUGG value haversine distances use).
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Speed of the crow-fly fallback, metres per second: 25 km/h, a courier's
/// average door-to-door speed in city traffic when no road is known.
pub const CROW_FLY_SPEED_MPS: f64 = 25.0 / 3.6;

/// A position in degrees (WGS 84). GeoJSON writes it as `[lng, lat]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLng {
    /// Latitude, degrees north.
    pub lat: f64,
    /// Longitude, degrees east.
    pub lng: f64,
}

impl LatLng {
    /// Builds a position, `None` outside the valid ranges or not finite.
    pub fn new(lat: f64, lng: f64) -> Option<LatLng> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng))
            .then_some(LatLng { lat, lng })
    }

    /// Great-circle (haversine) distance, metres.
    pub fn distance_m(self, other: LatLng) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = phi2 - phi1;
        let dlambda = (other.lng - self.lng).to_radians();
        let a =
            (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// Travel time of the crow-fly fallback, milliseconds: the great-circle
/// distance at `speed_mps`. Callers use it when a point is not covered by
/// the road graph ([`crate::Router::snap`] returns `None`).
pub fn crow_fly_time_ms(from: LatLng, to: LatLng, speed_mps: f64) -> u32 {
    let ms = from.distance_m(to) / speed_mps * 1000.0;
    // Saturates: a u32 of milliseconds is 49 days, far beyond any trip.
    ms.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A local equirectangular projection to metres around a reference
/// latitude: accurate to well under 0.1% across a city, and it makes
/// segment geometry (nearest point, fractions) plain planar maths.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projection {
    /// Metres per degree of longitude at the reference latitude.
    m_per_deg_lng: f64,
    /// Metres per degree of latitude.
    m_per_deg_lat: f64,
}

impl Projection {
    pub(crate) fn around(lat: f64) -> Projection {
        let m_per_deg_lat = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        Projection {
            m_per_deg_lat,
            m_per_deg_lng: m_per_deg_lat * lat.to_radians().cos(),
        }
    }

    pub(crate) fn project(self, p: LatLng) -> [f64; 2] {
        [p.lng * self.m_per_deg_lng, p.lat * self.m_per_deg_lat]
    }

    pub(crate) fn unproject(self, xy: [f64; 2]) -> LatLng {
        LatLng {
            lat: xy[1] / self.m_per_deg_lat,
            lng: xy[0] / self.m_per_deg_lng,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let a = LatLng {
            lat: 57.0,
            lng: 12.0,
        };
        let b = LatLng {
            lat: 58.0,
            lng: 12.0,
        };
        assert!((a.distance_m(b) - 111_195.0).abs() < 10.0);
    }

    #[test]
    fn crow_fly_time_is_distance_over_speed() {
        let a = LatLng {
            lat: 57.70,
            lng: 11.97,
        };
        let b = LatLng {
            lat: 57.71,
            lng: 11.97,
        };
        let d = a.distance_m(b);
        assert_eq!(crow_fly_time_ms(a, b, 10.0), (d * 100.0).round() as u32);
        assert_eq!(crow_fly_time_ms(a, a, CROW_FLY_SPEED_MPS), 0);
    }

    #[test]
    fn positions_out_of_range_are_refused() {
        assert!(LatLng::new(91.0, 0.0).is_none());
        assert!(LatLng::new(0.0, f64::NAN).is_none());
        assert!(LatLng::new(57.7, 11.97).is_some());
    }
}
