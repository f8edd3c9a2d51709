//! CPU and memory of the server processes under test, from `/proc`
//! (Linux only): `/proc/<pid>/stat` for CPU time (and the parent pid),
//! `/proc/<pid>/status` for the resident set. A process is watched alone,
//! or with its children as one server (PostgreSQL: the postmaster and its
//! backends, one per connection).

use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

/// `/proc` reports CPU time in clock ticks of `USER_HZ`, which the kernel
/// fixes at 100 for user space on every architecture Linux exports it on.
const TICKS_PER_S: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// User plus system CPU time, seconds.
    pub cpu_s: f64,
    pub rss_kib: u64,
}

/// CPU time from the text of `/proc/<pid>/stat`: fields 14 (utime) and 15
/// (stime), counted after the parenthesised command name (which may itself
/// contain spaces and parentheses).
pub fn parse_stat_cpu_s(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field n is at index n - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_S)
}

/// The parent pid (field 4) from the text of `/proc/<pid>/stat`.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The parent of `pid`.
pub fn parent_of(pid: u32) -> anyhow::Result<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_stat_ppid(&stat).context("unexpected /proc/<pid>/stat format")
}

/// `VmRSS` from the text of `/proc/<pid>/status`, KiB.
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn sample(pid: u32) -> anyhow::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok(Sample {
        cpu_s: parse_stat_cpu_s(&stat).context("unexpected /proc/<pid>/stat format")?,
        rss_kib: parse_status_rss_kib(&status).context("no VmRSS in /proc/<pid>/status")?,
    })
}

/// The processes whose parent is `root`.
fn children_of(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid).is_ok_and(|parent| parent == root))
        .collect()
}

/// One reading of a watched process, or of a process and its children:
/// `(pid, sample)` per member.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading(pub Vec<(u32, Sample)>);

/// Reads `pid` (which must exist) and, with `children`, every child of it
/// (one that exits while being read is left out).
pub fn read(pid: u32, children: bool) -> anyhow::Result<Reading> {
    let mut members = vec![(pid, sample(pid)?)];
    if children {
        members.extend(
            children_of(pid)
                .into_iter()
                .filter_map(|child| Some((child, sample(child).ok()?))),
        );
    }
    Ok(Reading(members))
}

/// Whether a command name (`/proc/<pid>/comm`) is `name` or a copy of it
/// named `name-…` (e.g. `hexdash-lt`, a binary copied aside for a run).
pub fn comm_matches(comm: &str, name: &str) -> bool {
    comm == name
        || comm
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('-'))
}

/// The pid of the one running process whose command name matches `name`
/// (see [`comm_matches`]; the kernel truncates names to 15 bytes).
pub fn find_by_name(name: &str) -> anyhow::Result<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let comm = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"));
        if comm.is_ok_and(|c| comm_matches(c.trim_end(), name)) {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => bail!("no running process named {name:?}; pass its pid with --server-pid"),
        many => bail!("several processes named {name:?} ({many:?}); pass one with --server-pid"),
    }
}

/// A watched process (or process tree) over the measurement window.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessReport {
    pub name: String,
    pub pid: u32,
    /// Processes summed at the window's end (1 unless children are
    /// watched too).
    pub processes: usize,
    /// CPU used during the window, % of one core (200% = both cores here).
    /// For a tree: every member at the end, minus what it had used at the
    /// start (a member started during the window counts whole); a member
    /// that exited during the window is missing.
    pub cpu_pct: f64,
    /// Summed over the members (shared memory counts once per member).
    pub rss_mib_start: f64,
    pub rss_mib_end: f64,
}

impl ProcessReport {
    pub fn new(name: &str, pid: u32, start: &Reading, end: &Reading, window_s: f64) -> Self {
        let mib = |r: &Reading| r.0.iter().map(|(_, s)| s.rss_kib).sum::<u64>() as f64 / 1024.0;
        let used_s: f64 = end
            .0
            .iter()
            .map(|(pid, e)| {
                let before = start
                    .0
                    .iter()
                    .find(|(p, _)| p == pid)
                    .map_or(0.0, |(_, s)| s.cpu_s);
                e.cpu_s - before
            })
            .sum();
        Self {
            name: name.to_owned(),
            pid,
            processes: end.0.len(),
            cpu_pct: if window_s > 0.0 {
                used_s / window_s * 100.0
            } else {
                0.0
            },
            rss_mib_start: mib(start),
            rss_mib_end: mib(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_name() {
        let stat =
            "1234 (we ird) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat_cpu_s(stat), Some(3.25));
        assert_eq!(parse_stat_cpu_s("garbage"), None);
    }

    #[test]
    fn parses_status_rss() {
        let status = "Name:\thexdash\nVmPeak:\t 10 kB\nVmRSS:\t  123456 kB\nThreads:\t4\n";
        assert_eq!(parse_status_rss_kib(status), Some(123_456));
        assert_eq!(parse_status_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn names_match() {
        assert!(comm_matches("hexdash", "hexdash"));
        assert!(comm_matches("hexdash-lt", "hexdash"));
        assert!(!comm_matches("hexdashx", "hexdash"));
        assert!(!comm_matches("hex", "hexdash"));
    }

    #[test]
    fn samples_itself() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0);
    }

    fn s(cpu_s: f64, rss_kib: u64) -> Sample {
        Sample { cpu_s, rss_kib }
    }

    #[test]
    fn cpu_percent_over_window() {
        let a = Reading(vec![(1, s(1.0, 1024))]);
        let b = Reading(vec![(1, s(4.0, 2048))]);
        let r = ProcessReport::new("x", 1, &a, &b, 2.0);
        assert!((r.cpu_pct - 150.0).abs() < 1e-9);
        assert!((r.rss_mib_end - 2.0).abs() < 1e-9);
        assert_eq!(r.processes, 1);
    }

    #[test]
    fn a_tree_sums_its_members() {
        // 1 is the root; 2 runs throughout; 3 exits during the window (its
        // CPU is lost); 4 starts during it (all of its CPU counts).
        let a = Reading(vec![(1, s(10.0, 100)), (2, s(5.0, 200)), (3, s(7.0, 300))]);
        let b = Reading(vec![(1, s(10.5, 100)), (2, s(6.0, 200)), (4, s(0.5, 400))]);
        let r = ProcessReport::new("postgres", 1, &a, &b, 1.0);
        assert!((r.cpu_pct - 200.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.processes, 3);
        assert!((r.rss_mib_start - 600.0 / 1024.0).abs() < 1e-9);
        assert!((r.rss_mib_end - 700.0 / 1024.0).abs() < 1e-9);
    }

    #[test]
    fn parses_the_parent() {
        let stat = "1234 (we ird) (x)) S 77 1234 1234 0 -1";
        assert_eq!(parse_stat_ppid(stat), Some(77));
        assert_eq!(parse_stat_ppid("garbage"), None);
        assert_eq!(
            parent_of(std::process::id()).ok(),
            Some(std::os::unix::process::parent_id())
        );
    }

    #[test]
    fn reads_itself_with_children() {
        let r = read(std::process::id(), true).expect("own /proc entry");
        assert_eq!(r.0[0].0, std::process::id());
    }
}
