-- A listing reported missing by a connector lands without a price, and possibly without a
-- title (the page that should have shown it did not): the name becomes optional.
-- (DuckDB cannot alter a table that has an index: drop, alter, re-create.)
DROP INDEX IF EXISTS raw_prices_ingested_at_idx;

ALTER TABLE raw_prices ALTER COLUMN name DROP NOT NULL;

CREATE INDEX IF NOT EXISTS raw_prices_ingested_at_idx ON raw_prices (ingested_at);

-- Partition replacement deletes a retailer's day: (retailer, observed_at) finds it fast.
CREATE INDEX IF NOT EXISTS raw_prices_retailer_observed_idx ON raw_prices (retailer, observed_at);
