-- hexdash foundation schema (SQLite). Applied once by the embedded migrator
-- in `store::sqlite`; never edit an applied migration, add the next one.
--
-- Conventions shared with the PostgreSQL schema to come: ids are UUID text,
-- times are Unix milliseconds (UTC) in integers, money is integer cents.

CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    -- Stored lower-cased by the api; the unique index on lower() keeps the
    -- uniqueness case-insensitive even if a row were written another way.
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('customer', 'restaurant', 'driver', 'admin')),
    created_at_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

-- Refresh tokens are stored as the hex SHA-256 of the token, never in clear.
-- Rotation revokes the old row (revoked_at_ms) and inserts the new one.
CREATE TABLE refresh_tokens (
    hash          TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE restaurants (
    id            TEXT    PRIMARY KEY,
    owner_id      TEXT    NOT NULL REFERENCES users (id),
    name          TEXT    NOT NULL,
    lat           REAL    NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng           REAL    NOT NULL CHECK (lng BETWEEN -180 AND 180),
    address       TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX restaurants_owner ON restaurants (owner_id);

CREATE TABLE orders (
    id               TEXT    PRIMARY KEY,
    customer_id      TEXT    NOT NULL REFERENCES users (id),
    restaurant_id    TEXT    NOT NULL REFERENCES restaurants (id),
    status           TEXT    NOT NULL,
    driver_id        TEXT    NULL REFERENCES users (id),
    -- The pickup point is copied from the restaurant when the order is
    -- placed, so moving a restaurant never moves an order in flight.
    pickup_lat       REAL    NOT NULL,
    pickup_lng       REAL    NOT NULL,
    dropoff_lat      REAL    NOT NULL,
    dropoff_lng      REAL    NOT NULL,
    delivery_address TEXT    NOT NULL,
    total_cents      INTEGER NOT NULL CHECK (total_cents >= 0),
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);
-- Listing is newest first per party: (party, created_at_ms DESC, id DESC).
CREATE INDEX orders_customer   ON orders (customer_id, created_at_ms, id);
CREATE INDEX orders_restaurant ON orders (restaurant_id, created_at_ms, id);
CREATE INDEX orders_driver     ON orders (driver_id, created_at_ms, id);
CREATE INDEX orders_created    ON orders (created_at_ms, id);
CREATE INDEX orders_status     ON orders (status);

-- The timestamped history of an order: one row per status step
-- (kind = 'status') and per driver assignment (kind = 'assigned').
CREATE TABLE order_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id  TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind      TEXT    NOT NULL CHECK (kind IN ('status', 'assigned')),
    status    TEXT    NOT NULL,
    driver_id TEXT    NULL,
    actor_id  TEXT    NULL,
    at_ms     INTEGER NOT NULL
);
CREATE INDEX order_events_order ON order_events (order_id, id);
