//! hexdash's own ping counters, read from its Prometheus endpoint
//! (`GET /metrics`): `hexdash_pings_total{path, outcome}`. The difference
//! between two scrapes is what the server took in during the window, so
//! loss is measured at the receiver, not guessed at the sender.

use serde::Serialize;

/// Ping outcomes of one ingest path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PingCounts {
    pub applied: u64,
    pub stale: u64,
    pub duplicate: u64,
    pub rejected: u64,
}

impl PingCounts {
    /// Pings the server received at all.
    pub fn received(&self) -> u64 {
        self.applied + self.stale + self.duplicate + self.rejected
    }

    /// `self + other`, per outcome (several nodes' counters).
    pub fn plus(&self, other: &PingCounts) -> PingCounts {
        PingCounts {
            applied: self.applied + other.applied,
            stale: self.stale + other.stale,
            duplicate: self.duplicate + other.duplicate,
            rejected: self.rejected + other.rejected,
        }
    }

    /// `self - earlier`, per outcome.
    pub fn since(&self, earlier: &PingCounts) -> PingCounts {
        PingCounts {
            applied: self.applied.saturating_sub(earlier.applied),
            stale: self.stale.saturating_sub(earlier.stale),
            duplicate: self.duplicate.saturating_sub(earlier.duplicate),
            rejected: self.rejected.saturating_sub(earlier.rejected),
        }
    }
}

/// Parses `hexdash_pings_total` samples of `path` from a Prometheus text
/// exposition.
pub fn parse_ping_counts(text: &str, path: &str) -> PingCounts {
    let mut counts = PingCounts::default();
    let path_label = format!("path=\"{path}\"");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("hexdash_pings_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        if !labels.split(',').any(|l| l.trim() == path_label) {
            continue;
        }
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let outcome = labels
            .split(',')
            .find_map(|l| l.trim().strip_prefix("outcome=\""))
            .and_then(|o| o.strip_suffix('"'));
        let slot = match outcome {
            Some("applied") => &mut counts.applied,
            Some("stale") => &mut counts.stale,
            Some("duplicate") => &mut counts.duplicate,
            Some("rejected") => &mut counts.rejected,
            _ => continue,
        };
        *slot += value as u64;
    }
    counts
}

/// Scrapes `{base}/metrics`.
pub async fn scrape(http: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<PingCounts> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(parse_ping_counts(&text, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_path_asked_for() {
        let text = "\
# TYPE hexdash_pings_total counter
hexdash_pings_total{path=\"mqtt\",outcome=\"applied\"} 1200
hexdash_pings_total{outcome=\"stale\",path=\"mqtt\"} 3
hexdash_pings_total{path=\"mqtt\",outcome=\"rejected\"} 2
hexdash_pings_total{path=\"ws\",outcome=\"applied\"} 99
hexdash_pings_total_other{path=\"mqtt\",outcome=\"applied\"} 5
hexdash_pings_total{path=\"mqtt\",outcome=\"duplicate\"} 1e1
";
        let c = parse_ping_counts(text, "mqtt");
        assert_eq!(
            c,
            PingCounts {
                applied: 1200,
                stale: 3,
                duplicate: 10,
                rejected: 2
            }
        );
        assert_eq!(c.received(), 1215);
        assert_eq!(parse_ping_counts(text, "ws").applied, 99);
        let later = PingCounts { applied: 1300, ..c };
        assert_eq!(later.since(&c).applied, 100);
    }
}
