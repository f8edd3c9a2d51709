//! The end-of-run report: one serialisable struct (printed as JSON with
//! `--json`, as text otherwise) and the SLO checks that decide the exit
//! code.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::{Scenario, Target, Transport};
use crate::proc_stats::ProcessReport;
use crate::stats::LatencySummary;

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub target: Target,
    pub transport: Transport,
    /// When the measurement window opened, Unix ms.
    pub started_at_ms: i64,
    pub seed: u64,
    /// Length of the measurement window, seconds.
    pub duration_s: f64,
    pub drivers: usize,
    pub ping_hz: f64,
    pub batch: usize,
    pub watchers: usize,
    pub ingest: Option<IngestReport>,
    /// Dispatchers' area boxes.
    pub track: Option<TrackReport>,
    /// Customers watching their own order (`--deliveries`).
    pub deliveries: Option<TrackReport>,
    pub nearby: Option<NearbyReport>,
    pub orders: Option<OrdersReport>,
    /// Customers' notification feeds (`--notify-feeds`): `frames` and
    /// `positions` both count notifications; latency is event to screen.
    pub notifications: Option<TrackReport>,
    /// The servers under test, and the generator itself.
    pub processes: Vec<ProcessReport>,
    pub slo: Vec<SloCheck>,
    pub notes: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    pub connected: u64,
    /// Time to connect every driver, seconds.
    pub connect_s: f64,
    pub connect_failed: u64,
    pub disconnected: u64,
    /// drivers × ping_hz.
    pub offered_per_s: f64,
    pub sent: u64,
    pub sent_per_s: f64,
    /// Not sent: the socket was full (the server did not keep up).
    pub blocked: u64,
    /// Not sent: the generator fell behind its schedule.
    pub missed: u64,
    /// Received by the server (hexdash: its `/metrics`; peer: the bridge).
    pub received: u64,
    pub received_per_s: f64,
    /// hexdash: applied to the index; peer: written to Redis.
    pub applied: u64,
    pub rejected: u64,
    pub stale_or_duplicate: u64,
    /// `sent - received`, never negative.
    pub lost: u64,
    pub loss_pct: f64,
    /// Scheduled-to-sent delay in the generator: large values mean the
    /// generator, not the server, limited the run.
    pub generator_lag: LatencySummary,
    /// Ping `ts` to the point named by `latency_of`.
    pub latency: Option<LatencySummary>,
    pub latency_of: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct TrackReport {
    pub connected: u64,
    /// Time to connect and subscribe every watcher, seconds.
    pub connect_s: f64,
    pub connect_failed: u64,
    pub disconnected: u64,
    pub frames: u64,
    pub positions: u64,
    pub positions_per_s: f64,
    pub error_messages: u64,
    /// Ping `ts` to the watcher's receipt of the position.
    pub latency: LatencySummary,
}

#[derive(Debug, Default, Serialize)]
pub struct NearbyReport {
    /// `closed` or `open`.
    pub mode: String,
    pub conns: usize,
    pub target_rate_per_s: f64,
    pub ok: u64,
    pub errors: u64,
    pub dropped: u64,
    pub rate_per_s: f64,
    pub mean_results: f64,
    pub latency: LatencySummary,
}

#[derive(Debug, Default, Serialize)]
pub struct OrdersReport {
    pub target_rate_per_s: f64,
    pub ok: u64,
    pub errors: u64,
    pub dropped: u64,
    pub rate_per_s: f64,
    pub latency: LatencySummary,
}

/// Named measurements an SLO flag applies to (`None`: not measured).
pub type Subjects = Vec<(&'static str, Option<f64>)>;

/// One SLO flag against its measured value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SloCheck {
    pub what: String,
    pub limit: f64,
    /// `None` when nothing was measured (which fails the check).
    pub actual: Option<f64>,
    pub ok: bool,
}

/// Checks `--max-p99-ms` against every latency the scenario is about and
/// `--min-rate` against its rates. A missing measurement fails.
pub fn slo_checks(
    p99s_ms: &[(&str, Option<f64>)],
    rates: &[(&str, Option<f64>)],
    max_p99_ms: Option<f64>,
    min_rate: Option<f64>,
) -> Vec<SloCheck> {
    let mut checks = Vec::new();
    if let Some(limit) = max_p99_ms {
        for (what, actual) in p99s_ms {
            checks.push(SloCheck {
                what: format!("{what} p99 ms <= {limit}"),
                limit,
                actual: *actual,
                ok: actual.is_some_and(|a| a <= limit),
            });
        }
    }
    if let Some(limit) = min_rate {
        for (what, actual) in rates {
            checks.push(SloCheck {
                what: format!("{what} >= {limit}"),
                limit,
                actual: *actual,
                ok: actual.is_some_and(|a| a >= limit),
            });
        }
    }
    checks
}

