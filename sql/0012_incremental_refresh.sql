-- Incremental matching (domain/matching/incremental.py): what the last match read of each
-- listing (a hash of its title, brand, model codes and category), the match block of every
-- category, and a log of match runs (full or incremental, with the scorer's version: a new
-- model means a full re-match).
CREATE TABLE IF NOT EXISTS match_identities (
    retailer TEXT NOT NULL,
    sku TEXT NOT NULL,
    identity BIGINT NOT NULL,
    PRIMARY KEY (retailer, sku)
);

CREATE TABLE IF NOT EXISTS match_blocks (
    category TEXT NOT NULL PRIMARY KEY,
    block TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS match_runs (
    matched_at TIMESTAMPTZ NOT NULL,
    mode TEXT NOT NULL,
    scorer TEXT NOT NULL,
    listings BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    touched_products BIGINT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL
);

-- Incremental normalisation (pipeline/listings.py): the fingerprint of raw_prices per
-- retailer and UTC hour at the last refresh (a changed hour's listings are normalised
-- again), and the brand vocabulary of the whole catalogue at the last full refresh (what
-- titles are searched for when only some listings are normalised).
CREATE TABLE IF NOT EXISTS listing_hours (
    retailer TEXT NOT NULL,
    hour BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (retailer, hour)
);

CREATE TABLE IF NOT EXISTS brand_vocabulary (
    alias TEXT NOT NULL PRIMARY KEY,
    brand TEXT NOT NULL
);
