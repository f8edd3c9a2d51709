//! Reports: a projection of the event stream ([`update_of`] turns an event
//! into its [`ReportUpdate`], [`apply`] stores it once per event id) and
//! the figures read from it for a period in a time zone ([`orders`],
//! [`restaurants`], [`drivers`]).
//!
//! **What counts where.** The *series* counts what happened in each local
//! hour or day: orders entering each status, charges that succeeded
//! (revenue) and refunds that went through, by the time of the event. The
//! *cohort* figures (outcomes, rates, funnel times, per restaurant, per
//! driver) are about the orders **placed** in the period, as they stand
//! now: a cancellation rate needs the orders it is a rate of.
//!
//! **Periods.** `from` (inclusive) and `to` (exclusive) are local dates
//! (`2026-12-01`, midnight in the zone), local date-times or RFC 3339
//! instants, in an IANA zone (jiff's bundled database, as restaurants'
//! opening hours use). Both must start a bucket: a whole local hour, and
//! for daily buckets a local midnight. Days follow the zone's calendar (a
//! day of a daylight-saving change has 23 or 25 hours).
//!
//! **Percentiles** are exact (nearest rank over every order's stored
//! durations, computed in SQL at query time: see `store::sql::reports`).

use std::collections::BTreeMap;

use engine::{DriverId, OrderStatus, UserId};
use events::{Event, EventType};
use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};

use crate::event::{OrderChanged, RefundSettled, RestaurantChanged, ReviewChanged};
use crate::store::{
    Cohort, CohortCounts, DriverFigures, Percentiles, ReportChange, ReportOrder, ReportStore,
    ReportUpdate, RestaurantFigures, SeriesKey, SeriesStep, Stage, StoreError, quarter_of,
};
use crate::{Error, Result};

/// The longest period of a daily report, in days: a year and a leap day.
pub const MAX_DAYS: i64 = 366;
/// The most buckets of an hourly report: 31 days.
pub const MAX_HOURS: i64 = 31 * 24;

/// The event types the projection reads.
pub fn wanted(event_type: EventType) -> bool {
    use EventType::*;
    matches!(
        event_type,
        OrderPlaced
            | OrderPaid
            | PaymentFailed
            | OrderAccepted
            | OrderRejected
            | OrderPreparing
            | OrderReadyForPickup
            | OrderAssigned
            | OrderReassigned
            | OrderPickedUp
            | OrderDelivered
            | OrderCancelled
            | RefundSucceeded
            | ReviewCreated
            | ReviewUpdated
            | ReviewHidden
            | ReviewUnhidden
            | RestaurantUpdated
            | DriverOnline
            | DriverOffline
    )
}

/// Applies each of `events` to the projection in one transaction (the
/// reports consumer's batch); how many changed it (an event of a type the
/// projection does not read, or applied already, changes nothing: the
/// store records each applied event's id in the same transaction).
pub async fn apply_many(store: &dyn ReportStore, events: &[&Event]) -> Result<usize> {
    let mut updates = Vec::with_capacity(events.len());
    for event in events {
        updates.extend(update_of(event)?);
    }
    if updates.is_empty() {
        return Ok(0);
    }
    Ok(store.apply_reports(&updates).await?)
}

fn body<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T> {
    // Read in place (`&Value` is a deserializer), no copy of the payload.
    T::deserialize(&event.payload.body).map_err(|e| {
        Error::Store(StoreError::Corrupt(format!(
            "{} payload of event {}: {e}",
            event.event_type, event.id
        )))
    })
}

