-- raw_prices is keyed (retailer, observed_at, sku) instead of (retailer, sku, observed_at).
-- A scrape's rows share a retailer and a few observation times, so they land at the right
-- edge of the key instead of at a random place per sku: a bulk load of a million rows
-- touches a few index pages, not all of them (PostgreSQL COPY of 1M rows: ~20 s -> ~12 s).
-- The key now also serves the (retailer, observed_at) window probes and partition deletes,
-- so that separate index goes. Neither engine can change a primary key in place: the rows
-- move to a copy, the table is re-created with the new key, the rows move back.
CREATE TABLE raw_prices_before_0010 AS SELECT * FROM raw_prices;

DROP TABLE raw_prices;

CREATE TABLE raw_prices (
    retailer TEXT NOT NULL,
    sku TEXT NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    product_id TEXT,
    variant TEXT,
    url TEXT,
    name TEXT,
    brand TEXT,
    model TEXT,
    ean TEXT,
    category TEXT,
    listing_rank INTEGER,
    price_list BIGINT,
    price_offer BIGINT,
    price_card BIGINT,
    card_program TEXT,
    currency TEXT NOT NULL,
    in_stock BOOLEAN,
    stock_qty INTEGER,
    seller TEXT,
    is_first_party BOOLEAN,
    condition TEXT,
    image_urls TEXT,
    fetch_status TEXT NOT NULL,
    payload_sha256 TEXT,
    source TEXT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    run_id TEXT,
    PRIMARY KEY (retailer, observed_at, sku)
);

INSERT INTO raw_prices (
    retailer, sku, observed_at, product_id, variant, url, name, brand, model, ean, category,
    listing_rank, price_list, price_offer, price_card, card_program, currency, in_stock,
    stock_qty, seller, is_first_party, condition, image_urls, fetch_status, payload_sha256,
    source, ingested_at, run_id
)
SELECT retailer, sku, observed_at, product_id, variant, url, name, brand, model, ean, category,
       listing_rank, price_list, price_offer, price_card, card_program, currency, in_stock,
       stock_qty, seller, is_first_party, condition, image_urls, fetch_status, payload_sha256,
       source, ingested_at, run_id
FROM raw_prices_before_0010
ORDER BY retailer, observed_at, sku;

DROP TABLE raw_prices_before_0010;

CREATE INDEX IF NOT EXISTS raw_prices_ingested_at_idx ON raw_prices (ingested_at);
