//! The core of hexdash: live driver state and the spatial index.
//!
//! - [`Engine`]: the driver table (position, heading, speed, last ping,
//!   status, current order and, stacking, a second from the same
//!   restaurant or one on the way), an exact lat/lng grid for nearest and bbox
//!   queries ([`grid`]), each driver's H3 cell ([`cells`]), presence expiry,
//!   and the live order board ([`orders`]) the tracking side authorises by.
//! - [`census`]: supply (available couriers) and demand (orders waiting
//!   for one) per H3 cell, and drivers by status, for the console.
//! - [`Handle`]: the cloneable, locked access every other crate uses.
//! - Events out ([`event`]): `Moved` per applied ping and `Change` for
//!   status, orders, offers, orders nobody took and couriers' arrivals, on bounded broadcast streams whose overflow
//!   policy is written in [`event`].
//! - [`replica`]: driver state between nodes: [`Replica`] in (another
//!   node's fix, presence and declaration), [`Tap`] out (local writes).
//! - [`eta`]: the customer-facing ETA, one formula for every surface.
//! - The shared vocabulary: typed ids ([`ids`]), [`LatLng`] and distances
//!   ([`geo`]), statuses ([`status`]), validated pings ([`ping`]),
//!   dispatch regions and their fencing tokens ([`region`]), token
//!   buckets ([`rate`]: each driver's ping budget).
//!
//! The engine does no I/O and never reads the clock: every mutation takes
//! `now_ms` (Unix milliseconds) from the caller.

pub mod cells;
pub mod census;
pub mod config;
mod engine;
pub mod eta;
pub mod event;
pub mod geo;
mod grid;
mod handle;
pub mod ids;
pub mod orders;
pub mod ping;
pub mod rate;
pub mod region;
pub mod replica;
pub mod status;

pub use config::Config;
pub use engine::{Applied, DriverView, Engine, Error, Fix, NearbyDriver, StatusFilter};
pub use event::{Arrived, Change, Moved, Offer, OfferEnd, Unassigned};
pub use geo::{BBox, LatLng, haversine_m};
pub use handle::{Census, Handle, Stats};
pub use ids::{AddressId, DriverId, MenuItemId, OfferId, OrderId, PaymentId, RestaurantId, UserId};
pub use orders::OrderTrack;
pub use ping::{Ping, PingRejection, RawPing};
pub use region::{Fence, Region};
pub use replica::{Replica, ReplicaFix, Tap};
pub use status::{Arrival, Availability, DriverStatus, OrderStatus};

/// The event streams' receiver type, re-exported so callers need not depend
/// on the channel crate.
pub use async_broadcast::{Receiver, RecvError, TryRecvError};
