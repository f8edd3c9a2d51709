-- The domain event stream (the `events` crate): the outbox every state
-- change writes its events to in its own transaction, the relay's cursor,
-- each consumer's position and each consumer's dead letters. The
-- SQLite twin is migrations/sqlite/0005_events.sql; keep the two in
-- step.

-- The event log. `insert_id` is given at insert, in the appending
-- transaction; on PostgreSQL it is not commit order, so nothing reads the
-- log by it except the relay. `seq` is NULL until the relay (the only
-- sequencer, holding `event_relay`'s row) gives the committed row the next
-- number: `seq` is the event's global, gapless, monotonic id, and what
-- consumers read by.
CREATE TABLE events (
    insert_id         BIGSERIAL PRIMARY KEY,
    seq               BIGINT NULL UNIQUE,
    event_type        TEXT    NOT NULL,
    aggregate_kind    TEXT    NOT NULL,
    aggregate_id      TEXT    NOT NULL,
    aggregate_version BIGINT NOT NULL CHECK (aggregate_version > 0),
    at_ms             BIGINT NOT NULL,
    actor             TEXT    NOT NULL,
    schema_version    BIGINT NOT NULL CHECK (schema_version > 0),
    payload_json      TEXT    NOT NULL,
    UNIQUE (aggregate_kind, aggregate_id, aggregate_version)
);
-- What the relay has still to sequence (small: only rows in flight).
CREATE INDEX events_unsequenced ON events (insert_id) WHERE seq IS NULL;
CREATE INDEX events_by_type ON events (event_type, seq);
CREATE INDEX events_by_time ON events (at_ms, seq);

-- Each aggregate's last version. Appending bumps it with an upsert, whose
-- row lock makes same-aggregate appends wait for each other: versions are
-- gapless and their insert ids ascend with them.
CREATE TABLE event_aggregates (
    aggregate_kind TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        BIGINT NOT NULL CHECK (version > 0),
    PRIMARY KEY (aggregate_kind, aggregate_id)
);

-- The sequencer's cursor: one row, the last `seq` given. A relay holds
-- this row locked while it sequences.
CREATE TABLE event_relay (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO event_relay (id, last_seq) VALUES (1, 0);

-- Each consumer's position: the `seq` of the last event it handled (or
-- dead-lettered). A restarted consumer resumes after it.
CREATE TABLE event_consumers (
    name          TEXT    PRIMARY KEY,
    position      BIGINT NOT NULL CHECK (position >= 0),
    updated_at_ms BIGINT NOT NULL
);

-- Events a consumer gave up on after its retries. `state`: `dead`, then
-- `replaying` once an admin asks for a replay, then `replayed` once the
-- consumer has handled it (or `dead` again if it failed again).
CREATE TABLE event_dead_letters (
    id                     BIGSERIAL PRIMARY KEY,
    consumer               TEXT    NOT NULL,
    seq                    BIGINT NOT NULL,
    attempts               BIGINT NOT NULL CHECK (attempts > 0),
    last_error             TEXT    NOT NULL,
    state                  TEXT    NOT NULL CHECK (state IN ('dead', 'replaying', 'replayed')),
    failed_at_ms           BIGINT NOT NULL,
    replay_requested_at_ms BIGINT NULL,
    replayed_at_ms         BIGINT NULL,
    UNIQUE (consumer, seq)
);
CREATE INDEX event_dead_letters_by_state ON event_dead_letters (consumer, state, seq);
