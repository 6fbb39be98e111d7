"""Stage 3: the match model, and canonical products across retailers."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.matching import TrainedPairModel, match_by_block, train_pipeline_model
from arbx_dagster.domain.matching.engine import default_workers
from arbx_dagster.domain.schema import LISTING_SCHEMA, UTC_DATETIME, conform
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.labels import read_labels
from arbx_dagster.storage.warehouse import Warehouse


def read_listings(warehouse: Warehouse) -> pl.DataFrame:
    return conform(warehouse.query("SELECT * FROM listings"), LISTING_SCHEMA)


def train_match_model(warehouse: Warehouse) -> TrainedPairModel:
    """Train on simulated Chilean listings plus the pairs users confirmed or rejected."""
    return train_pipeline_model(labels=read_labels(warehouse), listings=read_listings(warehouse))


def refresh_matches(
    warehouse: Warehouse,
    *,
    now: datetime,
    scorer: TrainedPairModel | None = None,
    workers: int | None = None,
) -> StageReport:
    """Re-match every current listing and replace the derived match tables atomically;
    canonical ids carry over from the previous run when a product's members mostly stay."""
    listings = read_listings(warehouse)
    previous = warehouse.query(
        "SELECT retailer, sku, canonical_id, match_probability FROM product_matches"
    )
    workers = default_workers() if workers is None else workers
    result = match_by_block(listings, scorer=scorer, workers=workers).carry_over(previous)
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
            "scorer": scorer.version if scorer is not None else "rules",
            "threshold": float(result.stats.get("threshold", 0.0)),
            "candidate_pairs": int(result.stats.get("candidates", 0)),
            "match_blocks": int(result.stats.get("blocks", 0)),
            "match_workers": workers,
            **{
                f"seconds_{stage}": round(float(result.stats.get(f"seconds_{key}", 0.0)), 3)
                for stage, key in (
                    ("blocking", "blocking"),
                    ("scoring", "scoring"),
                    ("assignment", "clustering"),
                )
            },
            "matched_pairs": result.pairs.height,
            "canonical_products": products.height,
            "products_by_retailer_count": {str(k): v for k, v in by_retailers.items()},
            "mean_pair_probability": float(result.pairs["probability"].mean() or 0.0),
        },
        preview=products.sort("n_retailers", "n_listings", descending=True).head(10),
    )
