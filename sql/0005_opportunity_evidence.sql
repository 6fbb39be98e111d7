-- Why each opportunity was flagged, what kind of glitch it is, and whether a re-fetch
-- confirmed it. (DuckDB cannot alter a table that has an index: drop, alter, re-create.)
DROP INDEX IF EXISTS opportunities_status_idx;

ALTER TABLE opportunities ADD COLUMN IF NOT EXISTS reason TEXT;

ALTER TABLE opportunities ADD COLUMN IF NOT EXISTS glitch_type TEXT;

ALTER TABLE opportunities ADD COLUMN IF NOT EXISTS confirmation TEXT;

CREATE INDEX IF NOT EXISTS opportunities_status_idx ON opportunities (status);

-- Watch rules users set (target price, % drop, N-day low, back in stock, with a scope).
CREATE TABLE IF NOT EXISTS watch_rules (
    rule_id TEXT PRIMARY KEY,
    owner TEXT,
    kind TEXT NOT NULL,
    canonical_id TEXT,
    retailers TEXT,
    sku TEXT,
    category TEXT,
    first_party_only BOOLEAN,
    include_card BOOLEAN,
    target_price BIGINT,
    pct DOUBLE PRECISION,
    days INTEGER,
    enabled BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS alert_events_id_seq;

-- Every alert sent or suppressed, for the alert KPIs.
CREATE TABLE IF NOT EXISTS alert_events (
    id BIGINT PRIMARY KEY DEFAULT nextval('alert_events_id_seq'),
    sent_at TIMESTAMPTZ NOT NULL,
    alert_kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    n INTEGER NOT NULL,
    run_id TEXT
);
