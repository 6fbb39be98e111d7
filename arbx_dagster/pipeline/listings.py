"""Stage 2: the current, normalised state of every listing."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.matching.normalize import enrich_listings
from arbx_dagster.domain.schema import LISTING_KEY, LISTING_SCHEMA, UTC_DATETIME, conform
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.warehouse import Warehouse

# The latest successful observation of each listing, with when it was first and last seen.
LATEST_OBSERVATIONS_SQL = """
SELECT * FROM (
    SELECT r.*,
           min(observed_at) OVER (PARTITION BY retailer, sku) AS first_seen,
           max(observed_at) OVER (PARTITION BY retailer, sku) AS last_seen,
           row_number() OVER (PARTITION BY retailer, sku ORDER BY observed_at DESC) AS recency
    FROM raw_prices AS r
    WHERE fetch_status = 'ok'
) AS ranked
WHERE recency = 1
"""


def refresh_listings(warehouse: Warehouse, *, now: datetime) -> StageReport:
    latest = warehouse.query(LATEST_OBSERVATIONS_SQL)
    listings = conform(enrich_listings(latest), LISTING_SCHEMA).with_columns(
        updated_at=pl.lit(now).cast(UTC_DATETIME)
    )
    warehouse.upsert("listings", listings, LISTING_KEY)
    return StageReport(
        rows=listings.height,
        counts={
            "listings": listings.height,
            "with_model_code": int(listings["model_code"].is_not_null().sum()),
            "with_brand": int(listings["brand"].is_not_null().sum()),
            "in_stock": int(listings["in_stock"].fill_null(False).sum()),
            "per_retailer": dict(listings.group_by("retailer").len().sort("retailer").iter_rows()),
        },
        preview=listings.select(
            "retailer", "sku", "name", "brand", "model_code", "category", "price_offer"
        ).head(10),
    )
