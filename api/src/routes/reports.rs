//! Reports, read from the reports projection (`consumers::reports`):
//!
//! | route                                  | who                                   |
//! |----------------------------------------|---------------------------------------|
//! | `GET /v1/admin/reports/orders`         | admins                                |
//! | `GET /v1/admin/reports/restaurants`    | admins (all); restaurant owners (their own restaurants) |
//! | `GET /v1/admin/reports/drivers`        | admins                                |
//! | `POST /v1/admin/reports/rebuild`       | admins                                |
//!
//! Each report takes `from`, `to` (exclusive), `tz` (an IANA zone, default
//! `UTC`) and `bucket` (`hour` or `day`, default `day`), and answers JSON,
//! or CSV when the request's `Accept` names `text/csv` (one row per
//! bucket, restaurant or driver). A `from`/`to` not shaped as the
//! documented pattern is a 400; an unknown zone, a date that does not
//! exist and a period that cannot be reported (empty, not on bucket
//! boundaries, too long) a 422, as everything schema-valid that makes no
//! sense is. What each figure
//! counts is `commerce::usecase::report`'s.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use commerce::usecase::report::{self as usecase, Bucket, Figures, Period};
use engine::{DriverId, OrderStatus, RestaurantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::require_role;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/admin/reports/orders" => orders_report),
    route!(Get "/v1/admin/reports/restaurants" => restaurants_report),
    route!(Get "/v1/admin/reports/drivers" => drivers_report),
    route!(Post "/v1/admin/reports/rebuild" => rebuild_reports),
];

/// The CSV media type, as `Accept` asks for it and the answer declares it.
const CSV: &str = "text/csv";

// ---- wire types ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day or instant (inclusive): a local date (`2026-12-01`), a
    /// local date-time (`2026-12-01T08:00`) or an RFC 3339 instant. Must
    /// start a bucket (a whole hour; a midnight for daily buckets).
    #[param(
        max_length = 40,
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$",
        example = "2026-12-01"
    )]
    pub from: String,
    /// End (exclusive), in the same forms; after `from`; at most 366 days
    /// of daily or 744 hourly buckets.
    #[param(
        max_length = 40,
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$",
        example = "2026-12-08"
    )]
    pub to: String,
    /// An IANA time zone name; default `UTC`. Buckets are its local hours
    /// and days.
    #[param(max_length = 64, example = "Europe/Stockholm")]
    pub tz: Option<String>,
    /// `hour` or `day` (default).
    #[param(inline, value_type = Option<ReportBucket>)]
    pub bucket: Option<String>,
}

/// A report's bucket size.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportBucket {
    Hour,
    Day,
}

/// The period a report covers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportPeriod {
    /// Its start, RFC 3339 with the zone's offset.
    pub from: String,
    /// Its end (exclusive).
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// The IANA zone.
    pub tz: String,
    #[schema(inline)]
    pub bucket: ReportBucket,
}

/// What happened in a bucket (or the whole period): orders entering each
/// status by the time they entered it, and the money that moved.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct OrderFigures {
    pub placed: i64,
    pub paid: i64,
    pub payment_failed: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub preparing: i64,
    pub ready_for_pickup: i64,
    pub picked_up: i64,
    pub delivered: i64,
    pub cancelled: i64,
    /// Charges that succeeded.
    pub charges: i64,
    /// Their amounts, cents.
    pub revenue_cents: i64,
    /// Refunds that went through.
    pub refunds: i64,
    pub refunded_cents: i64,
    /// Revenue less refunds, cents.
    pub net_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderBucket {
    /// Its start, RFC 3339 with the zone's offset then.
    pub start: String,
    pub start_ms: i64,
    /// Its end (the next bucket's start), Unix ms.
    pub end_ms: i64,
    pub figures: OrderFigures,
}

/// The orders placed in the period, as they stand now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CohortFigures {
    pub orders: i64,
    /// Of them, paid at some point.
    pub paid: i64,
    pub delivered: i64,
    pub cancelled: i64,
    pub rejected: i64,
    pub payment_failed: i64,
    /// `cancelled / orders`; null with no orders.
    pub cancellation_rate: Option<f64>,
    /// `rejected / paid` (only paid orders reach the restaurant); null
    /// with none paid.
    pub rejection_rate: Option<f64>,
    /// Charged for them, cents.
    pub charged_cents: i64,
    /// Refunded of them, cents.
    pub refunded_cents: i64,
}

