-- Incremental price history (pipeline/history.py): the fingerprint of the raw rows each
-- (retailer, market day) slice of price_history was last built from. A refresh rebuilds only
-- the slices whose fingerprint changed, replacing their closes in one transaction.
CREATE TABLE IF NOT EXISTS price_history_slices (
    retailer TEXT NOT NULL,
    day DATE NOT NULL,
    fingerprint TEXT NOT NULL,
    raw_rows BIGINT NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (retailer, day)
);

-- The series per canonical product x retailer: one row per product, retailer and day, with
-- the normal (list), offer and card prices of one listing. A product holds one listing per
-- retailer (the one_listing_per_retailer check); if a retailer ever has two, the row is the
-- in-stock one with the lowest offer (what a shopper there would pay), and listings says
-- how many there were.
CREATE OR REPLACE VIEW canonical_price_history AS
SELECT canonical_id, retailer, day, sku, price_list, price_offer, price_card, in_stock,
       observations, listings
FROM (
    SELECT m.canonical_id, h.retailer, h.day, h.sku, h.price_list, h.price_offer,
           h.price_card, h.in_stock, h.observations,
           count(*) OVER (PARTITION BY m.canonical_id, h.retailer, h.day) AS listings,
           row_number() OVER (
               PARTITION BY m.canonical_id, h.retailer, h.day
               ORDER BY CASE WHEN h.in_stock THEN 0 ELSE 1 END, h.price_offer NULLS LAST, h.sku
           ) AS pick
    FROM price_history AS h
    JOIN product_matches AS m ON m.retailer = h.retailer AND m.sku = h.sku
) AS ranked
WHERE pick = 1;