/// What `event` does to the projection; `None` for events it does not
/// read. Pure: the unit tests check it event by event.
pub fn update_of(event: &Event) -> Result<Option<ReportUpdate>> {
    use EventType::*;
    let quarter_ms = quarter_of(event.at_ms);
    let step = |key, amount_cents| SeriesStep {
        key,
        quarter_ms,
        amount_cents,
    };
    let mut series = Vec::new();
    let change = match event.event_type {
        OrderPlaced | OrderPaid | PaymentFailed | OrderAccepted | OrderRejected
        | OrderPreparing | OrderReadyForPickup | OrderAssigned | OrderReassigned
        | OrderPickedUp | OrderDelivered | OrderCancelled => {
            let c: OrderChanged = body(event)?;
            let entered = (c.status_from != Some(c.status)).then_some((c.status, event.at_ms));
            if entered.is_some() {
                series.push(step(SeriesKey::Status(c.status), 0));
            }
            let charged_cents = match (&c.payment, event.event_type) {
                (Some(p), OrderPaid) if p.status == "succeeded" => p.amount_cents,
                _ => 0,
            };
            if charged_cents > 0 {
                series.push(step(SeriesKey::Charged, charged_cents));
            }
            ReportChange::Order(ReportOrder {
                order_id: c.order_id,
                restaurant_id: c.restaurant_id,
                customer_id: c.customer_id,
                driver_id: c.driver_id,
                status: c.status,
                version: event.version,
                total_cents: c.total_cents,
                entered,
                charged_cents,
            })
        }
        RefundSucceeded => {
            let r: RefundSettled = body(event)?;
            series.push(step(SeriesKey::Refunded, r.refund.amount_cents));
            ReportChange::Refund {
                order_id: r.order_id,
                amount_cents: r.refund.amount_cents,
            }
        }
        ReviewCreated | ReviewUpdated | ReviewHidden | ReviewUnhidden => {
            let r: ReviewChanged = body(event)?;
            ReportChange::Review {
                order_id: r.order_id,
                version: event.version,
                restaurant_stars: (!r.hidden).then_some(r.restaurant_stars),
                driver_stars: r.driver_stars.filter(|_| !r.hidden),
            }
        }
        RestaurantUpdated => {
            let r: RestaurantChanged = body(event)?;
            ReportChange::Restaurant {
                restaurant_id: r.restaurant_id,
                owner_id: r.owner_id,
                name: r.name,
            }
        }
        DriverOnline | DriverOffline => {
            // Written by hexdash with a driver's id; anything else is
            // skipped, not retried.
            let Ok(driver_id) = event.aggregate.id.parse::<DriverId>() else {
                return Ok(None);
            };
            if event.event_type == DriverOnline {
                ReportChange::DriverOnline {
                    driver_id,
                    at_ms: event.at_ms,
                }
            } else {
                ReportChange::DriverOffline {
                    driver_id,
                    at_ms: event.at_ms,
                }
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(ReportUpdate {
        event_id: event.id,
        change,
        series,
    }))
}

// ------------------------------------------------------------------ periods

/// A report's bucket size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    /// Local hours.
    Hour,
    /// Local days.
    Day,
}

impl Bucket {
    /// The bucket named `name` (`hour`, `day`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }
}

/// The IANA zone named `name` (bundled database); `None` for an unknown
/// name.
pub fn zone(name: &str) -> Option<TimeZone> {
    // jiff also reads POSIX TZ strings and fixed offsets: only IANA names
    // (and `UTC`) are accepted, as documented.
    if name.is_empty() || name.len() > 64 || name.contains(',') {
        return None;
    }
    let tz = TimeZone::get(name).ok()?;
    tz.iana_name().is_some().then_some(tz)
}

/// `text` as an instant in `tz`: a local date (its midnight), a local
/// date-time, or an RFC 3339 instant with its offset; `None` when it is
/// none of these.
pub fn instant(text: &str, tz: &TimeZone) -> Option<Zoned> {
    if text.len() > 40 {
        return None;
    }
    // (jiff's `Date` would take a date-time's date and drop its time; a
    // civil `DateTime` reads a bare date as its midnight.)
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts.to_zoned(tz.clone()));
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(tz.clone()).ok();
    }
    None
}

