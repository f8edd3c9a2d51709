//! The status vocabularies every crate shares (driver status, declared
//! availability and order status), defined by the wire contract and
//! re-exported here so `engine::OrderStatus` and friends keep working.

pub use contract::{Availability, DriverStatus, OrderStatus};
