//! Weekly opening hours in a restaurant's own time zone.
//!
//! Hours are local wall-clock times ("open 11:00–22:00 on Mondays in
//! Europe/Stockholm"), so they stay right across daylight-saving changes: the
//! UTC instant is converted to local time with the bundled IANA database
//! (`jiff`, `tzdb-bundle-always`, so the answer never depends on the host's
//! zoneinfo) and compared with the schedule. On a spring-forward day the
//! skipped hour simply never occurs; on a fall-back day the repeated hour is
//! judged by its wall-clock time both times.
//!
//! Wire shape ([`HoursSpec`], the serde form of [`WeeklyHours`]):
//!
//! ```json
//! {"time_zone": "Europe/Stockholm",
//!  "weekly": {"mon": [["11:00", "22:00"]], "fri": [["11:00", "02:00"]]}}
//! ```
//!
//! - Each interval is `[open, close]` in `"HH:MM"` (two digits each). A close
//!   at or before the open crosses midnight (`["11:00", "02:00"]` on Friday
//!   runs until 02:00 on Saturday; Sunday's wraps into Monday). `"24:00"` is
//!   accepted as a close only; `open == close` is an error (empty interval).
//! - Intervals are half-open: open at `open`, closed from `close` on.
//! - A missing day, or an empty list, means closed all day.
//! - Intervals of the whole week must not overlap (touching is fine).

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use thiserror::Error;

const MINUTES_PER_DAY: u32 = 24 * 60;
/// Minutes in a week: the period of every schedule.
pub const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;
/// Intervals allowed per day: generous for split shifts, small enough that
/// checking a schedule is a short scan.
pub const MAX_INTERVALS_PER_DAY: usize = 8;

/// A day of the week, as the wire names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// Monday is 0.
    fn index(self) -> u32 {
        self as u32
    }

    fn name(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self as usize]
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The intervals of one day, `[open, close]` as `"HH:MM"` strings.
pub type DayHours = Vec<(String, String)>;

/// Opening hours as written: what the api stores and returns. Parse it into
/// [`WeeklyHours`] to use it (deserialising `WeeklyHours` does both).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSpec {
    /// An IANA time zone name, e.g. `Europe/Stockholm`.
    pub time_zone: String,
    /// Intervals per day; a missing day is closed.
    #[serde(default)]
    pub weekly: BTreeMap<Day, DayHours>,
}

/// Why a schedule was refused. Messages are safe to show to the client.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HoursError {
    #[error("unknown time zone {0:?} (expected an IANA name such as \"Europe/Stockholm\")")]
    UnknownTimeZone(String),
    #[error(
        "{day}: {value:?} is not a time (expected \"HH:MM\" from 00:00 to 23:59; 24:00 only as a closing time)"
    )]
    BadTime { day: Day, value: String },
    #[error("{day}: interval {open}–{close} is empty (opening and closing time are equal)")]
    EmptyInterval {
        day: Day,
        open: String,
        close: String,
    },
    #[error("{day}: more than {MAX_INTERVALS_PER_DAY} intervals")]
    TooManyIntervals { day: Day },
    #[error("{0} overlaps {1}")]
    Overlap(Span, Span),
}

/// One interval as written, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub day: Day,
    pub open: String,
    pub close: String,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}–{}", self.day, self.open, self.close)
    }
}

/// One interval in minutes since Monday 00:00 local time, half-open.
/// `end_min` may exceed a week when Sunday's last interval crosses midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WeekInterval {
    start_min: u32,
    end_min: u32,
}

/// Validated weekly opening hours. Build with [`WeeklyHours::parse`] or by
/// deserialising the [`HoursSpec`] shape; serialises back to the spec as it
/// was written.
#[derive(Clone, Debug)]
pub struct WeeklyHours {
    spec: HoursSpec,
    zone: TimeZone,
    /// Sorted by start, non-overlapping (including across the week's wrap).
    intervals: Vec<WeekInterval>,
}

