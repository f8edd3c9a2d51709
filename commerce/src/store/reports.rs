//! The reports projection's records and its store area, [`ReportStore`]
//! (tables of migration 0014; SQL in `sql::reports`). Only the `reports`
//! consumer writes them (through `usecase::report::apply_many`); the report
//! routes read them.

use async_trait::async_trait;
use engine::{DriverId, OrderId, OrderStatus, RestaurantId, UserId};

use super::Result;

/// A quarter hour in ms: the grain of the stored series. Every time zone
/// in use today is a whole number of quarter hours from UTC, so a local
/// hour or day is a whole number of quarters.
pub const QUARTER_MS: i64 = 15 * 60 * 1000;

/// The UTC quarter hour `at_ms` falls in (its start, Unix ms).
pub fn quarter_of(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(QUARTER_MS)
}

/// What a row of the series counts: orders entering a status, or money
/// moving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeriesKey {
    /// Orders entering this status.
    Status(OrderStatus),
    /// Charges that succeeded (revenue), with their amounts.
    Charged,
    /// Refunds that went through, with their amounts.
    Refunded,
}

impl SeriesKey {
    /// The stored name: the status's, `charged` or `refunded`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesKey::Status(s) => s.as_str(),
            SeriesKey::Charged => "charged",
            SeriesKey::Refunded => "refunded",
        }
    }

    /// The key stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "charged" => Some(SeriesKey::Charged),
            "refunded" => Some(SeriesKey::Refunded),
            other => OrderStatus::parse(other).map(SeriesKey::Status),
        }
    }
}

/// One increment of the series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesStep {
    /// What it counts.
    pub key: SeriesKey,
    /// Its quarter hour ([`quarter_of`] the event's time).
    pub quarter_ms: i64,
    /// Money moved, cents (0 for status counts).
    pub amount_cents: i64,
}

/// What an order event says of its order.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportOrder {
    /// The order.
    pub order_id: OrderId,
    /// Its restaurant.
    pub restaurant_id: RestaurantId,
    /// Its customer.
    pub customer_id: UserId,
    /// Its driver after the event.
    pub driver_id: Option<DriverId>,
    /// Its status after the event.
    pub status: OrderStatus,
    /// The order aggregate's version after the event.
    pub version: i64,
    /// What it costs, cents.
    pub total_cents: i64,
    /// The status the event moved it into, with when (`None`: it did not
    /// move). The first time it entered a status is kept.
    pub entered: Option<(OrderStatus, i64)>,
    /// A charge that succeeded with this event, cents (0: none).
    pub charged_cents: i64,
}

/// What one event changes in the projection.
#[derive(Clone, Debug, PartialEq)]
pub enum ReportChange {
    /// An order event.
    Order(ReportOrder),
    /// A refund of the order went through.
    Refund {
        /// The order.
        order_id: OrderId,
        /// How much, cents.
        amount_cents: i64,
    },
    /// The order's review as it counts now (stars `None` when hidden).
    Review {
        /// The order.
        order_id: OrderId,
        /// The order aggregate's version after the event: only a newer
        /// review event replaces the stars.
        version: i64,
        /// The restaurant's stars, if they count.
        restaurant_stars: Option<i64>,
        /// The driver's stars, if given and they count.
        driver_stars: Option<i64>,
    },
    /// A restaurant's name and owner.
    Restaurant {
        /// The restaurant.
        restaurant_id: RestaurantId,
        /// Its owner now.
        owner_id: UserId,
        /// Its name now.
        name: String,
    },
    /// A driver went online (opens a session unless one is open).
    DriverOnline {
        /// The driver.
        driver_id: DriverId,
        /// When.
        at_ms: i64,
    },
    /// A driver went offline (closes its open session).
    DriverOffline {
        /// The driver.
        driver_id: DriverId,
        /// When.
        at_ms: i64,
    },
}

/// One event's whole effect on the projection, applied in one
/// transaction with the event's id, so it counts at most once.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportUpdate {
    /// The event's global id.
    pub event_id: i64,
    /// What it changes.
    pub change: ReportChange,
    /// What it adds to the series.
    pub series: Vec<SeriesStep>,
}

/// A stored row of the series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesRow {
    /// Its quarter hour's start, Unix ms.
    pub quarter_ms: i64,
    /// What it counts.
    pub key: SeriesKey,
    /// How many.
    pub orders: i64,
    /// Money moved, cents.
    pub amount_cents: i64,
}

/// Which orders a cohort query covers: placed in `[from_ms, to_ms)`,
/// optionally only some restaurants'.
#[derive(Clone, Debug, PartialEq)]
pub struct Cohort {
    /// First instant, Unix ms (inclusive).
    pub from_ms: i64,
    /// Last instant, Unix ms (exclusive).
    pub to_ms: i64,
    /// Only the restaurants this user owns (a restaurant owner's scope).
    pub owner: Option<UserId>,
}

/// How a cohort's orders ended up (as of the projection's last event).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CohortCounts {
    /// Orders placed.
    pub placed: i64,
    /// Of them, paid at some point.
    pub paid: i64,
    /// Delivered.
    pub delivered: i64,
    /// Cancelled.
    pub cancelled: i64,
    /// Rejected by the restaurant.
    pub rejected: i64,
    /// Charge failed.
    pub payment_failed: i64,
    /// Charged, cents.
    pub charged_cents: i64,
    /// Refunded, cents.
    pub refunded_cents: i64,
}

