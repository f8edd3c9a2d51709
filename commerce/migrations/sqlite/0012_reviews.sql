-- Ratings and reviews: after delivery the ordering customer rates the
-- restaurant and, optionally, the driver (1 to 5 stars, optional text),
-- once per order (the unique index), editable for a limited time. An
-- admin may hide a review (with a reason): hidden reviews stop counting
-- in averages and are not listed to the public.
CREATE TABLE reviews (
    id               TEXT    PRIMARY KEY,
    order_id         TEXT    NOT NULL REFERENCES orders (id),
    customer_id      TEXT    NOT NULL REFERENCES users (id),
    restaurant_id    TEXT    NOT NULL REFERENCES restaurants (id),
    driver_id        TEXT    NULL REFERENCES users (id),
    restaurant_stars INTEGER NOT NULL CHECK (restaurant_stars BETWEEN 1 AND 5),
    restaurant_text  TEXT    NULL,
    driver_stars     INTEGER NULL CHECK (driver_stars BETWEEN 1 AND 5),
    driver_text      TEXT    NULL,
    hidden_at_ms     BIGINT  NULL,
    hidden_reason    TEXT    NULL,
    hidden_by        TEXT    NULL REFERENCES users (id),
    created_at_ms    BIGINT  NOT NULL,
    updated_at_ms    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX reviews_one_per_order ON reviews (order_id);
CREATE INDEX reviews_restaurant ON reviews (restaurant_id, created_at_ms, id);
CREATE INDEX reviews_driver ON reviews (driver_id, created_at_ms, id);
