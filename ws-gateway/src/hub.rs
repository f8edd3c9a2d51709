//! The subscription index: which clients watch which order and which area,
//! organised so that one engine event costs O(clients who might care), not
//! O(all clients).
//!
//! - Orders: `OrderId → OrderWatch` (the order's latest known track, for the
//!   ETA, and its watchers with the last status each was sent).
//! - Areas: each area subscription has a slot and is listed under every
//!   cell its box touches, at the finest H3 resolution whose cover fits
//!   [`MAX_AREA_CELLS`] (`engine::cells::fanout_cover`: resolution 9 for a
//!   street-level box, coarser for a city view); a box too big even at the
//!   coarsest goes on the global list, checked for every move. A move looks
//!   up its cell's parent at each resolution in use: a few hash lookups,
//!   then only the boxes near it.
//! - Per client: its subscriptions, so a disconnect cleans up in
//!   O(its subscriptions).
//!
//! Plain data behind one `parking_lot::Mutex` in the gateway: the fan-out
//! task and the connections' readers take it for short, non-async sections.
//! Lock order: hub → engine → mailbox (never the reverse).

use std::sync::Arc;

use auth::{Principal, Role};
use engine::cells::{Cell, CellResolution, FANOUT_RESOLUTIONS};
use engine::{BBox, DriverId, OrderId, OrderStatus, OrderTrack, RestaurantId, UserId};
use rustc_hash::FxHashMap;

use crate::mailbox::{CloseReason, Depth, Mailbox};
use crate::protocol::Outgoing;

pub(crate) type ClientId = u64;

/// The most cells one area subscription is listed under. A 1 km box fits at
/// resolution 9 (≈ 0.1 km² cells), a 10 km city view at 7, a 100 km
/// region at 5; bigger boxes (a country view) go on the global list, which
/// every move checks. This caps the index memory per subscription (4 bytes
/// a cell) and the cost of computing the cover.
pub(crate) const MAX_AREA_CELLS: usize = 128;

/// Whether a restaurant's channel hears of an order in `status`: from
/// payment on (a placed order may still fail its payment; a failed one
/// never reached the kitchen).
pub(crate) fn kitchen_sees(status: OrderStatus) -> bool {
    !matches!(status, OrderStatus::Placed | OrderStatus::PaymentFailed)
}

/// `restaurant:` subscriptions per connection: a kitchen screen watches
/// its restaurant, an owner of a few all of theirs, an admin a handful;
/// this caps the per-connection index.
pub(crate) const MAX_RESTAURANTS_PER_CLIENT: usize = 16;

/// What a watcher was last told about an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatusKey {
    status: OrderStatus,
    driver_id: Option<DriverId>,
    at_ms: i64,
}

impl StatusKey {
    fn of(track: &OrderTrack) -> Self {
        Self {
            status: track.status,
            driver_id: track.driver_id,
            at_ms: track.updated_at_ms,
        }
    }
}

pub(crate) struct OrderWatcher {
    pub client: ClientId,
    pub mailbox: Arc<Mailbox>,
    principal: Principal,
    last: StatusKey,
}

pub(crate) struct OrderWatch {
    /// The newest track seen (board at subscribe time or a change event):
    /// pickup, dropoff and status for the ETA without asking the engine.
    pub track: OrderTrack,
    pub watchers: Vec<OrderWatcher>,
}

fn res_index(r: CellResolution) -> usize {
    usize::from(u8::from(r))
}

/// Where an area subscription lives in the hub's slot table; the cell
/// lists hold slots, not copies.
type AreaSlot = u32;

/// One area subscription.
#[derive(Clone)]
pub(crate) struct AreaWatch {
    pub client: ClientId,
    pub bbox: BBox,
    pub mailbox: Arc<Mailbox>,
    /// The cells it is listed under (all of one resolution), sorted;
    /// `None` = global.
    cover: Option<Arc<[Cell]>>,
}

impl AreaWatch {
    fn listed_under(&self, cell: Cell) -> bool {
        self.cover
            .as_ref()
            .is_some_and(|c| c.binary_search(&cell).is_ok())
    }

    fn resolution(&self) -> Option<CellResolution> {
        self.cover.as_ref()?.first().map(|c| c.resolution())
    }
}

struct ClientSubs {
    principal: Principal,
    mailbox: Arc<Mailbox>,
    /// At most `max_orders_per_client`; a Vec beats a set at this size.
    orders: Vec<OrderId>,
    /// At most one area per connection: a console shows one map; a new box
    /// replaces the old one.
    area: Option<AreaSlot>,
    /// The `me` subscription, if any.
    me: Option<MeSub>,
    /// Restaurants watched, at most [`MAX_RESTAURANTS_PER_CLIENT`].
    restaurants: Vec<RestaurantId>,
}

