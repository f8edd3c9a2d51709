-- The order history moves into the event stream: every row of
-- `order_events` (the history kept before the stream existed) becomes an
-- event of its order (`order.placed`, `order.paid`, … for status rows,
-- `order.assigned` for assignments), with the order's versions 1, 2, 3 …
-- in the rows' order, and the table goes: from now on the order's events
-- are its history (one source of truth). The SQLite twin is
-- migrations/sqlite/0007_history_events.sql; keep the two in step.
--
-- Payloads are `commerce::event::OrderChanged` (version 1) with
-- `"backfilled": true`, so consumers that tell people about changes can
-- skip them. `status_from` is the status of the row before (null for the
-- first). A NULL actor was the system: the payments saga for `paid` and
-- `payment_failed`, hexdash's own steps otherwise.
--
-- The copied events are sequenced here, after whatever the log holds
-- (this runs before any relay does), so they are published at once, in
-- history order. Nothing appended order events before this migration, so
-- the versions start at 1 (an existing order stream would make the
-- `event_aggregates` insert fail the migration, never merge silently).
INSERT INTO events (seq, event_type, aggregate_kind, aggregate_id, aggregate_version, at_ms,
                    actor, schema_version, payload_json)
SELECT
    (SELECT last_seq FROM event_relay WHERE id = 1) + ROW_NUMBER() OVER (ORDER BY h.id),
    CASE
        WHEN h.kind = 'assigned' THEN 'order.assigned'
        WHEN h.status = 'payment_failed' THEN 'payment.failed'
        ELSE 'order.' || h.status
    END,
    'order',
    h.order_id,
    ROW_NUMBER() OVER (PARTITION BY h.order_id ORDER BY h.id),
    h.at_ms,
    CASE
        WHEN h.actor_id IS NOT NULL THEN 'user:' || h.actor_id
        WHEN h.status IN ('paid', 'payment_failed') THEN 'system:payments'
        ELSE 'system:orders'
    END,
    1,
    json_build_object(
        'order_id', h.order_id,
        'restaurant_id', o.restaurant_id,
        'customer_id', o.customer_id,
        'status_from', CASE
            WHEN h.kind = 'assigned' THEN h.status
            ELSE LAG(h.status) OVER (PARTITION BY h.order_id ORDER BY h.id)
        END,
        'status', h.status,
        'driver_id', h.driver_id,
        'total_cents', o.total_cents,
        'at_ms', h.at_ms,
        'backfilled', TRUE
    )::text
FROM order_events h
JOIN orders o ON o.id = h.order_id
ORDER BY h.id;

INSERT INTO event_aggregates (aggregate_kind, aggregate_id, version)
SELECT 'order', order_id, COUNT(*) FROM order_events GROUP BY order_id;

UPDATE event_relay SET last_seq = last_seq + (SELECT COUNT(*) FROM order_events) WHERE id = 1;

DROP TABLE order_events;