/// A checked period: `[from, to)` in a zone, cut into buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct Period {
    /// Its start, in the zone.
    pub from: Zoned,
    /// Its end (exclusive), in the zone.
    pub to: Zoned,
    /// The bucket size.
    pub bucket: Bucket,
    /// The buckets, in order, covering the period without gaps.
    pub buckets: Vec<BucketSpan>,
}

/// One bucket of a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketSpan {
    /// Its start as RFC 3339 with the zone's offset then
    /// (`2026-03-29T00:00:00+01:00`).
    pub start: String,
    /// Its start, Unix ms.
    pub start_ms: i64,
    /// Its end (the next one's start), Unix ms.
    pub end_ms: i64,
}

impl Period {
    /// The start, Unix ms.
    pub fn from_ms(&self) -> i64 {
        self.from.timestamp().as_millisecond()
    }

    /// The end (exclusive), Unix ms.
    pub fn to_ms(&self) -> i64 {
        self.to.timestamp().as_millisecond()
    }

    /// The orders placed in the period.
    pub fn cohort(&self, owner: Option<UserId>) -> Cohort {
        Cohort {
            from_ms: self.from_ms(),
            to_ms: self.to_ms(),
            owner,
        }
    }
}

fn invalid(code: &'static str, reason: impl Into<String>) -> Error {
    Error::invalid(code, reason)
}

/// Whether `at` starts a bucket of `bucket` size, at a whole quarter hour
/// of UTC (so the stored series adds up to it exactly).
fn starts_bucket(at: &Zoned, bucket: Bucket) -> bool {
    let whole_hour = at.minute() == 0 && at.second() == 0 && at.subsec_nanosecond() == 0;
    let midnight = bucket == Bucket::Hour || at.start_of_day().ok().as_ref() == Some(at);
    let quarter = at.timestamp().as_millisecond() % crate::store::QUARTER_MS == 0;
    whole_hour && midnight && quarter
}

/// Checks `[from, to)` and cuts it into buckets: `to` after `from`, both
/// starting a bucket, at most [`MAX_DAYS`] days or [`MAX_HOURS`] hours.
pub fn period(from: Zoned, to: Zoned, bucket: Bucket) -> Result<Period> {
    if to.timestamp() <= from.timestamp() {
        return Err(invalid("empty_period", "`to` must be after `from`"));
    }
    for (name, at) in [("from", &from), ("to", &to)] {
        if !starts_bucket(at, bucket) {
            return Err(invalid(
                "unaligned_period",
                match bucket {
                    Bucket::Hour => format!("`{name}` must be a whole hour in the time zone"),
                    Bucket::Day => format!("`{name}` must be a midnight in the time zone (a date)"),
                },
            ));
        }
    }
    let limit = match bucket {
        Bucket::Hour => MAX_HOURS,
        Bucket::Day => MAX_DAYS,
    };
    let mut buckets = Vec::new();
    let mut start = from.clone();
    while start.timestamp() < to.timestamp() {
        if buckets.len() as i64 >= limit {
            return Err(invalid(
                "period_too_long",
                format!("at most {limit} {}s in one report", bucket.as_str()),
            ));
        }
        let next = match bucket {
            Bucket::Hour => start.checked_add(1.hour()),
            Bucket::Day => start.checked_add(1.day()).and_then(|d| d.start_of_day()),
        }
        .map_err(|e| invalid("invalid_period", e.to_string()))?;
        buckets.push(BucketSpan {
            start: start.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            start_ms: start.timestamp().as_millisecond(),
            end_ms: next
                .timestamp()
                .as_millisecond()
                .min(to.timestamp().as_millisecond()),
        });
        start = next;
    }
    Ok(Period {
        from,
        to,
        bucket,
        buckets,
    })
}

// ------------------------------------------------------------------ figures

/// `status`'s position in `OrderStatus::ALL`.
fn status_index(status: OrderStatus) -> usize {
    OrderStatus::ALL
        .iter()
        .position(|s| *s == status)
        .unwrap_or_default()
}