/// Where a client's `me` subscription stands.
#[derive(Debug)]
pub(crate) enum MeSub {
    /// The stored backlog is being read: live notifications wait here (at
    /// most the resync limit; more closes the client as a slow consumer,
    /// it reconnects with its cursor).
    Resyncing(Vec<(i64, Outgoing)>),
    /// Live: the id of the last notification sent (0: none yet).
    Live { last_id: i64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WatchError {
    /// The per-connection order subscription limit is reached.
    TooMany,
    /// The client is not registered (it is disconnecting).
    UnknownClient,
}

/// The gateway is shutting down: no new clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Closing;

/// What one watcher should be told after an order change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderNews {
    /// Send the event's status; with `new_driver`, also that driver's
    /// current position (the watcher has not seen it carry the order yet).
    Status { new_driver: Option<DriverId> },
    /// The watcher is no longer a party to the order: its subscription was
    /// removed; tell it.
    Revoked,
}

/// The outcome of [`Hub::order_changed`].
#[derive(Default)]
pub(crate) struct OrderChange {
    pub news: Vec<(Arc<Mailbox>, OrderNews)>,
}

pub(crate) struct Hub {
    max_orders_per_client: usize,
    closing: bool,
    clients: FxHashMap<ClientId, ClientSubs>,
    orders: FxHashMap<OrderId, OrderWatch>,
    /// Area subscriptions by slot; `None` = free (listed in `free_areas`).
    areas: Vec<Option<AreaWatch>>,
    free_areas: Vec<AreaSlot>,
    area_cells: FxHashMap<Cell, Vec<AreaSlot>>,
    area_global: Vec<AreaSlot>,
    /// Subscriptions listed at each resolution (indexed by its number), so
    /// a move looks up only the resolutions in use.
    areas_at: [u32; 16],
    /// `me` subscribers by user (a user's devices).
    me: FxHashMap<UserId, Vec<ClientId>>,
    /// Restaurant channel watchers by restaurant.
    restaurants: FxHashMap<RestaurantId, Vec<(ClientId, Arc<Mailbox>)>>,
    /// Live notifications one resyncing client may hold back.
    resync_limit: usize,
}

impl Hub {
    pub fn new(max_orders_per_client: usize, resync_limit: usize) -> Self {
        Self {
            me: FxHashMap::default(),
            restaurants: FxHashMap::default(),
            resync_limit,
            max_orders_per_client,
            closing: false,
            clients: FxHashMap::default(),
            orders: FxHashMap::default(),
            areas: Vec::new(),
            free_areas: Vec::new(),
            area_cells: FxHashMap::default(),
            area_global: Vec::new(),
            areas_at: [0; 16],
        }
    }

    pub fn add_client(
        &mut self,
        id: ClientId,
        principal: Principal,
        mailbox: Arc<Mailbox>,
    ) -> Result<(), Closing> {
        if self.closing {
            return Err(Closing);
        }
        self.clients.insert(
            id,
            ClientSubs {
                principal,
                mailbox,
                orders: Vec::new(),
                area: None,
                me: None,
                restaurants: Vec::new(),
            },
        );
        Ok(())
    }

