-- Reports (issue 12, section 4): projections of the event stream kept by
-- the `reports` consumer (api::consumers::reports through
-- commerce::usecase::report), cleared and replayed from event 0 by
-- `POST /v1/admin/reports/rebuild`. Nothing else writes them; they hold no
-- fact the stream does not. The PostgreSQL twin is
-- migrations/postgres/0014_reports.sql; keep the two in step.

-- One row per order: the times it entered each status (the first time),
-- its money and its review's stars. Per-order durations are stored as the
-- times themselves, so funnel percentiles are exact at query time.
CREATE TABLE report_orders (
    order_id             TEXT    PRIMARY KEY,
    restaurant_id        TEXT    NOT NULL,
    customer_id          TEXT    NOT NULL,
    -- The driver as of the newest applied order event (the one who
    -- delivered, for a delivered order).
    driver_id            TEXT    NULL,
    status               TEXT    NOT NULL,
    -- The order aggregate's version of the newest applied order event:
    -- latest-wins fields (status, driver) only move forward.
    version              INTEGER  NOT NULL,
    total_cents          INTEGER  NOT NULL,
    -- Charges that succeeded and refunds that went through, added up.
    charged_cents        INTEGER  NOT NULL DEFAULT 0,
    refunded_cents       INTEGER  NOT NULL DEFAULT 0,
    placed_at_ms         INTEGER  NULL,
    paid_at_ms           INTEGER  NULL,
    accepted_at_ms       INTEGER  NULL,
    ready_at_ms          INTEGER  NULL,
    picked_up_at_ms      INTEGER  NULL,
    delivered_at_ms      INTEGER  NULL,
    cancelled_at_ms      INTEGER  NULL,
    rejected_at_ms       INTEGER  NULL,
    payment_failed_at_ms INTEGER  NULL,
    -- The review's stars as they count (NULL: none, hidden, or the driver
    -- not rated), and the version of the review event that set them.
    restaurant_stars     INTEGER  NULL,
    driver_stars         INTEGER  NULL,
    review_version       INTEGER  NOT NULL DEFAULT 0
);
-- A period's cohort (orders placed in it), overall and per restaurant.
CREATE INDEX report_orders_placed ON report_orders (placed_at_ms);
CREATE INDEX report_orders_restaurant ON report_orders (restaurant_id, placed_at_ms);

-- Orders entering each status (and refunds) per UTC quarter hour, with the
-- money that moved. Every time zone in use today is a whole number of
-- quarter hours from UTC, so local hours and days are sums of these rows.
CREATE TABLE report_series (
    quarter_ms   INTEGER NOT NULL,
    status       TEXT   NOT NULL,
    orders       INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    PRIMARY KEY (quarter_ms, status)
);

-- The events applied: an increment commits with its event's row here, so
-- a redelivered or replayed event cannot count twice.
CREATE TABLE report_applied (
    event_id INTEGER PRIMARY KEY
);

-- Restaurant names and owners, for the per-restaurant report and its
-- owner's scope (the owner as the newest restaurant.updated tells it).
CREATE TABLE report_restaurants (
    restaurant_id TEXT   PRIMARY KEY,
    owner_id      TEXT   NOT NULL,
    name          TEXT   NOT NULL
);
CREATE INDEX report_restaurants_owner ON report_restaurants (owner_id);

-- Drivers' online sessions from driver.online / driver.offline (offline
-- NULL while online): active hours.
CREATE TABLE report_driver_sessions (
    driver_id     TEXT   NOT NULL,
    online_at_ms  INTEGER NOT NULL,
    offline_at_ms INTEGER NULL,
    PRIMARY KEY (driver_id, online_at_ms)
);
CREATE INDEX report_driver_sessions_online ON report_driver_sessions (online_at_ms);
