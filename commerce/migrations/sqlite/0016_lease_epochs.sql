-- The twin of migrations/postgres/0016_lease_epochs.sql (SQLite runs one
-- node and takes no lease; the table keeps the schemas alike).
-- Leases of a cluster (issue 14, ARCHITECTURE.md "Scale-out"): one row per
-- lease (a dispatch region's `region:{h3 cell}`, the relay's `relay`). The
-- lease itself lives in Redis; its epoch lives here and rises by one each
-- time a node takes the lease. The epoch is the holder's fencing token:
-- every assignment a region's leader writes checks, in its transaction,
-- that its token is still the region's epoch, so a paused or partitioned
-- old leader can never assign.
CREATE TABLE lease_epochs (
    name TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,
    -- The node that took the lease last (`cluster.node_id`).
    holder TEXT NOT NULL,
    acquired_at_ms INTEGER NOT NULL
);