    pub fn remove_client(&mut self, id: ClientId) {
        let Some(subs) = self.clients.remove(&id) else {
            return;
        };
        for order_id in subs.orders {
            self.drop_watcher(order_id, id);
        }
        if let Some(slot) = subs.area {
            self.unlist_area(slot);
        }
        if subs.me.is_some() {
            self.unlist_me(subs.principal.user_id, id);
        }
        for restaurant in subs.restaurants {
            self.unlist_restaurant(restaurant, id);
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Refuses new clients from now on and returns every client's mailbox.
    pub fn begin_close(&mut self) -> Vec<Arc<Mailbox>> {
        self.closing = true;
        self.clients.values().map(|c| c.mailbox.clone()).collect()
    }

    /// Closes every connection of `user` (banned) and, with `None`, of
    /// every user `banned` says is (a sweep after missed bans); how many.
    pub fn close_banned(&self, user: Option<UserId>, banned: impl Fn(UserId) -> bool) -> usize {
        let mut closed = 0;
        for subs in self.clients.values() {
            let id = subs.principal.user_id;
            if user.map_or_else(|| banned(id), |u| u == id) {
                subs.mailbox.close(CloseReason::Banned);
                closed += 1;
            }
        }
        closed
    }

    // ---- restaurants ----

    /// Adds `client` as a watcher of `restaurant`'s orders (the caller has
    /// checked it may). Watching twice is one subscription; whether it is
    /// new.
    pub fn watch_restaurant(
        &mut self,
        client: ClientId,
        restaurant: RestaurantId,
    ) -> Result<bool, WatchError> {
        let subs = self
            .clients
            .get_mut(&client)
            .ok_or(WatchError::UnknownClient)?;
        if subs.restaurants.contains(&restaurant) {
            return Ok(false);
        }
        if subs.restaurants.len() >= MAX_RESTAURANTS_PER_CLIENT {
            return Err(WatchError::TooMany);
        }
        subs.restaurants.push(restaurant);
        let mailbox = subs.mailbox.clone();
        self.restaurants
            .entry(restaurant)
            .or_default()
            .push((client, mailbox));
        Ok(true)
    }

    /// Ends `client`'s watch of `restaurant`; whether it had one.
    pub fn unwatch_restaurant(&mut self, client: ClientId, restaurant: RestaurantId) -> bool {
        let Some(subs) = self.clients.get_mut(&client) else {
            return false;
        };
        let before = subs.restaurants.len();
        subs.restaurants.retain(|r| *r != restaurant);
        if subs.restaurants.len() == before {
            return false;
        }
        self.unlist_restaurant(restaurant, client);
        true
    }

    fn unlist_restaurant(&mut self, restaurant: RestaurantId, client: ClientId) {
        if let Some(list) = self.restaurants.get_mut(&restaurant) {
            list.retain(|(c, _)| *c != client);
            if list.is_empty() {
                self.restaurants.remove(&restaurant);
            }
        }
    }

    /// The mailboxes watching `restaurant`.
    pub fn restaurant_watchers(&self, restaurant: RestaurantId) -> Vec<Arc<Mailbox>> {
        self.restaurants
            .get(&restaurant)
            .map(|l| l.iter().map(|(_, m)| m.clone()).collect())
            .unwrap_or_default()
    }

    /// Every watched restaurant with its watchers (resync after a lag).
    pub fn restaurant_watches(&self) -> Vec<(RestaurantId, Vec<Arc<Mailbox>>)> {
        self.restaurants
            .iter()
            .map(|(r, l)| (*r, l.iter().map(|(_, m)| m.clone()).collect()))
            .collect()
    }

    // ---- notifications ----

    /// Starts (or restarts) `client`'s `me` subscription in the resyncing
    /// state: live notifications wait until [`Hub::me_live`].
    pub fn watch_me(&mut self, client: ClientId) -> Result<(), WatchError> {
        let subs = self
            .clients
            .get_mut(&client)
            .ok_or(WatchError::UnknownClient)?;
        let user = subs.principal.user_id;
        if subs.me.replace(MeSub::Resyncing(Vec::new())).is_none() {
            self.me.entry(user).or_default().push(client);
        }
        Ok(())
    }

    /// Ends `client`'s `me` subscription; whether it had one.
    pub fn unwatch_me(&mut self, client: ClientId) -> bool {
        let Some(subs) = self.clients.get_mut(&client) else {
            return false;
        };
        let user = subs.principal.user_id;
        if subs.me.take().is_none() {
            return false;
        }
        self.unlist_me(user, client);
        true
    }

    fn unlist_me(&mut self, user: UserId, client: ClientId) {
        if let Some(list) = self.me.get_mut(&user) {
            list.retain(|c| *c != client);
            if list.is_empty() {
                self.me.remove(&user);
            }
        }
    }

    /// Ends `client`'s resync: `backlog` (the stored notifications after
    /// `after`, ascending) then those that arrived live meanwhile, each
    /// only if above the last one taken; the client is live from here.
    /// Returns the mailbox and what to send, in order; `None` when the
    /// client is gone or no longer resyncing `me`.
    pub fn me_live(
        &mut self,
        client: ClientId,
        after: i64,
        backlog: Vec<(i64, Outgoing)>,
    ) -> Option<(Arc<Mailbox>, Vec<Outgoing>)> {
        let subs = self.clients.get_mut(&client)?;
        let Some(MeSub::Resyncing(waiting)) = subs.me.take() else {
            return None;
        };
        let mut last_id = after;
        let mut out = Vec::with_capacity(backlog.len() + waiting.len());
        for (id, msg) in backlog.into_iter().chain(waiting) {
            if id > last_id {
                last_id = id;
                out.push(msg);
            }
        }
        subs.me = Some(MeSub::Live { last_id });
        Some((subs.mailbox.clone(), out))
    }

    /// A new notification `id` of `user`: the mailboxes to send `msg` to
    /// now (live devices that have not had it); resyncing devices keep it
    /// for [`Hub::me_live`]. A resyncing device over the limit is closed
    /// as a slow consumer.
    pub fn notified(&mut self, user: UserId, id: i64, msg: &Outgoing) -> Vec<Arc<Mailbox>> {
        let Some(list) = self.me.get(&user) else {
            return Vec::new();
        };
        let mut to = Vec::with_capacity(list.len());
        for client in list {
            let Some(subs) = self.clients.get_mut(client) else {
                continue;
            };
            match &mut subs.me {
                Some(MeSub::Live { last_id }) if id > *last_id => {
                    *last_id = id;
                    to.push(subs.mailbox.clone());
                }
                Some(MeSub::Resyncing(waiting)) => {
                    if waiting.len() >= self.resync_limit {
                        subs.mailbox.close(CloseReason::SlowConsumer);
                    } else {
                        waiting.push((id, msg.clone()));
                    }
                }
                _ => {}
            }
        }
        to
    }

    // ---- orders ----

    /// Adds `client` as a watcher of `track`'s order (the caller has checked
    /// it may). Watching an order twice is one subscription. Returns whether
    /// it is new.
    pub fn watch_order(
        &mut self,
        client: ClientId,
        track: &OrderTrack,
    ) -> Result<bool, WatchError> {
        let subs = self
            .clients
            .get_mut(&client)
            .ok_or(WatchError::UnknownClient)?;
        let order_id = track.order_id;
        let watch = self.orders.entry(order_id).or_insert_with(|| OrderWatch {
            track: track.clone(),
            watchers: Vec::new(),
        });
        if track.updated_at_ms >= watch.track.updated_at_ms {
            watch.track = track.clone();
        }
        if let Some(w) = watch.watchers.iter_mut().find(|w| w.client == client) {
            w.last = StatusKey::of(track);
            return Ok(false);
        }
        if subs.orders.len() >= self.max_orders_per_client {
            if watch.watchers.is_empty() {
                self.orders.remove(&order_id);
            }
            return Err(WatchError::TooMany);
        }
        subs.orders.push(order_id);
        watch.watchers.push(OrderWatcher {
            client,
            mailbox: subs.mailbox.clone(),
            principal: subs.principal,
            last: StatusKey::of(track),
        });
        Ok(true)
    }

    /// Returns whether `client` was watching the order.
    pub fn unwatch_order(&mut self, client: ClientId, order_id: OrderId) -> bool {
        let Some(subs) = self.clients.get_mut(&client) else {
            return false;
        };
        let before = subs.orders.len();
        subs.orders.retain(|&o| o != order_id);
        if subs.orders.len() == before {
            return false;
        }
        self.drop_watcher(order_id, client);
        true
    }

    pub fn order(&self, order_id: OrderId) -> Option<&OrderWatch> {
        self.orders.get(&order_id)
    }

    pub fn order_ids(&self) -> Vec<OrderId> {
        self.orders.keys().copied().collect()
    }

    /// Applies an order change event. A watcher is sent the event's status
    /// when its status or driver differs from what the watcher was last told,
    /// unless the event is history for it: older than what it has, or (for
    /// events in the same millisecond) the watcher already shows the board's
    /// state. `board` is the engine's current track, the authority (events
    /// lag it); non-admin watchers who are no longer parties to the order
    /// according to it are unsubscribed.
    pub fn order_changed(&mut self, event: &OrderTrack, board: Option<&OrderTrack>) -> OrderChange {
        let Some(watch) = self.orders.get_mut(&event.order_id) else {
            return OrderChange::default();
        };
        match board {
            Some(b) => watch.track = b.clone(),
            None if event.updated_at_ms >= watch.track.updated_at_ms => watch.track = event.clone(),
            None => {}
        }
        let key = StatusKey::of(event);
        let board_state = board.map(|b| (b.status, b.driver_id));
        let mut change = OrderChange::default();
        let mut revoked = Vec::new();
        watch.watchers.retain_mut(|w| {
            let party = w.principal.role == Role::Admin
                || board.is_none_or(|b| b.is_party(w.principal.user_id));
            if !party {
                change.news.push((w.mailbox.clone(), OrderNews::Revoked));
                revoked.push(w.client);
                return false;
            }
            let told = (w.last.status, w.last.driver_id);
            let history = key.at_ms < w.last.at_ms || board_state == Some(told);
            if (key.status, key.driver_id) == told {
                w.last.at_ms = w.last.at_ms.max(key.at_ms);
            } else if !history {
                let new_driver = key.driver_id.filter(|_| key.driver_id != w.last.driver_id);
                change
                    .news
                    .push((w.mailbox.clone(), OrderNews::Status { new_driver }));
                w.last = key;
            }
            true
        });
        if watch.watchers.is_empty() {
            self.orders.remove(&event.order_id);
        }
        for client in revoked {
            if let Some(subs) = self.clients.get_mut(&client) {
                subs.orders.retain(|&o| o != event.order_id);
            }
        }
        change
    }

    fn drop_watcher(&mut self, order_id: OrderId, client: ClientId) {
        if let Some(watch) = self.orders.get_mut(&order_id) {
            watch.watchers.retain(|w| w.client != client);
            if watch.watchers.is_empty() {
                self.orders.remove(&order_id);
            }
        }
    }

    // ---- areas ----

    /// Sets `client`'s area (replacing any previous one). `cover` is the
    /// cells the box touches, all of one resolution
    /// (`engine::cells::fanout_cover`); `None` when too many (global).
    pub fn watch_area(
        &mut self,
        client: ClientId,
        bbox: BBox,
        cover: Option<Vec<Cell>>,
    ) -> Result<(), WatchError> {
        let subs = self
            .clients
            .get_mut(&client)
            .ok_or(WatchError::UnknownClient)?;
        let cover: Option<Arc<[Cell]>> = cover.filter(|c| !c.is_empty()).map(|mut c| {
            c.sort_unstable();
            c.dedup();
            c.into()
        });
        let watch = AreaWatch {
            client,
            bbox,
            mailbox: subs.mailbox.clone(),
            cover,
        };
        let old = subs.area.take();
        if let Some(old) = old {
            self.unlist_area(old);
        }
        let slot = match self.free_areas.pop() {
            Some(slot) => slot,
            None => {
                self.areas.push(None);
                (self.areas.len() - 1) as AreaSlot
            }
        };
        match &watch.cover {
            Some(cells) => {
                for cell in cells.iter() {
                    self.area_cells.entry(*cell).or_default().push(slot);
                }
                self.areas_at[res_index(cells[0].resolution())] += 1;
            }
            None => self.area_global.push(slot),
        }
        self.areas[slot as usize] = Some(watch);
        if let Some(subs) = self.clients.get_mut(&client) {
            subs.area = Some(slot);
        }
        Ok(())
    }

    /// Returns whether `client` had an area.
    pub fn unwatch_area(&mut self, client: ClientId) -> bool {
        let Some(old) = self.clients.get_mut(&client).and_then(|s| s.area.take()) else {
            return false;
        };
        self.unlist_area(old);
        true
    }

    fn area(&self, slot: AreaSlot) -> Option<&AreaWatch> {
        self.areas.get(slot as usize)?.as_ref()
    }

    /// Calls `f` once for every area subscription that may care about a
    /// driver now in driver cell `cell` and previously in `previous`: those
    /// listed under either cell's parent at their resolution, and the
    /// global ones. The caller checks the box itself.
    pub fn for_area_watchers<'a>(
        &'a self,
        cell: Cell,
        previous: Option<Cell>,
        mut f: impl FnMut(&'a AreaWatch),
    ) {
        for res in FANOUT_RESOLUTIONS {
            if self.areas_at[res_index(res)] == 0 {
                continue;
            }
            let Some(here) = cell.parent(res) else {
                continue;
            };
            if let Some(list) = self.area_cells.get(&here) {
                list.iter().filter_map(|&s| self.area(s)).for_each(&mut f);
            }
            if let Some(before) = previous.and_then(|p| p.parent(res)).filter(|&p| p != here)
                && let Some(list) = self.area_cells.get(&before)
            {
                // Those also listed under `here` were visited above.
                list.iter()
                    .filter_map(|&s| self.area(s))
                    .filter(|w| !w.listed_under(here))
                    .for_each(&mut f);
            }
        }
        self.area_global
            .iter()
            .filter_map(|&s| self.area(s))
            .for_each(f);
    }

    /// Every area subscription (for a resync).
    pub fn area_watches(&self) -> Vec<AreaWatch> {
        self.areas.iter().flatten().cloned().collect()
    }

    /// Every area subscription's box (what the node must hold positions
    /// of).
    pub fn area_boxes(&self) -> Vec<BBox> {
        self.areas.iter().flatten().map(|a| a.bbox).collect()
    }

    pub fn has_areas(&self) -> bool {
        self.areas.len() > self.free_areas.len()
    }

    fn unlist_area(&mut self, slot: AreaSlot) {
        let Some(watch) = self.areas.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.free_areas.push(slot);
        match (&watch.cover, watch.resolution()) {
            (Some(cells), Some(res)) => {
                for cell in cells.iter() {
                    if let Some(list) = self.area_cells.get_mut(cell) {
                        list.retain(|&s| s != slot);
                        if list.is_empty() {
                            self.area_cells.remove(cell);
                        }
                    }
                }
                self.areas_at[res_index(res)] -= 1;
            }
            _ => self.area_global.retain(|&s| s != slot),
        }
    }

    // ---- reporting ----

    /// Per-client mailbox depths.
    pub fn depths(&self) -> Vec<Depth> {
        self.clients.values().map(|c| c.mailbox.depth()).collect()
    }

    #[cfg(test)]
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }
}

#[cfg(test)]
mod tests {
    use engine::cells::{cell_of, fanout_cover};
    use engine::{LatLng, RestaurantId, UserId};

