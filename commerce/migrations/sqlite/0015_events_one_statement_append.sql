-- On SQLite an event gets its global id (`seq`) in the statement that
-- appends it (the `events` crate's `append`), not from a later relay pass:
-- SQLite has one writer at a time and the appending transaction holds the
-- write lock to its commit, so appends commit in the order they numbered
-- themselves and a reader sees a gapless prefix (a rolled-back append
-- takes its number back with it). The relay then only reads what
-- committed; it writes nothing. Measured: the relay's numbering passes (a
-- write transaction every 20 ms rewriting each new row and four indexes)
-- were most of what the outbox cost SQLite (docs/BENCHMARKS.md).
-- PostgreSQL keeps the relay as the sequencer: there insert order is not
-- commit order.

-- Rows an older build appended and no relay numbered yet: numbered now,
-- in insert-id order after the last number given.
UPDATE events SET seq = (SELECT last_seq FROM event_relay WHERE id = 1) + n.rn
FROM (SELECT insert_id, ROW_NUMBER() OVER (ORDER BY insert_id) AS rn
      FROM events WHERE seq IS NULL) AS n
WHERE events.insert_id = n.insert_id;
UPDATE event_relay SET last_seq = (SELECT COALESCE(MAX(seq), 0) FROM events)
WHERE id = 1 AND EXISTS (SELECT 1 FROM events);

-- `append` inserts the row with `seq` = the cursor + 1 and the aggregate's
-- next version read from `event_aggregates`; this writes both back, in the
-- same statement (one round trip to sqlx's SQLite worker per append).
CREATE TRIGGER events_number_and_version AFTER INSERT ON events
BEGIN
    UPDATE event_relay SET last_seq = NEW.seq WHERE id = 1 AND NEW.seq IS NOT NULL;
    INSERT INTO event_aggregates (aggregate_kind, aggregate_id, version)
    VALUES (NEW.aggregate_kind, NEW.aggregate_id, NEW.aggregate_version)
    ON CONFLICT (aggregate_kind, aggregate_id) DO UPDATE SET version = excluded.version;
END;