/// One stage of the funnel, measured between two status times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Placed → accepted.
    PlacedToAccepted,
    /// Accepted → ready for pickup.
    AcceptedToReady,
    /// Ready → picked up.
    ReadyToPickedUp,
    /// Picked up → delivered.
    PickedUpToDelivered,
    /// Placed → delivered, end to end.
    PlacedToDelivered,
}

impl Stage {
    /// Every stage, in funnel order.
    pub const ALL: [Stage; 5] = [
        Stage::PlacedToAccepted,
        Stage::AcceptedToReady,
        Stage::ReadyToPickedUp,
        Stage::PickedUpToDelivered,
        Stage::PlacedToDelivered,
    ];

    /// The stored time columns it runs between (start, end).
    pub fn columns(self) -> (&'static str, &'static str) {
        match self {
            Stage::PlacedToAccepted => ("placed_at_ms", "accepted_at_ms"),
            Stage::AcceptedToReady => ("accepted_at_ms", "ready_at_ms"),
            Stage::ReadyToPickedUp => ("ready_at_ms", "picked_up_at_ms"),
            Stage::PickedUpToDelivered => ("picked_up_at_ms", "delivered_at_ms"),
            Stage::PlacedToDelivered => ("placed_at_ms", "delivered_at_ms"),
        }
    }

    /// The wire name (`placed_to_accepted`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PlacedToAccepted => "placed_to_accepted",
            Stage::AcceptedToReady => "accepted_to_ready",
            Stage::ReadyToPickedUp => "ready_to_picked_up",
            Stage::PickedUpToDelivered => "picked_up_to_delivered",
            Stage::PlacedToDelivered => "placed_to_delivered",
        }
    }
}

/// Exact percentiles of one stage's durations (nearest rank: the p-th is
/// the smallest duration at least p % of the orders took no longer than).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Orders that went through the stage.
    pub count: i64,
    /// Median, ms; `None` with no orders.
    pub p50_ms: Option<i64>,
    /// 90th percentile, ms.
    pub p90_ms: Option<i64>,
}

/// A restaurant's figures over a cohort.
#[derive(Clone, Debug, PartialEq)]
pub struct RestaurantFigures {
    /// The restaurant.
    pub restaurant_id: RestaurantId,
    /// Its name, if the projection knows it.
    pub name: Option<String>,
    /// Its cohort's outcomes.
    pub counts: CohortCounts,
    /// Accepted → ready (preparation), exact.
    pub prep: Percentiles,
    /// Stars of the cohort's visible reviews, added up.
    pub stars: i64,
    /// Reviews counted.
    pub ratings: i64,
}

/// A driver's delivery figures over a cohort.
#[derive(Clone, Debug, PartialEq)]
pub struct DriverFigures {
    /// The driver.
    pub driver_id: DriverId,
    /// Orders of the cohort it delivered.
    pub deliveries: i64,
    /// Of them, delivered within the on-time target of placement.
    pub on_time: i64,
    /// Stars of its visible ratings on those orders, added up.
    pub stars: i64,
    /// Ratings counted.
    pub ratings: i64,
}

/// A driver's online session, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverSession {
    /// The driver.
    pub driver_id: DriverId,
    /// When it went online, Unix ms.
    pub online_at_ms: i64,
    /// When it went offline; `None` while online.
    pub offline_at_ms: Option<i64>,
}

/// The reports projection.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Applies each of `updates` in order, all in one transaction, each
    /// only if its event was not applied before; how many were applied.
    async fn apply_reports(&self, updates: &[ReportUpdate]) -> Result<usize>;
    /// Empties the projection and sets consumer `consumer`'s stream
    /// position to 0, in one transaction: its runner, started afresh,
    /// replays every event.
    async fn clear_reports(&self, consumer: &str, now_ms: i64) -> Result<()>;
    /// The series rows of the quarters in `[from_ms, to_ms)`.
    async fn report_series(&self, from_ms: i64, to_ms: i64) -> Result<Vec<SeriesRow>>;
    /// The cohort's outcomes.
    async fn report_counts(&self, cohort: &Cohort) -> Result<CohortCounts>;
    /// The cohort's funnel, per stage.
    async fn report_funnel(&self, cohort: &Cohort) -> Result<Vec<(Stage, Percentiles)>>;
    /// Per restaurant with orders in the cohort, by restaurant id.
    async fn report_restaurants(&self, cohort: &Cohort) -> Result<Vec<RestaurantFigures>>;
    /// Per driver who delivered orders of the cohort, by driver id; on
    /// time: delivered at most `on_time_ms` after placement.
    async fn report_drivers(&self, cohort: &Cohort, on_time_ms: i64) -> Result<Vec<DriverFigures>>;
    /// Online sessions overlapping `[from_ms, to_ms)`.
    async fn report_sessions(&self, from_ms: i64, to_ms: i64) -> Result<Vec<DriverSession>>;
}
