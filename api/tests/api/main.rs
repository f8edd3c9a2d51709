//! Integration tests of the REST layer: one binary (one link step), one
//! module per area. Every test builds its own app on its own database.

#[macro_use]
mod common;
mod accounts;
mod admin_lists;
mod auth_flows;
mod bad_input;
mod board_versions;
mod channels;
mod commerce;
mod console;
mod dispatcher;
mod drivers;
mod events;
mod notifications;
mod offers;
mod orders;
mod payments;
mod reports;
mod reviews;
mod role_matrix;
mod search;
mod server;
mod shapes;
mod stacking;
mod store;
mod stuck;
mod time;
mod transitions;
