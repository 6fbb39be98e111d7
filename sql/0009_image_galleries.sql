-- Stores show a gallery, not one picture: raw_prices keeps every image URL as a JSON array
-- text (main image first), portable across both engines. Rows written before keep their
-- one image as a one-element array. (Applied once by the ledger: RENAME cannot be
-- re-run; the UPDATE can. DuckDB cannot alter a table with an index: drop, alter, re-create.)
DROP INDEX IF EXISTS raw_prices_ingested_at_idx;

DROP INDEX IF EXISTS raw_prices_retailer_observed_idx;

ALTER TABLE raw_prices RENAME COLUMN image_url TO image_urls;

UPDATE raw_prices
SET image_urls = '["' || replace(replace(image_urls, '\', '\\'), '"', '\"') || '"]'
WHERE image_urls IS NOT NULL AND image_urls NOT LIKE '[%';

CREATE INDEX IF NOT EXISTS raw_prices_ingested_at_idx ON raw_prices (ingested_at);

CREATE INDEX IF NOT EXISTS raw_prices_retailer_observed_idx ON raw_prices (retailer, observed_at);