/// What a bucket (or the whole period) counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Orders entering each status, in `OrderStatus::ALL`'s order.
    pub entered: [i64; OrderStatus::ALL.len()],
    /// Charges that succeeded.
    pub charges: i64,
    /// Their amounts, cents: revenue.
    pub charged_cents: i64,
    /// Refunds that went through.
    pub refunds: i64,
    /// Their amounts, cents.
    pub refunded_cents: i64,
}

impl Figures {
    /// How many orders entered `status`.
    pub fn entered(&self, status: OrderStatus) -> i64 {
        self.entered[status_index(status)]
    }

    fn add(&mut self, key: SeriesKey, orders: i64, amount_cents: i64) {
        match key {
            SeriesKey::Status(s) => self.entered[status_index(s)] += orders,
            SeriesKey::Charged => {
                self.charges += orders;
                self.charged_cents += amount_cents;
            }
            SeriesKey::Refunded => {
                self.refunds += orders;
                self.refunded_cents += amount_cents;
            }
        }
    }
}

/// The orders report: the series per bucket and its totals, the cohort's
/// outcomes and its funnel.
#[derive(Clone, Debug, PartialEq)]
pub struct OrdersReport {
    /// Per bucket, in order.
    pub buckets: Vec<(BucketSpan, Figures)>,
    /// The buckets added up.
    pub totals: Figures,
    /// The orders placed in the period, as they stand.
    pub cohort: CohortCounts,
    /// Their funnel times, per stage in funnel order.
    pub funnel: Vec<(Stage, Percentiles)>,
}

/// The orders report of `period`.
pub async fn orders(store: &dyn ReportStore, period: &Period) -> Result<OrdersReport> {
    let rows = store
        .report_series(period.from_ms(), period.to_ms())
        .await?;
    let mut buckets: Vec<(BucketSpan, Figures)> = period
        .buckets
        .iter()
        .map(|b| (b.clone(), Figures::default()))
        .collect();
    let mut totals = Figures::default();
    for row in rows {
        // The last bucket starting at or before the quarter.
        let i = buckets.partition_point(|(b, _)| b.start_ms <= row.quarter_ms);
        if let Some((_, figures)) = i.checked_sub(1).and_then(|i| buckets.get_mut(i)) {
            figures.add(row.key, row.orders, row.amount_cents);
            totals.add(row.key, row.orders, row.amount_cents);
        }
    }
    let cohort = period.cohort(None);
    Ok(OrdersReport {
        buckets,
        totals,
        cohort: store.report_counts(&cohort).await?,
        funnel: store.report_funnel(&cohort).await?,
    })
}

/// Per restaurant with orders placed in `period`; only `owner`'s
/// restaurants when given (a restaurant owner reads its own).
pub async fn restaurants(
    store: &dyn ReportStore,
    period: &Period,
    owner: Option<UserId>,
) -> Result<Vec<RestaurantFigures>> {
    Ok(store.report_restaurants(&period.cohort(owner)).await?)
}

/// A driver's line of the drivers report.
#[derive(Clone, Debug, PartialEq)]
pub struct DriverReport {
    /// Its deliveries of the period's orders and their ratings.
    pub figures: DriverFigures,
    /// Time online within the period, ms (a session still open counts up
    /// to `now`).
    pub active_ms: i64,
}

/// Per driver who delivered orders placed in `period` or was online in
/// it, by driver id. On time: delivered within `on_time_ms` of placement.
pub async fn drivers(
    store: &dyn ReportStore,
    period: &Period,
    on_time_ms: i64,
    now_ms: i64,
) -> Result<Vec<DriverReport>> {
    let (from_ms, to_ms) = (period.from_ms(), period.to_ms());
    let mut lines: BTreeMap<DriverId, DriverReport> = store
        .report_drivers(&period.cohort(None), on_time_ms)
        .await?
        .into_iter()
        .map(|f| {
            (
                f.driver_id,
                DriverReport {
                    figures: f,
                    active_ms: 0,
                },
            )
        })
        .collect();
    for s in store.report_sessions(from_ms, to_ms).await? {
        let end = s.offline_at_ms.unwrap_or(now_ms).min(to_ms);
        let active = (end - s.online_at_ms.max(from_ms)).max(0);
        lines
            .entry(s.driver_id)
            .or_insert_with(|| DriverReport {
                figures: DriverFigures {
                    driver_id: s.driver_id,
                    deliveries: 0,
                    on_time: 0,
                    stars: 0,
                    ratings: 0,
                },
                active_ms: 0,
            })
            .active_ms += active;
    }
    Ok(lines.into_values().collect())
}

