//! Seeded workload generators shared by the criterion benchmarks (and, from
//! the load-test issue on, by `loadtest`), so every figure is reproducible
//! from a seed.
//!
//! - [`City`]: a square city around a centre, uniform or with a dense
//!   downtown.
//! - [`Fleet`]: drivers placed in a city, with a random walk that produces
//!   plausible successive pings.
//! - [`menus`]: restaurants with names, cuisines, hours and dishes from word
//!   lists, for search.

pub mod menus;

use engine::{DriverId, LatLng, Ping};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const METRES_PER_DEG_LAT: f64 = 111_195.0;

/// A square city of `size_m` × `size_m` metres around `centre`.
#[derive(Clone, Copy, Debug)]
pub struct City {
    pub centre: LatLng,
    pub size_m: f64,
}

impl City {
    /// Gothenburg, 30 × 30 km: the design's reference city.
    pub fn gothenburg_30km() -> City {
        City {
            centre: LatLng {
                lat: 57.7089,
                lng: 11.9746,
            },
            size_m: 30_000.0,
        }
    }

    /// The point `north_m`, `east_m` from the centre.
    pub fn offset(&self, north_m: f64, east_m: f64) -> LatLng {
        let lat = self.centre.lat + north_m / METRES_PER_DEG_LAT;
        let lng =
            self.centre.lng + east_m / (METRES_PER_DEG_LAT * self.centre.lat.to_radians().cos());
        LatLng { lat, lng }
    }

    /// A uniformly random point in the city.
    pub fn random_point(&self, rng: &mut StdRng) -> LatLng {
        let h = self.size_m / 2.0;
        self.offset(rng.random_range(-h..h), rng.random_range(-h..h))
    }
}

/// Drivers and their current positions, moved by a seeded random walk.
pub struct Fleet {
    pub city: City,
    pub drivers: Vec<DriverId>,
    pub positions: Vec<LatLng>,
    pub clock_ms: i64,
    rng: StdRng,
}

/// Start of the simulated clock: 2025-11-21T04:40:00Z.
pub const EPOCH_MS: i64 = 1_763_700_000_000;

impl Fleet {
    /// `n` drivers placed uniformly in `city`.
    pub fn uniform(seed: u64, n: usize, city: City) -> Fleet {
        let mut rng = StdRng::seed_from_u64(seed);
        let drivers = (0..n)
            .map(|_| DriverId::from(uuid_from(&mut rng)))
            .collect();
        let positions = (0..n).map(|_| city.random_point(&mut rng)).collect();
        Fleet {
            city,
            drivers,
            positions,
            clock_ms: EPOCH_MS,
            rng,
        }
    }

    /// `n` drivers, `downtown_share` of them within `downtown_m` of the centre.
    pub fn with_downtown(
        seed: u64,
        n: usize,
        city: City,
        downtown_share: f64,
        downtown_m: f64,
    ) -> Fleet {
        let mut fleet = Fleet::uniform(seed, n, city);
        let dense = City {
            centre: city.centre,
            size_m: downtown_m,
        };
        for i in 0..n {
            if fleet.rng.random_bool(downtown_share) {
                fleet.positions[i] = dense.random_point(&mut fleet.rng);
            }
        }
        fleet
    }

    /// The initial ping of every driver.
    pub fn initial_pings(&self) -> Vec<Ping> {
        (0..self.drivers.len()).map(|i| self.ping(i)).collect()
    }

    /// One step of the walk for `count` random drivers: each moves up to
    /// 10 m, one second later on the shared clock.
    pub fn next_pings(&mut self, count: usize) -> Vec<Ping> {
        self.clock_ms += 1_000;
        (0..count)
            .map(|_| {
                let i = self.rng.random_range(0..self.drivers.len());
                let p = self.positions[i];
                let moved = City {
                    centre: p,
                    size_m: 20.0,
                }
                .random_point(&mut self.rng);
                self.positions[i] = moved;
                self.ping(i)
            })
            .collect()
    }

    fn ping(&self, i: usize) -> Ping {
        Ping {
            driver_id: self.drivers[i],
            position: self.positions[i],
            recorded_at_ms: self.clock_ms,
            heading_deg: None,
            speed_mps: Some(8.0),
            accuracy_m: Some(5.0),
        }
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

fn uuid_from(rng: &mut StdRng) -> uuid::Uuid {
    uuid::Uuid::from_u128(rng.random::<u128>())
}

/// The seed of the published benchmark figures; `loadtest` uses it as its
/// default so a network run and the criterion run describe the same fleet.
pub const SEED: u64 = 20_261_121;
