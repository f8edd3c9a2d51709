-- Around stuck orders and delivered routes (issue 12, dispatcher
-- operations). The sqlite twin is
-- migrations/sqlite/0013_routes_and_stuck_orders.sql; keep the two in step.

-- When each order was paid: a paid order the restaurant has not accepted
-- within `api.auto_reject_after_s` of it is rejected and refunded by the
-- system (`commerce::usecase::stuck`). Set by the step that reaches
-- `paid` (`store/sql/tx.rs`, `set_status`), so the deadline survives a
-- restart; filled here from the orders' events.
ALTER TABLE orders ADD COLUMN paid_at_ms BIGINT NULL;

UPDATE orders SET
    paid_at_ms = (SELECT MIN(e.at_ms) FROM events e
                  WHERE e.aggregate_kind = 'order' AND e.aggregate_id = orders.id
                    AND e.event_type = 'order.paid');

-- The sweep's question, "paid orders waiting longest", reads only them.
CREATE INDEX orders_awaiting_acceptance ON orders (paid_at_ms, id) WHERE status = 'paid';

-- A delivered order's route, kept with it (`commerce::usecase::route`):
-- pickup, the courier's breadcrumbs between pickup and delivery
-- (downsampled, at most `breadcrumbs.route_max_points`), dropoff.
-- `points_json` is a JSON array of [lng, lat, at_ms] (GeoJSON order), one
-- document because it is written once and read whole. One row per order:
-- the recorder's redeliveries find it there and write nothing.
CREATE TABLE order_routes (
    order_id        TEXT    PRIMARY KEY REFERENCES orders (id),
    driver_id       TEXT    NULL,
    picked_up_at_ms BIGINT  NOT NULL,
    delivered_at_ms BIGINT  NOT NULL,
    breadcrumbs     BIGINT  NOT NULL CHECK (breadcrumbs >= 0),
    points_json     TEXT    NOT NULL,
    created_at_ms   BIGINT  NOT NULL
);

-- An order nobody takes raises `order.dispatch_stalled` to admins once
-- per order, whatever the matcher raises again (after a restart it starts
-- counting anew): the feed asks who was told already
-- (`notified_of_stall`, by this index) and this index refuses a second
-- one for the same admin and order (the consumer's retry then skips it).
CREATE UNIQUE INDEX notifications_one_stall_per_order
    ON notifications (order_id, user_id) WHERE event_type = 'order.dispatch_stalled';
