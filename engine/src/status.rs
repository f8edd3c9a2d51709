//! The status vocabularies every crate shares (driver status, declared
//! availability, order status and a courier's arrivals), defined by the
//! wire contract and re-exported here so `engine::OrderStatus` and friends
//! keep working.

pub use contract::{Arrival, Availability, DriverStatus, OrderStatus};
