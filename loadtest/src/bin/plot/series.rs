//! From runs to series: one point per report (offered load, achieved rate,
//! latency percentiles), grouped by scenario and name, sorted by offered
//! load.
//!
//! A series' name is its label (or the `--legend` text given for
//! `<scenario>_<label>`, e.g. `ingest_peer_now`) plus
//! the settings that change what a point means: WebSocket transport,
//! pings per packet, watchers in `track`. Runs whose scenario and name match
//! are one series.

use std::collections::{BTreeMap, HashMap};

use crate::input::{Latency, Report, Run, Scenario};

/// Latency percentiles of one run, milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// One run on a chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Pings/s (ingest, track) or orders/s offered by the generator.
    pub offered_per_s: f64,
    /// Pings/s received by the server, or orders/s placed.
    pub achieved_per_s: f64,
    /// Ingest: ping to the server's point of record (peer only); track:
    /// ping to screen; orders: placement. `None` without samples.
    pub latency: Option<Percentiles>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub scenario: Scenario,
    pub name: String,
    /// Sorted by offered load.
    pub points: Vec<Point>,
}

/// The chart point of a report, `None` for scenarios without charts or a
/// report missing its scenario's section.
pub fn point(report: &Report) -> Option<Point> {
    match report.scenario {
        Scenario::Ingest => {
            let i = report.ingest.as_ref()?;
            Some(Point {
                offered_per_s: i.offered_per_s,
                achieved_per_s: i.received_per_s,
                latency: i.latency.and_then(percentiles),
            })
        }
        Scenario::Track => {
            let i = report.ingest.as_ref()?;
            Some(Point {
                offered_per_s: i.offered_per_s,
                achieved_per_s: i.received_per_s,
                latency: percentiles(report.track.as_ref()?.latency),
            })
        }
        Scenario::Orders => {
            let o = report.orders.as_ref()?;
            Some(Point {
                offered_per_s: o.target_rate_per_s,
                achieved_per_s: o.rate_per_s,
                latency: percentiles(o.latency),
            })
        }
        Scenario::Other => None,
    }
}

fn percentiles(l: Latency) -> Option<Percentiles> {
    (l.count > 0).then_some(Percentiles {
        p50_ms: l.p50_ms,
        p99_ms: l.p99_ms,
        p999_ms: l.p999_ms,
    })
}

/// The series name of a run; `legends` maps `<scenario>_<label>` to legend
/// text.
pub fn name(run: &Run, legends: &HashMap<String, String>) -> String {
    let r = &run.report;
    let label = legends
        .get(&format!("{}_{}", r.scenario.name(), run.label))
        .cloned()
        .unwrap_or_else(|| run.label.replace('_', " "));
    let mut settings = Vec::new();
    if r.transport == "ws" {
        settings.push("WebSocket".to_owned());
    }
    if r.batch > 1 {
        settings.push(format!("{} pings/packet", r.batch));
    }
    if r.scenario == Scenario::Track {
        settings.push(format!("{} watchers", thousands(r.watchers)));
    }
    if settings.is_empty() {
        label
    } else {
        format!("{label} ({})", settings.join(", "))
    }
}

/// Groups runs into series, ordered by scenario then name (so a name keeps
/// its colour from chart to chart), points by offered load. Runs without a
/// point are left out.
pub fn group(runs: &[Run], legends: &HashMap<String, String>) -> Vec<Series> {
    let mut by_key: BTreeMap<(Scenario, String), Vec<Point>> = BTreeMap::new();
    for run in runs {
        if let Some(p) = point(&run.report) {
            by_key
                .entry((run.report.scenario, name(run, legends)))
                .or_default()
                .push(p);
        }
    }
    by_key
        .into_iter()
        .map(|((scenario, name), mut points)| {
            points.sort_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
            Series {
                scenario,
                name,
                points,
            }
        })
        .collect()
}

