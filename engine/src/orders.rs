//! The live order board: what the tracking side needs to know about each
//! active order (who may watch it, who carries it, where it goes). The store
//! in `api` is the source of truth; this is its in-memory projection, kept by
//! the api on every change and reloaded by it at start-up.
//!
//! **By version.** Each record carries the order's version in the store
//! (its event stream's aggregate version: 1, 2, 3 … per change). Updates
//! reach the board from more than one place (the request that committed,
//! the payments saga's task, the event stream's consumer), so they can
//! arrive out of order; a record older than, or as old as, the one held is
//! refused ([`OrderTrack::supersedes`]), so an older change never
//! overwrites a newer one.

use rustc_hash::FxHashMap;

use crate::geo::LatLng;
use crate::ids::{DriverId, OrderId, RestaurantId, UserId};
use crate::status::OrderStatus;

#[derive(Clone, Debug, PartialEq)]
pub struct OrderTrack {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub restaurant_id: RestaurantId,
    /// The restaurant's owning user, who may watch the order too.
    pub restaurant_owner_id: UserId,
    pub status: OrderStatus,
    pub driver_id: Option<DriverId>,
    pub pickup: LatLng,
    pub dropoff: LatLng,
    pub updated_at_ms: i64,
    /// The order's version in the store (see the module docs); 0: not
    /// known (tools, tests, the simulator), which always applies and keeps
    /// the version already held.
    pub version: i64,
}

impl OrderTrack {
    /// Whether `user` may watch this order: its customer, its restaurant's
    /// owner, or its driver. Dispatchers are checked by role, not here.
    pub fn is_party(&self, user: UserId) -> bool {
        self.customer_id == user
            || self.restaurant_owner_id == user
            || self.driver_id.map(UserId::from) == Some(user)
    }

    /// Whether this record may replace `held` on the board: it is newer,
    /// or carries no version. An equal version is refused too: the board
    /// may have moved on without a new version (the matcher binds a driver
    /// before the store records the assignment), and the same version
    /// brings nothing new.
    pub fn supersedes(&self, held: &OrderTrack) -> bool {
        self.version == 0 || self.version > held.version
    }
}

#[derive(Default)]
pub(crate) struct OrderBoard {
    orders: FxHashMap<OrderId, OrderTrack>,
    /// The orders on the board by restaurant (open and closed until
    /// pruned), so stacking finds the couriers bound for a kitchen from
    /// its few orders instead of a scan.
    by_restaurant: FxHashMap<RestaurantId, Vec<OrderId>>,
}

impl OrderBoard {
    pub fn get(&self, id: OrderId) -> Option<&OrderTrack> {
        self.orders.get(&id)
    }

    pub fn get_mut(&mut self, id: OrderId) -> Option<&mut OrderTrack> {
        self.orders.get_mut(&id)
    }

    pub fn put(&mut self, track: OrderTrack) {
        let (order_id, restaurant) = (track.order_id, track.restaurant_id);
        match self.orders.insert(order_id, track) {
            Some(held) if held.restaurant_id == restaurant => {}
            held => {
                if let Some(held) = held {
                    self.unindex(held.restaurant_id, order_id);
                }
                self.by_restaurant
                    .entry(restaurant)
                    .or_default()
                    .push(order_id);
            }
        }
    }

    /// Drops terminal orders last changed before `cutoff_ms`.
    pub fn prune_closed(&mut self, cutoff_ms: i64) -> usize {
        let before = self.orders.len();
        let mut gone = Vec::new();
        self.orders.retain(|_, t| {
            let keep = !(t.status.is_terminal() && t.updated_at_ms < cutoff_ms);
            if !keep {
                gone.push((t.restaurant_id, t.order_id));
            }
            keep
        });
        for (restaurant, order_id) in gone {
            self.unindex(restaurant, order_id);
        }
        before - self.orders.len()
    }

    /// The orders of `restaurant` on the board, open or closed (the index;
    /// a handful per kitchen).
    pub fn ids_of_restaurant(&self, restaurant: RestaurantId) -> &[OrderId] {
        self.by_restaurant
            .get(&restaurant)
            .map_or(&[], Vec::as_slice)
    }

    fn unindex(&mut self, restaurant: RestaurantId, order_id: OrderId) {
        if let Some(ids) = self.by_restaurant.get_mut(&restaurant) {
            ids.retain(|&id| id != order_id);
            if ids.is_empty() {
                self.by_restaurant.remove(&restaurant);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Open orders with a driver.
    /// The open orders of `restaurant` (a copy; one pass over the board).
    pub fn of_restaurant(&self, restaurant: RestaurantId) -> Vec<OrderTrack> {
        self.orders
            .values()
            .filter(|t| t.restaurant_id == restaurant && !t.status.is_terminal())
            .cloned()
            .collect()
    }

    /// Every open order (a copy; one pass over the board).
    pub fn open(&self) -> Vec<OrderTrack> {
        self.orders
            .values()
            .filter(|t| !t.status.is_terminal())
            .cloned()
            .collect()
    }

    /// The pickups of open orders no driver carries that are not picked
    /// up: where couriers are wanted.
    pub fn waiting_pickups(&self) -> Vec<LatLng> {
        self.orders
            .values()
            .filter(|t| {
                t.driver_id.is_none()
                    && !t.status.is_terminal()
                    && t.status != OrderStatus::PickedUp
            })
            .map(|t| t.pickup)
            .collect()
    }

    pub fn assigned(&self) -> Vec<OrderTrack> {
        self.orders
            .values()
            .filter(|t| t.driver_id.is_some() && !t.status.is_terminal())
            .cloned()
            .collect()
    }
}
