-- The SQLite twin (migrations/sqlite/0015_events_one_statement_append.sql)
-- adds the trigger that lets SQLite append an event in one statement.
-- PostgreSQL already does (a data-modifying CTE in the `events` crate's
-- `append`) and needs no schema change; this migration only records, on
-- the table, how it is kept.
COMMENT ON TABLE event_aggregates IS
    'Each aggregate''s last event version, bumped by events::append in the statement that inserts the event.';