impl Report {
    /// The latencies and rates the SLO flags apply to in this scenario.
    pub fn slo_subjects(&self) -> (Subjects, Subjects) {
        let p99 = |s: &LatencySummary| (s.count > 0).then_some(s.p99_ms);
        let ingest_rate = (
            "pings received/s",
            self.ingest.as_ref().map(|i| i.received_per_s),
        );
        let ingest_p99 = (
            "ingest latency",
            self.ingest
                .as_ref()
                .and_then(|i| i.latency.as_ref())
                .and_then(p99),
        );
        let track_p99 = (
            "ping-to-screen",
            self.track.as_ref().and_then(|t| p99(&t.latency)),
        );
        let deliveries_p99 = (
            "customer ping-to-screen",
            self.deliveries.as_ref().and_then(|t| p99(&t.latency)),
        );
        let nearby_p99 = ("nearby", self.nearby.as_ref().and_then(|n| p99(&n.latency)));
        let nearby_rate = (
            "nearby queries/s",
            self.nearby.as_ref().map(|n| n.rate_per_s),
        );
        let orders_p99 = (
            "order placement",
            self.orders.as_ref().and_then(|o| p99(&o.latency)),
        );
        let orders_rate = ("orders/s", self.orders.as_ref().map(|o| o.rate_per_s));
        let notifications_p99 = (
            "notification event-to-screen",
            self.notifications.as_ref().and_then(|t| p99(&t.latency)),
        );
        match self.scenario {
            Scenario::Ingest => (vec![ingest_p99], vec![ingest_rate]),
            Scenario::Track => {
                let mut p99s = Vec::new();
                if self.track.is_some() || self.deliveries.is_none() {
                    p99s.push(track_p99);
                }
                if self.deliveries.is_some() {
                    p99s.push(deliveries_p99);
                }
                (p99s, vec![ingest_rate])
            }
            Scenario::Nearby | Scenario::Search => (vec![nearby_p99], vec![nearby_rate]),
            Scenario::Orders => {
                let mut p99s = vec![orders_p99];
                if self.notifications.is_some() {
                    p99s.push(notifications_p99);
                }
                (p99s, vec![orders_rate])
            }
            Scenario::Mixed => {
                let mut p99s = vec![track_p99, nearby_p99];
                if self.deliveries.is_some() {
                    p99s.push(deliveries_p99);
                }
                if self.orders.is_some() {
                    p99s.push(orders_p99);
                }
                if self.notifications.is_some() {
                    p99s.push(notifications_p99);
                }
                (p99s, vec![ingest_rate])
            }
            Scenario::Accounts => (Vec::new(), Vec::new()),
        }
    }