/// One stage of the funnel over the period's orders: exact nearest-rank
/// percentiles of every order's time in it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FunnelStage {
    /// `placed_to_accepted`, `accepted_to_ready`, `ready_to_picked_up`,
    /// `picked_up_to_delivered` or `placed_to_delivered`.
    pub stage: String,
    /// Orders that went through it.
    pub orders: i64,
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrdersReport {
    pub period: ReportPeriod,
    pub buckets: Vec<OrderBucket>,
    /// The buckets added up.
    pub totals: OrderFigures,
    pub cohort: CohortFigures,
    pub funnel: Vec<FunnelStage>,
}

/// A restaurant's orders placed in the period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RestaurantReportLine {
    #[schema(value_type = String, format = Uuid)]
    pub restaurant_id: RestaurantId,
    pub name: Option<String>,
    pub orders: i64,
    pub delivered: i64,
    pub cancelled: i64,
    pub rejected: i64,
    /// Charged, cents.
    pub revenue_cents: i64,
    pub refunded_cents: i64,
    /// Orders with a preparation time (accepted → ready).
    pub prepared: i64,
    pub prep_p50_ms: Option<i64>,
    pub prep_p90_ms: Option<i64>,
    /// Mean stars of the visible reviews of these orders; null with none.
    pub rating: Option<f64>,
    pub ratings: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RestaurantsReport {
    pub period: ReportPeriod,
    /// By restaurant id.
    pub restaurants: Vec<RestaurantReportLine>,
}

/// A driver's deliveries of orders placed in the period, and its time
/// online in it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriverReportLine {
    #[schema(value_type = String, format = Uuid)]
    pub driver_id: DriverId,
    pub deliveries: i64,
    /// Delivered within `on_time_target_s` of placement.
    pub on_time: i64,
    /// `on_time / deliveries`; null with none.
    pub on_time_rate: Option<f64>,
    /// Online within the period (driver.online → driver.offline), ms.
    pub active_ms: i64,
    pub active_hours: f64,
    /// Mean stars of its visible ratings on these orders; null with none.
    pub rating: Option<f64>,
    pub ratings: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriversReport {
    pub period: ReportPeriod,
    /// The on-time target (`api.report_on_time_s`): a delivery is on time
    /// when it arrives at most this long after the order was placed.
    pub on_time_target_s: u64,
    /// By driver id.
    pub drivers: Vec<DriverReportLine>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RebuildResponse {
    /// The stream's last event when the replay started: the reports are
    /// whole again once the consumer has passed it.
    pub replay_up_to: i64,
}

// ---- parsing and mapping ----

/// The period `query` asks for: 400 for what does not parse, 422 (from
/// the use-case) for what cannot be reported.
fn period(query: &ReportQuery) -> ApiResult<(Period, String)> {
    let tz_name = query.tz.clone().unwrap_or_else(|| "UTC".to_owned());
    // Any string is schema-valid: an unknown zone is a 422.
    let tz = usecase::zone(&tz_name).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_tz",
            "`tz` must be an IANA time zone name such as Europe/Stockholm",
        )
    })?;
    let bucket = match query.bucket.as_deref() {
        None => Bucket::Day,
        Some(b) => Bucket::parse(b).ok_or_else(|| {
            ApiError::bad_request("invalid_bucket", "`bucket` must be `hour` or `day`")
        })?,
    };
    let at = |name: &str, text: &str| {
        usecase::instant(text, &tz).ok_or_else(|| {
            let reason = format!(
                "`{name}` must be a date (2026-12-01), a local date-time (2026-12-01T08:00) \
                 or an RFC 3339 instant"
            );
            // Outside the documented pattern: 400; in it but no such
            // instant (2026-02-30, 25:00): 422.
            if instant_shaped(text) {
                ApiError::unprocessable("invalid_period", reason)
            } else {
                ApiError::bad_request("invalid_period", reason)
            }
        })
    };
    let (from, to) = (at("from", &query.from)?, at("to", &query.to)?);
    Ok((usecase::period(from, to, bucket)?, tz_name))
}

/// Whether `text` has the shape the `from`/`to` pattern documents (digits
/// where it wants digits; a regex engine's `$` also lets one final line
/// break through, so this does too).
fn instant_shaped(text: &str) -> bool {
    let t = text.strip_suffix('\n').unwrap_or(text).as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let date = t.len() >= 10
        && digits(&t[0..4])
        && t[4] == b'-'
        && digits(&t[5..7])
        && t[7] == b'-'
        && digits(&t[8..10]);
    if !date {
        return false;
    }
    let mut rest = &t[10..];
    if rest.is_empty() {
        return true;
    }
    // THH:MM
    if rest.len() < 6
        || rest[0] != b'T'
        || !digits(&rest[1..3])
        || rest[3] != b':'
        || !digits(&rest[4..6])
    {
        return false;
    }
    rest = &rest[6..];
    // :SS and .fraction (1 to 9 digits)
    if rest.first() == Some(&b':') {
        if rest.len() < 3 || !digits(&rest[1..3]) {
            return false;
        }
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=9).contains(&n) {
                return false;
            }
            rest = &rest[1 + n..];
        }
    }
    match rest {
        [] | [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] => {
            (*sign == b'+' || *sign == b'-') && digits(&[*h1, *h2]) && digits(&[*m1, *m2])
        }
        _ => false,
    }
}

