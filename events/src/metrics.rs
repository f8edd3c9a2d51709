//! The stream's metric names and [`describe_metrics`].

use metrics::{describe_counter, describe_gauge, describe_histogram};

/// Events appended (rows written; a rolled-back transaction's are counted too).
pub const APPENDED: &str = "hexdash_events_appended_total";
/// Events the relay sequenced and so published.
pub const PUBLISHED: &str = "hexdash_events_published_total";
/// Events a consumer handled, by consumer.
pub const DELIVERED: &str = "hexdash_events_delivered_total";
/// Failed tries, by consumer.
pub const FAILURES: &str = "hexdash_events_delivery_failures_total";
/// Events a consumer gave up on, by consumer.
pub const DEAD_LETTERED: &str = "hexdash_events_dead_lettered_total";
/// Seconds between the oldest event of the relay's last pass and the pass.
pub const RELAY_LAG: &str = "hexdash_events_relay_lag_seconds";
/// The last global id published.
pub const HEAD: &str = "hexdash_events_head";
/// The last global id a consumer recorded, by consumer.
pub const POSITION: &str = "hexdash_events_consumer_position";
/// Seconds from an event's time (set in its transaction, just before the
/// commit) to a consumer having handled it, by consumer: the stream's
/// end-to-end latency. A summary (quantiles), as no buckets are set.
pub const DELIVERY_LATENCY: &str = "hexdash_events_delivery_latency_seconds";
/// Runner reads, by where they were served from (`memory`: the relay's
/// recent events; `log`: a query).
pub const READS: &str = "hexdash_events_reads_total";

/// Registers HELP text for every metric above; call once after installing
/// the recorder.
pub fn describe_metrics() {
    describe_counter!(
        APPENDED,
        "Events appended to the outbox (rows written, including those of transactions that then rolled back)"
    );
    describe_counter!(
        PUBLISHED,
        "Committed events the relay sequenced and published"
    );
    describe_counter!(DELIVERED, "Events a consumer handled, by consumer");
    describe_counter!(
        FAILURES,
        "Failed or timed-out tries to hand an event to a consumer, by consumer"
    );
    describe_counter!(
        DEAD_LETTERED,
        "Events a consumer gave up on after its tries, written to its dead letters, by consumer"
    );
    describe_gauge!(
        RELAY_LAG,
        "Age in seconds of the oldest event in the relay's last pass when it was published"
    );
    describe_counter!(
        crate::presence::DROPPED,
        "Driver presence changes and order offers dropped because the presence queue was full"
    );
    describe_gauge!(HEAD, "The last global event id published");
    describe_histogram!(
        DELIVERY_LATENCY,
        metrics::Unit::Seconds,
        "Seconds from an event's time (its transaction, just before the commit) to a consumer having handled it, by consumer"
    );
    describe_counter!(
        READS,
        "Reads of new events by consumer runners, by source (memory: the relay's recent events, log: a query)"
    );
    describe_gauge!(
        POSITION,
        "The last global event id a consumer recorded as handled, by consumer"
    );
}
