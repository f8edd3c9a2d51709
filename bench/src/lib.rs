//! The criterion benchmarks' workload, in engine types: the seeded city,
//! fleet and menus of [`cityseed`] (which `loadtest` shares without
//! engine types), converted, so every figure is reproducible from a seed
//! and a network run with the same seed describes the same city.
//!
//! - [`City`]: a square city around a centre, uniform or with a dense
//!   downtown.
//! - [`Fleet`]: drivers placed in a city, with a random walk that produces
//!   plausible successive pings.
//! - [`menus`]: restaurants with names, cuisines, hours and dishes from word
//!   lists, for search.
//! - [`lat_lng`]: a generated point as an engine [`LatLng`].

use engine::{DriverId, LatLng, Ping};
use rand::rngs::StdRng;

pub use cityseed::{EPOCH_MS, SEED};

/// Seeded restaurants and menus ([`cityseed::menus`]), taking a [`City`].
pub mod menus {
    pub use cityseed::menus::{DailyHours, GenDish, GenRestaurant, POPULAR_QUERIES, TIME_ZONE};

    use crate::City;

    /// `n` restaurants with `dishes_per_restaurant` dishes each
    /// ([`cityseed::menus::restaurants`]).
    pub fn restaurants(
        seed: u64,
        n: usize,
        dishes_per_restaurant: usize,
        city: City,
    ) -> Vec<GenRestaurant> {
        cityseed::menus::restaurants(seed, n, dishes_per_restaurant, city.seed())
    }
}

/// A generated point as an engine position. Generated points are in range
/// by construction, so no validation.
pub fn lat_lng(p: cityseed::Point) -> LatLng {
    LatLng {
        lat: p.lat,
        lng: p.lng,
    }
}

/// A square city of `size_m` × `size_m` metres around `centre`.
#[derive(Clone, Copy, Debug)]
pub struct City {
    /// The middle of the square.
    pub centre: LatLng,
    /// The side, metres.
    pub size_m: f64,
}

impl City {
    /// Gothenburg, 30 × 30 km: the design's reference city.
    pub fn gothenburg_30km() -> City {
        City::from_seed(cityseed::City::gothenburg_30km())
    }

    fn from_seed(c: cityseed::City) -> City {
        City {
            centre: lat_lng(c.centre),
            size_m: c.size_m,
        }
    }

    fn seed(self) -> cityseed::City {
        cityseed::City {
            centre: cityseed::Point {
                lat: self.centre.lat,
                lng: self.centre.lng,
            },
            size_m: self.size_m,
        }
    }

    /// The point `north_m`, `east_m` from the centre.
    pub fn offset(&self, north_m: f64, east_m: f64) -> LatLng {
        lat_lng(self.seed().offset(north_m, east_m))
    }

    /// A uniformly random point in the city.
    pub fn random_point(&self, rng: &mut StdRng) -> LatLng {
        lat_lng(self.seed().random_point(rng))
    }
}

/// Drivers and their current positions, moved by a seeded random walk
/// ([`cityseed::Fleet`], mirrored in engine types).
pub struct Fleet {
    /// Where the drivers are.
    pub city: City,
    /// Every driver's id, from the seed.
    pub drivers: Vec<DriverId>,
    /// Every driver's position, by index.
    pub positions: Vec<LatLng>,
    /// The simulated clock, Unix ms: [`EPOCH_MS`], then one second per step.
    pub clock_ms: i64,
    inner: cityseed::Fleet,
}

impl Fleet {
    /// `n` drivers placed uniformly in `city`.
    pub fn uniform(seed: u64, n: usize, city: City) -> Fleet {
        Fleet::mirror(city, cityseed::Fleet::uniform(seed, n, city.seed()))
    }

    /// `n` drivers, `downtown_share` of them within `downtown_m` of the centre.
    pub fn with_downtown(
        seed: u64,
        n: usize,
        city: City,
        downtown_share: f64,
        downtown_m: f64,
    ) -> Fleet {
        let inner =
            cityseed::Fleet::with_downtown(seed, n, city.seed(), downtown_share, downtown_m);
        Fleet::mirror(city, inner)
    }

    fn mirror(city: City, inner: cityseed::Fleet) -> Fleet {
        Fleet {
            city,
            drivers: inner.drivers.iter().map(|&u| DriverId::from(u)).collect(),
            positions: inner.positions.iter().map(|&p| lat_lng(p)).collect(),
            clock_ms: inner.clock_ms,
            inner,
        }
    }

    /// The initial ping of every driver.
    pub fn initial_pings(&self) -> Vec<Ping> {
        self.inner
            .initial_fixes()
            .into_iter()
            .map(|f| self.ping(f))
            .collect()
    }

    /// One step of the walk for `count` random drivers: each moves up to
    /// 10 m, one second later on the shared clock.
    pub fn next_pings(&mut self, count: usize) -> Vec<Ping> {
        let fixes = self.inner.next_fixes(count);
        self.clock_ms = self.inner.clock_ms;
        fixes
            .into_iter()
            .map(|f| {
                self.positions[f.index] = lat_lng(f.position);
                self.ping(f)
            })
            .collect()
    }

    fn ping(&self, f: cityseed::Fix) -> Ping {
        Ping {
            driver_id: self.drivers[f.index],
            position: lat_lng(f.position),
            recorded_at_ms: f.recorded_at_ms,
            heading_deg: None,
            speed_mps: Some(f.speed_mps),
            accuracy_m: Some(f.accuracy_m),
        }
    }

    /// The fleet's generator, for benchmarks that draw more from the seed.
    pub fn rng(&mut self) -> &mut StdRng {
        self.inner.rng()
    }
}
