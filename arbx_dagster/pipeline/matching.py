"""Stage 3: the match model, and canonical products across retailers."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.matching import TrainedPairModel, match_by_block
from arbx_dagster.domain.matching.engine import default_workers
from arbx_dagster.domain.matching.shipped import pipeline_model
from arbx_dagster.domain.schema import LISTING_SCHEMA, UTC_DATETIME, conform
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.labels import read_labels
from arbx_dagster.storage.warehouse import Warehouse


def read_listings(warehouse: Warehouse) -> pl.DataFrame:
    return conform(warehouse.query("SELECT * FROM listings"), LISTING_SCHEMA)


def train_match_model(warehouse: Warehouse) -> TrainedPairModel:
    """The shipped match model, adapted to the pairs users confirmed or rejected."""
    return pipeline_model(labels=read_labels(warehouse), listings=read_listings(warehouse))


def refresh_matches(
    warehouse: Warehouse,
    *,
    now: datetime,
    scorer: TrainedPairModel | None = None,
    workers: int | None = None,
    shard: tuple[int, int] | None = None,
) -> StageReport:
    """Re-match the current listings and replace the derived match tables atomically;
    canonical ids carry over from the previous run when a product's members mostly stay.
    Pairs people labelled are settled: matched when confirmed, never when rejected.

    ``shard=(index, count)`` re-matches only the match blocks of that shard (a Dagster
    partition of ``product_matches``) and replaces only their listings' rows, so shards
    can run on different workers; without it every block is matched and the tables are
    replaced whole.
    """
    listings = read_listings(warehouse)
    previous = warehouse.query(
        "SELECT retailer, sku, canonical_id, match_probability FROM product_matches"
    )
    workers = default_workers() if workers is None else workers
    decisions = read_labels(warehouse)
    result = match_by_block(
        listings, scorer=scorer, workers=workers, shard=shard, decisions=decisions
    )
    result = result.carry_over(previous)
    stamp = pl.lit(now).cast(UTC_DATETIME)
    matches = result.product_matches.with_columns(matched_at=stamp)
    pairs = result.pairs.with_columns(matched_at=stamp)
    products = result.canonical_products.with_columns(updated_at=stamp)
    with warehouse.transaction():
        if shard is None:
            warehouse.replace("product_matches", matches)
            warehouse.replace("match_pairs", pairs)
            warehouse.replace("canonical_products", products)
        else:
            _replace_shard(warehouse, matches, pairs, products)
    by_retailers = dict(
        result.canonical_products.group_by("n_retailers").len().sort("n_retailers").iter_rows()
    )
    return StageReport(
        rows=matches.height,
        counts={
            "listings": listings.height,
            "shard": "all" if shard is None else f"{shard[0]} of {shard[1]}",
            "listings_matched": matches.height,
            "scorer": getattr(scorer, "version", "rules"),
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
            "canonical_products": result.canonical_products.height,
            "products_by_retailer_count": {str(k): v for k, v in by_retailers.items()},
            "mean_pair_probability": float(result.pairs["probability"].mean() or 0.0),
        },
        preview=result.canonical_products.sort("n_retailers", "n_listings", descending=True).head(
            10
        ),
    )


def _replace_shard(
    warehouse: Warehouse, matches: pl.DataFrame, pairs: pl.DataFrame, products: pl.DataFrame
) -> None:
    """Swap one shard's listings' match rows (inside the caller's transaction). A listing
    that moved here from another shard loses its old rows now; rows of delisted listings
    and products left without members are dropped on the way."""
    keys = matches.select("retailer", "sku")
    warehouse.delete_keys("product_matches", keys)
    for side in ("left", "right"):
        warehouse.delete_keys(
            "match_pairs", keys.rename({"retailer": f"{side}_retailer", "sku": f"{side}_sku"})
        )
    warehouse.insert("product_matches", matches)
    warehouse.insert("match_pairs", pairs)
    warehouse.upsert("canonical_products", products, ["canonical_id"])
    warehouse.execute(
        "DELETE FROM product_matches AS m WHERE NOT EXISTS "
        "(SELECT 1 FROM listings AS l WHERE l.retailer = m.retailer AND l.sku = m.sku)"
    )
    warehouse.execute(
        "DELETE FROM canonical_products AS c WHERE NOT EXISTS "
        "(SELECT 1 FROM product_matches AS m WHERE m.canonical_id = c.canonical_id)"
    )