    use super::*;
    use crate::mailbox::MailboxLimits;

    const LIMITS: MailboxLimits = MailboxLimits {
        control: 16,
        locations: 16,
        area: 16,
    };

    fn mailbox() -> Arc<Mailbox> {
        Arc::new(Mailbox::new(LIMITS))
    }

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: UserId::new(),
            role,
        }
    }

    fn track(customer: UserId) -> OrderTrack {
        OrderTrack {
            order_id: OrderId::new(),
            customer_id: customer,
            restaurant_id: RestaurantId::new(),
            restaurant_owner_id: UserId::new(),
            status: OrderStatus::Placed,
            driver_id: None,
            pickup: LatLng::new(57.70, 11.97).unwrap(),
            dropoff: LatLng::new(57.71, 11.99).unwrap(),
            updated_at_ms: 100,
            version: 0,
        }
    }

    fn hub_with(clients: &[(ClientId, Principal)]) -> Hub {
        let mut hub = Hub::new(2, 4);
        for &(id, p) in clients {
            hub.add_client(id, p, mailbox()).unwrap();
        }
        hub
    }

    fn cell(lat: f64, lng: f64) -> Cell {
        cell_of(LatLng::new(lat, lng).unwrap())
    }

    fn visited(hub: &Hub, cell: Cell, previous: Option<Cell>) -> Vec<ClientId> {
        let mut seen = Vec::new();
        hub.for_area_watchers(cell, previous, |w| seen.push(w.client));
        seen.sort();
        seen
    }

