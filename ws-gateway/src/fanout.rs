//! The fan-out: one task reads the engine's `Moved` and `Change` streams and
//! leaves messages in the mailboxes of the clients that care. It never awaits
//! a client: every delivery is a short, non-blocking mailbox push, so a slow
//! client costs the others nothing.
//!
//! Lagging (the engine's overflow policy, see `engine::event`):
//! - moves: count the lost events and carry on; the next ping supersedes
//!   every lost position.
//! - changes: a lost status cannot be recovered from later events, so
//!   resynchronise: every watched order gets its current board status (sent
//!   only where it differs from what the watcher has), every area gets a
//!   fresh snapshot.

use engine::{Change, DriverId, Moved, OrderTrack, Receiver, RecvError, StatusFilter};
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::hub::{ClientId, OrderNews, kitchen_sees};
use crate::mailbox::{Mailbox, Pushed};
use contract::ws::AreaDriver;

use crate::protocol;

/// Moves handled under one hub lock: amortises the lock at 100k pings/s
/// while bounding how long a subscribing client waits for it (a few hundred
/// microseconds).
const MOVE_BATCH: usize = 256;

/// The engine streams the fan-out reads, subscribed when the gateway is
/// built so nothing between `Gateway::new` and `run` is missed.
pub(crate) struct Streams {
    pub moves: Receiver<Moved>,
    pub changes: Receiver<Change>,
}

/// Runs until `shutdown` is cancelled.
pub(crate) async fn run(shared: &Shared, mut streams: Streams, shutdown: &CancellationToken) {
    let mut batch: Vec<Moved> = Vec::with_capacity(MOVE_BATCH);
    loop {
        tokio::select! {
            // Shutdown first, then the rare status changes ahead of the
            // flood of moves.
            biased;
            () = shutdown.cancelled() => return,
            change = streams.changes.recv_direct() => match change {
                Ok(change) => on_change(shared, &change),
                Err(RecvError::Overflowed(n)) => {
                    shared.metrics.lagged_changes.increment(n);
                    tracing::warn!(lost = n, "tracking fan-out lagged on changes; resynchronising");
                    resync(shared);
                }
                Err(RecvError::Closed) => return closed(shutdown).await,
            },
            first = streams.moves.recv_direct() => match first {
                Ok(m) => {
                    batch.push(m);
                    fill_batch(shared, &mut streams.moves, &mut batch);
                    on_moves(shared, &batch);
                    batch.clear();
                }
                Err(RecvError::Overflowed(n)) => shared.metrics.lagged_moves.increment(n),
                Err(RecvError::Closed) => return closed(shutdown).await,
            },
        }
        // The streams are not tokio-aware: give other tasks on this worker
        // their turn under sustained load.
        tokio::task::coop::consume_budget().await;
    }
}

/// The engine dropped its senders: impossible while we hold a handle, but if
/// it happens, keep serving what the sockets have until shutdown.
async fn closed(shutdown: &CancellationToken) {
    tracing::error!("engine event streams closed; tracking fan-out idle until shutdown");
    shutdown.cancelled().await;
}

/// Adds moves that are already waiting, without awaiting.
fn fill_batch(shared: &Shared, moves: &mut Receiver<Moved>, batch: &mut Vec<Moved>) {
    while batch.len() < MOVE_BATCH {
        match moves.recv_direct().now_or_never() {
            Some(Ok(m)) => batch.push(m),
            Some(Err(RecvError::Overflowed(n))) => shared.metrics.lagged_moves.increment(n),
            Some(Err(RecvError::Closed)) | None => break,
        }
    }
}

/// Drop counts of one delivery round, added to the metrics once.
#[derive(Default)]
struct Tally {
    coalesced: u64,
    location_full: u64,
    area_full: u64,
}

impl Tally {
    fn location(&mut self, pushed: Pushed) {
        match pushed {
            Pushed::Coalesced => self.coalesced += 1,
            Pushed::Full => self.location_full += 1,
            _ => {}
        }
    }

    fn area(&mut self, pushed: Pushed) {
        match pushed {
            Pushed::Coalesced => self.coalesced += 1,
            Pushed::Full => self.area_full += 1,
            _ => {}
        }
    }

