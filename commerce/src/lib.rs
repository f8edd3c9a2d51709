//! The order's life: the domain records, the rules, the use-cases and the
//! store that is their source of truth. No HTTP here: the REST layer
//! (`api`) parses requests, calls a use-case and maps its outcome to HTTP.
//!
//! - [`event`]: the domain events every state change appends in its own
//!   transaction (the outbox), their typed payloads, and how an order's
//!   events read as its history.
//! - [`store`]: the records (accounts, restaurants, menus, carts, orders,
//!   payments), the [`Store`] trait (one sub-trait per area) and
//!   [`store::SqlStore`] for SQLite and PostgreSQL with the migrations
//!   (`commerce/migrations/{sqlite,postgres}`); [`connect`] picks the
//!   database by URL and brings its schema up to date.
//! - [`notify`]: who is told of an event and what they read (the
//!   notification feed's rules; `usecase::notify` stores them).
//! - [`channels`]: outside channels (push, email, SMS): per-user
//!   preferences, the messages per channel and language, the `Sender`
//!   port and the simulated sender (`usecase::channels` delivers).
//! - [`lifecycle`]: the order steps, who may take them, and when an order
//!   waits for a driver — pure rules in one place.
//! - [`payments`]: the gateway interface, the simulated gateway, and the
//!   saga that charges, fails and refunds ([`payments::Saga`]).
//! - [`usecase`]: place an order (and check out a cart), step it, cancel
//!   it, refund it, accept or decline a driver's offer; edit a cart;
//!   create and change restaurants and menus; sign up, the bootstrap
//!   admin, sessions, profiles and addresses; ban and unban. Each takes only the
//!   dependencies it needs and returns domain outcomes or an [`Error`].
//! - [`ports`]: what the use-cases ask of the live side (the engine's
//!   order board and the matcher) and of the search catalog, implemented
//!   by `api`, so this crate depends on neither the matcher nor the web
//!   framework.
//!
//! - [`describe_metrics`]: the HELP text of every metric this crate records.
//!
//! Time: the use-cases take `now_ms` from their caller; the payments saga
//! and the simulated gateway, which run on in the background, read the
//! app's injected [`clock::Clock`] they are given.

pub mod channels;
pub mod error;
pub mod event;
pub mod lifecycle;
pub mod notify;
pub mod payments;
pub mod ports;
pub mod store;
pub mod usecase;

pub use error::{Error, Result};
pub use store::{Store, StoreError, connect};

/// Describes every metric family this crate records (signups, bans;
/// orders placed, replayed, out of stock; steps; offer answers; charges,
/// refunds and payment retries) to the installed recorder. Call once, after
/// installing it (the REST layer's `describe_metrics` does).
pub fn describe_metrics() {
    use usecase::{account, ban, offer, place, step};
    metrics::describe_counter!(account::SIGNUPS_TOTAL, "Accounts created, by role");
    metrics::describe_counter!(
        usecase::channels::SENDS_TOTAL,
        "Messages on the outside channels, by channel and status (sent, failed, skipped)"
    );
    metrics::describe_counter!(ban::BANS_TOTAL, "Users banned by an admin");
    metrics::describe_counter!(place::ORDERS_PLACED_TOTAL, "Orders placed");
    metrics::describe_counter!(
        place::ORDERS_REPLAYED_TOTAL,
        "Order placements answered from an earlier request with the same Idempotency-Key"
    );
    metrics::describe_counter!(
        place::ORDERS_OUT_OF_STOCK_TOTAL,
        "Order placements refused because an item was out of stock"
    );
    metrics::describe_counter!(
        step::ORDER_STEPS_TOTAL,
        "Order status changes applied, by the status reached"
    );
    metrics::describe_counter!(
        offer::OFFER_ANSWERS_TOTAL,
        "Drivers' answers to offers, by answer and outcome"
    );
    metrics::describe_counter!(
        offer::FENCED_WRITES_REFUSED_TOTAL,
        "Assignments refused because the writer's fencing token was stale (another node leads the region)"
    );
    // Charges, refunds and payment retries: described next to the saga
    // that counts them, which also starts their series at zero.
    payments::describe_metrics();
    // The store appends to the event stream, which counts appends: its
    // families need their HELP wherever the store runs (describing twice,
    // if the binary also does, is harmless).
    events::describe_metrics();
}
