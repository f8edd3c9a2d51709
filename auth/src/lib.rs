//! Identity at the edge, shared by every crate that faces clients.
//!
//! - [`Role`] and [`Principal`]: who is calling.
//! - [`Tokens`]: issues and verifies JWT access tokens (HS256) and holds the
//!   ban list, so a banned user's tokens stop working on every path at once
//!   (REST, WebSocket, MQTT).
//! - [`password`]: argon2id hashing with tunable cost.
//! - [`extract`]: the axum extractor reading `Authorization: Bearer …` or
//!   `?token=…`, and [`reply`]: the one JSON error body all HTTP paths use.

pub mod extract;
pub mod password;
pub mod reply;
mod role;
mod tokens;

pub use extract::{Authenticated, Verified};
pub use role::Role;
pub use tokens::{AuthError, IssuedToken, Principal, Tokens};
