-- The reference listing of a spread, and why a spread waits for a person's review (weak
-- identity evidence, a gap implausible for its category): held spreads are not alerted.
-- (DuckDB cannot alter a table that has an index: drop, alter, re-create.)
DROP INDEX IF EXISTS opportunities_status_idx;

ALTER TABLE opportunities ADD COLUMN IF NOT EXISTS ref_sku TEXT;

ALTER TABLE opportunities ADD COLUMN IF NOT EXISTS review TEXT;

CREATE INDEX IF NOT EXISTS opportunities_status_idx ON opportunities (status);