    fn record(self, shared: &Shared) {
        let m = &shared.metrics;
        for (counter, n) in [
            (&m.coalesced, self.coalesced),
            (&m.location_full, self.location_full),
            (&m.area_full, self.area_full),
        ] {
            if n > 0 {
                counter.increment(n);
            }
        }
    }
}

pub(crate) fn on_moves(shared: &Shared, batch: &[Moved]) {
    let mut tally = Tally::default();
    let hub = shared.hub.lock();
    let areas = hub.has_areas();
    // Area updates are gathered per client and pushed once per client per
    // batch: one mailbox lock and at most one wake-up each, instead of one
    // per move (at 330,000 positions/s to 1,000 dispatchers the per-move
    // lock was the gateway's largest cost).
    let mut area_pushes: Vec<(ClientId, &Mailbox, AreaDriver)> = Vec::new();
    for m in batch {
        // A stacking courier carries two orders: both customers see them.
        for order_id in m.order_id.into_iter().chain(m.stacked_order) {
            let Some(watch) = hub.order(order_id) else {
                continue;
            };
            let eta = shared.etas.order_eta(&watch.track, m.position);
            let msg = protocol::location_from_move(m, Some(order_id), eta);
            for w in &watch.watchers {
                tally.location(w.mailbox.push_location(
                    (order_id, m.driver_id),
                    m.recorded_at_ms,
                    msg.clone(),
                ));
            }
        }
        if areas {
            let update = protocol::area_driver(m.driver_id, m.position, m.status, m.recorded_at_ms);
            hub.for_area_watchers(m.cell, m.previous_cell, |w| {
                // Inside now, or just left (sent once more, outside, so the
                // console can drop it).
                if w.bbox.contains(m.position) || m.previous.is_some_and(|p| w.bbox.contains(p)) {
                    area_pushes.push((w.client, &w.mailbox, update));
                }
            });
        }
    }
    // Stable: a client's updates keep the order of the moves.
    area_pushes.sort_by_key(|&(client, ..)| client);
    for run in area_pushes.chunk_by(|a, b| a.0 == b.0) {
        let mailbox = run[0].1;
        mailbox.push_areas(run.iter().map(|&(_, _, d)| d), |o| tally.area(o));
    }
    drop(hub);
    tally.record(shared);
}

pub(crate) fn on_change(shared: &Shared, change: &Change) {
    match change {
        Change::Order(track) => on_order(shared, track),
        Change::DriverStatus { driver_id, .. } => on_driver_status(shared, *driver_id),
        Change::Unassigned(news) => on_unassigned(shared, news),
        Change::Arrived(arrived) => on_arrival(shared, arrived),
        // Offers are for drivers (ingest's stream), not for watchers.
        _ => {}
    }
}

fn on_order(shared: &Shared, track: &OrderTrack) {
    let mut hub = shared.hub.lock();
    // The restaurant's channel: every change from payment on.
    if kitchen_sees(track.status) {
        let watchers = hub.restaurant_watchers(track.restaurant_id);
        if !watchers.is_empty() {
            let status = protocol::status(track);
            for mailbox in watchers {
                shared.note_control(mailbox.push_control(status.clone()));
            }
        }
    }
    if hub.order(track.order_id).is_none() {
        return;
    }
    // The board decides who is still a party, and which events are history
    // (events lag it).
    let board = shared.engine.order(track.order_id);
    let change = hub.order_changed(track, board.as_ref());
    if change.news.is_empty() {
        return;
    }
    let status = protocol::status(track);
    let mut new_driver_watchers = Vec::new();
    for (mailbox, news) in change.news {
        match news {
            OrderNews::Status { new_driver } => {
                shared.note_control(mailbox.push_control(status.clone()));
                if let Some(driver_id) = new_driver {
                    new_driver_watchers.push((mailbox, driver_id));
                }
            }
            OrderNews::Revoked => {
                mailbox.clear_order(track.order_id);
                let channel = protocol::order_channel(track.order_id);
                let bye = protocol::unsubscribed(&channel, Some(protocol::REASON_REVOKED));
                shared.note_control(mailbox.push_control(bye));
            }
        }
    }
    // A newly assigned driver: show where it is now rather than at its next
    // ping. (Every entry names the event's driver.)
    let Some(&(_, driver_id)) = new_driver_watchers.first() else {
        return;
    };
    let (Some(fix), Some(watch)) = (
        shared.engine.driver(driver_id).and_then(|v| v.fix),
        hub.order(track.order_id),
    ) else {
        return;
    };
    let eta = shared.etas.order_eta(&watch.track, fix.position);
    let msg = protocol::location_from_fix(driver_id, &fix, Some(track.order_id), eta);
    let mut tally = Tally::default();
    for (mailbox, _) in new_driver_watchers {
        tally.location(mailbox.push_location(
            (track.order_id, driver_id),
            fix.recorded_at_ms,
            msg.clone(),
        ));
    }
    drop(hub);
    tally.record(shared);
}