impl PartialEq for WeeklyHours {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl WeeklyHours {
    /// Validates `spec`: known zone, well-formed times, no empty or
    /// overlapping intervals, at most [`MAX_INTERVALS_PER_DAY`] per day.
    pub fn parse(spec: HoursSpec) -> Result<Self, HoursError> {
        let zone = TimeZone::get(&spec.time_zone)
            .map_err(|_| HoursError::UnknownTimeZone(spec.time_zone.clone()))?;
        let mut spans: Vec<(WeekInterval, Span)> = Vec::new();
        for (&day, list) in &spec.weekly {
            if list.len() > MAX_INTERVALS_PER_DAY {
                return Err(HoursError::TooManyIntervals { day });
            }
            for (open, close) in list {
                let open_min = parse_hhmm(open)
                    .filter(|&m| m < MINUTES_PER_DAY)
                    .ok_or_else(|| HoursError::BadTime {
                        day,
                        value: open.clone(),
                    })?;
                let close_min = parse_hhmm(close).ok_or_else(|| HoursError::BadTime {
                    day,
                    value: close.clone(),
                })?;
                if open_min == close_min {
                    return Err(HoursError::EmptyInterval {
                        day,
                        open: open.clone(),
                        close: close.clone(),
                    });
                }
                // A close at or before the open is on the next day.
                let close_min = if close_min < open_min {
                    close_min + MINUTES_PER_DAY
                } else {
                    close_min
                };
                let base = day.index() * MINUTES_PER_DAY;
                spans.push((
                    WeekInterval {
                        start_min: base + open_min,
                        end_min: base + close_min,
                    },
                    Span {
                        day,
                        open: open.clone(),
                        close: close.clone(),
                    },
                ));
            }
        }
        spans.sort_by_key(|(iv, _)| iv.start_min);
        check_overlaps(&spans)?;
        let intervals = spans.into_iter().map(|(iv, _)| iv).collect();
        Ok(Self {
            spec,
            zone,
            intervals,
        })
    }

    /// The schedule as written.
    pub fn spec(&self) -> &HoursSpec {
        &self.spec
    }

    /// The IANA name the schedule was written with.
    pub fn time_zone(&self) -> &str {
        &self.spec.time_zone
    }

    /// Whether the schedule is open at the instant `at_utc_ms` (Unix
    /// milliseconds). Instants outside jiff's range (years −9999..=9999) are
    /// closed.
    pub fn is_open(&self, at_utc_ms: i64) -> bool {
        self.minute_of_week(at_utc_ms)
            .is_some_and(|m| self.is_open_at_minute(m))
    }

    /// Local minutes since Monday 00:00 in this schedule's zone at
    /// `at_utc_ms`; `None` outside jiff's range. Lets a caller convert once
    /// per zone and test many schedules with [`Self::is_open_at_minute`].
    pub fn minute_of_week(&self, at_utc_ms: i64) -> Option<u32> {
        let ts = Timestamp::from_millisecond(at_utc_ms).ok()?;
        let local = self.zone.to_datetime(ts);
        // Weekday offset is 0..=6, hour 0..=23, minute 0..=59: never negative.
        let day = u32::try_from(local.weekday().to_monday_zero_offset()).ok()?;
        let hour = u32::try_from(local.hour()).ok()?;
        let minute = u32::try_from(local.minute()).ok()?;
        Some(day * MINUTES_PER_DAY + hour * 60 + minute)
    }

    /// Whether the schedule is open at local minute-of-week `m` (< a week).
    pub fn is_open_at_minute(&self, m: u32) -> bool {
        let wrapped = m + MINUTES_PER_WEEK;
        self.intervals.iter().any(|iv| {
            (iv.start_min <= m && m < iv.end_min)
                || (iv.start_min <= wrapped && wrapped < iv.end_min)
        })
    }
}

impl TryFrom<HoursSpec> for WeeklyHours {
    type Error = HoursError;
    fn try_from(spec: HoursSpec) -> Result<Self, HoursError> {
        Self::parse(spec)
    }
}

impl From<WeeklyHours> for HoursSpec {
    fn from(h: WeeklyHours) -> Self {
        h.spec
    }
}

impl Serialize for WeeklyHours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.spec.serialize(s)
    }
}

impl<'de> Deserialize<'de> for WeeklyHours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = HoursSpec::deserialize(d)?;
        Self::parse(spec).map_err(serde::de::Error::custom)
    }
}

/// `"HH:MM"` with two digits each, 00:00–24:00, as minutes since midnight.
fn parse_hhmm(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let digit = |i: usize| b[i].is_ascii_digit().then(|| u32::from(b[i] - b'0'));
    let hour = digit(0)? * 10 + digit(1)?;
    let minute = digit(3)? * 10 + digit(4)?;
    match (hour, minute) {
        (0..=23, 0..=59) => Some(hour * 60 + minute),
        (24, 0) => Some(MINUTES_PER_DAY),
        _ => None,
    }
}

