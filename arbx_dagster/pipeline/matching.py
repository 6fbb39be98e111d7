"""Stage 3: canonical products across retailers."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.matching import match_listings
from arbx_dagster.domain.schema import LISTING_SCHEMA, UTC_DATETIME, conform
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.warehouse import Warehouse


def refresh_matches(warehouse: Warehouse, *, now: datetime) -> StageReport:
    """Re-match every current listing and replace the derived match tables atomically."""
    listings = conform(warehouse.query("SELECT * FROM listings"), LISTING_SCHEMA)
    result = match_listings(listings)
    stamp = pl.lit(now).cast(UTC_DATETIME)
    with warehouse.transaction():
        warehouse.replace("product_matches", result.product_matches.with_columns(matched_at=stamp))
        warehouse.replace("match_pairs", result.pairs.with_columns(matched_at=stamp))
        warehouse.replace(
            "canonical_products", result.canonical_products.with_columns(updated_at=stamp)
        )
    products = result.canonical_products
    by_retailers = dict(products.group_by("n_retailers").len().sort("n_retailers").iter_rows())
    return StageReport(
        rows=result.product_matches.height,
        counts={
            "listings": listings.height,
            "candidate_pairs": int(result.stats.get("candidates", 0)),
            "matched_pairs": result.pairs.height,
            "canonical_products": products.height,
            "products_by_retailer_count": {str(k): v for k, v in by_retailers.items()},
            "mean_pair_probability": float(result.pairs["probability"].mean() or 0.0),
        },
        preview=products.sort("n_retailers", "n_listings", descending=True).head(10),
    )
