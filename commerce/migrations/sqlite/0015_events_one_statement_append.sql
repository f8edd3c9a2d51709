-- One statement per append on SQLite (the `events` crate's `append`):
-- the event row is inserted with its aggregate's next version read from
-- `event_aggregates`, and this trigger writes that version back in the same
-- statement. Before, the version bump and the insert were two statements,
-- each a round trip to sqlx's SQLite worker thread. SQLite has one writer at
-- a time and the appending transaction already holds the write lock, so the
-- read and the write back cannot interleave with another append.
-- PostgreSQL does the same with a data-modifying CTE and needs no trigger.
CREATE TRIGGER events_bump_aggregate_version AFTER INSERT ON events
BEGIN
    INSERT INTO event_aggregates (aggregate_kind, aggregate_id, version)
    VALUES (NEW.aggregate_kind, NEW.aggregate_id, NEW.aggregate_version)
    ON CONFLICT (aggregate_kind, aggregate_id) DO UPDATE SET version = excluded.version;
END;
