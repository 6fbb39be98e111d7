-- Labelled pairs: a user confirmed (is_match) or rejected that two listings of different
-- retailers are the same product. The next training of the match model reads them.
-- One row per pair, left retailer alphabetically first (as in match_pairs); labelling a
-- pair again replaces the decision, and every decision is also written to audit_log.
-- (The service API's migration declares the same table; whichever runs first creates it.)
CREATE TABLE IF NOT EXISTS match_labels (
    left_retailer TEXT NOT NULL,
    left_sku TEXT NOT NULL,
    right_retailer TEXT NOT NULL,
    right_sku TEXT NOT NULL,
    is_match BOOLEAN NOT NULL,
    labelled_by TEXT NOT NULL,
    labelled_at TIMESTAMPTZ NOT NULL,
    note TEXT,
    PRIMARY KEY (left_retailer, left_sku, right_retailer, right_sku)
);
