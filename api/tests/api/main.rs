//! Integration tests of the REST layer: one binary (one link step), one
//! module per area. Every test builds its own app on its own database.

mod auth_flows;
mod bad_input;
mod common;
mod drivers;
mod offers;
mod orders;
mod server;
mod store;
mod transitions;
