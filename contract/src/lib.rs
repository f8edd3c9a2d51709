//! The wire contract of hexdash: every JSON shape that crosses a process
//! boundary, in one place, so the servers that speak it (`ingest`,
//! `ws-gateway`, `api`), the clients that test it (`loadtest`) and the
//! OpenAPI document all take it from here instead of keeping copies.
//!
//! - [`status`]: the order status, driver status, declared availability
//!   and a courier's arrivals at its stops, with their stable names.
//! - [`role`]: an account's role.
//! - [`error`]: the HTTP error body `{"error": {"code", "message", …}}`.
//! - [`driver`]: what drivers send (the ping, single or in an HTTP batch,
//!   and the batch's result) and receive (offers, offer ends and errors on
//!   MQTT `drivers/{driver_id}/offers` and the driver WebSocket).
//! - [`quote`]: a delivery's fee and ETA before ordering (cart, search).
//! - [`notify`]: a user's notification (feed, `me` channel, driver inbox).
//! - [`channels`]: outside channels (push, email, SMS): preferences,
//!   language, the log of sends, the simulated provider's rules.
//! - [`console`]: the dispatcher console's road map, supply and demand
//!   per H3 cell, and live board of open orders with alerts and counters.
//! - [`geojson`]: paths on the map (a driver's recent track, a delivered
//!   order's route) as GeoJSON Features.
//! - [`ws`]: the tracking WebSocket (`GET /v1/ws`): client requests, server
//!   messages, and every name a client sees (channels, ops, error codes,
//!   close codes).
//!
//! Plain data and names only: validation (ranges, plausibility, who may
//! see what) belongs to the crates that serve the contract. Ids are plain
//! [`uuid::Uuid`]s here; the servers wrap them in their typed ids.
//!
//! With the `openapi` feature every type derives `utoipa::ToSchema`, so the
//! document is generated from these definitions.
//!
//! **Architecture Invariant:** depends on serde, serde_json and uuid only
//! (utoipa behind `openapi`); no hexdash crate, no I/O. Changing a type here
//! changes the wire: the servers' integration tests pin the bytes.

pub mod channels;
pub mod console;
pub mod driver;
pub mod error;
pub mod geojson;
pub mod notify;
pub mod quote;
pub mod role;
pub mod status;
pub mod ws;

pub use driver::{
    BatchResult, DriverMessage, OfferEndReason, OfferEndedMessage, OfferMessage, Ping, RejectedPing,
};
pub use error::{ErrorBody, ErrorDetail};
pub use notify::Notification;
pub use quote::Quote;
pub use role::Role;
pub use status::{Arrival, Availability, DriverStatus, OrderStatus};
pub use ws::{ClientMessage, ErrorMessage, ServerMessage};

/// A position on the wire: `{"lat": 57.7, "lng": 11.97}`, in degrees.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Position {
    /// Degrees north, -90 to 90.
    #[cfg_attr(feature = "openapi", schema(minimum = -90, maximum = 90))]
    pub lat: f64,
    /// Degrees east, -180 to 180.
    #[cfg_attr(feature = "openapi", schema(minimum = -180, maximum = 180))]
    pub lng: f64,
}
