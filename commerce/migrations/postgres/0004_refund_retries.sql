-- Background retries of refunds the gateway could not be reached for
-- (api/src/payments/mod.rs). Such a refund stays `pending` (its amount is
-- still owed, so nobody can refund it twice), with the last failure in
-- `failure`, the rounds so far in `retries` and the next one due at
-- `retry_at_ms`; settling it clears `retry_at_ms`. The SQLite twin is
-- migrations/sqlite/0004_refund_retries.sql; keep the two in step.

ALTER TABLE payments ADD COLUMN retries BIGINT NOT NULL DEFAULT 0 CHECK (retries >= 0);
ALTER TABLE payments ADD COLUMN retry_at_ms BIGINT NULL;
