//! The restaurant catalog: an in-memory index of restaurants and their
//! dishes that answers searches without touching the database.
//!
//! The api loads it from the store at start-up and applies each committed
//! write to it ([`Catalog::upsert_restaurant`], [`Catalog::upsert_dish`],
//! …); queries ([`Catalog::search`]) then cost tens of microseconds. It is a
//! projection: the database stays the source of truth.
//!
//! - [`catalog`]: [`Catalog`], the restaurant table and the write path.
//! - [`search`]: [`Query`], [`Page`], [`Hit`], filtering and ranking
//!   (relevance, distance or [`Rating`]).
//! - [`hours`]: [`WeeklyHours`], opening hours in a time zone (DST-correct,
//!   bundled tz database), with its wire shape [`HoursSpec`].
//! - [`text`]: tokenising and folding (case, diacritics) for matching.
//! - `grid`: radius-banded spatial buckets, "who delivers here", holding
//!   inline what a scan needs (id, schedule, radius, trigonometry).
//! - `index`: catalog-wide tables: token → restaurants (prefix ranges of a
//!   sorted map), cuisine → restaurants, interned opening schedules.
//! - `terms`: one restaurant's token counts per field, and the weights.
//!
//! **Invariant:** no I/O and no clock: the time a search is judged at comes in
//! as `now_utc_ms`, so tests and benchmarks are deterministic.

pub mod catalog;
mod grid;
pub mod hours;
mod index;
pub mod search;
mod terms;
pub mod text;

pub use catalog::{Catalog, DishEntry, Rating, RestaurantEntry};
pub use hours::{Day, DayHours, HoursError, HoursSpec, WeeklyHours};
pub use search::{Hit, MAX_MATCHED_DISHES, MAX_PAGE_LIMIT, MAX_QUERY_TOKENS, Page, Query, Sort};