fn on_driver_status(shared: &Shared, driver_id: DriverId) {
    if !shared.hub.lock().has_areas() {
        return;
    }
    // Engine first, then the hub: never both locks at once here.
    let Some(view) = shared.engine.driver(driver_id) else {
        return;
    };
    let Some(fix) = view.fix else { return };
    let update = protocol::area_driver(driver_id, fix.position, view.status, fix.recorded_at_ms);
    let mut tally = Tally::default();
    let hub = shared.hub.lock();
    hub.for_area_watchers(fix.cell, None, |w| {
        if w.bbox.contains(fix.position) {
            tally.area(w.mailbox.push_area(update));
        }
    });
    drop(hub);
    tally.record(shared);
}

/// An order no driver took (or its resolution): told to the dispatchers
/// whose area holds its pickup, as a control message (never coalesced away).
/// A dispatcher who subscribes later finds it in the order's `dispatch`
/// over REST.
fn on_unassigned(shared: &Shared, news: &engine::Unassigned) {
    if !shared.hub.lock().has_areas() {
        return;
    }
    // The H3 lookup outside the hub lock.
    let cell = engine::cells::cell_of(news.pickup);
    let msg = protocol::unassigned(news);
    let hub = shared.hub.lock();
    hub.for_area_watchers(cell, None, |w| {
        if w.bbox.contains(news.pickup) {
            shared.push_control(&w.mailbox, msg.clone());
        }
    });
}

/// A courier reached the restaurant or the door: a `status` message with
/// `arrival` to the order's watchers, as a control message (never
/// coalesced away). Lost with the changes if the fan-out lags (the resync
/// restates statuses, not arrivals).
fn on_arrival(shared: &Shared, arrived: &engine::Arrived) {
    let hub = shared.hub.lock();
    let Some(watch) = hub.order(arrived.order_id) else {
        return;
    };
    let msg = protocol::arrival(&watch.track, arrived);
    for w in &watch.watchers {
        shared.push_control(&w.mailbox, msg.clone());
    }
}

/// After lost changes: current status of every watched order, fresh
/// snapshot for every area.
pub(crate) fn resync(shared: &Shared) {
    // Restaurant channels: each open order's status again (the screen
    // keeps the newest per order).
    {
        let hub = shared.hub.lock();
        for (restaurant, watchers) in hub.restaurant_watches() {
            for track in shared.engine.restaurant_orders(restaurant) {
                if kitchen_sees(track.status) {
                    let status = protocol::status(&track);
                    for mailbox in &watchers {
                        shared.note_control(mailbox.push_control(status.clone()));
                    }
                }
            }
        }
    }
    let order_ids = shared.hub.lock().order_ids();
    for order_id in order_ids {
        if let Some(track) = shared.engine.order(order_id) {
            on_order(shared, &track);
        }
    }
    let areas = shared.hub.lock().area_watches();
    let mut tally = Tally::default();
    for w in areas {
        for v in shared
            .engine
            .within(w.bbox, shared.config.snapshot_limit, StatusFilter::Any)
        {
            if let Some(fix) = v.fix {
                tally.area(w.mailbox.push_area(protocol::area_driver(
                    v.driver_id,
                    fix.position,
                    v.status,
                    fix.recorded_at_ms,
                )));
            }
        }
    }
    tally.record(shared);
}
