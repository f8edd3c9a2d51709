-- Notifications (`commerce::notify`, written by the api's `notifications`
-- consumer of the event stream): each user's feed. The SQLite twin is
-- migrations/sqlite/0009_notifications.sql; keep the two in step.
--
-- `seq` is the recipient's own id: 1, 2, 3 … in the order stored (one
-- consumer writes, one event at a time), the cursor a device resyncs from.
-- One row per (recipient, event): the consumer's redeliveries find it
-- there and write nothing. No foreign key to users: a notification is
-- history, as events are.

CREATE TABLE notifications (
    user_id       TEXT    NOT NULL,
    seq           BIGINT  NOT NULL CHECK (seq >= 1),
    event_id      BIGINT  NOT NULL,
    event_type    TEXT    NOT NULL,
    order_id      TEXT    NULL,
    restaurant_id TEXT    NULL,
    status        TEXT    NULL,
    text          TEXT    NOT NULL,
    at_ms         BIGINT  NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    read_at_ms    BIGINT  NULL,
    PRIMARY KEY (user_id, seq),
    UNIQUE (user_id, event_id)
);
-- The unread count and "mark all read" touch unread rows only.
CREATE INDEX notifications_unread ON notifications (user_id, seq) WHERE read_at_ms IS NULL;
