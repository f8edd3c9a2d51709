//! The api's consumers of the event stream (`events::run` delivers to
//! them at least once, in order) and the feed of engine changes into it.
//!
//! - [`board::Board`]: order events reload the order from the store and
//!   put it on the engine's board by version (catch-up after a restart and,
//!   later, other nodes' changes); the direct update after each commit
//!   stays for latency.
//! - [`trigger::Trigger`]: order events that make an order dispatchable
//!   ask the matcher to dispatch it (idempotent with the direct path).
//! - [`catalog::CatalogSync`]: `restaurant.updated` / `menu.updated`
//!   reload the restaurant and its menu into the search catalog.
//! - [`bans::BanSync`]: `user.banned` / `user.unbanned` apply the stored
//!   ban to this node's token checker (closing the user's sessions here),
//!   so a ban stored through another node holds on this one too;
//!   `user.logged_out` applies the user's logout cutoff the same way.
//! - [`notify::Notifications`]: order, payment and refund events become
//!   stored notifications for the people they concern, then go live
//!   through the [`notify::Push`] port (the binary's gateway and ingest).
//! - [`channels::ChannelDelivery`]: one per outside channel (push, email,
//!   SMS; `channel:{name}`): the same people's notifications, on the
//!   channels their preferences want, through that channel's provider,
//!   recorded once per (recipient, event, channel). Added by the binary
//!   with the `[channels]` tries ([`crate::channels::Config`]), so they
//!   start at the stream's head: no messages about the past.
//! - [`route::Routes`]: `order.delivered` keeps the order's route
//!   (pickup, the courier's breadcrumbs, dropoff) with the order.
//! - [`reports::Reports`]: the reports projection (orders, money, funnel
//!   times, restaurants, drivers), each event applied once by id in the
//!   store; [`reports::Rebuild`] clears it and replays the stream.
//! - [`feed`]: driver online/offline from the engine's change stream, the
//!   matcher's offers (`order.offered`), couriers' arrivals
//!   (`order.arrived_at_*`) and orders nobody takes
//!   (`order.dispatch_stalled`) into `events::presence`.
//!
//! Each consumer deduplicates by event id ([`dedupe::Seen`]) and is
//! idempotent besides (reloads and by-version updates), so a redelivery
//! after a crash or a replayed dead letter is harmless.

use std::sync::Arc;

use crate::AppState;

pub mod bans;
pub mod board;
pub mod catalog;
pub mod channels;
pub mod dedupe;
pub mod feed;
pub mod notify;
pub mod reports;
pub mod route;
pub mod trigger;

/// Every in-process consumer of the api, for `events::run`: on one node,
/// [`per_node`] and [`once_per_cluster`] together.
pub fn all(state: &AppState) -> Vec<Arc<dyn events::Consumer>> {
    let mut all = per_node(state, true);
    all.extend(once_per_cluster(state));
    all
}

/// The consumers whose state is this process's memory, so every node
/// runs its own: the order board, the search catalog, the token
/// checker's bans, and (on a node that dispatches, `dispatches`) the
/// matcher's trigger.
pub fn per_node(state: &AppState, dispatches: bool) -> Vec<Arc<dyn events::Consumer>> {
    let mut consumers: Vec<Arc<dyn events::Consumer>> = vec![
        Arc::new(board::Board::new(state)),
        Arc::new(catalog::CatalogSync::new(state)),
        Arc::new(bans::BanSync::new(state)),
    ];
    if dispatches {
        consumers.push(Arc::new(trigger::Trigger::new(state)));
    }
    consumers
}

/// The consumers whose effects are durable (rows in the database, and
/// through them messages to people), so one run in the cluster is
/// enough: notifications, delivered routes, the reports projection. Their
/// positions are in the database, and each applies an event once by id.
pub fn once_per_cluster(state: &AppState) -> Vec<Arc<dyn events::Consumer>> {
    vec![
        Arc::new(notify::Notifications::new(state)),
        Arc::new(route::Routes::new(state)),
        Arc::new(reports::Reports::new(state)),
    ]
}

/// Why a consumer could not handle an event, as the runner wants it.
fn failed(e: impl std::error::Error + Send + Sync + 'static) -> events::HandleError {
    Box::new(e)
}

/// The order an order-aggregate event is about; `None` for an id that is
/// not an order's (never written by hexdash; skipped, not retried).
fn order_id(event: &events::Event) -> Option<engine::OrderId> {
    (event.aggregate.kind == events::AggregateKind::Order)
        .then(|| event.aggregate.id.parse().ok())
        .flatten()
}
