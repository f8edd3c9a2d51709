-- hexdash commerce schema (SQLite): profiles, bans, addresses, restaurant
-- details, menus with stock, carts, priced orders with their lines,
-- idempotency keys and payments. The PostgreSQL twin is
-- migrations/postgres/0002_commerce.sql; keep the two in step.
--
-- Flags are INTEGER 0/1 (the store reads every column through sqlx's Any
-- driver, which knows no SQLite BOOLEAN); lists and the weekly hours are
-- JSON text the api validates before writing.

ALTER TABLE users ADD COLUMN phone TEXT NULL;
-- Set while the user is banned; their tokens stop working everywhere.
ALTER TABLE users ADD COLUMN banned_at_ms INTEGER NULL;

CREATE TABLE addresses (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label         TEXT    NOT NULL,
    address       TEXT    NOT NULL,
    lat           REAL    NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng           REAL    NOT NULL CHECK (lng BETWEEN -180 AND 180),
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX addresses_user ON addresses (user_id, created_at_ms);

ALTER TABLE restaurants ADD COLUMN cuisines_json TEXT NOT NULL DEFAULT '[]';
-- NULL: always open.
ALTER TABLE restaurants ADD COLUMN hours_json TEXT NULL;
ALTER TABLE restaurants ADD COLUMN delivery_radius_m INTEGER NOT NULL DEFAULT 5000 CHECK (delivery_radius_m > 0);
ALTER TABLE restaurants ADD COLUMN prep_time_s INTEGER NOT NULL DEFAULT 900 CHECK (prep_time_s >= 0);
ALTER TABLE restaurants ADD COLUMN accepting_orders INTEGER NOT NULL DEFAULT 1 CHECK (accepting_orders IN (0, 1));
ALTER TABLE restaurants ADD COLUMN updated_at_ms INTEGER NOT NULL DEFAULT 0;

CREATE TABLE menu_items (
    id            TEXT    PRIMARY KEY,
    restaurant_id TEXT    NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    category      TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    price_cents   INTEGER NOT NULL CHECK (price_cents >= 0),
    available     INTEGER NOT NULL CHECK (available IN (0, 1)),
    -- NULL: not counted (never runs out). Taken by a conditional UPDATE when
    -- an order is placed, so it can never go below zero.
    stock         INTEGER NULL CHECK (stock IS NULL OR stock >= 0),
    position      INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX menu_items_restaurant ON menu_items (restaurant_id, position);

-- One cart per customer; every line is from the same restaurant (checked by
-- the store inside the write that adds a line).
CREATE TABLE carts (
    customer_id   TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE cart_items (
    customer_id   TEXT    NOT NULL REFERENCES carts (customer_id) ON DELETE CASCADE,
    menu_item_id  TEXT    NOT NULL REFERENCES menu_items (id) ON DELETE CASCADE,
    restaurant_id TEXT    NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    added_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (customer_id, menu_item_id)
);

ALTER TABLE orders ADD COLUMN subtotal_cents INTEGER NOT NULL DEFAULT 0 CHECK (subtotal_cents >= 0);
ALTER TABLE orders ADD COLUMN delivery_fee_cents INTEGER NOT NULL DEFAULT 0 CHECK (delivery_fee_cents >= 0);

-- What was ordered, priced as it was when the order was placed.
CREATE TABLE order_lines (
    order_id         TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    menu_item_id     TEXT    NOT NULL REFERENCES menu_items (id),
    name             TEXT    NOT NULL,
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    -- Whether the line took stock, so exactly that much is given back.
    took_stock       INTEGER NOT NULL CHECK (took_stock IN (0, 1)),
    PRIMARY KEY (order_id, menu_item_id)
);

-- A customer's Idempotency-Key and the request it first came with: the same
-- key again answers with the order it created, never a second order.
CREATE TABLE idempotency_keys (
    customer_id   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    order_id      TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (customer_id, key)
);

-- Charges and refunds. A row is written (pending) before the gateway is
-- called and settled after, so a crash leaves a trace to resume from.
CREATE TABLE payments (
    id            TEXT    PRIMARY KEY,
    order_id      TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('charge', 'refund')),
    amount_cents  INTEGER NOT NULL CHECK (amount_cents >= 0),
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    method        TEXT    NOT NULL,
    -- The gateway's token for the payment method (never card data).
    token         TEXT    NULL,
    gateway_ref   TEXT    NULL,
    failure       TEXT    NULL,
    reason        TEXT    NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    actor_id      TEXT    NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
-- One charge per order, whatever retries or races happen.
CREATE UNIQUE INDEX payments_one_charge ON payments (order_id) WHERE kind = 'charge';
CREATE INDEX payments_order ON payments (order_id, created_at_ms);
CREATE INDEX payments_pending ON payments (status) WHERE status = 'pending';
