-- The SQLite twin (migrations/sqlite/0015_events_one_statement_append.sql)
-- lets SQLite number an event and bump its aggregate's version in the
-- statement that appends it. PostgreSQL already appends in one statement (a
-- data-modifying CTE in the `events` crate's `append`) and keeps the relay
-- as the sequencer (insert order is not commit order there); no schema
-- change, only a note on the table.
COMMENT ON TABLE event_aggregates IS
    'Each aggregate''s last event version, bumped by events::append in the statement that inserts the event.';