/// `spans` sorted by start. Each interval is shorter than a day, so comparing
/// every start with the furthest end so far finds any overlap; the intervals
/// that run past Sunday midnight are then checked against Monday's first.
fn check_overlaps(spans: &[(WeekInterval, Span)]) -> Result<(), HoursError> {
    let mut furthest: Option<&(WeekInterval, Span)> = None;
    for cur in spans {
        if let Some(prev) = furthest
            && cur.0.start_min < prev.0.end_min
        {
            return Err(HoursError::Overlap(prev.1.clone(), cur.1.clone()));
        }
        if furthest.is_none_or(|f| cur.0.end_min > f.0.end_min) {
            furthest = Some(cur);
        }
    }
    if let (Some(first), Some(last)) = (spans.first(), furthest)
        && last.0.end_min > MINUTES_PER_WEEK
        && first.0.start_min < last.0.end_min - MINUTES_PER_WEEK
    {
        return Err(HoursError::Overlap(last.1.clone(), first.1.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC date-time, for readable test instants.
    fn utc(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn hours(zone: &str, days: &[(Day, &str, &str)]) -> Result<WeeklyHours, HoursError> {
        let mut weekly: BTreeMap<Day, DayHours> = BTreeMap::new();
        for &(day, open, close) in days {
            weekly
                .entry(day)
                .or_default()
                .push((open.to_owned(), close.to_owned()));
        }
        WeeklyHours::parse(HoursSpec {
            time_zone: zone.to_owned(),
            weekly,
        })
    }

    /// `(instant in UTC, expected open)` cases against one schedule.
    fn check(h: &WeeklyHours, cases: &[(&str, bool)]) {
        for &(at, expected) in cases {
            assert_eq!(h.is_open(utc(at)), expected, "at {at}");
        }
    }

    #[test]
    fn parses_the_wire_shape() {
        let json = r#"{"time_zone": "Europe/Stockholm",
            "weekly": {"mon": [["11:00","22:00"]], "fri": [["11:00","02:00"]]}}"#;
        let h: WeeklyHours = serde_json::from_str(json).unwrap();
        assert_eq!(h.time_zone(), "Europe/Stockholm");
        assert_eq!(h.spec().weekly.len(), 2);
        let back = serde_json::to_value(&h).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"time_zone": "Europe/Stockholm",
                "weekly": {"mon": [["11:00","22:00"]], "fri": [["11:00","02:00"]]}})
        );
        let bad = r#"{"time_zone": "Mars/Olympus", "weekly": {}}"#;
        let err = serde_json::from_str::<WeeklyHours>(bad).unwrap_err();
        assert!(err.to_string().contains("unknown time zone"), "{err}");
        let unknown_day = r#"{"time_zone": "UTC", "weekly": {"funday": []}}"#;
        assert!(serde_json::from_str::<WeeklyHours>(unknown_day).is_err());
    }

    #[test]
    fn validation_errors() {
        use Day::*;
        let check = |days: &[(Day, &str, &str)], expected: Option<&str>| {
            let got = hours("Europe/Stockholm", days).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), expected, "{days:?}");
        };
        check(&[(Mon, "11:00", "22:00")], None);
        check(&[(Mon, "00:00", "24:00"), (Tue, "00:00", "24:00")], None);
        check(&[(Mon, "11:00", "14:00"), (Mon, "14:00", "22:00")], None);
        check(&[(Sun, "18:00", "02:00"), (Mon, "02:00", "10:00")], None);
        check(
            &[(Mon, "9:00", "22:00")],
            Some(
                "mon: \"9:00\" is not a time (expected \"HH:MM\" from 00:00 to 23:59; 24:00 only as a closing time)",
            ),
        );
        assert!(matches!(
            hours("UTC", &[(Tue, "11:00", "25:00")]),
            Err(HoursError::BadTime { day: Tue, .. })
        ));
        assert!(matches!(
            hours("UTC", &[(Tue, "11:60", "22:00")]),
            Err(HoursError::BadTime { .. })
        ));
        assert!(matches!(
            hours("UTC", &[(Tue, "24:00", "02:00")]),
            Err(HoursError::BadTime { .. })
        ));
        assert!(matches!(
            hours("UTC", &[(Tue, "ab:cd", "02:00")]),
            Err(HoursError::BadTime { .. })
        ));
        check(
            &[(Wed, "12:00", "12:00")],
            Some("wed: interval 12:00–12:00 is empty (opening and closing time are equal)"),
        );
        check(
            &[(Mon, "11:00", "15:00"), (Mon, "14:00", "22:00")],
            Some("mon 11:00–15:00 overlaps mon 14:00–22:00"),
        );
        // Friday night running into Saturday's lunch.
        check(
            &[(Fri, "18:00", "12:00"), (Sat, "11:00", "22:00")],
            Some("fri 18:00–12:00 overlaps sat 11:00–22:00"),
        );
        // Sunday night wrapping into Monday morning.
        check(
            &[(Mon, "01:00", "10:00"), (Sun, "20:00", "02:00")],
            Some("sun 20:00–02:00 overlaps mon 01:00–10:00"),
        );
        let many: Vec<_> = (0..9).map(|_| (Thu, "01:00", "02:00")).collect();
        check(&many, Some("thu: more than 8 intervals"));
        assert_eq!(
            hours("Europe/Stokholm", &[]).unwrap_err(),
            HoursError::UnknownTimeZone("Europe/Stokholm".into())
        );
    }

    #[test]
    fn crossing_midnight() {
        // Friday 11:00–02:00 in Stockholm (CET, UTC+1, in November).
        let h = hours("Europe/Stockholm", &[(Day::Fri, "11:00", "02:00")]).unwrap();
        check(
            &h,
            &[
                ("2025-11-21T09:59:59Z", false), // Fri 10:59:59 local
                ("2025-11-21T10:00:00Z", true),  // Fri 11:00
                ("2025-11-21T22:59:00Z", true),  // Fri 23:59
                ("2025-11-22T00:59:59Z", true),  // Sat 01:59:59
                ("2025-11-22T01:00:00Z", false), // Sat 02:00
                ("2025-11-14T23:30:00Z", true),  // the Friday before, 00:30 Sat
                ("2025-11-20T23:30:00Z", false), // Thu night, 00:30 Fri
            ],
        );
    }

    #[test]
    fn sunday_wraps_into_monday() {
        let h = hours("UTC", &[(Day::Sun, "20:00", "03:00")]).unwrap();
        check(
            &h,
            &[
                ("2025-11-23T19:59:00Z", false), // Sun 19:59
                ("2025-11-23T20:00:00Z", true),  // Sun 20:00
                ("2025-11-24T00:00:00Z", true),  // Mon 00:00
                ("2025-11-24T02:59:59Z", true),  // Mon 02:59:59
                ("2025-11-24T03:00:00Z", false), // Mon 03:00
                ("2025-11-17T01:00:00Z", true),  // the Monday before
                ("2025-11-25T01:00:00Z", false), // Tuesday
            ],
        );
    }

    #[test]
    fn daylight_saving_changes_in_stockholm() {
        // 2025-03-30: clocks go from 02:00 CET to 03:00 CEST (01:00 UTC).
        // 2025-10-26: clocks go from 03:00 CEST back to 02:00 CET (01:00 UTC).
        let every_day: Vec<_> = Day::ALL.iter().map(|&d| (d, "11:00", "22:00")).collect();
        let h = hours("Europe/Stockholm", &every_day).unwrap();
        check(
            &h,
            &[
                // Saturday before spring-forward: UTC+1, opens 10:00 UTC.
                ("2025-03-29T09:30:00Z", false),
                ("2025-03-29T10:00:00Z", true),
                ("2025-03-29T20:59:00Z", true),
                ("2025-03-29T21:00:00Z", false),
                // The change day itself: UTC+2 from 01:00 UTC, opens 09:00 UTC.
                ("2025-03-30T08:59:00Z", false),
                ("2025-03-30T09:30:00Z", true),
                ("2025-03-30T19:59:00Z", true),
                ("2025-03-30T20:00:00Z", false),
                // Fall-back day: UTC+1 again from 01:00 UTC, opens 10:00 UTC.
                ("2025-10-26T09:30:00Z", false),
                ("2025-10-26T10:00:00Z", true),
                ("2025-10-26T21:00:00Z", false),
                ("2025-10-25T09:30:00Z", true), // the day before, still UTC+2
            ],
        );
        // An interval spanning the skipped hour: 01:00–04:00 local is two
        // real hours on spring-forward night.
        let night = hours("Europe/Stockholm", &[(Day::Sun, "01:00", "04:00")]).unwrap();
        check(
            &night,
            &[
                ("2025-03-29T23:59:00Z", false), // 00:59 CET
                ("2025-03-30T00:00:00Z", true),  // 01:00 CET
                ("2025-03-30T01:00:00Z", true),  // 03:00 CEST
                ("2025-03-30T01:59:00Z", true),  // 03:59 CEST
                ("2025-03-30T02:00:00Z", false), // 04:00 CEST
            ],
        );
    }

    #[test]
    fn minute_of_week_and_out_of_range() {
        let h = hours("UTC", &[(Day::Mon, "00:00", "24:00")]).unwrap();
        // 2025-11-24 is a Monday.
        assert_eq!(h.minute_of_week(utc("2025-11-24T00:00:00Z")), Some(0));
        assert_eq!(
            h.minute_of_week(utc("2025-11-23T23:59:00Z")),
            Some(MINUTES_PER_WEEK - 1)
        );
        assert!(!h.is_open(i64::MAX));
        assert!(!h.is_open(i64::MIN));
    }
}
