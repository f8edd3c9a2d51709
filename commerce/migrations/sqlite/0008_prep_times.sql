-- When the restaurant accepted each order and when it was ready for
-- pickup: the prep-aware matcher learns each restaurant's preparation time
-- from accepted → ready (`Matcher::observe_prep`), and dispatches an order
-- restored at start-up with its ready time counted from its acceptance,
-- not from the restart. Set by the status step that reaches the status
-- (`store/sql/tx.rs`, `set_status`); filled here from the orders' events
-- (the order's stream is its history). The PostgreSQL twin is
-- migrations/postgres/0008_prep_times.sql; keep the two in step.

ALTER TABLE orders ADD COLUMN accepted_at_ms INTEGER NULL;
ALTER TABLE orders ADD COLUMN ready_at_ms INTEGER NULL;

UPDATE orders SET
    accepted_at_ms = (SELECT MIN(e.at_ms) FROM events e
                      WHERE e.aggregate_kind = 'order' AND e.aggregate_id = orders.id
                        AND e.event_type = 'order.accepted'),
    ready_at_ms = (SELECT MIN(e.at_ms) FROM events e
                   WHERE e.aggregate_kind = 'order' AND e.aggregate_id = orders.id
                     AND e.event_type = 'order.ready_for_pickup');

-- The latest preparations, read at start-up to warm the estimates.
CREATE INDEX orders_by_ready_at ON orders (ready_at_ms) WHERE ready_at_ms IS NOT NULL;
