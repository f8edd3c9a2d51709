//! Reading `loadtest --json` reports: only the fields the charts use (serde
//! skips the rest, so older and newer reports read alike), and the run's
//! label, taken from its file name.
//!
//! File names follow `<scenario>_<label words>_<parameters>.json`, as
//! `loadtest/scripts/session.sh` writes them: the label is every word of the
//! stem (split on `_`) that holds no digit, without a leading word equal to
//! the scenario. `ingest_peer_now_10k_15hz` → `peer_now`,
//! `orders_sqlite_500` → `sqlite`. A stem with no such word takes the
//! report's target as its label.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// The scenarios that have charts; every other one reads as `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Ingest,
    Track,
    Orders,
    #[serde(other)]
    Other,
}

impl Scenario {
    /// The name `loadtest` gives the scenario (and the first word of its
    /// report files).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Ingest => "ingest",
            Scenario::Track => "track",
            Scenario::Orders => "orders",
            Scenario::Other => "other",
        }
    }
}

/// The part of `loadtest`'s `Report` the charts read.
#[derive(Debug, Deserialize)]
pub struct Report {
    pub scenario: Scenario,
    /// `hexdash` or `peer-bridge`.
    pub target: String,
    /// `mqtt` or `ws`.
    pub transport: String,
    /// Pings per packet.
    pub batch: usize,
    pub watchers: usize,
    pub ingest: Option<Ingest>,
    pub track: Option<Track>,
    pub orders: Option<Orders>,
}

#[derive(Debug, Deserialize)]
pub struct Ingest {
    pub offered_per_s: f64,
    pub received_per_s: f64,
    pub latency: Option<Latency>,
}

#[derive(Debug, Deserialize)]
pub struct Track {
    /// Ping to screen.
    pub latency: Latency,
}

#[derive(Debug, Deserialize)]
pub struct Orders {
    pub target_rate_per_s: f64,
    pub rate_per_s: f64,
    pub latency: Latency,
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub struct Latency {
    /// Samples; the percentiles mean nothing when 0.
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// One report and the label of the series it belongs to.
#[derive(Debug)]
pub struct Run {
    /// Words joined by `_`, e.g. `hexdash_after`.
    pub label: String,
    pub report: Report,
}

pub fn read(path: &Path) -> anyhow::Result<Run> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a loadtest JSON report", path.display()))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{} has no UTF-8 file name", path.display()))?;
    let label = label_from_stem(stem, report.scenario).unwrap_or_else(|| report.target.clone());
    Ok(Run { label, report })
}

/// The label words of a file stem (see the module docs), `None` if none.
pub fn label_from_stem(stem: &str, scenario: Scenario) -> Option<String> {
    let mut words: Vec<&str> = stem.split('_').collect();
    if words.first() == Some(&scenario.name()) {
        words.remove(0);
    }
    let label = words
        .into_iter()
        .filter(|w| !w.is_empty() && !w.bytes().any(|b| b.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join("_");
    (!label.is_empty()).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(stem: &str, scenario: Scenario, expected: Option<&str>) {
        assert_eq!(
            label_from_stem(stem, scenario).as_deref(),
            expected,
            "{stem} ({scenario:?})"
        );
    }

    #[test]
    fn labels_from_file_names() {
        check("ingest_hexdash_10k_5hz", Scenario::Ingest, Some("hexdash"));
        check(
            "ingest_peer_now_10k_15hz",
            Scenario::Ingest,
            Some("peer_now"),
        );
        check(
            "ingest_hexdash_10k_100hz_b16",
            Scenario::Ingest,
            Some("hexdash"),
        );
        check("orders_sqlite_500", Scenario::Orders, Some("sqlite"));
        check(
            "track_hexdash_batched_push_10k_10hz_w1000",
            Scenario::Track,
            Some("hexdash_batched_push"),
        );
        // Only a leading word equal to the scenario goes.
        check("orders_sqlite_500", Scenario::Track, Some("orders_sqlite"));
        check("sqlite__orders", Scenario::Orders, Some("sqlite_orders"));
        check("orders_10", Scenario::Orders, None);
        check("", Scenario::Ingest, None);
    }

    #[test]
    fn reads_the_fields_it_needs_and_skips_the_rest() {
        let json = r#"{
            "scenario": "orders", "target": "hexdash", "transport": "mqtt",
            "seed": 1, "batch": 1, "watchers": 0, "ingest": null, "track": null,
            "nearby": null, "processes": [],
            "orders": {"target_rate_per_s": 100.0, "rate_per_s": 99.5, "ok": 3,
                       "latency": {"count": 3, "p50_ms": 2.0, "p99_ms": 9.0,
                                   "p999_ms": 12.5, "max_ms": 13.0}}
        }"#;
        let r: Report = serde_json::from_str(json).expect("valid report");
        assert_eq!(r.scenario, Scenario::Orders);
        let o = r.orders.expect("orders section");
        assert_eq!((o.target_rate_per_s, o.rate_per_s), (100.0, 99.5));
        assert_eq!(o.latency.p999_ms, 12.5);

        let nearby = json.replace(r#""scenario": "orders""#, r#""scenario": "nearby""#);
        let r: Report = serde_json::from_str(&nearby).expect("valid report");
        assert_eq!(r.scenario, Scenario::Other);
    }
}
