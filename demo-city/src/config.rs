//! The demo's settings (`[demo]` in the configuration file,
//! `HEXDASH_DEMO__*`, and the `--demo*` flags), checked once before
//! anything starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How big and how busy the demo city is. The defaults show a lively city
/// within a minute on a 2-core machine: 200 couriers pinging once a second
/// (200 pings/s, a rounding error for the ingest path) and 15 orders a
/// minute, which keeps about 100 open with deliveries of 7–8 minutes
/// (comfortably under `max_in_flight`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Run the demo (`hexdash serve --demo`).
    pub enabled: bool,
    /// The road graph the city stands on (`data/*.hxroads`), relative to
    /// the working directory; its nodes' mean is the city centre.
    pub city: PathBuf,
    /// Simulated couriers, each with its own MQTT connection.
    pub couriers: u32,
    /// Customers' orders per minute (exponential gaps, so a Poisson stream).
    pub orders_per_min: f64,
    /// Restaurants, each with an owner account and a menu.
    pub restaurants: u32,
    /// Customer accounts orders are drawn from.
    pub customers: u32,
    /// Orders placed and not yet finished at most: past it the stream
    /// skips orders (counted), so a city without enough couriers does not
    /// pile up open orders, sockets and tasks without bound.
    pub max_in_flight: u32,
    /// Couriers ride at a moped's town speed (25 km/h) times this; a ping
    /// never reports more than 59 m/s (the server refuses over 60).
    pub speed_factor: f64,
    /// How often a courier pings, ms.
    pub ping_interval_ms: u64,
    /// How often restaurants look for new orders and waiting couriers ask
    /// whether the food is ready, ms.
    pub poll_interval_ms: u64,
    /// Share of offers a courier declines (the matcher then offers the
    /// order to the next one).
    pub decline_share: f64,
    /// Kitchen time from accepting an order to ready for pickup, shortest
    /// and longest, seconds (drawn uniformly).
    pub prep_min_s: u64,
    pub prep_max_s: u64,
    /// Restaurants stand within this distance of the centre, metres.
    pub restaurant_radius_m: f64,
    /// Customers live this far from their restaurant at least and at most
    /// (straight line), metres.
    pub trip_min_m: f64,
    pub trip_max_m: f64,
    /// Same seed, same restaurants, menus and courier starts.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: false,
            city: PathBuf::from("data/gothenburg_roads_2016.hxroads"),
            couriers: 200,
            orders_per_min: 15.0,
            restaurants: 20,
            customers: 50,
            max_in_flight: 150,
            speed_factor: 1.0,
            ping_interval_ms: 1000,
            poll_interval_ms: 2000,
            decline_share: 0.1,
            prep_min_s: 30,
            prep_max_s: 120,
            restaurant_radius_m: 4000.0,
            trip_min_m: 400.0,
            trip_max_m: 2500.0,
            seed: cityseed::SEED,
        }
    }
}

/// Limits a setting must stay within, for [`Config::validate`].
const MAX_COURIERS: u32 = 10_000;
const MAX_RESTAURANTS: u32 = 1_000;
const MAX_CUSTOMERS: u32 = 10_000;
const MAX_ORDERS_PER_MIN: f64 = 6_000.0;
const MAX_IN_FLIGHT: u32 = 10_000;

/// A setting out of its range, with the reason in the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("demo.{setting}: {reason}")]
pub struct ConfigError {
    /// The setting's name in the `[demo]` section.
    pub setting: &'static str,
    /// What it must be.
    pub reason: String,
}

impl Config {
    /// Checks every setting; the first one out of range is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, reason: String| Err(ConfigError { setting, reason });
        let counts = [
            ("couriers", self.couriers, MAX_COURIERS),
            ("restaurants", self.restaurants, MAX_RESTAURANTS),
            ("customers", self.customers, MAX_CUSTOMERS),
            ("max_in_flight", self.max_in_flight, MAX_IN_FLIGHT),
        ];
        for (setting, value, max) in counts {
            if !(1..=max).contains(&value) {
                return fail(setting, format!("must be 1 to {max}, not {value}"));
            }
        }
        if !(self.orders_per_min > 0.0 && self.orders_per_min <= MAX_ORDERS_PER_MIN) {
            return fail(
                "orders_per_min",
                format!(
                    "must be above 0 and at most {MAX_ORDERS_PER_MIN}, not {}",
                    self.orders_per_min
                ),
            );
        }
        if !(self.speed_factor >= 0.1 && self.speed_factor <= 10.0) {
            return fail(
                "speed_factor",
                format!("must be 0.1 to 10, not {}", self.speed_factor),
            );
        }
        if !(0.0..=1.0).contains(&self.decline_share) {
            return fail(
                "decline_share",
                format!("must be 0 to 1, not {}", self.decline_share),
            );
        }
        if !(100..=60_000).contains(&self.ping_interval_ms) {
            return fail(
                "ping_interval_ms",
                format!("must be 100 to 60000, not {}", self.ping_interval_ms),
            );
        }
        if !(100..=60_000).contains(&self.poll_interval_ms) {
            return fail(
                "poll_interval_ms",
                format!("must be 100 to 60000, not {}", self.poll_interval_ms),
            );
        }
        if self.prep_min_s > self.prep_max_s || self.prep_max_s > 3600 {
            return fail(
                "prep_max_s",
                format!(
                    "must be at least prep_min_s ({}) and at most 3600, not {}",
                    self.prep_min_s, self.prep_max_s
                ),
            );
        }
        if !(self.restaurant_radius_m >= 100.0 && self.restaurant_radius_m <= 50_000.0) {
            return fail(
                "restaurant_radius_m",
                format!("must be 100 to 50000, not {}", self.restaurant_radius_m),
            );
        }
        if !(self.trip_min_m >= 0.0
            && self.trip_max_m >= self.trip_min_m + 100.0
            && self.trip_max_m <= 20_000.0)
        {
            return fail(
                "trip_max_m",
                format!(
                    "must be at least trip_min_m + 100 ({}) and at most 20000, not {}",
                    self.trip_min_m + 100.0,
                    self.trip_max_m
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_settings_name_themselves() {
        let check = |adjust: fn(&mut Config), setting: &str| {
            let mut c = Config::default();
            adjust(&mut c);
            let e = c.validate().expect_err(setting);
            assert_eq!(e.setting, setting, "{e}");
            assert!(
                e.to_string().starts_with(&format!("demo.{setting}: ")),
                "{e}"
            );
        };
        check(|c| c.couriers = 0, "couriers");
        check(|c| c.couriers = 10_001, "couriers");
        check(|c| c.restaurants = 0, "restaurants");
        check(|c| c.customers = 0, "customers");
        check(|c| c.max_in_flight = 0, "max_in_flight");
        check(|c| c.orders_per_min = 0.0, "orders_per_min");
        check(|c| c.orders_per_min = f64::NAN, "orders_per_min");
        check(|c| c.speed_factor = 0.0, "speed_factor");
        check(|c| c.decline_share = 1.5, "decline_share");
        check(|c| c.ping_interval_ms = 10, "ping_interval_ms");
        check(|c| c.poll_interval_ms = 0, "poll_interval_ms");
        check(
            |c| {
                c.prep_min_s = 10;
                c.prep_max_s = 5;
            },
            "prep_max_s",
        );
        check(|c| c.restaurant_radius_m = 1.0, "restaurant_radius_m");
        check(|c| c.trip_max_m = c.trip_min_m, "trip_max_m");
    }
}
