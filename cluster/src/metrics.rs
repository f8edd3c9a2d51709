//! The metric names recorded here and [`describe_metrics`].

use metrics::{describe_counter, describe_gauge};

/// 1 while the last command reached Redis, else 0.
pub const REDIS_UP: &str = "hexdash_redis_up";
/// Events this node appended to the Redis stream.
pub const STREAM_PUBLISHED: &str = "hexdash_cluster_stream_published_total";
/// Stream entries this node's reader handed to its consumers, by group
/// scope (`node`).
pub const STREAM_DELIVERED: &str = "hexdash_cluster_stream_delivered_total";
/// Entries a reader skipped as already handled (redeliveries).
pub const STREAM_DUPLICATES: &str = "hexdash_cluster_stream_duplicates_total";
/// Entries a reader took over from a consumer that stopped answering.
pub const STREAM_CLAIMED: &str = "hexdash_cluster_stream_claimed_total";
/// Consumer calls that failed every try on an entry (the entry is
/// acknowledged; the consumer's state waits for the next event).
pub const STREAM_FAILED: &str = "hexdash_cluster_stream_failed_total";
/// Entries that are not events hexdash can read.
pub const STREAM_UNREADABLE: &str = "hexdash_cluster_stream_unreadable_total";
/// Leases this node holds now, by `kind` (region, relay).
pub const LEASES_HELD: &str = "hexdash_leases_held";
/// Leases this node took, by `kind`.
pub const LEASE_ACQUIRED: &str = "hexdash_lease_acquired_total";
/// Leases this node lost, by `kind` and `reason` (taken, expired,
/// unreachable).
pub const LEASE_LOST: &str = "hexdash_lease_lost_total";
/// Failed Redis commands of the stream's reader and publisher.
pub const REDIS_ERRORS: &str = "hexdash_redis_errors_total";
/// Position updates this node published (its own drivers' pings and
/// declarations).
pub const POSITIONS_PUBLISHED: &str = "hexdash_cluster_positions_published_total";
/// Position batches (one per region and interval), by direction
/// (`published`, `received`).
pub const POSITIONS_BATCHES: &str = "hexdash_cluster_position_batches_total";
/// Position updates received from other nodes and applied here.
pub const POSITIONS_RECEIVED: &str = "hexdash_cluster_positions_received_total";
/// Position updates not published, by why (`buffer_full`, `redis`).
pub const POSITIONS_DROPPED: &str = "hexdash_cluster_positions_dropped_total";
/// Position batches, records or messages that are not readable.
pub const POSITIONS_UNREADABLE: &str = "hexdash_cluster_positions_unreadable_total";
/// Regions this node holds (subscribed, snapshot loaded).
pub const REGIONS_HELD: &str = "hexdash_cluster_regions_held";
/// Counter: on-demand holds (a `nearby` on a node not holding every
/// region), by `outcome`: held (already), loaded (waited for a load),
/// timed_out, too_wide.
pub const ON_DEMAND_HOLDS: &str = "hexdash_cluster_on_demand_holds_total";
/// Region snapshots this node loaded (on holding a region, after a
/// reconnect).
pub const SNAPSHOT_LOADS: &str = "hexdash_cluster_snapshot_loads_total";
/// Driver-bound messages between nodes, by outcome (`sent`, `received`,
/// `dropped`, `no_node`).
pub const DRIVER_MESSAGES: &str = "hexdash_cluster_driver_messages_total";
/// Users' notifications broadcast between nodes, by outcome (`sent`,
/// `received`, `dropped`).
pub const USER_NOTICES: &str = "hexdash_cluster_user_notices_total";

/// Registers HELP text for every metric above; call once after installing
/// the recorder.
pub fn describe_metrics() {
    describe_gauge!(
        REDIS_UP,
        "1 while the node's last Redis command succeeded, else 0"
    );
    describe_counter!(
        STREAM_PUBLISHED,
        "Domain events this node appended to the Redis event stream"
    );
    describe_counter!(
        STREAM_DELIVERED,
        "Redis stream entries this node's reader handed to its consumers"
    );
    describe_counter!(
        STREAM_DUPLICATES,
        "Redis stream entries skipped because their event id was handled already"
    );
    describe_counter!(
        STREAM_CLAIMED,
        "Redis stream entries claimed from a consumer that stopped acknowledging (XAUTOCLAIM)"
    );
    describe_counter!(
        STREAM_FAILED,
        "Redis stream entries a consumer failed on every try"
    );
    describe_counter!(
        STREAM_UNREADABLE,
        "Redis stream entries that are not readable events"
    );
    describe_counter!(REDIS_ERRORS, "Failed Redis commands, by operation");
    describe_counter!(
        POSITIONS_PUBLISHED,
        "Position updates of this node's drivers published to their regions"
    );
    describe_counter!(
        POSITIONS_BATCHES,
        "Position batches (one per region and interval), by direction"
    );
    describe_counter!(
        POSITIONS_RECEIVED,
        "Position updates received from other nodes and applied"
    );
    describe_counter!(
        POSITIONS_DROPPED,
        "Position updates not published (buffer full, Redis down)"
    );
    describe_counter!(
        POSITIONS_UNREADABLE,
        "Position batches, records or driver messages that could not be read"
    );
    describe_gauge!(REGIONS_HELD, "Regions this node holds");
    describe_counter!(
        USER_NOTICES,
        "Users' notifications broadcast to the other nodes' me channels, by outcome (sent, received, dropped)"
    );
    describe_counter!(
        ON_DEMAND_HOLDS,
        "Regions held on demand for a nearby query, by outcome (held, loaded, timed_out, too_wide)"
    );
    describe_counter!(SNAPSHOT_LOADS, "Region snapshots loaded");
    describe_counter!(
        DRIVER_MESSAGES,
        "Driver-bound messages between nodes (offers, notifications), by outcome"
    );
    describe_gauge!(
        LEASES_HELD,
        "Leases this node holds (a region's dispatch, the relay), by kind"
    );
    describe_counter!(LEASE_ACQUIRED, "Leases this node took, by kind");
    describe_counter!(
        LEASE_LOST,
        "Leases this node lost, by kind and reason (taken by another node, expired while paused, Redis unreachable)"
    );
}