    pub fn passed(&self) -> bool {
        self.slo.iter().all(|c| c.ok)
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "== loadtest {:?} against {:?} ({:?}), seed {}, {:.1} s window",
            self.scenario, self.target, self.transport, self.seed, self.duration_s
        );
        let _ = writeln!(
            s,
            "   {} drivers at {} Hz (batch {}), {} watchers",
            self.drivers, self.ping_hz, self.batch, self.watchers
        );
        if let Some(i) = &self.ingest {
            let _ = writeln!(
                s,
                "ingest: offered {:.0}/s, sent {} ({:.0}/s), received {} ({:.0}/s), applied {}, lost {} ({:.2}%)",
                i.offered_per_s,
                i.sent,
                i.sent_per_s,
                i.received,
                i.received_per_s,
                i.applied,
                i.lost,
                i.loss_pct
            );
            let _ = writeln!(
                s,
                "        connected {} in {:.1}s (failed {}, dropped later {}), blocked {}, missed {}, rejected {}, stale/dup {}",
                i.connected,
                i.connect_s,
                i.connect_failed,
                i.disconnected,
                i.blocked,
                i.missed,
                i.rejected,
                i.stale_or_duplicate
            );
            let _ = writeln!(s, "        generator lag {}", fmt_latency(&i.generator_lag));
            if let (Some(l), Some(of)) = (&i.latency, &i.latency_of) {
                let _ = writeln!(s, "        latency ({of}) {}", fmt_latency(l));
            }
        }
        for (label, who, t) in [
            ("track:  ", "watchers", &self.track),
            ("deliver:", "customers", &self.deliveries),
        ] {
            let Some(t) = t else { continue };
            let _ = writeln!(
                s,
                "{label} {} {who} connected in {:.1}s (failed {}, dropped {}), {} frames, {} positions ({:.0}/s), errors {}",
                t.connected,
                t.connect_s,
                t.connect_failed,
                t.disconnected,
                t.frames,
                t.positions,
                t.positions_per_s,
                t.error_messages
            );
            let _ = writeln!(s, "         ping-to-screen {}", fmt_latency(&t.latency));
        }
        if let Some(n) = &self.nearby {
            // Search runs through the same query machinery.
            let (label, found) = if self.scenario == Scenario::Search {
                ("search", "restaurants")
            } else {
                ("nearby", "drivers")
            };
            let _ = writeln!(
                s,
                "{label}: {} loop, {} conns, {} ok ({:.0}/s), errors {}, dropped {}, {:.1} {found} per answer",
                n.mode, n.conns, n.ok, n.rate_per_s, n.errors, n.dropped, n.mean_results
            );
            let _ = writeln!(s, "        latency {}", fmt_latency(&n.latency));
        }
        if let Some(o) = &self.orders {
            let _ = writeln!(
                s,
                "orders: {} ok ({:.1}/s of {:.1}/s offered), errors {}, dropped {}",
                o.ok, o.rate_per_s, o.target_rate_per_s, o.errors, o.dropped
            );
            let _ = writeln!(s, "        latency {}", fmt_latency(&o.latency));
        }
        if let Some(t) = &self.notifications {
            let _ = writeln!(
                s,
                "notify: {} feeds connected in {:.1}s (failed {}, dropped {}), {} notifications ({:.0}/s), errors {}",
                t.connected,
                t.connect_s,
                t.connect_failed,
                t.disconnected,
                t.positions,
                t.positions_per_s,
                t.error_messages
            );
            let _ = writeln!(s, "        event-to-screen {}", fmt_latency(&t.latency));
        }
        for p in &self.processes {
            let members = if p.processes > 1 {
                format!(" and children, {} processes", p.processes)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "process {} (pid {}{members}): CPU {:.0}% of a core, RSS {:.1} -> {:.1} MiB",
                p.name, p.pid, p.cpu_pct, p.rss_mib_start, p.rss_mib_end
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        for c in &self.slo {
            let actual = c
                .actual
                .map_or("nothing measured".to_owned(), |a| format!("{a:.2}"));
            let verdict = if c.ok { "ok" } else { "MISSED" };
            let _ = writeln!(s, "SLO {}: {actual} {verdict}", c.what);
        }
        s
    }
}

fn fmt_latency(l: &LatencySummary) -> String {
    if l.count == 0 {
        return "n/a (no samples)".to_owned();
    }
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} samples)",
        l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        p99s: &[(&str, Option<f64>)],
        rates: &[(&str, Option<f64>)],
        max_p99: Option<f64>,
        min_rate: Option<f64>,
        expected: &[bool],
    ) {
        let got: Vec<bool> = slo_checks(p99s, rates, max_p99, min_rate)
            .iter()
            .map(|c| c.ok)
            .collect();
        assert_eq!(got, expected, "{p99s:?} {rates:?} {max_p99:?} {min_rate:?}");
    }

    #[test]
    fn slo_logic() {
        let lat = [("a", Some(10.0))];
        let rate = [("r", Some(1000.0))];
        check(&lat, &rate, None, None, &[]);
        check(&lat, &rate, Some(20.0), None, &[true]);
        check(&lat, &rate, Some(10.0), None, &[true]);
        check(&lat, &rate, Some(9.9), None, &[false]);
        check(&lat, &rate, None, Some(1000.0), &[true]);
        check(&lat, &rate, None, Some(1000.1), &[false]);
        check(&lat, &rate, Some(20.0), Some(2000.0), &[true, false]);
        // Nothing measured fails.
        check(
            &[("a", None)],
            &[("r", None)],
            Some(20.0),
            Some(1.0),
            &[false, false],
        );
        // Every subject is checked.
        check(
            &[("a", Some(5.0)), ("b", Some(50.0))],
            &[],
            Some(20.0),
            None,
            &[true, false],
        );
    }

    #[test]
    fn subjects_follow_the_scenario() {
        let mut r = Report {
            scenario: Scenario::Track,
            target: Target::Hexdash,
            transport: Transport::Mqtt,
            started_at_ms: 0,
            seed: 1,
            duration_s: 1.0,
            drivers: 1,
            ping_hz: 1.0,
            batch: 1,
            watchers: 1,
            ingest: Some(IngestReport {
                received_per_s: 500.0,
                ..Default::default()
            }),
            track: Some(TrackReport {
                latency: LatencySummary {
                    count: 10,
                    p99_ms: 12.0,
                    ..Default::default()
                },
                ..Default::default()
            }),
            deliveries: None,
            nearby: None,
            orders: None,
            notifications: None,
            processes: Vec::new(),
            slo: Vec::new(),
            notes: Vec::new(),
        };
        let (p99s, rates) = r.slo_subjects();
        assert_eq!(p99s, vec![("ping-to-screen", Some(12.0))]);
        assert_eq!(rates, vec![("pings received/s", Some(500.0))]);
        // Customers only: their latency is the subject.
        r.deliveries = r.track.take();
        let (p99s, _) = r.slo_subjects();
        assert_eq!(p99s, vec![("customer ping-to-screen", Some(12.0))]);
        assert!(r.to_text().contains("customers connected"));
        r.scenario = Scenario::Nearby;
        let (p99s, _) = r.slo_subjects();
        assert_eq!(p99s, vec![("nearby", None)]);
        r.slo = slo_checks(&p99s, &[], Some(5.0), None);
        assert!(!r.passed());
        assert!(r.to_text().contains("MISSED"));
    }
}
