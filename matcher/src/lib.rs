//! Dispatch: who gets offered which order, and what happens to the offer.
//!
//! First version, sequential offers: an order ready to dispatch is offered
//! to the nearest available driver (exact, from the engine), widening the
//! search radius when nobody is near. The driver accepts, declines, or stays
//! silent until the offer expires; a decline or an expiry moves the order to
//! the next nearest driver, and puts the driver who let it go on a cooldown
//! for that order (`Config::reoffer_cooldown_s`), after which they may get it
//! again once available: an order is never left without a way forward.
//! An order no driver has taken after so many offers or so long
//! (`Config::unassigned_after_offers`, `unassigned_after_s`) is raised to
//! dispatchers: a WARN line, `hexdash_orders_unassigned{,_total}`, its
//! [`DispatchView`], and `engine::Change::Unassigned` news (raised, then
//! resolved), while the offers go on.
//!
//! - [`Matcher`]: the shared handle (`dispatch`, `accept`, `decline`,
//!   `withdraw`, `dispatch_state`) plus [`Matcher::run`], the one async loop
//!   at the edge that fires offer timeouts, retries orders nobody could take
//!   and raises stranded ones.
//! - [`fence`]: the [`fence::Gate`] of a clustered matcher: it dispatches
//!   only orders of regions its node leads, under the region's fencing
//!   token, which every accept hands the store.
//! - [`book`]: the offer book, pure state with no clock and no I/O.
//! - [`assign`]: batched assignment (the exact sparse solver and the
//!   [`assign::Policy`] seam with greedy and batched policies), pure code.
//!   With `policy = "batched"` ([`PolicyKind`]) the loop solves one
//!   assignment over all waiting orders every `batch_window_s` and turns
//!   it into offers through the same book; an order arriving while nothing
//!   waits and no batch is pending is offered at once.
//! - [`prep`]: preparation-time estimates per restaurant, learned from
//!   accepted → ready durations ([`Matcher::observe_prep`]); with
//!   `prep_aware` the matcher holds an order's offer until its best
//!   courier would arrive about when the food is ready.
//! - [`geofence`]: arrival fences around restaurants and doors in an
//!   R-tree, checked per ping, each firing once per order.
//! - [`arrivals`]: the fences on the live path: each assigned order's
//!   restaurant (before pickup) or door (after) fenced from the engine's
//!   order changes, couriers' moves checked, arrivals published as
//!   `engine::Change::Arrived` (`matcher.arrival_radius_m`).
//! - [`quote`]: quotes before ordering: restaurant → door on the roads
//!   (the delivery fee's distance) and the legs of `eta_s` (preparation
//!   estimate, nearest available courier's travel time).
//! - [`speeds`]: the road router with each road class's speed learned
//!   from driven legs (ended by the arrival fences), rebuilt and swapped
//!   in every `speed_relearn_legs` legs.
//! - [`stack`]: stacking's rule ([`stack::plan`]: a second order of the
//!   same restaurant or of one on the way rides along while the first
//!   customer's added delay, and the second's against a fresh courier,
//!   stay within `stack_delay_bound_s`); with `Config::stacking` busy
//!   couriers whose one order is still at its kitchen are offered it (a
//!   stacked offer, `engine::Offer::stacked_with`), under both policies.
//!   The simulator calls the same function.
//! - [`eta`]: customer ETAs on the road graph (courier → restaurant →
//!   door, waiting for the food before pickup; a stacking courier's
//!   second customer after the first's door), recomputed at most every
//!   `eta_interval_s` per order ([`Matcher::etas`]).
//!
//! Guarantees: a driver holds at most one pending offer; an order has at most
//! one pending offer; assignment happens inside the engine's lock, so an order
//! is assigned at most once and a driver holds at most one order (two with
//! `stacking`, the second taken before the first's pickup),
//! also under concurrent accepts.

pub mod arrivals;
pub mod assign;
mod book;
pub mod eta;
pub mod fence;
pub mod geofence;
mod matcher;
mod metrics;
pub mod prep;
pub mod quote;
pub mod speeds;
pub mod stack;

pub use self::metrics::describe_metrics;
pub use book::{OfferError, OfferState};
pub use matcher::{Config, DispatchError, DispatchState, DispatchView, Matcher, PolicyKind};
