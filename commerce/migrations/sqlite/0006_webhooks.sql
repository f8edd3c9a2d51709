-- Webhooks (the `webhooks` crate): the endpoints admins register and the
-- log of every delivery attempt to them. The PostgreSQL twin is
-- migrations/postgres/0006_webhooks.sql; keep the two in step.
--
-- No foreign key to users or events: an endpoint outlives the admin who
-- made it, and the log names events by the stream's id as text.

CREATE TABLE webhook_endpoints (
    id               TEXT    PRIMARY KEY,
    url              TEXT    NOT NULL,
    -- A JSON array of event type names, validated before writing.
    event_types_json TEXT    NOT NULL,
    -- The HMAC key (`whsec_…`). Kept in clear: signing needs it.
    secret           TEXT    NOT NULL,
    enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    disabled_reason  TEXT    NULL,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);

-- One row per attempt (`attempt` counts from 1 per endpoint and event).
-- `outcome` is one of `webhooks::Outcome`'s names; `http_status` is set
-- when the receiver answered, `error` when it did not or answered non-2xx.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    attempt         INTEGER NOT NULL CHECK (attempt >= 1),
    attempted_at_ms INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL CHECK (duration_ms >= 0),
    http_status     INTEGER NULL,
    error           TEXT    NULL,
    outcome         TEXT    NOT NULL,
    UNIQUE (endpoint_id, event_id, attempt)
);
-- The log's pages: newest first per endpoint.
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
