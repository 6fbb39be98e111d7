-- ArbX core schema. Portable SQL: runs unchanged on DuckDB and PostgreSQL.
-- Natural keys are primary keys so every write can be an idempotent upsert.

-- Every price observation as a connector yielded it (prices in integer CLP; NULL = not shown).
CREATE TABLE IF NOT EXISTS raw_prices (
    retailer TEXT NOT NULL,
    sku TEXT NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    product_id TEXT,
    variant TEXT,
    url TEXT,
    name TEXT NOT NULL,
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
    image_url TEXT,
    fetch_status TEXT NOT NULL,
    payload_sha256 TEXT,
    source TEXT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    run_id TEXT,
    PRIMARY KEY (retailer, sku, observed_at)
);

-- Rows that could not be accepted, with the reason and where they came from.
CREATE TABLE IF NOT EXISTS quarantine (
    record_hash TEXT PRIMARY KEY,
    retailer TEXT,
    source TEXT NOT NULL,
    source_location TEXT,
    reason TEXT NOT NULL,
    raw_record TEXT NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL,
    run_id TEXT
);

-- Current, cleaned state of each listing (retailer x sku).
CREATE TABLE IF NOT EXISTS listings (
    retailer TEXT NOT NULL,
    sku TEXT NOT NULL,
    product_id TEXT,
    name TEXT NOT NULL,
    name_norm TEXT NOT NULL,
    brand TEXT,
    model_code TEXT,
    category TEXT,
    url TEXT,
    price_list BIGINT,
    price_offer BIGINT,
    price_card BIGINT,
    card_program TEXT,
    in_stock BOOLEAN,
    seller TEXT,
    is_first_party BOOLEAN,
    condition TEXT,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (retailer, sku)
);

-- Canonical products: one per real-world product, grouping listings across retailers.
CREATE TABLE IF NOT EXISTS canonical_products (
    canonical_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    brand TEXT,
    model_code TEXT,
    category TEXT,
    n_listings INTEGER NOT NULL,
    n_retailers INTEGER NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Which canonical product each listing belongs to.
CREATE TABLE IF NOT EXISTS product_matches (
    retailer TEXT NOT NULL,
    sku TEXT NOT NULL,
    canonical_id TEXT NOT NULL,
    match_probability DOUBLE PRECISION NOT NULL,
    matched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (retailer, sku)
);

-- Accepted pairwise decisions behind the clusters (for audit and labelling).
CREATE TABLE IF NOT EXISTS match_pairs (
    left_retailer TEXT NOT NULL,
    left_sku TEXT NOT NULL,
    right_retailer TEXT NOT NULL,
    right_sku TEXT NOT NULL,
    probability DOUBLE PRECISION NOT NULL,
    matched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (left_retailer, left_sku, right_retailer, right_sku)
);

-- Daily close per listing: the last good observation of each day.
CREATE TABLE IF NOT EXISTS price_history (
    retailer TEXT NOT NULL,
    sku TEXT NOT NULL,
    day DATE NOT NULL,
    price_list BIGINT,
    price_offer BIGINT,
    price_card BIGINT,
    in_stock BOOLEAN,
    observations INTEGER NOT NULL,
    PRIMARY KEY (retailer, sku, day)
);

-- Opportunities with their lifecycle: new -> active -> expired; one row per opportunity.
CREATE TABLE IF NOT EXISTS opportunities (
    opportunity_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    canonical_id TEXT,
    product_name TEXT,
    category TEXT,
    buy_retailer TEXT NOT NULL,
    buy_sku TEXT NOT NULL,
    buy_url TEXT,
    buy_price BIGINT NOT NULL,
    buy_price_type TEXT NOT NULL,
    ref_retailer TEXT,
    ref_price BIGINT NOT NULL,
    margin_clp BIGINT NOT NULL,
    roi_pct DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    severity TEXT,
    observed_at TIMESTAMPTZ,
    status TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    expired_at TIMESTAMPTZ,
    times_seen INTEGER NOT NULL
);

-- The scraping tier each listing is in, from its measured volatility.
CREATE TABLE IF NOT EXISTS listing_tiers (
    retailer TEXT NOT NULL,
    sku TEXT NOT NULL,
    volatility DOUBLE PRECISION NOT NULL,
    price_changes INTEGER NOT NULL,
    tier TEXT NOT NULL,
    interval_minutes INTEGER NOT NULL,
    assigned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (retailer, sku)
);

-- Market and pipeline measurements, one snapshot per day (re-runs replace the day's).
CREATE TABLE IF NOT EXISTS intelligence_metrics (
    as_of_date DATE NOT NULL,
    scope TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    metric TEXT NOT NULL,
    value DOUBLE PRECISION,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (as_of_date, scope, scope_key, metric)
);

-- Business settings editable at run time (values are JSON text).
CREATE TABLE IF NOT EXISTS system_config (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS audit_log_id_seq;

-- Who changed what, when, and how it went.
CREATE TABLE IF NOT EXISTS audit_log (
    id BIGINT PRIMARY KEY DEFAULT nextval('audit_log_id_seq'),
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    details TEXT,
    outcome TEXT NOT NULL DEFAULT 'ok'
);

CREATE INDEX IF NOT EXISTS raw_prices_ingested_at_idx ON raw_prices (ingested_at);

CREATE INDEX IF NOT EXISTS opportunities_status_idx ON opportunities (status);