fn period_response(period: &Period, tz: String) -> ReportPeriod {
    let rfc = |z: &jiff::Zoned| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    ReportPeriod {
        from: rfc(&period.from),
        to: rfc(&period.to),
        from_ms: period.from_ms(),
        to_ms: period.to_ms(),
        tz,
        bucket: match period.bucket {
            Bucket::Hour => ReportBucket::Hour,
            Bucket::Day => ReportBucket::Day,
        },
    }
}

fn order_figures(f: &Figures) -> OrderFigures {
    OrderFigures {
        placed: f.entered(OrderStatus::Placed),
        paid: f.entered(OrderStatus::Paid),
        payment_failed: f.entered(OrderStatus::PaymentFailed),
        accepted: f.entered(OrderStatus::Accepted),
        rejected: f.entered(OrderStatus::Rejected),
        preparing: f.entered(OrderStatus::Preparing),
        ready_for_pickup: f.entered(OrderStatus::ReadyForPickup),
        picked_up: f.entered(OrderStatus::PickedUp),
        delivered: f.entered(OrderStatus::Delivered),
        cancelled: f.entered(OrderStatus::Cancelled),
        charges: f.charges,
        revenue_cents: f.charged_cents,
        refunds: f.refunds,
        refunded_cents: f.refunded_cents,
        net_cents: f.charged_cents - f.refunded_cents,
    }
}

fn mean(stars: i64, count: i64) -> Option<f64> {
    usecase::rate(stars, count)
}

/// Whether the request asks for CSV.
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.split(';').next().map(str::trim) == Some(CSV))
}

