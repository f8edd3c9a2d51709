-- Outside channels (`commerce::channels`, written by the api's
-- `channel:{push,email,sms}` consumers of the event stream): each user's
-- language and notification preferences, and the log of every message
-- sent (or tried) on a channel. The SQLite twin is
-- migrations/sqlite/0010_channels.sql; keep the two in step.

-- The language a user reads notifications in ('en', 'sv'); NULL: not
-- chosen (English).
ALTER TABLE users ADD COLUMN language TEXT NULL CHECK (language IN ('en', 'sv'));

-- What a user changed from the default preferences: per channel, the
-- channel as a whole (`event_type` '*') or one event type. A user with no
-- rows gets the defaults (`commerce::channels::prefs`); a PUT replaces
-- the user's rows.
CREATE TABLE notification_preferences (
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel       TEXT    NOT NULL CHECK (channel IN ('push', 'email', 'sms')),
    event_type    TEXT    NOT NULL,
    enabled       BIGINT  NOT NULL CHECK (enabled IN (0, 1)),
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, channel, event_type)
);

-- One row per (recipient, event, channel): the notification of that event
-- to that user on that channel. A redelivered event finds it `sent` (or
-- `skipped`) and sends nothing; a `failed` one is tried again, counting
-- `attempts`. No foreign key to users: what was sent is history.
CREATE TABLE channel_sends (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    event_id         BIGINT  NOT NULL,
    channel          TEXT    NOT NULL CHECK (channel IN ('push', 'email', 'sms')),
    event_type       TEXT    NOT NULL,
    party            TEXT    NOT NULL,
    order_id         TEXT    NULL,
    language         TEXT    NOT NULL,
    to_address       TEXT    NULL,
    subject          TEXT    NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('sent', 'failed', 'skipped')),
    attempts         BIGINT  NOT NULL CHECK (attempts >= 0),
    last_error       TEXT    NULL,
    provider_id      TEXT    NULL,
    created_at_ms    BIGINT  NOT NULL,
    last_attempt_at_ms BIGINT NOT NULL,
    sent_at_ms       BIGINT  NULL,
    UNIQUE (user_id, event_id, channel)
);
-- An admin's listing, newest first, by user and by status.
CREATE INDEX channel_sends_user ON channel_sends (user_id, id);
CREATE INDEX channel_sends_status ON channel_sends (status, id);