    fn note(id: i64) -> Outgoing {
        crate::protocol::notification(&contract::Notification {
            id,
            event_id: id * 10,
            event_type: "order.accepted".into(),
            order_id: None,
            restaurant_id: None,
            status: None,
            text: format!("n{id}"),
            at_ms: id,
            read_at_ms: None,
        })
    }

    fn ids(out: &[Outgoing]) -> Vec<i64> {
        out.iter()
            .map(|o| {
                serde_json::from_str::<serde_json::Value>(&o.text).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    }

    /// The seam: what arrives live during the replay waits, and the
    /// replay's rows and the waiting ones are merged by id, each once.
    #[test]
    fn me_resync_has_no_gap_and_no_repeat() {
        let p = principal(Role::Customer);
        let other = principal(Role::Customer);
        let mut hub = hub_with(&[(1, p), (2, p), (3, other)]);
        hub.watch_me(1).unwrap();
        hub.watch_me(2).unwrap();
        hub.watch_me(3).unwrap();
        assert_eq!(hub.me_live(2, 0, vec![]).map(|(_, o)| o.len()), Some(0));
        // 6 and 7 are pushed while device 1 replays; device 2 is live.
        assert_eq!(
            hub.notified(p.user_id, 6, &note(6)).len(),
            1,
            "device 2 only"
        );
        assert_eq!(hub.notified(p.user_id, 7, &note(7)).len(), 1);
        // The replay read 5 and 6 (6 was stored before the read).
        let (_, out) = hub.me_live(1, 4, vec![(5, note(5)), (6, note(6))]).unwrap();
        assert_eq!(ids(&out), vec![5, 6, 7]);
        // Live from now on, each id once per device.
        assert_eq!(hub.notified(p.user_id, 7, &note(7)).len(), 0, "a repeat");
        assert_eq!(hub.notified(p.user_id, 8, &note(8)).len(), 2);
        assert_eq!(
            hub.notified(other.user_id, 1, &note(1)).len(),
            0,
            "other is resyncing"
        );
        // A device that falls too far behind while replaying is closed.
        for id in 2..=5 {
            hub.notified(other.user_id, id, &note(id));
        }
        hub.notified(other.user_id, 6, &note(6));
        assert!(hub.clients[&3].mailbox.is_closed());
        // Unsubscribing and leaving clean up the user index.
        assert!(hub.unwatch_me(1));
        assert!(!hub.unwatch_me(1));
        hub.remove_client(2);
        assert!(!hub.me.contains_key(&p.user_id));
        assert!(hub.me_live(1, 0, vec![]).is_none(), "not subscribed");
    }

    #[test]
    fn restaurant_watch_lifecycle_and_limit() {
        let p = principal(Role::Restaurant);
        let mut hub = hub_with(&[(1, p), (2, principal(Role::Admin))]);
        let r = RestaurantId::new();
        assert_eq!(hub.watch_restaurant(1, r), Ok(true));
        assert_eq!(hub.watch_restaurant(1, r), Ok(false), "idempotent");
        assert_eq!(hub.watch_restaurant(2, r), Ok(true));
        assert_eq!(hub.restaurant_watchers(r).len(), 2);
        for _ in 1..MAX_RESTAURANTS_PER_CLIENT {
            assert_eq!(hub.watch_restaurant(2, RestaurantId::new()), Ok(true));
        }
        assert_eq!(
            hub.watch_restaurant(2, RestaurantId::new()),
            Err(WatchError::TooMany)
        );
        assert!(hub.unwatch_restaurant(1, r));
        assert!(!hub.unwatch_restaurant(1, r));
        assert_eq!(hub.restaurant_watchers(r).len(), 1);
        hub.remove_client(2);
        assert!(hub.restaurant_watchers(r).is_empty());
        assert!(hub.restaurants.is_empty(), "nothing left behind");
        assert_eq!(hub.watch_restaurant(9, r), Err(WatchError::UnknownClient));
    }

    #[test]
    fn order_watch_lifecycle_and_limit() {
        let p = principal(Role::Customer);
        let mut hub = hub_with(&[(1, p), (2, principal(Role::Admin))]);
        let (a, b, c) = (track(p.user_id), track(p.user_id), track(p.user_id));
        assert_eq!(hub.watch_order(1, &a), Ok(true));
        assert_eq!(hub.watch_order(1, &a), Ok(false), "idempotent");
        assert_eq!(hub.watch_order(1, &b), Ok(true));
        assert_eq!(hub.watch_order(1, &c), Err(WatchError::TooMany));
        assert!(
            hub.order(c.order_id).is_none(),
            "a refused watch leaves nothing behind"
        );
        assert_eq!(hub.watch_order(2, &a), Ok(true));
        assert_eq!(hub.order(a.order_id).unwrap().watchers.len(), 2);
        assert_eq!(hub.watch_order(9, &a), Err(WatchError::UnknownClient));

        assert!(hub.unwatch_order(1, b.order_id));
        assert!(!hub.unwatch_order(1, b.order_id));
        assert!(hub.order(b.order_id).is_none());
        assert_eq!(
            hub.watch_order(1, &c),
            Ok(true),
            "room again after unsubscribing"
        );

        hub.remove_client(1);
        assert_eq!(hub.order(a.order_id).unwrap().watchers.len(), 1);
        assert!(hub.order(c.order_id).is_none());
        hub.remove_client(2);
        assert!(hub.order_ids().is_empty());
        assert_eq!(hub.client_count(), 0);
    }

    #[test]
    fn order_changes_dedupe_skip_history_and_revoke_by_the_board() {
        use OrderNews::{Revoked, Status};
        let customer = principal(Role::Customer);
        let driver = principal(Role::Driver);
        let d: DriverId = driver.user_id.into();
        let mut hub = hub_with(&[(1, customer), (2, driver), (3, principal(Role::Admin))]);
        let placed = track(customer.user_id);
        let at = |t: &OrderTrack, status: OrderStatus, driver_id: Option<DriverId>, ms: i64| {
            OrderTrack {
                status,
                driver_id,
                updated_at_ms: ms,
                version: 0,
                ..t.clone()
            }
        };
        let assigned = at(&placed, OrderStatus::Placed, Some(d), 100);
        for id in [1, 2, 3] {
            hub.watch_order(id, &assigned).unwrap();
        }
        let news = |c: &OrderChange| c.news.iter().map(|(_, n)| *n).collect::<Vec<_>>();

        // Events the watchers' board snapshot already covers: the same state
        // again, an older one, and an older one in the same millisecond (the
        // order was tracked and assigned within 1 ms).
        assert!(
            hub.order_changed(&assigned, Some(&assigned))
                .news
                .is_empty()
        );
        assert!(
            hub.order_changed(&at(&placed, OrderStatus::Placed, None, 50), Some(&assigned))
                .news
                .is_empty()
        );
        assert!(hub.order_changed(&placed, Some(&assigned)).news.is_empty());

        // A real change goes to everyone, once.
        let accepted = at(&placed, OrderStatus::Accepted, Some(d), 200);
        assert_eq!(
            news(&hub.order_changed(&accepted, Some(&accepted))),
            vec![Status { new_driver: None }; 3]
        );
        assert!(
            hub.order_changed(&accepted, Some(&accepted))
                .news
                .is_empty()
        );
        assert_eq!(
            hub.order(placed.order_id).unwrap().track.status,
            OrderStatus::Accepted
        );

        // Several changes handled after the board moved on: each is still
        // told, in order (the watchers do not show the board's state yet).
        let preparing = at(&placed, OrderStatus::Preparing, Some(d), 300);
        let ready = at(&placed, OrderStatus::ReadyForPickup, Some(d), 300);
        assert_eq!(
            news(&hub.order_changed(&preparing, Some(&ready))),
            vec![Status { new_driver: None }; 3]
        );
        assert_eq!(
            news(&hub.order_changed(&ready, Some(&ready))),
            vec![Status { new_driver: None }; 3]
        );

        // Unassigned: by the board the driver is no longer a party.
        let unassigned = at(&placed, OrderStatus::ReadyForPickup, None, 400);
        let change = hub.order_changed(&unassigned, Some(&unassigned));
        assert_eq!(
            news(&change),
            vec![
                Status { new_driver: None },
                Revoked,
                Status { new_driver: None }
            ]
        );
        let watch = hub.order(placed.order_id).unwrap();
        assert_eq!(
            watch.watchers.iter().map(|w| w.client).collect::<Vec<_>>(),
            vec![1, 3]
        );

        // Reassigned: the watchers learn the new driver.
        let other = DriverId::new();
        let reassigned = at(&placed, OrderStatus::ReadyForPickup, Some(other), 500);
        let change = hub.order_changed(&reassigned, Some(&reassigned));
        assert_eq!(
            news(&change),
            vec![
                Status {
                    new_driver: Some(other)
                };
                2
            ]
        );

        // The revoked client may subscribe to something else up to its limit.
        assert_eq!(hub.watch_order(2, &track(customer.user_id)), Ok(true));
        assert_eq!(hub.watch_order(2, &track(customer.user_id)), Ok(true));
    }

    #[test]
    fn areas_are_found_through_their_cells_only() {
        let admin = principal(Role::Admin);
        let mut hub = hub_with(&[(1, admin), (2, admin), (3, admin)]);
        // Client 1 watches central Gothenburg, client 2 a box in Stockholm,
        // client 3 the whole world (global).
        let gbg = BBox::new(11.95, 57.69, 12.00, 57.72).unwrap();
        let sthlm = BBox::new(18.03, 59.31, 18.10, 59.35).unwrap();
        let world = BBox::new(-180.0, -85.0, 180.0, 85.0).unwrap();
        hub.watch_area(1, gbg, fanout_cover(gbg, MAX_AREA_CELLS))
            .unwrap();
        hub.watch_area(2, sthlm, fanout_cover(sthlm, MAX_AREA_CELLS))
            .unwrap();
        hub.watch_area(3, world, fanout_cover(world, MAX_AREA_CELLS))
            .unwrap();
        assert!(hub.has_areas());

        let in_gbg = cell(57.70, 11.97);
        let in_sthlm = cell(59.33, 18.06);
        let in_oslo = cell(59.91, 10.75);
        assert_eq!(visited(&hub, in_gbg, None), vec![1, 3]);
        assert_eq!(visited(&hub, in_sthlm, None), vec![2, 3]);
        assert_eq!(visited(&hub, in_oslo, None), vec![3]);
        // Leaving Gothenburg: found through the previous cell.
        assert_eq!(visited(&hub, in_oslo, Some(in_gbg)), vec![1, 3]);
        // Moving between two cells of the same box: visited once.
        let next_door = cell(57.715, 11.995);
        assert_ne!(next_door, in_gbg);
        assert_eq!(visited(&hub, next_door, Some(in_gbg)), vec![1, 3]);

        // Replacing the box moves the listing.
        hub.watch_area(1, sthlm, fanout_cover(sthlm, MAX_AREA_CELLS))
            .unwrap();
        assert_eq!(visited(&hub, in_gbg, None), vec![3]);
        assert_eq!(visited(&hub, in_sthlm, None), vec![1, 2, 3]);

        assert!(hub.unwatch_area(2));
        assert!(!hub.unwatch_area(2));
        hub.remove_client(1);
        hub.remove_client(3);
        assert_eq!(visited(&hub, in_sthlm, None), Vec::<ClientId>::new());
        assert!(!hub.has_areas(), "no empty cell lists are left behind");
        assert_eq!(hub.area_watches().len(), 0);
    }

    /// The index may visit more boxes than contain the driver, never fewer:
    /// random boxes from 200 m to 300 km across (every fan-out resolution
    /// and the global list), random moves, brute force as the reference.
    #[test]
    fn area_index_finds_every_box_that_holds_or_held_the_driver() {
        let mut seed = 11u64;
        let mut unit = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let admin = principal(Role::Admin);
        let mut hub = Hub::new(2, 4);
        let mut boxes = Vec::new();
        for id in 0..300u64 {
            hub.add_client(id, admin, mailbox()).unwrap();
            let side_deg = 0.002 * 1_500f64.powf(unit());
            let (lat, lng) = (57.70 + (unit() - 0.5) * 0.3, 11.97 + (unit() - 0.5) * 0.5);
            let bbox = BBox::new(
                lng - side_deg,
                lat - side_deg / 2.0,
                lng + side_deg,
                lat + side_deg / 2.0,
            )
            .unwrap();
            hub.watch_area(id, bbox, fanout_cover(bbox, MAX_AREA_CELLS))
                .unwrap();
            boxes.push((id, bbox));
        }
        let mut resolutions: Vec<_> = hub
            .area_watches()
            .iter()
            .map(AreaWatch::resolution)
            .collect();
        resolutions.sort();
        resolutions.dedup();
        assert!(
            resolutions.len() >= 4,
            "boxes span resolutions: {resolutions:?}"
        );
        for _ in 0..2_000 {
            let before =
                LatLng::new(57.70 + (unit() - 0.5) * 0.4, 11.97 + (unit() - 0.5) * 0.6).unwrap();
            let step = 0.01 * unit();
            let after = LatLng::new(before.lat + step, before.lng - step).unwrap();
            let seen = visited(&hub, cell_of(after), Some(cell_of(before)));
            for &(id, bbox) in &boxes {
                if bbox.contains(after) || bbox.contains(before) {
                    assert!(
                        seen.contains(&id),
                        "box {id} {bbox:?} missed {before:?} → {after:?}"
                    );
                }
            }
            let mut unique = seen.clone();
            unique.dedup();
            assert_eq!(unique, seen, "each box is visited once");
        }
    }

    #[test]
    fn closing_refuses_new_clients_and_returns_mailboxes() {
        let mut hub = hub_with(&[(1, principal(Role::Customer))]);
        assert_eq!(hub.begin_close().len(), 1);
        assert!(hub.is_closing());
        assert_eq!(
            hub.add_client(2, principal(Role::Customer), mailbox()),
            Err(Closing)
        );
    }
}
