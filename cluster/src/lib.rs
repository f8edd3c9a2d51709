//! hexdash across nodes: what several `hexdash serve` processes share
//! through Redis (DESIGN.md, "Scale-out model"). Every node is the same
//! binary; PostgreSQL stays the source of truth, Redis carries what moves
//! between nodes.
//!
//! # Parts
//! - [`Config`]: the `[cluster]` settings (node id, key prefix, stream
//!   limits).
//! - [`Redis`]: the node's connection to Redis, reconnecting by itself
//!   after an outage, with [`Redis::ping`] for `/readyz`.
//! - [`codec`]: an [`events::Event`] as the fields of a stream entry and
//!   back.
//! - [`StreamPublisher`]: an [`events::Consumer`] that appends every event
//!   the outbox's relay published to the Redis stream, with the event's
//!   global id as the entry id (so a second publisher, or a redelivery,
//!   cannot add an event twice).
//! - [`StreamReader`]: one consumer group's reader: hands each entry to
//!   its [`events::Consumer`]s once per node (deduplicated by event id),
//!   acknowledges it, and claims the pending entries of a consumer that
//!   died (`XAUTOCLAIM`).
//! - [`positions`]: drivers' positions and presence by region (pub/sub
//!   batches and snapshots), the regions a node holds, and driver-bound
//!   messages to the node a driver pings ([`Positions`]).
//! - [`lease`]: leases ([`Leases`]: `SET NX PX`, compare-and-extend,
//!   compare-and-delete) that make one node at a time dispatch a region or
//!   run the once-per-cluster consumers, each with a fencing token the
//!   database hands out ([`lease::Fencing`]).
//! - [`OfferOwners`]: which node holds each offer (its advertised URL),
//!   so a driver's answer is forwarded to the node whose matcher made it.
//! - [`Windows`]: fixed-window hit counters every node shares (login and
//!   signup limits that hold across the cluster).
//! - [`describe_metrics`]: HELP text of the metrics recorded here.
//!
//! **Architecture Invariant:** the redis crate is used here and nowhere
//! else in the product (`loadtest`'s peer has its own use); nothing here
//! decides business outcomes: events come from the outbox, go to the same
//! consumers as on one node.

pub mod codec;
pub mod config;
pub mod lease;
pub mod metrics;
mod owners;
pub mod positions;
mod publish;
mod read;
mod redis_conn;
mod windows;

pub use config::Config;
pub use lease::{HeldLease, LeaseConfig, Leases};
pub use metrics::describe_metrics;
pub use owners::OfferOwners;
pub use positions::Positions;
pub use publish::StreamPublisher;
pub use read::{ReadConfig, StreamReader};
pub use redis_conn::{Error, Redis};
pub use windows::{Window, Windows};