/// `numerator / denominator`, `None` over nothing.
pub fn rate(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{Actor, Aggregate, Payload};

    fn event(
        id: i64,
        event_type: EventType,
        version: i64,
        at_ms: i64,
        body: serde_json::Value,
    ) -> Event {
        Event {
            id,
            event_type,
            aggregate: Aggregate {
                kind: event_type.aggregate_kind(),
                id: body["order_id"]
                    .as_str()
                    .or(body["driver_id"].as_str())
                    .unwrap_or("x")
                    .to_owned(),
            },
            version,
            at_ms,
            actor: Actor::System("test".to_owned()),
            payload: Payload::v1(body),
        }
    }

    fn changed(from: Option<&str>, to: &str) -> serde_json::Value {
        serde_json::json!({
            "order_id": "0190f0f0-0000-7000-8000-000000000001",
            "restaurant_id": "0190f0f0-0000-7000-8000-000000000002",
            "customer_id": "0190f0f0-0000-7000-8000-000000000003",
            "status_from": from, "status": to, "driver_id": null,
            "total_cents": 1_000, "at_ms": 0,
        })
    }

    #[test]
    fn order_events_stamp_the_status_they_enter_and_count_charges() {
        let t = 3 * crate::store::QUARTER_MS + 5;
        let placed = update_of(&event(
            1,
            EventType::OrderPlaced,
            1,
            t,
            changed(None, "placed"),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            placed.series,
            vec![SeriesStep {
                key: SeriesKey::Status(OrderStatus::Placed),
                quarter_ms: 3 * crate::store::QUARTER_MS,
                amount_cents: 0
            }]
        );
        let mut paid = changed(Some("placed"), "paid");
        paid["payment"] = serde_json::json!({"payment_id": "0190f0f0-0000-7000-8000-000000000004", "amount_cents": 1_000, "status": "succeeded"});
        let u = update_of(&event(2, EventType::OrderPaid, 2, t, paid.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(
            u.series
                .iter()
                .map(|s| (s.key, s.amount_cents))
                .collect::<Vec<_>>(),
            vec![
                (SeriesKey::Status(OrderStatus::Paid), 0),
                (SeriesKey::Charged, 1_000)
            ]
        );
        // A late charge of a cancelled order moves no status but is
        // revenue (its refund follows).
        paid["status_from"] = "cancelled".into();
        paid["status"] = "cancelled".into();
        let u = update_of(&event(3, EventType::OrderPaid, 3, t, paid))
            .unwrap()
            .unwrap();
        assert_eq!(
            u.series.iter().map(|s| s.key).collect::<Vec<_>>(),
            vec![SeriesKey::Charged]
        );
        let ReportChange::Order(o) = u.change else {
            panic!()
        };
        assert_eq!((o.entered, o.charged_cents), (None, 1_000));
        // An assignment moves nothing.
        let mut assigned = changed(Some("accepted"), "accepted");
        assigned["driver_id"] = "0190f0f0-0000-7000-8000-000000000005".into();
        let u = update_of(&event(4, EventType::OrderAssigned, 4, t, assigned))
            .unwrap()
            .unwrap();
        assert!(u.series.is_empty());
    }

    #[test]
    fn hidden_reviews_count_no_stars_and_unread_events_are_skipped() {
        let review = serde_json::json!({
            "review_id": "0190f0f0-0000-7000-8000-000000000009",
            "order_id": "0190f0f0-0000-7000-8000-000000000001",
            "restaurant_id": "0190f0f0-0000-7000-8000-000000000002",
            "driver_id": null, "restaurant_stars": 4, "driver_stars": 2,
            "hidden": true, "at_ms": 0,
        });
        let u = update_of(&event(5, EventType::ReviewHidden, 9, 0, review))
            .unwrap()
            .unwrap();
        assert!(matches!(
            u.change,
            ReportChange::Review {
                restaurant_stars: None,
                driver_stars: None,
                version: 9,
                ..
            }
        ));
        let offered = event(6, EventType::OrderOffered, 2, 0, serde_json::json!({}));
        assert_eq!(update_of(&offered).unwrap(), None);
        assert!(!wanted(EventType::OrderOffered));
        assert!(matches!(
            update_of(&event(
                7,
                EventType::OrderPlaced,
                1,
                0,
                serde_json::json!({"bad": 1})
            )),
            Err(Error::Store(_))
        ));
    }

    fn at(text: &str, tz: &str) -> Zoned {
        instant(text, &zone(tz).unwrap()).unwrap()
    }

    #[test]
    fn periods_are_cut_into_local_days_and_hours() {
        // Stockholm's spring-forward day has 23 hours.
        let p = period(
            at("2026-03-28", "Europe/Stockholm"),
            at("2026-03-31", "Europe/Stockholm"),
            Bucket::Day,
        )
        .unwrap();
        let hours: Vec<i64> = p
            .buckets
            .iter()
            .map(|b| (b.end_ms - b.start_ms) / 3_600_000)
            .collect();
        assert_eq!(hours, [24, 23, 24]);
        assert_eq!(p.buckets[2].start, "2026-03-30T00:00:00+02:00");
        // Half-hour zones: hours start at :30 UTC.
        let p = period(
            at("2026-01-01T00:00", "Asia/Kolkata"),
            at("2026-01-01T02:00", "Asia/Kolkata"),
            Bucket::Hour,
        )
        .unwrap();
        assert_eq!(p.buckets.len(), 2);
        assert_eq!(p.buckets[0].start, "2026-01-01T00:00:00+05:30");
    }

    #[test]
    fn bad_periods_say_why() {
        let code =
            |from: &str, to: &str, bucket| match period(at(from, "UTC"), at(to, "UTC"), bucket) {
                Err(Error::Invalid { code, .. }) => code,
                other => panic!("{other:?}"),
            };
        assert_eq!(
            code("2026-01-02", "2026-01-01", Bucket::Day),
            "empty_period"
        );
        assert_eq!(
            code("2026-01-01", "2026-01-01", Bucket::Day),
            "empty_period"
        );
        assert_eq!(
            code("2026-01-01T10:00", "2026-01-02", Bucket::Day),
            "unaligned_period"
        );
        assert_eq!(
            code("2026-01-01T10:30", "2026-01-02", Bucket::Hour),
            "unaligned_period"
        );
        assert_eq!(
            code("2024-01-01", "2025-01-03", Bucket::Day),
            "period_too_long"
        );
        assert_eq!(
            code("2026-01-01", "2026-02-02", Bucket::Hour),
            "period_too_long"
        );
        assert!(
            period(
                at("2024-01-01", "UTC"),
                at("2025-01-01", "UTC"),
                Bucket::Day
            )
            .is_ok()
        );
        assert!(zone("Mars/Olympus").is_none());
        assert!(zone("EST5EDT,M3.2.0,M11.1.0").is_none());
        assert!(zone("Europe/Stockholm").is_some());
        assert!(instant("2026-13-01", &TimeZone::UTC).is_none());
        assert!(instant("2026-01-01T00:00:00Z", &TimeZone::UTC).is_some());
        assert_eq!(
            instant("2026-01-01T10:00", &TimeZone::UTC).map(|z| z.hour()),
            Some(10)
        );
        assert_eq!(
            instant("2026-01-01", &TimeZone::UTC).map(|z| z.hour()),
            Some(0)
        );
    }
}
