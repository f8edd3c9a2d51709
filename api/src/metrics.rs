//! HELP text of the metrics this crate records (`/metrics` shows it; every
//! family needs one, `promtool check metrics` fails without). The counters
//! are incremented where things happen; a new one gets its line here.

use metrics::describe_counter;

/// Describes every metric family of the REST layer to the installed
/// recorder. Call once, after installing it.
pub fn describe_metrics() {
    describe_counter!(
        "hexdash_logins_total",
        "Login attempts, by outcome (ok, refused, rate_limited)"
    );
    describe_counter!(
        crate::routes::auth::SIGNUPS_RATE_LIMITED,
        "Signups refused with 429: too many from one client address"
    );
    describe_counter!(
        crate::limiter::SHARED_FAILURES_TOTAL,
        "Login and signup limit checks that could not reach the cluster's shared windows (this node's own count decided)"
    );
    describe_counter!(
        crate::throttle::RATE_LIMITED_TOTAL,
        "REST requests refused with 429 by the request rate limits, by scope (address, account)"
    );
    describe_counter!(
        crate::regions::NEARBY_PARTIAL_TOTAL,
        "Nearby answers given without every region around the query held (a cluster node's hold timed out or the circle was too wide)"
    );
    crate::breadcrumbs::describe();
    crate::stuck::describe();
    // Signups, bans, orders, steps, offer answers, charges and refunds:
    // described by the crate that counts them.
    commerce::describe_metrics();
}
