-- The simulated payment gateway's own ledger (api/src/payments/simulated.rs):
-- the answer it gave each idempotency key and how much of each charge it has
-- refunded, so that, like the real processor it stands in for, it remembers
-- its charges across restarts. Only the simulated gateway reads or writes
-- these tables; a real gateway keeps this ledger on its side. The SQLite
-- twin is migrations/sqlite/0003_simulated_gateway.sql; keep the two in
-- step.

CREATE TABLE simulated_gateway_charges (
    -- The key the saga sent (the charge's payment id): the same key again
    -- gets the answer recorded here and moves no money.
    idempotency_key TEXT    PRIMARY KEY,
    -- `ch_…` when the charge went through; NULL when it was declined.
    reference       TEXT    NULL UNIQUE,
    -- Why it was declined; NULL when it went through.
    declined        TEXT    NULL,
    amount_cents    BIGINT  NOT NULL CHECK (amount_cents >= 0),
    -- The test token charged (it also decides how refunds of it behave).
    token           TEXT    NOT NULL,
    -- Taken by a conditional UPDATE, so it never exceeds the charge.
    refunded_cents  BIGINT  NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents),
    created_at_ms   BIGINT  NOT NULL,
    CHECK ((reference IS NULL) <> (declined IS NULL))
);

CREATE TABLE simulated_gateway_refunds (
    idempotency_key  TEXT    PRIMARY KEY,
    -- The charge reference asked for (it may name no charge).
    charge_reference TEXT    NOT NULL,
    amount_cents     BIGINT  NOT NULL CHECK (amount_cents >= 0),
    outcome          TEXT    NOT NULL CHECK (outcome IN ('refunded', 'unknown_charge', 'exceeds_charge')),
    created_at_ms    BIGINT  NOT NULL
);

-- Charges and refunds that went through before the ledger was durable (the
-- in-memory ledger forgot them at every restart): the payments table knows
-- them, so an order paid before this upgrade can still be refunded after it.
INSERT INTO simulated_gateway_charges
    (idempotency_key, reference, declined, amount_cents, token, refunded_cents, created_at_ms)
SELECT c.id, c.gateway_ref, NULL, c.amount_cents, COALESCE(c.token, ''),
       COALESCE((SELECT SUM(r.amount_cents) FROM payments r
                 WHERE r.order_id = c.order_id AND r.kind = 'refund' AND r.status = 'succeeded'), 0),
       c.created_at_ms
FROM payments c
WHERE c.kind = 'charge' AND c.status = 'succeeded' AND c.gateway_ref IS NOT NULL;

INSERT INTO simulated_gateway_refunds
    (idempotency_key, charge_reference, amount_cents, outcome, created_at_ms)
SELECT r.id, c.gateway_ref, r.amount_cents, 'refunded', r.created_at_ms
FROM payments r
JOIN payments c ON c.order_id = r.order_id AND c.kind = 'charge'
WHERE r.kind = 'refund' AND r.status = 'succeeded' AND c.gateway_ref IS NOT NULL;
