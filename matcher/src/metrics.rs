//! HELP text of the metrics this crate records (every `/metrics` family
//! needs one). A new counter gets its line here.

/// Describes every metric family of the matcher to the installed recorder.
/// Call once, after installing it.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "hexdash_offers_total",
        "Offers to drivers, by outcome (made, accepted, declined, expired)"
    );
}