/// `rows` (a header first) as a CSV answer.
fn csv_response(rows: Vec<Vec<String>>) -> Response {
    let mut body = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        body.push_str(&cells.join(","));
        body.push_str("\r\n");
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, quote or line
/// break. Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`
/// first: restaurant names are owners' input) is led by a `'`.
fn csv_cell(text: &str) -> String {
    let formula = text.starts_with(['=', '+', '@', '\t', '\r'])
        || (text.starts_with('-') && text.parse::<f64>().is_err());
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

const FIGURE_COLUMNS: [&str; 15] = [
    "placed",
    "paid",
    "payment_failed",
    "accepted",
    "rejected",
    "preparing",
    "ready_for_pickup",
    "picked_up",
    "delivered",
    "cancelled",
    "charges",
    "revenue_cents",
    "refunds",
    "refunded_cents",
    "net_cents",
];

fn figure_cells(f: &OrderFigures) -> Vec<String> {
    [
        f.placed,
        f.paid,
        f.payment_failed,
        f.accepted,
        f.rejected,
        f.preparing,
        f.ready_for_pickup,
        f.picked_up,
        f.delivered,
        f.cancelled,
        f.charges,
        f.revenue_cents,
        f.refunds,
        f.refunded_cents,
        f.net_cents,
    ]
    .iter()
    .map(i64::to_string)
    .collect()
}

// ---- handlers ----

#[utoipa::path(
    get,
    path = "/v1/admin/reports/orders",
    tag = "reports",
    summary = "Orders report: per status per bucket, money, rates, funnel",
    params(ReportQuery),
    responses(
        (status = 200, description = "The series (orders entering each status, charges and refunds, by the local hour or day they happened in), its totals, and the orders placed in the period: outcomes, cancellation and rejection rates, funnel times. With `Accept: text/csv`: one row per bucket.", content(
            (OrdersReport = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "`invalid_period` (`from`/`to` not shaped as a date, local date-time or RFC 3339 instant), `invalid_bucket`, `invalid_query` (`from` or `to` missing).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 422, description = "`invalid_tz` (not an IANA zone), `invalid_period` (no such date or time, e.g. 2026-02-30), `empty_period` (`to` not after `from`), `unaligned_period` (not a whole hour; for days not a midnight, in the zone), `period_too_long` (over 366 days, or 744 hourly buckets).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn orders_report(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    require_role(&principal, &[Role::Admin])?;
    let (period, tz) = period(&query)?;
    let report = usecase::orders(state.store.as_ref(), &period).await?;
    let buckets: Vec<OrderBucket> = report
        .buckets
        .iter()
        .map(|(span, f)| OrderBucket {
            start: span.start.clone(),
            start_ms: span.start_ms,
            end_ms: span.end_ms,
            figures: order_figures(f),
        })
        .collect();
    if wants_csv(&headers) {
        let mut rows = vec![
            ["bucket_start", "start_ms", "end_ms"]
                .iter()
                .chain(FIGURE_COLUMNS.iter())
                .map(|s| s.to_string())
                .collect(),
        ];
        for b in &buckets {
            let mut row = vec![
                b.start.clone(),
                b.start_ms.to_string(),
                b.end_ms.to_string(),
            ];
            row.extend(figure_cells(&b.figures));
            rows.push(row);
        }
        return Ok(csv_response(rows));
    }
    let c = report.cohort;
    Ok(Json(OrdersReport {
        period: period_response(&period, tz),
        buckets,
        totals: order_figures(&report.totals),
        cohort: CohortFigures {
            orders: c.placed,
            paid: c.paid,
            delivered: c.delivered,
            cancelled: c.cancelled,
            rejected: c.rejected,
            payment_failed: c.payment_failed,
            cancellation_rate: usecase::rate(c.cancelled, c.placed),
            rejection_rate: usecase::rate(c.rejected, c.paid),
            charged_cents: c.charged_cents,
            refunded_cents: c.refunded_cents,
        },
        funnel: report
            .funnel
            .iter()
            .map(|(stage, p)| FunnelStage {
                stage: stage.as_str().to_owned(),
                orders: p.count,
                p50_ms: p.p50_ms,
                p90_ms: p.p90_ms,
            })
            .collect(),
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/admin/reports/restaurants",
    tag = "reports",
    summary = "Per-restaurant report: orders, revenue, preparation time, rating",
    params(ReportQuery),
    responses(
        (status = 200, description = "Per restaurant with orders placed in the period (an owner: only its own restaurants): outcomes, revenue and refunds, preparation time (accepted → ready) p50/p90, mean rating of their visible reviews. With `Accept: text/csv`: one row per restaurant.", content(
            (RestaurantsReport = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "`invalid_period`, `invalid_bucket`, `invalid_query`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins and restaurant owners only.", body = ErrorBody),
        (status = 422, description = "`invalid_tz`, `invalid_period`, `empty_period`, `unaligned_period`, `period_too_long`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn restaurants_report(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    require_role(&principal, &[Role::Admin, Role::Restaurant])?;
    let (period, tz) = period(&query)?;
    let owner = (principal.role == Role::Restaurant).then_some(principal.user_id);
    let lines: Vec<RestaurantReportLine> =
        usecase::restaurants(state.store.as_ref(), &period, owner)
            .await?
            .into_iter()
            .map(|r| RestaurantReportLine {
                restaurant_id: r.restaurant_id,
                name: r.name,
                orders: r.counts.placed,
                delivered: r.counts.delivered,
                cancelled: r.counts.cancelled,
                rejected: r.counts.rejected,
                revenue_cents: r.counts.charged_cents,
                refunded_cents: r.counts.refunded_cents,
                prepared: r.prep.count,
                prep_p50_ms: r.prep.p50_ms,
                prep_p90_ms: r.prep.p90_ms,
                rating: mean(r.stars, r.ratings),
                ratings: r.ratings,
            })
            .collect();
    if wants_csv(&headers) {
        let mut rows = vec![
            [
                "restaurant_id",
                "name",
                "orders",
                "delivered",
                "cancelled",
                "rejected",
                "revenue_cents",
                "refunded_cents",
                "prepared",
                "prep_p50_ms",
                "prep_p90_ms",
                "rating",
                "ratings",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ];
        for r in &lines {
            rows.push(vec![
                r.restaurant_id.to_string(),
                opt(r.name.as_ref()),
                r.orders.to_string(),
                r.delivered.to_string(),
                r.cancelled.to_string(),
                r.rejected.to_string(),
                r.revenue_cents.to_string(),
                r.refunded_cents.to_string(),
                r.prepared.to_string(),
                opt(r.prep_p50_ms),
                opt(r.prep_p90_ms),
                opt(r.rating),
                r.ratings.to_string(),
            ]);
        }
        return Ok(csv_response(rows));
    }
    Ok(Json(RestaurantsReport {
        period: period_response(&period, tz),
        restaurants: lines,
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/admin/reports/drivers",
    tag = "reports",
    summary = "Per-driver report: deliveries, on-time rate, active hours, rating",
    params(ReportQuery),
    responses(
        (status = 200, description = "Per driver who delivered orders placed in the period or was online in it: deliveries, how many on time (within `on_time_target_s` of placement), time online in the period, mean rating. With `Accept: text/csv`: one row per driver.", content(
            (DriversReport = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "`invalid_period`, `invalid_bucket`, `invalid_query`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 422, description = "`invalid_tz`, `invalid_period`, `empty_period`, `unaligned_period`, `period_too_long`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn drivers_report(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    require_role(&principal, &[Role::Admin])?;
    let (period, tz) = period(&query)?;
    let target_s = state.config.report_on_time_s;
    let on_time_ms = i64::try_from(target_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let now_ms = state.clock.now_ms();
    let lines: Vec<DriverReportLine> =
        usecase::drivers(state.store.as_ref(), &period, on_time_ms, now_ms)
            .await?
            .into_iter()
            .map(|d| DriverReportLine {
                driver_id: d.figures.driver_id,
                deliveries: d.figures.deliveries,
                on_time: d.figures.on_time,
                on_time_rate: usecase::rate(d.figures.on_time, d.figures.deliveries),
                active_ms: d.active_ms,
                active_hours: d.active_ms as f64 / 3_600_000.0,
                rating: mean(d.figures.stars, d.figures.ratings),
                ratings: d.figures.ratings,
            })
            .collect();
    if wants_csv(&headers) {
        let mut rows = vec![
            [
                "driver_id",
                "deliveries",
                "on_time",
                "on_time_rate",
                "active_ms",
                "active_hours",
                "rating",
                "ratings",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ];
        for d in &lines {
            rows.push(vec![
                d.driver_id.to_string(),
                d.deliveries.to_string(),
                d.on_time.to_string(),
                opt(d.on_time_rate),
                d.active_ms.to_string(),
                d.active_hours.to_string(),
                opt(d.rating),
                d.ratings.to_string(),
            ]);
        }
        return Ok(csv_response(rows));
    }
    Ok(Json(DriversReport {
        period: period_response(&period, tz),
        on_time_target_s: target_s,
        drivers: lines,
    })
    .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/admin/reports/rebuild",
    tag = "reports",
    summary = "Rebuild the reports from the event stream",
    description = "Stops the reports consumer, clears its tables and replays every event from the first. Reports read while it replays show what was replayed so far.",
    responses(
        (status = 202, description = "The replay started.", body = RebuildResponse),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn rebuild_reports(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<(StatusCode, Json<RebuildResponse>)> {
    require_role(&principal, &[Role::Admin])?;
    let rebuild = state
        .reports
        .as_ref()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the event stream is not running")))?;
    let replay_up_to = rebuild
        .run(state.clock.now_ms())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(admin = %principal.user_id, replay_up_to, "reports rebuild started");
    Ok((StatusCode::ACCEPTED, Json(RebuildResponse { replay_up_to })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        for (input, want) in [
            ("Pizza", "Pizza"),
            ("Fish, chips", "\"Fish, chips\""),
            ("Say \"hi\"", "\"Say \"\"hi\"\"\""),
            ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
            ("-12", "-12"),
            ("-x", "'-x"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(input), want, "{input}");
        }
    }

    #[test]
    fn instant_shapes_follow_the_pattern() {
        for ok in [
            "2026-12-01",
            "2026-02-30",
            "2026-12-01T08:00",
            "2026-12-01T08:00:00",
            "2026-12-01T08:00:00.5Z",
            "2026-12-01T08:00:00+01:00",
            "2026-12-01T08:00-05:30",
            "2026-12-01\n",
        ] {
            assert!(instant_shaped(ok), "{ok}");
        }
        for bad in [
            "",
            "yesterday",
            "2026-1-01",
            "2026-12-01T8:00",
            "2026-12-01 08:00",
            "2026-12-01T08:00:00.",
            "2026-12-01T08:00:00.1234567890",
            "2026-12-01T08:00+0100",
            "2026-12-01Z",
            "2026-12-01\n\n",
        ] {
            assert!(!instant_shaped(bad), "{bad}");
        }
    }

    #[test]
    fn csv_is_asked_for_by_accept() {
        let ask = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, v.parse().unwrap());
            wants_csv(&h)
        };
        assert!(ask("text/csv"));
        assert!(ask("application/json;q=0.5, text/csv; charset=utf-8"));
        assert!(!ask("application/json"));
        assert!(!ask("*/*"));
        assert!(!wants_csv(&HeaderMap::new()));
    }
}
