//! HELP text of the metrics this crate records (every `/metrics` family
//! needs one); the text sits next to the metric names in `matcher.rs`.

/// Describes every metric family of the matcher to the installed recorder.
/// Call once, after installing it.
pub fn describe_metrics() {
    crate::matcher::describe();
    crate::arrivals::describe();
}
