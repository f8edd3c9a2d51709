//! Process metrics in the names every Prometheus client library uses
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …), read
//! from `/proc/self` at scrape time and rendered as exposition text.
//!
//! Rendered by hand rather than through the `metrics` facade: its counters
//! are integers, and CPU time is fractional seconds. On a system without
//! `/proc` (not Linux) nothing is rendered.

use std::fmt::Write as _;

/// Clock ticks per second of the times in `/proc/<pid>/stat`. The kernel
/// reports them in USER_HZ, which is 100 on every Linux architecture we run
/// on (the Prometheus Go client's procfs makes the same assumption); reading
/// `sysconf(_SC_CLK_TCK)` would need `unsafe` or another dependency.
const USER_HZ: f64 = 100.0;

/// What one scrape reads; a field is `None` when its source is missing or
/// unreadable, and is then left out of the output.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
    start_time_seconds: Option<f64>,
}

/// The process metrics as Prometheus text (each family with HELP and
/// TYPE), or an empty string without `/proc`.
pub fn render() -> String {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let stat = read("/proc/self/stat");
    let status = read("/proc/self/status");
    let mut sample = Sample::default();
    if let Some(stat) = stat.as_deref().and_then(parse_stat) {
        sample.cpu_seconds = Some((stat.utime + stat.stime) as f64 / USER_HZ);
        sample.start_time_seconds = read("/proc/stat")
            .as_deref()
            .and_then(parse_boot_time)
            .map(|boot| boot as f64 + stat.start_ticks as f64 / USER_HZ);
    }
    if let Some(status) = status.as_deref() {
        sample.resident_bytes = status_kib(status, "VmRSS:").map(|kib| kib * 1024);
        sample.virtual_bytes = status_kib(status, "VmSize:").map(|kib| kib * 1024);
    }
    sample.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as u64);
    sample.max_fds = read("/proc/self/limits")
        .as_deref()
        .and_then(parse_max_open_files);
    format_sample(&sample)
}

fn format_sample(s: &Sample) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: Option<String>| {
        if let Some(value) = value {
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n\n"
            );
        }
    };
    family(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        s.cpu_seconds.map(|v| v.to_string()),
    );
    family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        s.resident_bytes.map(|v| v.to_string()),
    );
    family(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        s.virtual_bytes.map(|v| v.to_string()),
    );
    family(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        s.open_fds.map(|v| v.to_string()),
    );
    family(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors (the soft limit).",
        s.max_fds.map(|v| v.to_string()),
    );
    family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
        s.start_time_seconds.map(|v| v.to_string()),
    );
    out
}

/// The fields of `/proc/self/stat` we use, in clock ticks.
#[derive(Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
}

/// `pid (comm) state ppid … utime stime … starttime …`: the command name
/// may hold spaces and parentheses, so fields are counted after the last
/// `)`. There, field 3 of proc(5) (state) is index 0.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
    })
}

/// `btime <seconds>` from `/proc/stat`: when the system booted.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime"))
        .and_then(|v| v.trim().parse().ok())
}

/// A `Key:   1234 kB` line of `/proc/self/status`.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The soft limit of `Max open files` in `/proc/self/limits`
/// (`unlimited` is left out).
fn parse_max_open_files(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_after_an_awkward_command_name() {
        // Fields 1..=22 and beyond; the name holds a space and a `)`.
        let text = "4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 12345 1000 200 18446744073709551615";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                utime: 250,
                stime: 75,
                start_ticks: 12345
            })
        );
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn parses_status_limits_and_boot_time() {
        let status = "Name:\thexdash\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(2048));
        assert_eq!(status_kib(status, "VmSize:"), Some(123_456));
        assert_eq!(status_kib(status, "VmSwap:"), None);

        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_open_files(unlimited), None);

        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn renders_each_known_family_with_help_and_type() {
        let text = format_sample(&Sample {
            cpu_seconds: Some(1.5),
            resident_bytes: Some(4096),
            open_fds: Some(7),
            ..Sample::default()
        });
        assert!(text.contains(
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n"
        ));
        assert!(text.contains("process_resident_memory_bytes 4096\n"));
        assert!(text.contains("process_open_fds 7\n"));
        assert!(
            !text.contains("process_max_fds"),
            "unknown values are left out"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let text = render();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(&format!("\n{name} ")), "{name} in:\n{text}");
        }
    }
}