/// `12345` → `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::input::{Ingest, Orders, Track};

    fn latency(p50_ms: f64) -> Latency {
        Latency {
            count: 100,
            p50_ms,
            p99_ms: p50_ms * 4.0,
            p999_ms: p50_ms * 8.0,
        }
    }

    fn report(scenario: Scenario, target: &str) -> Report {
        Report {
            scenario,
            target: target.to_owned(),
            transport: "mqtt".to_owned(),
            batch: 1,
            watchers: 0,
            ingest: None,
            track: None,
            orders: None,
        }
    }

    pub(crate) fn ingest(label: &str, target: &str, offered: f64, received: f64) -> Run {
        let mut r = report(Scenario::Ingest, target);
        r.ingest = Some(Ingest {
            offered_per_s: offered,
            received_per_s: received,
            latency: None,
        });
        Run {
            label: label.to_owned(),
            report: r,
        }
    }

    pub(crate) fn orders(label: &str, offered: f64, placed: f64, p50_ms: f64) -> Run {
        let mut r = report(Scenario::Orders, "hexdash");
        r.orders = Some(Orders {
            target_rate_per_s: offered,
            rate_per_s: placed,
            latency: latency(p50_ms),
        });
        Run {
            label: label.to_owned(),
            report: r,
        }
    }

    fn track(watchers: usize, offered: f64, p50_ms: f64) -> Run {
        let mut r = report(Scenario::Track, "hexdash");
        r.watchers = watchers;
        r.ingest = Some(Ingest {
            offered_per_s: offered,
            received_per_s: offered,
            latency: None,
        });
        r.track = Some(Track {
            latency: latency(p50_ms),
        });
        Run {
            label: "hexdash".to_owned(),
            report: r,
        }
    }

    /// (scenario, name, offered loads in order) of each series.
    fn shape(series: &[Series]) -> Vec<(Scenario, &str, Vec<f64>)> {
        series
            .iter()
            .map(|s| {
                let xs = s.points.iter().map(|p| p.offered_per_s).collect();
                (s.scenario, s.name.as_str(), xs)
            })
            .collect()
    }

    #[test]
    fn groups_by_scenario_and_name_sorted_by_offered_load() {
        let runs = vec![
            ingest("peer", "peer-bridge", 150_000.0, 111_051.0),
            ingest("hexdash", "hexdash", 100_000.0, 99_250.0),
            orders("sqlite", 1000.0, 883.0, 285.0),
            ingest("hexdash", "hexdash", 50_000.0, 50_003.0),
            orders("postgres", 10.0, 10.0, 4.7),
            ingest("peer", "peer-bridge", 50_000.0, 50_013.0),
            orders("sqlite", 10.0, 10.0, 3.0),
            ingest("hexdash_after", "hexdash", 150_000.0, 147_539.0),
        ];
        let series = group(&runs, &HashMap::new());
        assert_eq!(
            shape(&series),
            vec![
                (Scenario::Ingest, "hexdash", vec![50_000.0, 100_000.0]),
                (Scenario::Ingest, "hexdash after", vec![150_000.0]),
                (Scenario::Ingest, "peer", vec![50_000.0, 150_000.0]),
                (Scenario::Orders, "postgres", vec![10.0]),
                (Scenario::Orders, "sqlite", vec![10.0, 1000.0]),
            ]
        );
        // Each point keeps its own measurements.
        let sqlite = &series[4].points;
        assert_eq!(sqlite[1].achieved_per_s, 883.0);
        let expected = Percentiles {
            p50_ms: 285.0,
            p99_ms: 1140.0,
            p999_ms: 2280.0,
        };
        assert_eq!(sqlite[1].latency, Some(expected));
        assert_eq!(series[0].points[0].achieved_per_s, 50_003.0);
    }

    #[test]
    fn settings_and_legends_name_the_series() {
        let mut batched = ingest("hexdash", "hexdash", 1e6, 420.0);
        batched.report.batch = 16;
        let mut ws = ingest("hexdash_ws", "hexdash", 1e5, 43_504.0);
        ws.report.transport = "ws".to_owned();
        let runs = vec![
            batched,
            ws,
            ingest("peer_now", "peer-bridge", 1.5e5, 7e4),
            ingest("hexdash", "hexdash", 1e5, 1e5),
            track(1000, 1e5, 2068.0),
            track(100, 2e4, 1.1),
            track(1000, 2e4, 28.5),
        ];
        // Legends are per scenario: `hexdash` in `track` keeps its label.
        let legends = HashMap::from([
            ("ingest_peer_now".to_owned(), "peer, later run".to_owned()),
            ("ingest_hexdash".to_owned(), "hexdash, first run".to_owned()),
        ]);
        let series = group(&runs, &legends);
        assert_eq!(
            shape(&series),
            vec![
                (Scenario::Ingest, "hexdash ws (WebSocket)", vec![1e5]),
                (Scenario::Ingest, "hexdash, first run", vec![1e5]),
                (
                    Scenario::Ingest,
                    "hexdash, first run (16 pings/packet)",
                    vec![1e6]
                ),
                (Scenario::Ingest, "peer, later run", vec![1.5e5]),
                (Scenario::Track, "hexdash (1,000 watchers)", vec![2e4, 1e5]),
                (Scenario::Track, "hexdash (100 watchers)", vec![2e4]),
            ]
        );
        assert_eq!(series[4].points[1].latency.map(|l| l.p50_ms), Some(2068.0));
    }

    #[test]
    fn runs_without_a_point_are_left_out() {
        let mut no_samples = orders("sqlite", 10.0, 0.0, 1.0);
        if let Some(o) = no_samples.report.orders.as_mut() {
            o.latency.count = 0;
        }
        let mut missing_section = ingest("hexdash", "hexdash", 1.0, 1.0);
        missing_section.report.ingest = None;
        let mut nearby = ingest("hexdash", "hexdash", 1.0, 1.0);
        nearby.report.scenario = Scenario::Other;
        let series = group(&[no_samples, missing_section, nearby], &HashMap::new());
        // The orders run has a point (its rate) but no latency.
        assert_eq!(
            shape(&series),
            vec![(Scenario::Orders, "sqlite", vec![10.0])]
        );
        assert_eq!(series[0].points[0].latency, None);
    }

    #[test]
    fn thousands_separators() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (12_345, "12,345"),
            (1_000_000, "1,000,000"),
        ] {
            assert_eq!(thousands(n), s, "{n}");
        }
    }
}
