-- What each ingestion run landed: rows stored, quarantined as problems, and quarantined
-- for showing no price. The quarantine_rate check compares a run with the recent ones
-- from here instead of counting a week of raw_prices on every run.
CREATE TABLE IF NOT EXISTS ingest_runs (
    run_id TEXT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    stored BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    unpriced BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS ingest_runs_ingested_at_idx ON ingest_runs (ingested_at);
