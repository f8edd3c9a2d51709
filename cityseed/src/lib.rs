//! Seeded workload generators shared by the criterion benchmarks (`bench`)
//! and the network load generator (`loadtest`), so every figure is
//! reproducible from a seed and both describe the same city.
//!
//! - [`City`]: a square city around a centre, uniform or with a dense
//!   downtown.
//! - [`Fleet`]: drivers placed in a city, with a random walk that produces
//!   plausible successive positions.
//! - [`menus`]: restaurants with names, cuisines, hours and dishes from word
//!   lists, for search.
//!
//! Plain data only (degrees as `f64`, ids as [`Uuid`], strings): each
//! consumer turns it into its own types (`bench` into engine types,
//! `loadtest` into JSON requests).
//!
//! **Architecture Invariant:** depends on rand and uuid only, never on
//! `engine` (so `loadtest` stays a pure network client), and the same seed
//! gives the same values forever: recorded benchmarks and load tests stay
//! comparable. `tests` pins a few generated values.

pub mod menus;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const METRES_PER_DEG_LAT: f64 = 111_195.0;

/// The seed of the published benchmark figures; `loadtest` uses it as its
/// default so a network run and the criterion run describe the same fleet.
pub const SEED: u64 = 20_261_121;

/// Start of the simulated clock: 2025-11-21T04:40:00Z.
pub const EPOCH_MS: i64 = 1_763_700_000_000;

/// A position in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Degrees north.
    pub lat: f64,
    /// Degrees east.
    pub lng: f64,
}

/// A square city of `size_m` × `size_m` metres around `centre`.
#[derive(Clone, Copy, Debug)]
pub struct City {
    /// The middle of the square.
    pub centre: Point,
    /// The side, metres.
    pub size_m: f64,
}

impl City {
    /// Gothenburg, 30 × 30 km: the design's reference city.
    pub fn gothenburg_30km() -> City {
        City {
            centre: Point {
                lat: 57.7089,
                lng: 11.9746,
            },
            size_m: 30_000.0,
        }
    }

    /// The point `north_m`, `east_m` from the centre.
    pub fn offset(&self, north_m: f64, east_m: f64) -> Point {
        let lat = self.centre.lat + north_m / METRES_PER_DEG_LAT;
        let lng =
            self.centre.lng + east_m / (METRES_PER_DEG_LAT * self.centre.lat.to_radians().cos());
        Point { lat, lng }
    }

    /// A uniformly random point in the city.
    pub fn random_point(&self, rng: &mut StdRng) -> Point {
        let h = self.size_m / 2.0;
        self.offset(rng.random_range(-h..h), rng.random_range(-h..h))
    }
}

/// One generated position report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    /// Index of the driver in [`Fleet::drivers`].
    pub index: usize,
    /// The driver.
    pub driver_id: Uuid,
    /// Where it is.
    pub position: Point,
    /// The fleet's clock when it was there, Unix ms.
    pub recorded_at_ms: i64,
    /// Metres per second: always 8.
    pub speed_mps: f32,
    /// Metres: always 5.
    pub accuracy_m: f32,
}

/// Drivers and their current positions, moved by a seeded random walk.
pub struct Fleet {
    /// Where the drivers are.
    pub city: City,
    /// Every driver's id, from the seed.
    pub drivers: Vec<Uuid>,
    /// Every driver's position, by index.
    pub positions: Vec<Point>,
    /// The simulated clock, Unix ms: [`EPOCH_MS`], then one second per step.
    pub clock_ms: i64,
    rng: StdRng,
}

impl Fleet {
    /// `n` drivers placed uniformly in `city`.
    pub fn uniform(seed: u64, n: usize, city: City) -> Fleet {
        let mut rng = StdRng::seed_from_u64(seed);
        let drivers = (0..n).map(|_| uuid_from(&mut rng)).collect();
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

    /// The initial fix of every driver.
    pub fn initial_fixes(&self) -> Vec<Fix> {
        (0..self.drivers.len()).map(|i| self.fix(i)).collect()
    }

    /// One step of the walk for `count` random drivers: each moves up to
    /// 10 m, one second later on the shared clock.
    pub fn next_fixes(&mut self, count: usize) -> Vec<Fix> {
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
                self.fix(i)
            })
            .collect()
    }

    fn fix(&self, i: usize) -> Fix {
        Fix {
            index: i,
            driver_id: self.drivers[i],
            position: self.positions[i],
            recorded_at_ms: self.clock_ms,
            speed_mps: 8.0,
            accuracy_m: 5.0,
        }
    }

    /// The fleet's generator, for callers that draw more from the same seed.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

fn uuid_from(rng: &mut StdRng) -> Uuid {
    Uuid::from_u128(rng.random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same seed, same city: these values were printed by the generator as
    /// it stood in `bench` before the move, and must never change (recorded
    /// benchmarks and load tests compare runs by seed).
    #[test]
    fn the_seed_gives_the_recorded_city() {
        let mut fleet = Fleet::uniform(SEED, 3, City::gothenburg_30km());
        let first = fleet.initial_fixes()[0];
        let moved = fleet.next_fixes(1)[0];
        let restaurant = &menus::restaurants(SEED, 1, 2, City::gothenburg_30km())[0];
        let got = format!(
            "{} {:?} {:?} {} {:?} {} {}",
            first.driver_id,
            (first.position.lat, first.position.lng),
            (moved.position.lat, moved.position.lng),
            moved.recorded_at_ms,
            (restaurant.location.lat, restaurant.location.lng),
            restaurant.name,
            restaurant.dishes[1].name,
        );
        assert_eq!(got, RECORDED);
    }

    const RECORDED: &str = "406c04bb-79a7-2058-4aa7-8c88c9cabe5e \
        (57.624309348300876, 12.016054273608164) (57.624222811175706, 12.015938982546666) \
        1763700001000 (57.697732601793575, 11.993996618497151) \
        Bánh Mì Corner Cà Phê Sữa Đá Vegetarisk";
}
