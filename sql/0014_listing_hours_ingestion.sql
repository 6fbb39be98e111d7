-- Incremental normalisation tells an hour that only gained rows (a scrape appended to it)
-- from one whose rows changed: it keeps each hour's last ingestion, so only the listings
-- with rows ingested since then are normalised again (pipeline/listings.py).
ALTER TABLE listing_hours ADD COLUMN IF NOT EXISTS last_ingested TIMESTAMPTZ;
